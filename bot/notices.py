"""Telling people, once, when what they set up cannot be posted.

When Slack refuses a hook's or a trigger's message for good (the channel was archived or
deleted, the bot was removed from a private channel), the message is recorded as failed
and shows in ``/hook log`` and ``/trigger status``. Nobody reads those until they wonder
why the channel went quiet, so the hook's or trigger's creator also gets a direct
message saying what failed and how to fix it: once per channel and reason, per quiet
period, however many messages fail meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.models import Delivery, Hook, OutboxMessage, Trigger
from bot.outbox import Message, enqueue
from bot.slack.blocks import channel_mention, escape_mrkdwn

QUIET_FOR = timedelta(hours=6)
NOTICE_SOURCE = "notice"  # the notices' own source: a notice that fails is not noticed


@dataclass(frozen=True)
class _Owner:
    user_id: str
    what: str  # "hook *deploys*"
    fix: str  # the command that points it elsewhere


@dataclass
class FailureNotices:
    """The outbox's ``on_failed``: a DM to the creator of what could not be posted."""

    db: Database
    clock: Clock
    wake: Callable[..., None]  # the outbox's wake, for the DM
    quiet_for: timedelta = QUIET_FOR
    _told: dict[tuple[str, str, str], datetime] = field(default_factory=dict)

    async def message_failed(self, message: OutboxMessage, reason: str) -> None:
        """Tell the owner of ``message``'s hook or trigger, unless told recently."""
        if message.kind != "post" or not message.source:
            return
        owner = await self._owner_of(message.source)
        if owner is None:
            return
        now = self.clock.now()
        key = (owner.user_id, message.channel, reason.split(":")[0])
        if key in self._told and now - self._told[key] < self.quiet_for:
            return
        self._told[key] = now
        text = (
            f"I couldn't post a message of your {owner.what} in "
            f"{channel_mention(message.channel)}: Slack said `{escape_mrkdwn(reason)}`. "
            f"Invite me there (`/invite @chatops`), or choose another channel: `{owner.fix}`."
        )
        async with self.db.transaction() as session:
            await enqueue(session, now, Message(owner.user_id, text, source=NOTICE_SOURCE))
        self.wake(owner.user_id)

    async def _owner_of(self, source: str) -> _Owner | None:
        kind, _, key = source.partition(":")
        async with self.db.sessions() as session:
            if kind == "delivery":
                found = await session.execute(
                    select(Hook)
                    .join(Delivery, col(Delivery.hook_id) == col(Hook.id))
                    .where(col(Delivery.id) == key)
                )
                hook = found.scalars().first()
                if hook is not None:
                    fix = f"/hook set {hook.name} channel=#other"
                    return _Owner(hook.created_by, f"hook *{hook.name}*", fix)
            if kind == "trigger" and key.isdigit():
                trigger = await session.get(Trigger, int(key))
                if trigger is not None:
                    fix = f"/trigger edit {trigger.name}"
                    return _Owner(trigger.created_by, f"trigger *{trigger.name}*", fix)
        return None
