"""What a trigger's messages look like in Slack.

An alert (down, flapping) starts a thread with buttons under it; follow-ups (still down,
recovered, stable) reply in that thread, and the ones that close an incident also edit its
first message. Button values are only the trigger's id: a click is looked up and
authorised again by whoever handles it (`bot.conversation.flows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from bot.glance import Drawing
from bot.models import Trigger
from bot.outbox import Message
from bot.slack import blocks as kit
from bot.slack import interactive as ui
from bot.triggers.evaluate import Announcement
from bot.triggers.schedule import local_time, schedule_from_dict

# The action ids of buttons on trigger messages and in the App Home.
TRIGGER_RUN: Final = "trigger_run"
TRIGGER_SNOOZE: Final = "trigger_snooze"
TRIGGER_PAUSE: Final = "trigger_pause"
TRIGGER_RESUME: Final = "trigger_resume"
TRIGGER_HISTORY: Final = "trigger_history"
TRIGGER_EDIT: Final = "trigger_edit"
TRIGGER_DELETE: Final = "trigger_delete"

SHOWN_MISSED_RUNS: Final = 3


def alert_actions(trigger_id: int) -> kit.Block:
    """Buttons under a trigger's alert: Run now, Snooze 1h, Pause, History."""
    value = str(trigger_id)
    return ui.actions(
        [
            ui.button("Run now", TRIGGER_RUN, value),
            ui.button("Snooze 1h", TRIGGER_SNOOZE, value),
            ui.button("Pause", TRIGGER_PAUSE, value),
            ui.button("History", TRIGGER_HISTORY, value),
        ]
    )


def source_of(trigger: Trigger) -> str:
    """The outbox ``source`` of everything a trigger posts."""
    return f"trigger:{trigger.id}"


def announcement_message(
    trigger: Trigger, announcement: Announcement, incident: int, drawing: Drawing | None = None
) -> Message:
    """An announcement as a message: alerts start a thread, follow-ups reply and update it.
    A recovery shows ``drawing`` (uptime and latency), in words in its notification text."""
    thread_key = f"trigger:{trigger.id}:incident:{incident}"
    if announcement.kind in ("down", "flapping"):
        return Message(
            trigger.channel_id,
            announcement.text,
            blocks=alert_blocks(trigger, announcement.text),
            thread_key=thread_key,
            source=source_of(trigger),
        )
    if announcement.follows_up:
        closes = announcement.kind in ("recovered", "stable")
        drawn = drawing if announcement.kind == "recovered" else None
        return Message(
            trigger.channel_id,
            announcement.text if drawn is None else f"{announcement.text}\n{drawn.words}",
            blocks=None
            if drawn is None
            else [kit.section("\n".join((announcement.text, *drawn.lines)))],
            thread_key=thread_key,
            updates_root=closes,
            reaction="white_check_mark" if announcement.kind == "recovered" else None,
            source=source_of(trigger),
        )
    return Message(trigger.channel_id, announcement.text, source=source_of(trigger))


def recovers(announcements: Sequence[Announcement]) -> bool:
    """True when one of a run's announcements is a recovery (which shows uptime)."""
    return any(announcement.kind == "recovered" for announcement in announcements)


def opens_incident(announcement: Announcement) -> bool:
    """True for announcements that start a new incident (and so a new thread)."""
    return announcement.kind in ("down", "flapping")


def alert_blocks(trigger: Trigger, text: str) -> list[kit.Block]:
    """An alert with its buttons: Run now, Snooze 1h, Pause, History (values are ids)."""
    assert trigger.id is not None
    return [kit.section(text), alert_actions(trigger.id)]


def post_message(trigger: Trigger, text: str) -> Message:
    """What a ``message`` or ``report`` trigger posts on schedule."""
    return Message(trigger.channel_id, text, source=source_of(trigger))


def missed_runs_message(trigger: Trigger, missed: list[datetime]) -> Message:
    """The notice that runs were missed while the bot was down (oldest first)."""
    tz = schedule_from_dict(trigger.schedule).tz
    shown = ", ".join(local_time(when, tz) for when in missed[:SHOWN_MISSED_RUNS])
    hidden = len(missed) - SHOWN_MISSED_RUNS
    more = f" and {hidden} more" if hidden > 0 else ""
    text = f":warning: *{trigger.name}* missed {shown}{more}: the bot was down."
    return Message(trigger.channel_id, text, source=source_of(trigger))
