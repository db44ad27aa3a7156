"""Sentry integration-platform deliveries as Slack messages, by ``Sentry-Hook-Resource``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from bot.slack import blocks as bk
from bot.webhooks.event import InboundEvent, Rendered
from bot.webhooks.presets._common import code, dict_at, esc, first_text, list_at, text_at
from bot.webhooks.presets._pieces import Outcome, field, optional_field, present, rendered

Payload = Mapping[str, Any]
# Sentry's event API URL names the organization and project slugs.
_PROJECT_IN_URL = re.compile(r"/projects/([^/]+)/([^/]+)/")
_LEVEL_EMOJI = {
    "fatal": ":red_circle:",
    "error": ":red_circle:",
    "warning": ":warning:",
    "info": ":information_source:",
    "debug": ":white_circle:",
}


def render_sentry(event: InboundEvent) -> Rendered | None:
    """Render a Sentry delivery; the event name is ``resource[.action]``."""
    renderer = _BY_RESOURCE.get(event.event.split(".", 1)[0])
    if renderer is None or not isinstance(event.payload, Mapping):
        return None
    return renderer(event.payload)


def _event_alert(p: Payload) -> Rendered | None:
    event = dict_at(p, "data", "event")
    title = first_text(event, [("title",), ("message",), ("metadata", "value")])
    if not title:
        return None
    level = text_at(event, "level")
    url = text_at(event, "web_url") or text_at(event, "url")
    headline = f"{_LEVEL_EMOJI.get(level, ':rotating_light:')} *{bk.link(url, title)}*"
    culprit = code(text_at(event, "culprit"), 200)
    blocks = [bk.section("\n".join(present([headline, culprit]))), bk.fields(_facts(p, event))]
    rule = first_text(p, [("data", "triggered_rule"), ("data", "issue_alert", "title")])
    if rule:
        blocks.append(bk.context([f"Alert rule: *{esc(rule)}*"]))
    issue_id = text_at(event, "issue_id")
    key = f"sentry:issue:{issue_id}" if issue_id else None
    return rendered(esc(f"Sentry {level or 'event'} in {_project(event)}: {title}"), blocks, key)


def _facts(p: Payload, event: Payload) -> list[str]:
    return present(
        [
            field("Project", esc(_project(event))),
            optional_field("Level", esc(text_at(event, "level"))),
            optional_field("Environment", esc(_tag(event, "environment"))),
            optional_field("Release", esc(text_at(event, "release"))),
        ]
    )


def _project(event: Payload) -> str:
    """The project slug from the event's API URL, else its numeric id."""
    match = _PROJECT_IN_URL.search(text_at(event, "url"))
    return match.group(2) if match else text_at(event, "project") or "unknown project"


def _tag(event: Payload, name: str) -> str:
    # Sentry sends tags as [key, value] pairs.
    for pair in list_at(event, "tags"):
        if isinstance(pair, list) and len(pair) == 2 and pair[0] == name:
            return text_at(pair, 1)
    return ""


# An issue's lifecycle (``Sentry-Hook-Resource: issue``): what each action does to its thread.
_ISSUE_ACTIONS: dict[str, Outcome] = {
    "created": Outcome(":red_circle:", "New issue"),
    "assigned": Outcome(":bust_in_silhouette:", "Assigned"),
    "resolved": Outcome(":white_check_mark:", "Resolved", "white_check_mark", updates_root=True),
    "archived": Outcome(":zzz:", "Archived", updates_root=True),
    "ignored": Outcome(":zzz:", "Archived", updates_root=True),
}
# Back after it was resolved or archived: a new incident, so a new message and thread.
_REOPENED = Outcome(":repeat:", "Regressed")


def _issue(p: Payload) -> Rendered | None:
    issue = dict_at(p, "data", "issue")
    title = first_text(issue, [("title",), ("metadata", "value"), ("culprit",)])
    issue_id = text_at(issue, "id")
    if not title or not issue_id:
        return None
    action = text_at(p, "action")
    reopened = action == "unresolved"
    outcome = (
        _REOPENED if reopened else _ISSUE_ACTIONS.get(action, Outcome(":rotating_light:", "Issue"))
    )
    if reopened and text_at(issue, "substatus") == "escalating":
        outcome = Outcome(":chart_with_upwards_trend:", "Escalating")
    url = text_at(issue, "web_url") or text_at(issue, "permalink")
    project = text_at(issue, "project", "slug") or text_at(issue, "project", "name")
    short_id = text_at(issue, "shortId")
    headline = f"{outcome.emoji} *{esc(outcome.verb)}:* {bk.link(url, title)}"
    who = _assignee(issue) if action == "assigned" else ""
    lines = present([headline, code(text_at(issue, "culprit"), 200), who])
    facts = present(
        [
            optional_field("Project", esc(project)),
            optional_field("Issue", esc(short_id)),
            optional_field("Level", esc(text_at(issue, "level"))),
        ]
    )
    blocks = [bk.section("\n".join(lines)), bk.fields(facts)]
    text = esc(f"Sentry {outcome.verb.lower()} in {project or 'a project'}: {title}")
    result = rendered(text, blocks, f"sentry:issue:{issue_id}", outcome)
    return replace(result, new_thread=reopened)


def _assignee(issue: Payload) -> str:
    assigned = dict_at(issue, "assignedTo")
    name = text_at(assigned, "name") or text_at(assigned, "email")
    return f"to *{esc(name)}*" if name else ""


_BY_RESOURCE: dict[str, Callable[[Payload], Rendered | None]] = {
    "event_alert": _event_alert,
    "issue": _issue,
}
