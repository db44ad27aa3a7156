"""Webhook presets: detect the sender, name the event, find its dedupe key, render it.

``render`` never raises for an odd payload: each sender's renderer returns None when the
payload is not the shape it knows, and then the compact generic rendering is used. Every
result is fitted to Slack's size limits.

``sample_event`` gives a realistic event per sender for ``/hook test``. Its payloads are
fixed files, so a dedupe key read from one (Stripe's event ``id``) repeats: callers
should not deduplicate test events.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from importlib.resources import files

from bot.slack.blocks import fit_message
from bot.webhooks.event import InboundEvent, Rendered, Sender
from bot.webhooks.presets.alerts import render_alertmanager, render_grafana
from bot.webhooks.presets.detect import dedupe_key, detect_sender, event_name
from bot.webhooks.presets.generic import render_generic
from bot.webhooks.presets.github import render_github
from bot.webhooks.presets.gitlab import render_gitlab
from bot.webhooks.presets.sentry import render_sentry
from bot.webhooks.presets.stripe import format_amount, render_stripe

__all__ = [
    "dedupe_key",
    "detect_sender",
    "event_name",
    "format_amount",
    "render",
    "render_generic",
    "render_preset",
    "sample_event",
]

log = logging.getLogger(__name__)

_RENDERERS: dict[Sender, Callable[[InboundEvent], Rendered | None]] = {
    "github": render_github,
    "gitlab": render_gitlab,
    "alertmanager": render_alertmanager,
    "grafana": render_grafana,
    "sentry": render_sentry,
    "stripe": render_stripe,
    "generic": lambda _event: None,
}

_JSON = {"content-type": "application/json"}
_SAMPLES: dict[Sender, tuple[str, dict[str, str]]] = {
    "github": ("github.pull_request.opened.json", {**_JSON, "x-github-event": "pull_request"}),
    "gitlab": ("gitlab.merge_request.json", {**_JSON, "x-gitlab-event": "Merge Request Hook"}),
    "alertmanager": ("alertmanager.firing.multiple.json", _JSON),
    "grafana": ("grafana.alert.firing.json", _JSON),
    "sentry": (
        "sentry.event_alert.triggered.json",
        {**_JSON, "sentry-hook-resource": "event_alert"},
    ),
    "stripe": ("stripe.charge.succeeded.json", _JSON),
    "generic": ("generic.json", _JSON),
}


def render(event: InboundEvent) -> Rendered:
    """The Slack message for one event, within Slack's limits; never raises."""
    result = _render_safely(event) or render_generic(event)
    text, blocks = fit_message(result.text, result.blocks)
    return replace(result, text=text, blocks=blocks)


def render_preset(event: InboundEvent) -> Rendered | None:
    """The sender's own rendering, or None when the payload is not a shape it knows."""
    return _RENDERERS[event.sender](event)


def _render_safely(event: InboundEvent) -> Rendered | None:
    # Renderers are written to treat every field as optional; this is the last line of
    # defence so one unforeseen payload shape still reaches Slack, in the generic form.
    try:
        return render_preset(event)
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError):
        log.warning(
            "preset %s failed on %r; using generic", event.sender, event.event, exc_info=True
        )
        return None


def sample_event(sender: Sender) -> InboundEvent:
    """A realistic event for ``sender`` (a published example payload), for ``/hook test``."""
    filename, headers = _SAMPLES[sender]
    raw = files("bot.webhooks").joinpath("samples").joinpath(filename).read_text(encoding="utf-8")
    payload = json.loads(raw)
    return InboundEvent(sender, event_name(sender, headers, payload), payload, dict(headers))
