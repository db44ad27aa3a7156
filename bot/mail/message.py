"""One email, read into the values a Slack post and a routing rule need.

`parse_message` reads every MIME shape real mail uses (multipart/alternative, mixed,
related and signed; base64, quoted-printable and uuencode; RFC 2047 and RFC 2231 encoded
headers and names; legacy charsets) and never raises: what cannot be read is left out
and named in `MailMessage.problems`. The parser is the standard library's compat32 one,
the most forgiving; header values are decoded by `bot.mail.headers`, which is total.

`routing_context` is the dict a routing condition sees; `summary_from_headers` stands in
for a message too large to fetch (only its header block was read).
"""

from __future__ import annotations

import email
import email.errors
import email.parser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.policy import compat32
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from bot.mail.headers import (
    Address,
    decode_bytes,
    decode_header,
    header_problem,
    parse_addresses,
    restore_8bit,
)
from bot.mail.text import html_to_text, shorten, tidy, trim_reply, unflow

DEFAULT_MAX_TEXT = 500
# The whole plain-text body kept for routing conditions (``text``), in characters.
MAX_BODY_CHARS = 100_000
MAX_PARTS = 1_000
MAX_DEPTH = 30
MAX_HEADERS = 1_000
MAX_HEADER_CHARS = 10_000
# Raw header text read per header: enough for any real one (a To: with hundreds of
# recipients), and a bound on the work a hostile 10 MB header can cause.
MAX_RAW_HEADER_CHARS = 100_000

_SIGNATURE_TYPES = frozenset(
    {"application/pgp-signature", "application/pkcs7-signature", "application/x-pkcs7-signature"}
)
_BOUNDARY_DEFECTS = frozenset(
    {
        "StartBoundaryNotFoundDefect",
        "CloseBoundaryNotFoundDefect",
        "MultipartInvariantViolationDefect",
        "NoBoundaryInMultipartDefect",
        "MultipartConversionError",
    }
)
_BASE64_DEFECTS = frozenset(
    {"InvalidBase64PaddingDefect", "InvalidBase64CharactersDefect", "InvalidBase64LengthDefect"}
)

T = TypeVar("T")


@dataclass(frozen=True)
class Attachment:
    """A file carried by the message: its name, decoded size in bytes and MIME type."""

    name: str
    size: int
    content_type: str


@dataclass(frozen=True)
class MailMessage:
    """What was read from one message. Addresses are lower-cased; ``headers`` has
    lower-cased names and decoded values (repeated headers joined by newlines).

    ``text`` is the preview (quotes and signature trimmed, cut to ``max_text``);
    ``body`` is the whole plain-text body (up to `MAX_BODY_CHARS`) for routing.
    """

    from_name: str
    from_address: str
    from_domain: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: datetime | None
    text: str
    html_only: bool
    attachments: tuple[Attachment, ...]
    headers: Mapping[str, str] = field(hash=False)
    size: int
    message_id: str
    problems: tuple[str, ...]
    body: str = ""


class _Notes:
    """Problems met while reading, each said once, in the order met."""

    def __init__(self) -> None:
        self.items: dict[str, None] = {}

    def add(self, problem: str | None) -> None:
        if problem:
            self.items[problem] = None


def _safely(read: Callable[[], T], fallback: T, notes: _Notes, problem: str) -> T:
    # The email package is large and this input is hostile: any step that fails on a
    # malformed message gives way to a fallback and a note instead of a crash.
    try:
        return read()
    except Exception:
        notes.add(problem)
        return fallback


# --- headers --------------------------------------------------------------------------------


def _read_headers(message: Message, notes: _Notes) -> dict[str, str]:
    headers: dict[str, str] = {}
    items = message.raw_items()
    for count, (name, value) in enumerate(items):
        if count >= MAX_HEADERS:
            notes.add(f"only the first {MAX_HEADERS} headers were read")
            break
        key = name.strip().lower()
        text = decode_header(value[:MAX_RAW_HEADER_CHARS])[:MAX_HEADER_CHARS]
        headers[key] = f"{headers[key]}\n{text}" if key in headers else text
    return headers


def _raw_values(message: Message, name: str) -> list[str]:
    return [
        value[:MAX_RAW_HEADER_CHARS] for key, value in message.raw_items() if key.lower() == name
    ]


def _read_date(value: str | None, notes: _Notes) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError, OverflowError):
        notes.add(f"the date {value!r} could not be read")
        return None
    # "-0000" means "zone unknown"; the time is still UTC per RFC 5322.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _addresses(message: Message, name: str) -> list[Address]:
    return parse_addresses(_raw_values(message, name))


@dataclass(frozen=True)
class _Envelope:
    sender: Address
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: datetime | None
    message_id: str


def _read_sender(message: Message, notes: _Notes) -> Address:
    senders = _addresses(message, "from") or _addresses(message, "sender")
    if not senders:
        from_values = _raw_values(message, "from")
        notes.add("the From header has no readable address" if from_values else "no From header")
        return Address(decode_header(from_values[0]) if from_values else "", "")
    return senders[0]


def _read_envelope(message: Message, headers: Mapping[str, str], notes: _Notes) -> _Envelope:
    for value in _raw_values(message, "subject"):
        problem = header_problem(value)
        notes.add(f"the subject has {problem}" if problem else None)
    return _Envelope(
        sender=_read_sender(message, notes),
        to=tuple(a.address for a in _addresses(message, "to")),
        cc=tuple(a.address for a in _addresses(message, "cc")),
        subject=headers.get("subject", "").split("\n", 1)[0],
        date=_read_date(headers.get("date", "").split("\n", 1)[0], notes),
        message_id=headers.get("message-id", "").split("\n", 1)[0].strip(),
    )


# --- body -----------------------------------------------------------------------------------


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    parts: int = 0

    def merge(self, other: _Body) -> None:
        self.plain += other.plain
        self.html += other.html
        self.attachments += other.attachments
        self.parts += other.parts


def _note_defects(part: Message, notes: _Notes) -> None:
    for defect in getattr(part, "defects", ()):
        name = type(defect).__name__
        if name in _BOUNDARY_DEFECTS:
            notes.add("the MIME structure is damaged (a part boundary is missing)")
        elif name in _BASE64_DEFECTS:
            notes.add("a base64-encoded part is damaged")
        elif name == "MissingHeaderBodySeparatorDefect":
            notes.add("a header line is malformed")
        else:
            notes.add(f"the message is malformed ({name})")


def _payload_bytes(part: Message, notes: _Notes) -> bytes:
    def decoded() -> object:
        return part.get_payload(decode=True)

    payload = _safely(decoded, None, notes, "a part could not be decoded")
    return payload if isinstance(payload, bytes) else b""


def _with_8bit_restored(part: Message) -> Message:
    """The part's naming headers with raw 8-bit bytes read as text (compat32 would
    otherwise turn them into replacement characters)."""
    naming = Message()
    for name, value in part.raw_items():
        if name.lower() in {"content-type", "content-disposition"}:
            naming[name] = restore_8bit(value)
    return naming


def _filename(part: Message, notes: _Notes) -> str | None:
    naming = _with_8bit_restored(part)

    def named() -> object:
        return naming.get_filename() or naming.get_param("name")

    name = _safely(named, None, notes, "an attachment name could not be read")
    if isinstance(name, tuple):  # an RFC 2231 value get_param could not collapse
        name = str(name[2])
    return decode_header(name) if isinstance(name, str) and name.strip() else None


def _disposition(part: Message) -> str:
    value = part.get("content-disposition")
    return str(value).split(";", 1)[0].strip().lower() if value else ""


def _forwarded_size_and_name(part: Message, notes: _Notes) -> tuple[int, str]:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        return 0, "forwarded message.eml"
    size = _safely(
        lambda: len(inner.as_bytes()), 0, notes, "a forwarded message could not be measured"
    )
    subject = decode_header(str(inner.get("subject", "")))
    return size, f"{subject or 'forwarded message'}.eml"


def _text_of(part: Message, notes: _Notes) -> str:
    charset = _safely(part.get_content_charset, None, notes, "a charset could not be read")
    decoded = decode_bytes(_payload_bytes(part, notes), charset)
    notes.add(decoded.problem)
    text = decoded.text.replace("\r\n", "\n")
    if str(part.get_param("format") or "").lower() == "flowed":
        text = unflow(text, delsp=str(part.get_param("delsp") or "").lower() == "yes")
    return tidy(text)


def _is_inline_resource(part: Message, disposition: str) -> bool:
    """An image the HTML shows in place (multipart/related, cid:), not a file to list."""
    return bool(part.get("content-id")) and disposition != "attachment"


def _collect_leaf(part: Message, content_type: str, body: _Body, notes: _Notes) -> None:
    disposition = _disposition(part)
    name = _filename(part, notes)
    if content_type in _SIGNATURE_TYPES:
        return
    if content_type == "message/rfc822":
        size, default_name = _forwarded_size_and_name(part, notes)
        body.attachments.append(Attachment(name or default_name, size, content_type))
    elif content_type in {"text/plain", "text/html"} and not name and disposition != "attachment":
        (body.plain if content_type == "text/plain" else body.html).append(_text_of(part, notes))
    elif content_type.startswith("multipart/"):
        # A multipart whose boundary never appears: what is there is read as text.
        body.plain.append(_text_of(part, notes))
    elif not (content_type.startswith("image/") and _is_inline_resource(part, disposition)):
        size = len(_payload_bytes(part, notes))
        body.attachments.append(Attachment(name or "(no name)", size, content_type))


def _best_alternative(choices: list[_Body]) -> _Body:
    """The plain-text version when there is one with text, else the richest (last) HTML."""
    for choice in choices:
        if any(text.strip() for text in choice.plain):
            return choice
    for choice in reversed(choices):
        if choice.html:
            return choice
    return choices[0] if choices else _Body()


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    return (
        [child for child in payload if isinstance(child, Message)]
        if isinstance(payload, list)
        else []
    )


def _collect(part: Message, body: _Body, notes: _Notes, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        notes.add("the message nests parts too deeply; the deepest were not read")
        return
    if body.parts >= MAX_PARTS:
        notes.add(f"the message has too many parts; only the first {MAX_PARTS} were read")
        return
    body.parts += 1
    content_type = _safely(
        part.get_content_type, "text/plain", notes, "a content type could not be read"
    )
    if content_type == "multipart/encrypted":
        notes.add("the message is encrypted")
    elif content_type == "message/rfc822" or not part.is_multipart():
        _collect_leaf(part, content_type, body, notes)
    elif content_type == "multipart/alternative":
        choices = []
        for child in _children(part):
            choice = _Body(parts=body.parts)
            _collect(child, choice, notes, depth + 1)
            body.parts = choice.parts
            choices.append(choice)
        best = _best_alternative(choices)
        body.merge(_Body(best.plain, best.html, best.attachments))
    else:
        for child in _children(part):
            _collect(child, body, notes, depth + 1)
    _note_defects(part, notes)  # after decoding, which finds defects of its own


@dataclass(frozen=True)
class _Content:
    preview: str
    body: str
    html_only: bool
    attachments: tuple[Attachment, ...]


def _read_content(message: Message, max_text: int, notes: _Notes) -> _Content:
    body = _Body()
    _safely(lambda: _collect(message, body, notes), None, notes, "the body could not be read")
    plain = tidy("\n\n".join(text for text in body.plain if text.strip()))
    html_only = not plain and bool(body.html)
    if html_only:
        plain = html_to_text("\n".join(body.html))
    full = plain[:MAX_BODY_CHARS]
    return _Content(shorten(trim_reply(full), max_text), full, html_only, tuple(body.attachments))


# --- public ---------------------------------------------------------------------------------


def _message(parsed: Message, size: int, content: _Content, notes: _Notes) -> MailMessage:
    headers = _read_headers(parsed, notes)
    envelope = _read_envelope(parsed, headers, notes)
    return MailMessage(
        from_name=envelope.sender.name,
        from_address=envelope.sender.address,
        from_domain=envelope.sender.domain,
        to=envelope.to,
        cc=envelope.cc,
        subject=envelope.subject,
        date=envelope.date,
        text=content.preview,
        html_only=content.html_only,
        attachments=content.attachments,
        headers=headers,
        size=size,
        message_id=envelope.message_id,
        problems=tuple(notes.items),
        body=content.body,
    )


def _empty_message(size: int, problem: str) -> MailMessage:
    return MailMessage("", "", "", (), (), "", None, "", False, (), {}, size, "", (problem,))


def parse_message(raw: bytes, *, max_text: int = DEFAULT_MAX_TEXT) -> MailMessage:
    """Read one RFC 5322 message; never raises (see `MailMessage.problems`)."""
    notes = _Notes()
    try:
        parsed = email.message_from_bytes(raw, policy=compat32)
        content = _read_content(parsed, max_text, notes)
        return _message(parsed, len(raw), content, notes)
    except Exception:  # the last resort behind _safely: a post that says so, not a crash
        return _empty_message(len(raw), "the message could not be read")


def summary_from_headers(header_block: bytes, *, size: int, limit: int) -> MailMessage:
    """A message known only by its header block: it was larger than ``limit`` bytes."""
    notes = _Notes()
    notes.add(
        f"the message is {_megabytes(size)}, over the {_megabytes(limit)} limit: "
        "only its headers were read"
    )
    try:
        parsed = email.parser.BytesHeaderParser(policy=compat32).parsebytes(header_block)
        return _message(parsed, size, _Content("", "", False, ()), notes)
    except Exception:  # same last resort as parse_message
        return _empty_message(size, "the message headers could not be read")


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def routing_context(message: MailMessage, *, category: str | None = None) -> dict[str, Any]:
    """The names a routing condition can use, with plain values (lists, dicts, str, int).

    ``category`` is the label an AI step gave the message, "" when none did;
    `bot.triggers.conditions.EMAIL_NAMES` lists these names for the rules' check.
    """
    return {
        "category": category or "",
        "from": message.from_address,
        "from_domain": message.from_domain,
        "to": list(message.to),
        "cc": list(message.cc),
        "subject": message.subject,
        "text": message.body,
        "has_attachment": bool(message.attachments),
        "attachments": [attachment.name for attachment in message.attachments],
        "headers": dict(message.headers),
        "size": message.size,
    }
