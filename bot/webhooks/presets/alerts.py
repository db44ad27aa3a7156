"""Alertmanager and Grafana alert notifications as Slack messages.

Grafana's webhook body extends Alertmanager's (same ``alerts``, ``groupKey``, labels and
annotations), adding ``title``, ``state``, per-alert ``values`` and silence/dashboard/panel
links, so both share one renderer with a few Grafana extras.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.slack import blocks as bk
from bot.webhooks.event import InboundEvent, Rendered
from bot.webhooks.presets._common import (
    code,
    dict_at,
    dig,
    esc,
    first_text,
    label_pairs,
    scalar_text,
    text_at,
)
from bot.webhooks.presets._pieces import (
    Outcome,
    field,
    mapping_items,
    optional_field,
    present,
    rendered,
)

Payload = Mapping[str, Any]
MAX_ALERT_SECTIONS = 20
# Thread keys are stored; a group key made of many labels is hashed to stay short.
THREAD_KEY_RAW_MAX = 200
ALERT_TEXT_MAX = 500
_SHOWN_ELSEWHERE = ("alertname", "severity")
_STATUS = {
    "firing": Outcome(":fire:", "firing"),
    "resolved": Outcome(":white_check_mark:", "resolved", "white_check_mark", True),
}
_SOURCE_LINK = (("generatorURL", "Source"),)
_GRAFANA_LINKS = (
    *_SOURCE_LINK,
    ("silenceURL", "Silence"),
    ("dashboardURL", "Dashboard"),
    ("panelURL", "Panel"),
)


@dataclass(frozen=True)
class _Flavour:
    """What differs between Alertmanager and Grafana notifications."""

    sender: str
    label: str
    links: tuple[tuple[str, str], ...]
    alert_extras: Callable[[Payload], list[str]]
    title: Callable[[Payload, list[Payload]], str]


def render_alertmanager(event: InboundEvent) -> Rendered | None:
    """Render an Alertmanager webhook notification (one group, one or more alerts)."""
    return _render(event.payload, _ALERTMANAGER)


def render_grafana(event: InboundEvent) -> Rendered | None:
    """Render a Grafana alerting webhook notification."""
    return _render(event.payload, _GRAFANA)


def alert_digest(payload: Any) -> str | None:
    """A stable hash of one notification: group, status, and each alert's identity and times.

    The same notification delivered twice hashes the same; a change of any alert's state
    or times makes a new hash. None when the payload holds no alert group at all.
    """
    alerts = mapping_items(dig(payload, "alerts"))
    group = text_at(payload, "groupKey")
    if not alerts and not group:
        return None
    material = [group, text_at(payload, "status"), sorted(_alert_stamp(a) for a in alerts)]
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()


def _alert_stamp(alert: Payload) -> list[str]:
    fields = ("status", "startsAt", "endsAt")
    return [_alert_identity(alert), *(text_at(alert, key) for key in fields)]


def _alert_identity(alert: Payload) -> str:
    return text_at(alert, "fingerprint") or label_pairs(dict_at(alert, "labels"))


def _render(payload: Any, flavour: _Flavour) -> Rendered | None:
    alerts = mapping_items(dig(payload, "alerts"))
    if not isinstance(payload, Mapping) or not alerts:
        return None
    status = text_at(payload, "status") or text_at(alerts[0], "status")
    outcome = _STATUS.get(status) or Outcome(":bell:", status or "changed")
    title = flavour.title(payload, alerts)
    blocks = [
        bk.section(_headline(payload, outcome, title)),
        bk.fields(_group_facts(payload, alerts, status)),
        *_alert_sections(payload, alerts, flavour),
        bk.context(_footer(payload, flavour)),
    ]
    detail = _common_summary(payload) or _alert_names(payload, alerts)
    text = f"{title}: {detail}" if detail and detail not in title else title
    return rendered(esc(text, 500), blocks, _thread_key(payload, alerts, flavour), outcome)


def _headline(payload: Payload, outcome: Outcome, title: str) -> str:
    summary = _common_summary(payload)
    return "\n".join(present([f"{outcome.emoji} *{esc(title)}*", esc(summary, ALERT_TEXT_MAX)]))


def _common_summary(payload: Payload) -> str:
    keys = ("summary", "message", "description")
    return first_text(payload, [("commonAnnotations", key) for key in keys])


def _group_facts(payload: Payload, alerts: list[Payload], status: str) -> list[str]:
    return present(
        [
            field("Status", esc(status or "unknown")),
            optional_field("Severity", esc(_severity(payload, alerts))),
            field("Alerts", esc(_status_counts(alerts))),
            optional_field("Receiver", esc(text_at(payload, "receiver"))),
            optional_field("State", esc(text_at(payload, "state"))),
        ]
    )


def _severity(payload: Payload, alerts: list[Payload]) -> str:
    common = text_at(payload, "commonLabels", "severity")
    return common or ", ".join(_distinct(text_at(a, "labels", "severity") for a in alerts))


def _status_counts(alerts: list[Payload]) -> str:
    counts: dict[str, int] = {}
    for alert in alerts:
        status = text_at(alert, "status") or "unknown"
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{count} {status}" for status, count in counts.items())


def _alert_sections(payload: Payload, alerts: list[Payload], flavour: _Flavour) -> list[bk.Block]:
    summary = _common_summary(payload)
    sections = [bk.section(_alert_text(a, summary, flavour)) for a in alerts[:MAX_ALERT_SECTIONS]]
    hidden = max(len(alerts) - MAX_ALERT_SECTIONS, 0) + _truncated(payload)
    if hidden > 0:
        sections.append(bk.context([f"{bk.ELLIPSIS} {hidden} more alerts not shown"]))
    return sections


def _truncated(payload: Payload) -> int:
    # Alertmanager and Grafana cut long alert lists themselves and say how many they cut.
    count = dig(payload, "truncatedAlerts")
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0


def _alert_text(alert: Payload, common_summary: str, flavour: _Flavour) -> str:
    """One alert: name and severity, summary, description, other labels, extras, links."""
    status = text_at(alert, "status")
    emoji = (_STATUS.get(status) or Outcome(":bell:", status)).emoji
    name = text_at(alert, "labels", "alertname") or "Alert"
    severity = code(text_at(alert, "labels", "severity"))
    summary = first_text(alert, [("annotations", "summary"), ("annotations", "message")])
    description = text_at(alert, "annotations", "description")
    labels = label_pairs(dict_at(alert, "labels"), skip=_SHOWN_ELSEWHERE)
    lines = [
        f"{emoji} *{esc(name)}* {severity}".rstrip(),
        esc(summary, ALERT_TEXT_MAX) if summary != common_summary else "",
        esc(description, ALERT_TEXT_MAX) if description not in (summary, common_summary) else "",
        code(labels, ALERT_TEXT_MAX),
        *flavour.alert_extras(alert),
        _alert_links(alert, flavour),
    ]
    return "\n".join(present(lines))


def _alert_links(alert: Payload, flavour: _Flavour) -> str:
    pairs = flavour.links
    links = [bk.link(text_at(alert, key), label) for key, label in pairs if text_at(alert, key)]
    runbook = text_at(alert, "annotations", "runbook_url")
    if runbook.startswith(("https://", "http://")):
        links.append(bk.link(runbook, "Runbook"))
    return " · ".join(links)


def _footer(payload: Payload, flavour: _Flavour) -> list[str]:
    external = text_at(payload, "externalURL")
    source = bk.link(external, flavour.label) if external else esc(flavour.label)
    return [source]


def _thread_key(payload: Payload, alerts: list[Payload], flavour: _Flavour) -> str:
    """One thread per incident of a group: the group, and when its incident started.

    A group that fires, resolves and fires again is two incidents: the second firing has
    a new ``startsAt``, so it starts a new message (and thread) while the first stays
    resolved. Within one incident every notification names the alert that started it,
    so they share a thread. (Alertmanager drops an alert from the group once its
    resolution was sent; if the first alert resolves while others fire on, the next
    notification starts a new thread.)
    """
    raw = text_at(payload, "groupKey")
    if not raw:
        identities = sorted(_alert_identity(a) for a in alerts)
        raw = hashlib.sha256(json.dumps(identities).encode()).hexdigest()[:32]
    elif len(raw) > THREAD_KEY_RAW_MAX:
        raw = hashlib.sha256(raw.encode()).hexdigest()[:32]
    started = _incident_start(alerts)
    return f"{flavour.sender}:{raw}" + (f"@{started}" if started else "")


def _incident_start(alerts: list[Payload]) -> str:
    """The earliest ``startsAt`` of the group's alerts, in UTC to the second ('' if none)."""
    starts = [when for alert in alerts if (when := _instant(text_at(alert, "startsAt")))]
    return f"{min(starts).astimezone(UTC):%Y%m%dT%H%M%SZ}" if starts else ""


def _instant(text: str) -> datetime | None:
    """An RFC 3339 time as Alertmanager and Grafana write it; None if absent or odd."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None and when.year > 1 else None


def _distinct(values: Any) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen[value] = None
    return list(seen)


# --- Alertmanager and Grafana specifics ------------------------------------------------


def _alertmanager_title(payload: Payload, alerts: list[Payload]) -> str:
    """Alertmanager's own default title: "[FIRING:2] AlertName"."""
    status = (text_at(payload, "status") or "unknown").upper()
    firing = sum(1 for a in alerts if text_at(a, "status") == "firing")
    badge = f"[{status}:{firing}]" if status == "FIRING" else f"[{status}]"
    return f"{badge} {_alert_names(payload, alerts)}"


def _alert_names(payload: Payload, alerts: Sequence[Payload]) -> str:
    common = first_text(payload, [("commonLabels", "alertname"), ("groupLabels", "alertname")])
    names = _distinct(text_at(a, "labels", "alertname") for a in alerts)
    return common or ", ".join(names[:3]) + (
        f" and {len(names) - 3} more" if len(names) > 3 else ""
    )


def _grafana_title(payload: Payload, alerts: list[Payload]) -> str:
    # Grafana's default title pads with double spaces ("[FIRING:2]  (blue)").
    title = " ".join(text_at(payload, "title").split())
    return title or _alertmanager_title(payload, alerts)


def _no_extras(alert: Payload) -> list[str]:
    return []


def _grafana_values(alert: Payload) -> list[str]:
    values = dict_at(alert, "values")
    pairs = [f"{key}={scalar_text(value)}" for key, value in values.items() if scalar_text(value)]
    if pairs:
        return [f"Values: {code(', '.join(pairs), ALERT_TEXT_MAX)}"]
    value_string = text_at(alert, "valueString")
    return [f"Value: {code(value_string, ALERT_TEXT_MAX)}"] if value_string else []


_ALERTMANAGER = _Flavour(
    "alertmanager", "Alertmanager", _SOURCE_LINK, _no_extras, _alertmanager_title
)
_GRAFANA = _Flavour("grafana", "Grafana", _GRAFANA_LINKS, _grafana_values, _grafana_title)
