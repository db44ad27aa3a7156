"""What a trigger's run asks its actions to do: ``then=ACTION on=problem|recover|item|always``.

Pure: given what one run saw (`Seen`), the trigger's actions become `RunRequest`s with
``trigger``, ``result`` and ``item`` in their templates' scope. A problem or a recovery
says the outcome in the incident's thread; items and plain runs only in ``/action log``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.actions.runs import RunRequest
from bot.actions.spec import names_in
from bot.models import Action, Trigger
from bot.triggers.evaluate import Announcement
from bot.triggers.observation import Observation
from bot.triggers.reporting import ScanItem

DEFAULT_ON: Final = "problem"
_PROBLEM_KINDS: Final = frozenset({"down", "flapping"})


@dataclass(frozen=True)
class Seen:
    """One saved run of a trigger: its observation, what it announced, the incident
    number after it, and the new items a scan found."""

    observation: Observation
    announcements: Sequence[Announcement]
    incident: int
    new_items: Sequence[ScanItem] = ()


def trigger_requests(
    trigger: Trigger, actions: Mapping[str, Action], seen: Seen
) -> list[RunRequest]:
    """The runs ``trigger``'s ``then=`` asks for after the run ``seen`` (in order of the
    names, each item in turn for ``on=item``)."""
    settings = trigger.settings or {}
    on = settings.get("on", DEFAULT_ON)
    named = [actions[name] for name in names_in(settings.get("then")) if name in actions]
    base = {"trigger": trigger_scope(trigger), "result": result_scope(seen.observation)}
    thread = (trigger.channel_id, f"trigger:{trigger.id}:incident:{seen.incident}")
    kinds = {a.kind for a in seen.announcements}
    if on == "problem" and kinds & _PROBLEM_KINDS:
        return [RunRequest(a, base, f"trigger {trigger.name}: problem", *thread) for a in named]
    if on == "recover" and "recovered" in kinds:
        return [RunRequest(a, base, f"trigger {trigger.name}: recovered", *thread) for a in named]
    if on == "always":
        return [RunRequest(a, base, f"trigger {trigger.name}: ran") for a in named]
    if on == "item":
        cause = f"trigger {trigger.name}: new item"
        return [
            RunRequest(action, base | {"item": item}, cause)
            for item in items_of(seen)
            for action in named
        ]
    return []


def items_of(seen: Seen) -> list[Any]:
    """The new items of the run: a scan's new items' values, or a feed's new entries."""
    if seen.new_items:
        return [item.value for item in seen.new_items]
    return [
        dataclasses.asdict(a.item)
        for a in seen.announcements
        if a.kind == "new_item" and a.item is not None
    ]


def trigger_scope(trigger: Trigger) -> dict[str, Any]:
    """What templates see as ``trigger``."""
    return {"name": trigger.name, "kind": trigger.kind, "target": trigger.target}


def result_scope(observation: Observation) -> dict[str, Any]:
    """What templates see as ``result``."""
    return {
        "ok": observation.ok,
        "summary": observation.summary,
        "status": observation.status,
        "duration_ms": round(observation.duration_ms),
    }
