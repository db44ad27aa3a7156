"""Reading header values and body bytes of real mail, whatever their encoding.

Everything here is total: damaged input gives the best text that can be read and a
`problem` string, never an exception. That is why these are written here rather than
taken from `email.header`, whose decoder raises on bad base64 and unknown charsets.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import getaddresses

# Labels mail uses for charsets that Python spells differently or that are in practice a
# superset: WHATWG's encoding standard maps Latin-1 and ASCII labels to windows-1252, and
# Korean and Japanese mail declares the old standard while sending its Windows extension.
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "utf-8",
    "unknown-8bit": "utf-8",
}
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r?\n[ \t]*|\r")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACES = re.compile(r"[ \t]+")
_LOCAL_AND_DOMAIN = re.compile(r"[^@\s]+@[^@\s]+")
_ADDRESS_IN_TEXT = re.compile(r"[^\s<>\"'@,;:()\[\]]+@[^\s<>\"'@,;:()\[\]]+")


@dataclass(frozen=True)
class Decoded:
    """Text read from bytes, and what went wrong reading it (None when nothing did)."""

    text: str
    problem: str | None = None


def _codec(label: str) -> str | None:
    name = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a NUL in the label
        return None
    # "base64", "zlib", "rot13" and friends are codecs too, but not charsets.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def decode_bytes(data: bytes, charset: str | None) -> Decoded:
    """``data`` as text in its declared ``charset``, else UTF-8, else windows-1252."""
    label = (charset or "").strip().strip("\"'").lower()
    codec = _codec(label) if label else None
    problem = None
    if codec is not None:
        try:
            return Decoded(data.decode(codec))
        except UnicodeError:  # UnicodeDecodeError, and the plain kind idna/punycode raise
            problem = f"text declared as {label} is not valid {label}"
        except (LookupError, ValueError, TypeError):  # a codec that is not for text after all
            problem = f"unknown charset {label!r}"
    elif label:
        problem = f"unknown charset {label!r}"
    try:
        return Decoded(data.decode("utf-8"), problem)
    except UnicodeDecodeError:
        return Decoded(data.decode("cp1252", errors="replace"), problem)


def restore_8bit(value: str) -> str:
    """Undo the parser's surrogate escapes: raw 8-bit header bytes read as UTF-8 or cp1252."""
    if not any("\udc80" <= char <= "\udcff" for char in value):
        return value
    raw = value.encode("utf-8", errors="surrogateescape")
    return decode_bytes(raw, "utf-8").text


def _padded_b64(text: str) -> bytes:
    data = re.sub(r"[^A-Za-z0-9+/]", "", text)
    if len(data) % 4 == 1:  # one stray character cannot be decoded; drop it
        data = data[:-1]
    return base64.b64decode(data + "=" * (-len(data) % 4))


def _word_bytes(encoding: str, text: str) -> bytes:
    if encoding in "bB":
        return _padded_b64(text)
    return binascii.a2b_qp(text.encode("ascii", errors="replace"), header=True)


@dataclass
class _Word:
    charset: str
    data: bytes


def _segments(value: str) -> list[str | _Word]:
    """Plain runs and encoded words; whitespace between two encoded words is dropped."""
    segments: list[str | _Word] = []
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        previous_is_word = bool(segments) and isinstance(segments[-1], _Word)
        if between and not (previous_is_word and not between.strip()):
            segments.append(between)
        charset = match.group(1).split("*", 1)[0].lower()  # RFC 2231 language suffix
        try:
            segments.append(_Word(charset, _word_bytes(match.group(2), match.group(3))))
        except (binascii.Error, ValueError):
            segments.append(match.group(0))
        position = match.end()
    if position < len(value):
        segments.append(value[position:])
    return segments


def _merge_words(segments: list[str | _Word]) -> list[str | _Word]:
    """Join adjacent words in one charset: a character may be split across two words."""
    merged: list[str | _Word] = []
    for segment in segments:
        last = merged[-1] if merged else None
        if (
            isinstance(segment, _Word)
            and isinstance(last, _Word)
            and last.charset == segment.charset
        ):
            last.data += segment.data
        else:
            merged.append(
                _Word(segment.charset, segment.data) if isinstance(segment, _Word) else segment
            )
    return merged


def decode_header(value: str) -> str:
    """A header value as one line of text: unfolded, RFC 2047 words decoded, 8-bit read."""
    unfolded = _FOLD.sub(" ", restore_8bit(value))
    parts = [
        segment if isinstance(segment, str) else decode_bytes(segment.data, segment.charset).text
        for segment in _merge_words(_segments(unfolded))
    ]
    return _SPACES.sub(" ", _CONTROL.sub("", "".join(parts))).strip()


def header_problem(value: str) -> str | None:
    """What is wrong with a header's encoded words, if anything (for `problems`)."""
    for match in _ENCODED_WORD.finditer(value):
        charset = match.group(1).split("*", 1)[0].lower()
        if _codec(charset) is None:
            return f"unknown charset {charset!r}"
        try:
            _word_bytes(match.group(2), match.group(3))
        except (binascii.Error, ValueError):
            return "a damaged encoded word"
    return None


@dataclass(frozen=True)
class Address:
    """One mailbox of an address header: display name and lower-cased address."""

    name: str
    address: str

    @property
    def domain(self) -> str:
        """The part after the last ``@`` ("" when there is none)."""
        return self.address.rpartition("@")[2] if "@" in self.address else ""


def _clean_address(raw: str) -> str:
    return restore_8bit(raw).strip().strip("<>").lower()


def parse_addresses(values: Iterable[str]) -> list[Address]:
    """The addresses in raw header values, falling back to anything shaped like one."""
    raw_values = [_FOLD.sub(" ", v) for v in values]
    found = [
        Address(decode_header(name), _clean_address(address))
        for name, address in getaddresses(raw_values)
        if _LOCAL_AND_DOMAIN.fullmatch(address.strip())
    ]
    if found:
        return found
    return [
        Address("", _clean_address(match))
        for value in raw_values
        for match in _ADDRESS_IN_TEXT.findall(restore_8bit(value))
    ]
