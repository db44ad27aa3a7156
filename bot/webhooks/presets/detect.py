"""Who sent a delivery, what event it is, and which id makes a redelivery recognisable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.webhooks.event import Sender
from bot.webhooks.presets._common import dig, list_at, text_at
from bot.webhooks.presets.alerts import alert_digest

Headers = Mapping[str, str]
EVENT_NAME_MAX = 100
# Headers that name the sender outright, checked before any guess from the body.
_SENDER_HEADERS: tuple[tuple[str, Sender], ...] = (
    ("x-github-event", "github"),
    ("x-gitlab-event", "gitlab"),
    ("sentry-hook-resource", "sentry"),
    ("stripe-signature", "stripe"),
)
# Keys only Grafana adds to the Alertmanager-shaped body (Alertmanager's version is "4").
_GRAFANA_BODY_KEYS = ("orgId", "state", "title")
_GRAFANA_ALERT_KEYS = ("silenceURL", "dashboardURL", "panelURL", "values", "valueString")


def detect_sender(headers: Mapping[str, str], payload: Any) -> Sender:
    """Identify the sender from its headers (lower-cased names), else from the body's shape."""
    for name, sender in _SENDER_HEADERS:
        if headers.get(name):
            return sender
    if _looks_like_grafana(headers, payload):
        return "grafana"
    if _looks_like_alertmanager(headers, payload):
        return "alertmanager"
    if _looks_like_stripe(payload):
        return "stripe"
    return "generic"


def _has_alerts(payload: Any) -> bool:
    return isinstance(payload, Mapping) and isinstance(payload.get("alerts"), list)


def _looks_like_grafana(headers: Headers, payload: Any) -> bool:
    if not _has_alerts(payload) or headers.get("user-agent", "").startswith("Alertmanager/"):
        return False
    if any(key in payload for key in _GRAFANA_BODY_KEYS):
        return True
    alerts = list_at(payload, "alerts")
    return any(isinstance(a, Mapping) and any(k in a for k in _GRAFANA_ALERT_KEYS) for a in alerts)


def _looks_like_alertmanager(headers: Headers, payload: Any) -> bool:
    if headers.get("user-agent", "").startswith("Alertmanager/"):
        return True
    return _has_alerts(payload) and (dig(payload, "version") == "4" or "groupKey" in payload)


def _looks_like_stripe(payload: Any) -> bool:
    return dig(payload, "object") == "event" and isinstance(dig(payload, "type"), str)


def event_name(sender: Sender, headers: Mapping[str, str], payload: Any) -> str:
    """The sender's name for this event, e.g. "pull_request", "charge.succeeded", "firing"."""
    name = _EVENT_NAMERS[sender](headers, payload)
    return name[:EVENT_NAME_MAX] or "event"


def _github_event(headers: Headers, payload: Any) -> str:
    return headers.get("x-github-event", "")


def _gitlab_event(headers: Headers, payload: Any) -> str:
    return headers.get("x-gitlab-event", "") or text_at(payload, "object_kind")


def _stripe_event(headers: Headers, payload: Any) -> str:
    return text_at(payload, "type")


def _sentry_event(headers: Headers, payload: Any) -> str:
    resource = headers.get("sentry-hook-resource", "")
    action = dig(payload, "action")
    return f"{resource}.{action}" if resource and isinstance(action, str) and action else resource


def _alert_event(headers: Headers, payload: Any) -> str:
    status = dig(payload, "status")
    return status if isinstance(status, str) else "alert"


def _generic_event(headers: Headers, payload: Any) -> str:
    for name in ("x-event-type", "x-event"):
        if headers.get(name):
            return headers[name]
    for key in ("event", "type", "action"):
        found = dig(payload, key)
        if isinstance(found, str) and found:
            return found
    return "event"


_EVENT_NAMERS: dict[Sender, Callable[[Headers, Any], str]] = {
    "github": _github_event,
    "gitlab": _gitlab_event,
    "stripe": _stripe_event,
    "sentry": _sentry_event,
    "alertmanager": _alert_event,
    "grafana": _alert_event,
    "generic": _generic_event,
}


def dedupe_key(sender: Sender, headers: Mapping[str, str], payload: Any) -> str | None:
    """The sender's delivery id, else an ``Idempotency-Key`` header; None if neither exists.

    Alertmanager and Grafana send no id, so their key is a hash of the notification.
    """
    own = _OWN_IDS[sender](headers, payload)
    return own or headers.get("idempotency-key") or None


def _header_id(name: str) -> Callable[[Headers, Any], str | None]:
    def read(headers: Headers, payload: Any) -> str | None:
        return headers.get(name) or None

    return read


def _stripe_id(headers: Headers, payload: Any) -> str | None:
    found = dig(payload, "id")
    return found if isinstance(found, str) and found else None


def _alert_id(headers: Headers, payload: Any) -> str | None:
    return alert_digest(payload)


def _no_id(headers: Headers, payload: Any) -> str | None:
    return None


_OWN_IDS: dict[Sender, Callable[[Headers, Any], str | None]] = {
    "github": _header_id("x-github-delivery"),
    "gitlab": _header_id("x-gitlab-event-uuid"),
    "sentry": _header_id("request-id"),
    "stripe": _stripe_id,
    "alertmanager": _alert_id,
    "grafana": _alert_id,
    "generic": _no_id,
}
