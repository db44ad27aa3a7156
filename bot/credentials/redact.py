"""Redaction: no secret value leaves the process in anything the bot shows or logs.

A `Redactor` knows every secret's value and replaces each occurrence in a text with
``••••(NAME)``, including the forms a value takes on the wire or in an echo of it:
percent-encoded (either hex case, ``+`` for spaces), JSON-escaped (once or twice, with
or without ``\\/``), HTML/Slack-escaped, base64 of the value and, for basic auth, base64 of
``user:value`` (standard and url-safe alphabets, with or without padding).

All forms are RE2 alternations with leftmost-longest matching (one per 256 forms, so
that each DFA stays within its memory budget): a text is scanned in linear time, where
two values overlap the longer one wins, and overlapping occurrences are hidden whole.

Not caught: a value split across lines or chunks, re-encoded in other ways (hex,
base64 inside a larger base64 run at another alignment, compressed), or only partly
shown (a truncated token).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, TypeAlias
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

import re2

MASK: Final = "••••"
# Short values would be replaced all over ordinary text ("password", a date, a word),
# and are guessable anyway: refused when a secret is stored, not redacted everywhere.
MIN_SECRET_LENGTH: Final = 8
# Bounds the alternation (and a header line): tokens and JWTs are far shorter.
MAX_SECRET_LENGTH: Final = 8192

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None

_FORMS_PER_GROUP: Final = 256
_MAX_MEM_PER_GROUP: Final = 32 << 20
_OVERLAP_BUDGET: Final = 1000
_UPPER_ESCAPE = re.compile(r"%[0-9A-F]{2}")
# Attributes every LogRecord has; the others came with ``extra=`` and are shown by
# the JSON log format, so they are redacted too.
_STANDARD_RECORD_FIELDS: Final = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
}


class _Match(Protocol):
    def group(self, index: int = 0) -> bytes: ...
    def start(self, index: int = 0) -> int: ...
    def end(self, index: int = 0) -> int: ...


class _Pattern(Protocol):
    def search(self, data: bytes, pos: int) -> _Match | None: ...


@dataclass(frozen=True)
class _Span:
    """A match, in UTF-8 byte offsets of the text."""

    start: int
    end: int
    name: str


class SecretValueError(ValueError):
    """A value that cannot be stored as a secret; the message says why and what works."""


def placeholder(name: str) -> str:
    """What people see instead of the secret ``name``: ``••••(name)``."""
    return f"{MASK}({name})"


def check_secret_value(value: str) -> None:
    """Refuse, at ``/secret set`` time, a value that cannot be stored safely.

    Too short to redact without mangling ordinary text, too long, or with control
    characters or surrounding spaces (which would go into a header as they are).
    The message never repeats the value.
    """
    if len(value) < MIN_SECRET_LENGTH:
        raise SecretValueError(
            f"A secret must have at least {MIN_SECRET_LENGTH} characters "
            f"(this one has {len(value)}): shorter ones cannot be hidden from messages"
        )
    if len(value) > MAX_SECRET_LENGTH:
        raise SecretValueError(f"A secret may have at most {MAX_SECRET_LENGTH} characters")
    if not value.isprintable():
        raise SecretValueError(
            "A secret cannot contain line breaks, tabs or other control characters"
        )
    if value != value.strip():
        raise SecretValueError("A secret cannot begin or end with a space: check the paste")


def wire_forms(value: str, user: str | None = None) -> frozenset[str]:
    """Every spelling of ``value`` that the redactor replaces (empty strings left out)."""
    forms = {value}
    forms |= _percent_forms(value)
    forms |= _escaped_forms(value)
    forms |= _base64_forms(value)
    if user is not None:
        forms |= _base64_forms(f"{user}:{value}")
    forms.discard("")
    return frozenset(forms)


class Redactor:
    """Replaces every known secret value in texts and data with ``••••(NAME)``."""

    __slots__ = ("_by_form", "_names", "_patterns")

    def __init__(self, values: Mapping[str, str], users: Mapping[str, str] | None = None) -> None:
        """``values`` maps secret names to values; ``users`` maps basic-auth secrets to users.

        Every non-empty value is redacted, even one shorter than `MIN_SECRET_LENGTH`
        (stored before the rule, say): over-redacting beats a leak.
        """
        users = users or {}
        by_form: dict[bytes, str] = {}
        # Sorted so that a form shared by two secrets always names the same one.
        for name in sorted(values):
            if values[name]:
                for form in wire_forms(values[name], users.get(name)):
                    by_form.setdefault(form.encode("utf-8"), name)
        self._by_form = by_form
        self._names = frozenset(name for name, value in values.items() if value)
        self._patterns = _compile(by_form)

    def __repr__(self) -> str:
        return f"Redactor({len(self._names)} secrets)"

    @property
    def names(self) -> frozenset[str]:
        """The names of the secrets this redactor hides."""
        return self._names

    def redact(self, text: str) -> str:
        """``text`` with every form of every secret replaced by its placeholder."""
        if not self._patterns:
            return text
        # Matched as UTF-8 bytes: RE2 works on bytes, and a str would be encoded again
        # at every search. Forms are whole UTF-8 sequences, so every cut falls between
        # characters.
        data = text.encode("utf-8", "surrogatepass")
        spans = _merge_overlaps(self._spans(data))
        if not spans:
            return text
        pieces: list[bytes] = []
        position = 0
        for span in spans:
            pieces += (data[position : span.start], placeholder(span.name).encode("utf-8"))
            position = span.end
        pieces.append(data[position:])
        return b"".join(pieces).decode("utf-8", "surrogatepass")

    def redact_json(self, data: JSONValue) -> JSONValue:
        """A copy of JSON-like data with secrets redacted in every string, key or number."""
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, dict):
            return {self.redact(key): self.redact_json(item) for key, item in data.items()}
        if isinstance(data, list):
            return [self.redact_json(item) for item in data]
        if isinstance(data, int | float) and not isinstance(data, bool):
            # A numeric PIN would otherwise come through a JSON echo as a number.
            text = str(data)
            redacted = self.redact(text)
            return data if redacted == text else redacted
        return data

    def redact_headers(
        self, headers: Iterable[tuple[str, str]] | Mapping[str, str]
    ) -> dict[str, str]:
        """Headers (a mapping or ``(name, value)`` pairs) with secrets redacted in values.

        Repeated names (pairs from a multidict) are joined with ``", "`` as HTTP allows.
        """
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        result: dict[str, str] = {}
        for name, value in pairs:
            clean = self.redact(value)
            result[name] = f"{result[name]}, {clean}" if name in result else clean
        return result

    def _spans(self, data: bytes) -> list[_Span]:
        return [
            _Span(match.start(), match.end(), self._by_form[match.group(0)])
            for pattern in self._patterns
            for match in _every_match(pattern, data)
        ]


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the message, ``extra=`` texts and the traceback.

    ``current`` returns the redactor for the secrets as they are now, so that a
    secret set after start-up is hidden from the next log line on. Attach it to the
    handlers (a filter on a logger misses records from its children).
    """

    def __init__(self, current: Callable[[], Redactor]) -> None:
        super().__init__()
        self._current = current

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place if it shows a secret; never drops it.

        A record with nothing to hide is left as it is (its ``exc_info`` included, which
        handlers and tests may look at).
        """
        redactor = self._current()
        if redactor.names and _shows_a_secret(record, redactor):
            _rewrite(record, redactor)
        return True


def _shows_a_secret(record: logging.LogRecord, redactor: Redactor) -> bool:
    texts = [_message_of(record), record.stack_info or ""]
    if record.exc_text:
        texts.append(record.exc_text)
    elif record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
    texts += [
        value
        for key, value in record.__dict__.items()
        if key not in _STANDARD_RECORD_FIELDS and isinstance(value, str)
    ]
    return any(redactor.redact(text) != text for text in texts)


def _rewrite(record: logging.LogRecord, redactor: Redactor) -> None:
    """Redact the message, ``extra=`` texts and the traceback of ``record`` in place."""
    record.msg = redactor.redact(_message_of(record))
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redactor.redact(record.exc_text)
        # Formatters print exc_text only when exc_info is set; the JSON format
        # formats exc_info itself, so the redacted text must replace it.
        record.exc_info = None
        record.msg = f"{record.msg}\n{record.exc_text}"
        record.exc_text = None
    if record.stack_info:
        record.stack_info = redactor.redact(record.stack_info)
    for key, value in list(record.__dict__.items()):
        if key not in _STANDARD_RECORD_FIELDS and isinstance(value, str):
            setattr(record, key, redactor.redact(value))


def _message_of(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        # Arguments that do not fit the format: logging would report this at emit
        # time; here it must not raise into the caller, nor lose the arguments.
        return f"{record.msg} {record.args!r}"


def _every_match(pattern: _Pattern, data: bytes) -> Iterator[_Match]:
    """The longest match at every position where one starts, overlapping ones too.

    Searching on from a match's end (as finditer does) would pass over an occurrence
    that starts inside it, and leave that occurrence's tail visible.
    """
    position = covered = 0
    overlaps_left = _OVERLAP_BUDGET
    while (match := pattern.search(data, position)) is not None:
        yield match
        if match.start() < covered:
            overlaps_left -= 1
        covered = max(covered, match.end())
        # A text repeating a periodic value ("abababab") overlaps at every position:
        # past the budget, search on from the end so the cost stays per occurrence.
        position = match.start() + 1 if overlaps_left > 0 else match.end()


def _compile(by_form: Mapping[bytes, str]) -> tuple[_Pattern, ...]:
    # RE2 builds its DFA lazily within max_mem; past that it falls back to a matcher
    # that is a hundred times slower. Groups of a few hundred forms stay well inside
    # (measured: 2,000 secrets, 10,800 forms, 1 MiB in about 0.1 s once warm).
    options = re2.Options()
    options.longest_match = True
    options.max_mem = _MAX_MEM_PER_GROUP
    options.log_errors = False
    forms = sorted(by_form, key=len, reverse=True)
    groups = [forms[i : i + _FORMS_PER_GROUP] for i in range(0, len(forms), _FORMS_PER_GROUP)]
    patterns: list[_Pattern] = [
        re2.compile(b"|".join(re2.escape(form) for form in group), options) for group in groups
    ]
    return tuple(patterns)


def _merge_overlaps(spans: list[_Span]) -> list[_Span]:
    """Matches in text order, overlapping ones joined so no part of either shows.

    Matches overlap where a form contains another (across groups) or two occurrences
    share text.
    """
    merged: list[_Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = _Span(last.start, max(last.end, span.end), last.name)
        else:
            merged.append(span)
    return merged


def _percent_forms(value: str) -> set[str]:
    encoded = {quote(value, safe=""), quote(value), quote_plus(value, safe="")}
    return encoded | {_UPPER_ESCAPE.sub(lambda m: m.group(0).lower(), e) for e in encoded}


def _escaped_forms(value: str) -> set[str]:
    forms = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    # A JSON body echoed inside a JSON string (httpbin's "data") is escaped twice.
    forms |= {json.dumps(form)[1:-1] for form in forms}
    forms |= {form.replace("/", "\\/") for form in forms}
    return forms | {html.escape(value, quote=False), html.escape(value, quote=True)}


def _base64_forms(text: str) -> set[str]:
    raw = text.encode("utf-8")
    padded = {base64.b64encode(raw).decode("ascii"), base64.urlsafe_b64encode(raw).decode("ascii")}
    # Leftmost-longest matching takes the padded form where the padding is there.
    return padded | {form.rstrip("=") for form in padded}


# Query parameters that usually carry a credential.
_CREDENTIAL_PARAMETER = re2.compile(
    r"(?i)^(?:.*[-_])?(?:token|key|apikey|secret|password|passwd|pwd|auth|sig|signature|"
    r"credential|session)s?$"
)


def mask_url_credentials(url: str) -> str:
    """``url`` with its user-info and every query value shown as ``••••`` (for people who
    may not change what uses it: such URLs often carry a password or an API key)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = "&".join(
        f"{pair.split('=', 1)[0]}={MASK}" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_carries_credentials(url: str) -> bool:
    """True when ``url`` has user-info or a query parameter named like a credential."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return True
    names = (pair.split("=", 1)[0] for pair in parts.query.split("&") if pair)
    return any(_CREDENTIAL_PARAMETER.match(unquote(name)) for name in names)
