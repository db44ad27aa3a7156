"""The App Home tab: each person's triggers and hooks, their state, and buttons.

Each trigger is a section plus an actions block of buttons (no overflow menu). The
buttons use the same action ids and values (the trigger id) as the buttons under alerts
(`bot.triggers.messages`), so a Pause click from an alert and one from the Home tab reach
one handler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.db import Database
from bot.glance import Drawing, traffic_drawing, trigger_drawing
from bot.models import Hook, Trigger
from bot.slack import interactive as ui
from bot.slack.blocks import (
    Block,
    channel_mention,
    context,
    divider,
    escape_mrkdwn,
    header,
    link,
    section,
    truncate,
)
from bot.triggers import messages
from bot.triggers.rollups import recent_rollups, shows_uptime
from bot.webhooks.traffic import recent_traffic

HOOK_PAUSE: Final = "hook_pause"
HOOK_RESUME: Final = "hook_resume"
HOOK_DELETE: Final = "hook_delete"
HOME_NEW_TRIGGER: Final = "home_new_trigger"
HOME_NEW_HOOK: Final = "home_new_hook"

# header, new-buttons, divider, triggers title, divider, hooks title, two "and N more" lines
_HOME_FIXED_BLOCKS: Final = 8
_HOME_ITEM_SLOTS: Final = (ui.MAX_VIEW_BLOCKS - _HOME_FIXED_BLOCKS) // 2  # two blocks per item


@dataclass(frozen=True)
class Glances:
    """Each trigger's uptime and latency and each hook's deliveries, by id (`bot.glance`)."""

    triggers: Mapping[int, Drawing] = field(default_factory=dict)
    hooks: Mapping[int, Drawing] = field(default_factory=dict)


async def load_glances(
    db: Database,
    triggers: Sequence[Trigger],
    hooks: Sequence[Hook],
    now: datetime,
    zone: ZoneInfo,
) -> Glances:
    """What the Home draws for the triggers and hooks it has room for, from the hourly
    roll-ups and counts."""
    trigger_room, hook_room = _home_room(len(triggers), len(hooks))
    checked = [t.id for t in triggers[:trigger_room] if t.id is not None and shows_uptime(t)]
    rollups = await recent_rollups(db, checked, now)
    shown_hooks = [h.id for h in hooks[:hook_room] if h.id is not None]
    traffic = await recent_traffic(db, shown_hooks, now)
    return Glances(
        {tid: trigger_drawing(rollups.get(tid, []), now, zone) for tid in checked},
        {hid: traffic_drawing(t.received, t.refused) for hid, t in traffic.items()},
    )


def home_view(
    hooks: Sequence[Hook],
    triggers: Sequence[Trigger],
    *,
    states: Mapping[int, str],
    next_runs: Mapping[int, str],
    glances: Glances | None = None,
) -> dict[str, Any]:
    """The App Home tab: new-trigger/new-hook buttons, then each trigger and hook with its
    buttons and, with ``glances``, its uptime bar and sparklines. What does not fit in
    100 blocks is counted in an "and N more" line."""
    glances = glances or Glances()
    trigger_room, hook_room = _home_room(len(triggers), len(hooks))
    new_buttons = [
        ui.button("New trigger", HOME_NEW_TRIGGER, None, style="primary"),
        ui.button("New hook", HOME_NEW_HOOK, None),
    ]
    blocks = [
        header("Chat-ops bot"),
        ui.actions(new_buttons),
        divider(),
        *_trigger_list(triggers, trigger_room, states, next_runs, glances.triggers),
        divider(),
        *_hook_list(hooks, hook_room, glances.hooks),
    ]
    return {"type": "home", "blocks": blocks}


def _home_room(triggers: int, hooks: int) -> tuple[int, int]:
    """How many triggers and hooks to show; hooks keep a third of the room when both overflow."""
    if triggers + hooks <= _HOME_ITEM_SLOTS:
        return triggers, hooks
    hook_room = min(hooks, max(_HOME_ITEM_SLOTS - triggers, _HOME_ITEM_SLOTS // 3))
    return min(triggers, _HOME_ITEM_SLOTS - hook_room), hook_room


def _trigger_list(
    triggers: Sequence[Trigger],
    room: int,
    states: Mapping[int, str],
    next_runs: Mapping[int, str],
    drawings: Mapping[int, Drawing],
) -> list[Block]:
    if not triggers:
        return [section("*Triggers*\nNone yet: press *New trigger* or type `/trigger add …`")]
    blocks = [section("*Triggers*")]
    for trigger in triggers[:room]:
        trigger_id = _saved_id(trigger.id)
        line = _trigger_line(trigger, states.get(trigger_id), next_runs)
        blocks.append(section(_with_drawing(line, drawings.get(trigger_id))))
        blocks.append(ui.actions(_trigger_buttons(trigger, trigger_id)))
    return blocks + _more_line(len(triggers) - room, "/trigger list")


def _trigger_line(trigger: Trigger, state: str | None, next_runs: Mapping[int, str]) -> str:
    shown = state or ("paused" if trigger.paused else "no runs yet")
    first = f"*{escape_mrkdwn(trigger.name)}* · {escape_mrkdwn(trigger.kind)}"
    target = _target_label(trigger)
    next_run = next_runs.get(_saved_id(trigger.id))
    second = f"{escape_mrkdwn(shown)} · posts in {channel_mention(trigger.channel_id)}"
    after = f" · next: {escape_mrkdwn(next_run)}" if next_run else ""
    return f"{first}{f' · {target}' if target else ''}\n{second}{after}"


def _target_label(trigger: Trigger) -> str:
    if not trigger.target:
        return ""
    if trigger.kind == "message":
        return f"“{escape_mrkdwn(truncate(trigger.target, 80))}”"
    return link(trigger.target, truncate(trigger.target, 80))


def _trigger_buttons(trigger: Trigger, trigger_id: int) -> list[dict[str, Any]]:
    value = str(trigger_id)
    toggle = (
        ui.button("Resume", messages.TRIGGER_RESUME, value)
        if trigger.paused
        else ui.button("Pause", messages.TRIGGER_PAUSE, value)
    )
    delete = ui.confirm_dialog("Delete trigger?", f"Delete {trigger.name} and its run history?")
    return [
        toggle,
        ui.button("Run now", messages.TRIGGER_RUN, value),
        ui.button("Edit", messages.TRIGGER_EDIT, value),
        ui.button("Delete", messages.TRIGGER_DELETE, value, style="danger", confirm=delete),
    ]


def _with_drawing(line: str, drawing: Drawing | None) -> str:
    return line if drawing is None else "\n".join((line, *drawing.lines))


def _hook_list(hooks: Sequence[Hook], room: int, drawings: Mapping[int, Drawing]) -> list[Block]:
    if not hooks:
        return [section("*Hooks*\nNone yet: press *New hook* or type `/hook create NAME`")]
    blocks = [section("*Hooks*")]
    for hook in hooks[:room]:
        blocks.append(section(_with_drawing(_hook_line(hook), drawings.get(_saved_id(hook.id)))))
        blocks.append(ui.actions(_hook_buttons(hook, _saved_id(hook.id))))
    return blocks + _more_line(len(hooks) - room, "/hook list")


def _hook_line(hook: Hook) -> str:
    paused = " · paused" if hook.paused else ""
    return f"*{escape_mrkdwn(hook.name)}* → {channel_mention(hook.channel_id)} · {escape_mrkdwn(hook.preset)}{paused}"


def _hook_buttons(hook: Hook, hook_id: int) -> list[dict[str, Any]]:
    value = str(hook_id)
    toggle = (
        ui.button("Resume", HOOK_RESUME, value)
        if hook.paused
        else ui.button("Pause", HOOK_PAUSE, value)
    )
    delete = ui.confirm_dialog(
        "Delete hook?", f"Delete {hook.name}? Its URL stops working at once."
    )
    return [toggle, ui.button("Delete", HOOK_DELETE, value, style="danger", confirm=delete)]


def _more_line(hidden: int, command: str) -> list[Block]:
    return [context([f"and {hidden} more — `{command}`"])] if hidden > 0 else []


def _saved_id(row_id: int | None) -> int:
    if row_id is None:
        raise ValueError("only saved hooks and triggers (with an id) can be shown")
    return row_id
