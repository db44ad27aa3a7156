"""The compact rendering every preset falls back to: works for any JSON value or text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.slack import blocks as bk
from bot.webhooks.event import InboundEvent, Rendered, Sender
from bot.webhooks.presets._common import code, esc, first_text, scalar_text

SENDER_LABELS: dict[Sender, str] = {
    "github": "GitHub",
    "gitlab": "GitLab",
    "alertmanager": "Alertmanager",
    "grafana": "Grafana",
    "sentry": "Sentry",
    "stripe": "Stripe",
    "generic": "Webhook",
}
MAX_FIELDS = 8
FIELD_VALUE_MAX = 200
BODY_MAX = 1000
_TITLE_KEYS = ("title", "subject", "summary", "name")
_TEXT_KEYS = ("text", "message", "description", "body")


def render_generic(event: InboundEvent) -> Rendered:
    """Sender and event name as a title, then the payload's headline and a few scalar fields."""
    payload = event.payload
    title = first_text(payload, [(key,) for key in _TITLE_KEYS])
    body = payload if isinstance(payload, str) else first_text(payload, [(k,) for k in _TEXT_KEYS])
    blocks = [bk.section(_headline(event, title, body))]
    blocks += _field_blocks(payload)
    if isinstance(payload, list):
        blocks.append(bk.context([f"A list of {len(payload)} items"]))
    return Rendered(text=_fallback(event, title or body), blocks=blocks)


def _headline(event: InboundEvent, title: str, body: str) -> str:
    label = SENDER_LABELS.get(event.sender, "Webhook")
    lines = [f":incoming_envelope: *{label}* {code(event.event) or '`event`'}"]
    if title:
        lines.append(f"*{esc(title)}*")
    if body:
        lines.append(esc(body, BODY_MAX))
    return "\n".join(lines)


def _field_blocks(payload: Any) -> list[bk.Block]:
    if not isinstance(payload, Mapping):
        return []
    shown = [_field(str(key), value) for key, value in payload.items() if _is_plain(key, value)]
    if not shown:
        return []
    result = [bk.fields(shown[:MAX_FIELDS])]
    if len(shown) > MAX_FIELDS:
        result.append(bk.context([f"{bk.ELLIPSIS} {len(shown) - MAX_FIELDS} more fields"]))
    return result


def _is_plain(key: Any, value: Any) -> bool:
    headline_keys = (*_TITLE_KEYS, *_TEXT_KEYS)
    return key not in headline_keys and scalar_text(value) != ""


def _field(key: str, value: Any) -> str:
    shown = scalar_text(value)
    if shown.startswith(("https://", "http://")):
        return f"*{esc(key, 50)}*\n{bk.link(shown, bk.truncate(shown, 80))}"
    return f"*{esc(key, 50)}*\n{esc(shown, FIELD_VALUE_MAX)}"


def _fallback(event: InboundEvent, headline: str) -> str:
    label = SENDER_LABELS.get(event.sender, "Webhook")
    summary = f"{label} {esc(event.event, 100)}"
    return f"{summary}: {esc(headline)}" if headline else summary
