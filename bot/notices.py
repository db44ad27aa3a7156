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
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.models import Delivery, Hook, OutboxMessage, Trigger
from bot.outbox import Message, enqueue
from bot.slack.blocks import channel_mention, escape_mrkdwn

QUIET_FOR = timedelta(hours=6)
# What Slack answers when the channel itself is the problem, which its owner can fix.
# Other permanent failures (a message too long, the bot's own bugs) are the bot's to fix.
CHANNEL_REASONS = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived"}
)


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

    async def message_failed(self, message: OutboxMessage, reason: str) -> None:
        """Tell the owner of ``message``'s hook or trigger, unless told recently."""
        code = reason.split(":")[0].strip()
        if message.kind != "post" or not message.source or code not in CHANNEL_REASONS:
            return
        owner = await self._owner_of(message.source)
        if owner is None:
            return
        now = self.clock.now()
        # The notice's own outbox row is the memory of having told: it holds across
        # replicas and restarts.
        source = f"notice:{owner.user_id}:{message.channel}:{code}"
        if await self._told_since(source, now - self.quiet_for):
            return
        text = (
            f"I couldn't post a message of your {owner.what} in "
            f"{channel_mention(message.channel)}: Slack said `{escape_mrkdwn(reason)}`. "
            f"Invite me there (`/invite @chatops`), or choose another channel: `{owner.fix}`."
        )
        async with self.db.transaction() as session:
            await enqueue(session, now, Message(owner.user_id, text, source=source))
        self.wake(owner.user_id)

    async def _told_since(self, source: str, since: datetime) -> bool:
        async with self.db.sessions() as session:
            found = await session.execute(
                select(col(OutboxMessage.id))
                .where(col(OutboxMessage.source) == source, col(OutboxMessage.created_at) > since)
                .limit(1)
            )
            return found.first() is not None

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
