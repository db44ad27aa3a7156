"""Who is acting, and the record of what they changed.

Every change to a hook or a trigger is made by an `Actor` (a person in a workspace,
acting from a channel) and leaves an `AuditEntry` plus a one-line "last change" note on
the changed row, which ``show`` displays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.models import AuditEntry


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
    """The "last change" line stored on the changed row."""
    return f"{action} by <@{actor.user_id}> at {now:%Y-%m-%d %H:%M} UTC"
