"""How the bot itself is doing: for /trigger status, /readyz and the heartbeat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col

from bot.db import Database
from bot.models import Delivery, OutboxMessage, Trigger

OVERDUE_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class Health:
    """A snapshot of the bot's own state, read from the database."""

    outbox_pending: int
    outbox_oldest: datetime | None
    outbox_failed: int
    last_post: datetime | None
    last_webhook: datetime | None
    overdue_triggers: int


async def read_health(db: Database, now: datetime) -> Health:
    """Queue depth, the oldest waiting message, the last post and webhook, overdue runs."""
    async with db.sessions() as session:
        pending, oldest = (
            await session.execute(
                sa.select(sa.func.count(), sa.func.min(OutboxMessage.created_at)).where(
                    col(OutboxMessage.status) == "pending"
                )
            )
        ).one()
        failed = await session.scalar(
            sa.select(sa.func.count()).where(col(OutboxMessage.status) == "failed")
        )
        last_post = await session.scalar(sa.select(sa.func.max(OutboxMessage.sent_at)))
        last_webhook = await session.scalar(sa.select(sa.func.max(Delivery.received_at)))
        overdue = await session.scalar(
            sa.select(sa.func.count()).where(
                col(Trigger.paused).is_(False), col(Trigger.next_run_at) < now - OVERDUE_AFTER
            )
        )
    return Health(
        int(pending), oldest, int(failed or 0), last_post, last_webhook, int(overdue or 0)
    )


def describe_health(
    health: Health, *, leader: bool, lateness: float, now: datetime, zone: ZoneInfo
) -> str:
    """The /trigger status reply, times in the reader's ``zone``."""
    age = f"{(now - health.outbox_oldest).total_seconds():.0f} s" if health.outbox_oldest else "—"
    return "\n".join(
        [
            "*Bot status*",
            f"• Scheduler: {'runs here' if leader else 'runs on another replica'}; "
            f"last run started {lateness * 1000:.0f} ms after its time",
            f"• Overdue triggers: {health.overdue_triggers}",
            f"• Outbox: {health.outbox_pending} waiting (oldest {age}), {health.outbox_failed} refused by Slack",
            f"• Last message posted: {_when(health.last_post, now, zone)}",
            f"• Last webhook received: {_when(health.last_webhook, now, zone)}",
        ]
    )


def _when(moment: datetime | None, now: datetime, zone: ZoneInfo) -> str:
    if moment is None:
        return "never"
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({(now - moment).total_seconds():.0f} s ago)"
