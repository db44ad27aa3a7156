"""One delivery to a hook, before it is stored: how a body is read, and the typed row.

Every delivery row is made here, whichever way it arrives: a request to the hook's URL
(`NewDelivery.received`), a sample from ``/hook test`` (`NewDelivery.sample`) or a
replay of a stored one (`NewDelivery.replay`).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

import orjson

from bot.models import Delivery, Hook
from bot.webhooks import presets
from bot.webhooks.event import Sender

# Headers worth keeping with a delivery (for templates, replays and the log). Others,
# including Authorization, are not stored.
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "user-agent",
        "x-github-event",
        "x-github-delivery",
        "x-github-hook-id",
        "x-gitlab-event",
        "x-gitlab-event-uuid",
        "x-gitlab-instance",
        "idempotency-key",
        "request-id",
        "sentry-hook-resource",
        "sentry-hook-timestamp",
        "x-event-type",
        "x-event",
    }
)
EVENT_MAX = 200
DEDUPE_KEY_MAX = 300
CONTENT_TYPE_MAX = 200
HEADER_VALUE_MAX = 500


class BadRequest(Exception):
    """The body cannot be understood; the message says why (answered with 400)."""


def new_delivery_id(now: datetime) -> str:
    """Sortable, unguessable: milliseconds since the epoch, then 64 random bits."""
    return f"{int(now.timestamp() * 1000):013x}{secrets.token_hex(8)}"


@dataclass(frozen=True)
class NewDelivery:
    """A delivery row about to be stored (a `bot.models.Delivery` once it is)."""

    id: str
    hook_id: int
    received_at: datetime
    sender: Sender
    event: str
    dedupe_key: str | None
    content_type: str
    headers: dict[str, str]
    body: bytes
    status: str = "received"  # received | posted | dropped
    detail: str | None = None

    @classmethod
    def received(
        cls,
        hook: Hook,
        sender: Sender,
        headers: Mapping[str, str],
        payload: Any,
        body: bytes,
        now: datetime,
    ) -> NewDelivery:
        """A request that passed verification (``headers`` with lower-case names)."""
        dedupe_key = presets.dedupe_key(sender, headers, payload)
        return cls(
            id=new_delivery_id(now),
            hook_id=_id(hook),
            received_at=now,
            sender=sender,
            event=presets.event_name(sender, headers, payload)[:EVENT_MAX],
            dedupe_key=dedupe_key[:DEDUPE_KEY_MAX] if dedupe_key else None,
            content_type=headers.get("content-type", "")[:CONTENT_TYPE_MAX],
            headers={k: v[:HEADER_VALUE_MAX] for k, v in headers.items() if k in KEPT_HEADERS},
            body=body,
            status="dropped" if hook.paused else "received",
            detail="hook paused" if hook.paused else None,
        )

    @classmethod
    def sample(
        cls, hook: Hook, sender: Sender, event: str, payload: Any, now: datetime
    ) -> NewDelivery:
        """A sample event from ``/hook test``."""
        return cls(
            id=new_delivery_id(now),
            hook_id=_id(hook),
            received_at=now,
            sender=sender,
            event=event,
            dedupe_key=None,
            content_type="application/json",
            headers={"x-sample": "true"},
            body=json.dumps(payload).encode(),
            detail="sample from /hook test",
        )

    @classmethod
    def replay(cls, original: Delivery, now: datetime) -> NewDelivery:
        """A stored delivery sent through its hook again (``/hook replay``)."""
        return cls(
            id=new_delivery_id(now),
            hook_id=original.hook_id,
            received_at=now,
            sender=_as_sender(original.sender),
            event=original.event,
            dedupe_key=None,
            content_type=original.content_type,
            headers=dict(original.headers),
            body=original.body,
            detail=f"replay of {original.id}",
        )

    def posted(self) -> NewDelivery:
        """This delivery, recorded as posted (its message is queued with it)."""
        return replace(self, status="posted")

    def row(self) -> dict[str, Any]:
        """The values of its ``delivery`` row (not copies: `dataclasses.asdict` deep-copied
        the headers and the body: 7% of the CPU a delivery cost)."""
        return {name: getattr(self, name) for name in _ROW_FIELDS}


# orjson (a third of json.loads's time) reads integers beyond 64 bits as floats; a body
# where a value starts with 20 digits, which such an integer needs, is read by json.loads
# instead. Digits inside strings, like a new branch's all-zero "before" commit, are not
# values: the colon, comma or bracket before a number tells them apart.
_DIGITS_AS_ZERO = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_TWENTY_DIGITS = b"0" * 20
_BEFORE_A_VALUE = (b"", b":", b",", b"[")


def _has_long_number(body: bytes) -> bool:
    """True if a JSON value in ``body`` may be a number of 20 digits or more (runs of
    digits found in C by `bytes.translate`; a regular expression cost more than json.loads)."""
    digits = body.translate(_DIGITS_AS_ZERO)
    start = digits.find(_TWENTY_DIGITS)
    while start >= 0:
        if body[:start].rstrip(b" \t\r\n-")[-1:] in _BEFORE_A_VALUE:
            return True
        end = digits.find(b" ", start)
        start = -1 if end < 0 else digits.find(_TWENTY_DIGITS, end)
    return False


_ROW_FIELDS = tuple(f.name for f in fields(NewDelivery))


def parse_body(content_type: str, body: bytes) -> Any:
    """Decode a JSON, form (GitHub's ``payload=`` included) or plain-text body.

    Raises `BadRequest` saying what is wrong (malformed JSON, not UTF-8, nested too deeply).
    """
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return _parse_form(body)
    if kind.endswith("json") and not _has_long_number(body):
        with contextlib.suppress(ValueError):  # not valid: the path below says why
            return orjson.loads(body)
    text = _decode(body)
    if kind.endswith("json") or (not kind and text.lstrip()[:1] in ("{", "[")):
        return _parse_json(text)
    return text


def _parse_form(body: bytes) -> Any:
    fields = urllib.parse.parse_qs(_decode(body), keep_blank_values=True)
    flat = {key: values[-1] for key, values in fields.items()}
    if set(flat) == {"payload"}:
        return _parse_json(flat["payload"])
    return flat


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None


def _id(hook: Hook) -> int:
    assert hook.id is not None
    return hook.id


def _as_sender(value: str) -> Sender:
    return value  # type: ignore[return-value]  # written by the receiver from a Sender
