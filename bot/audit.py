"""Who is acting, and the record of what they changed.

Every change to a hook or a trigger is made by an `Actor` (a person in a workspace,
acting from a channel) and leaves an `AuditEntry` plus a one-line "last change" note on
the changed row, which ``show`` displays in the viewer's zone (`note_in`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from bot.models import AuditEntry

NOTE_TIME_FORMAT: Final = "%Y-%m-%d %H:%M"
_NOTE_TIME: Final = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC\b")


@dataclass(frozen=True)
class Actor:
    """A person acting: their workspace, their user id, and the channel they act from
    (where replies go, and the default channel of what they create)."""

    team_id: str
    user_id: str
    channel_id: str


def audit_entry(actor: Actor, subject: str, action: str, now: datetime) -> AuditEntry:
    """The audit row for ``action`` on ``subject`` (``"hook:deploys"``, ``"trigger:site"``)."""
    return AuditEntry(
        team_id=actor.team_id, user_id=actor.user_id, subject=subject, action=action, at=now
    )


def change_note(action: str, actor: Actor, now: datetime) -> str:
    """The "last change" line stored on the changed row (times in UTC; see `note_in`)."""
    return f"{action} by <@{actor.user_id}> at {now.astimezone(UTC):{NOTE_TIME_FORMAT}} UTC"


def note_in(note: str | None, zone: ZoneInfo) -> str:
    """A stored "last change" note as a person in ``zone`` reads it: each UTC time in it
    (the change's, and one an action names, such as a mute's end) in their zone, named."""
    if not note:
        return "—"
    return _NOTE_TIME.sub(lambda found: _in_zone(found[1], zone), note)


def _in_zone(utc_text: str, zone: ZoneInfo) -> str:
    when = datetime.strptime(utc_text, NOTE_TIME_FORMAT).replace(tzinfo=UTC)
    return f"{when.astimezone(zone):%Y-%m-%d %H:%M %Z}"
