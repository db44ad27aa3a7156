"""Nothing grows for ever: old rows are deleted in small batches, and SQLite gives the space back.

What is kept, and for how long (``RETENTION_DAYS`` is the setting, 30 by default):

| rows | kept |
|---|---|
| deliveries (with their bodies) | ``RETENTION_DAYS``, and always each hook's newest `KEEP_PER_HOOK` (its ``log``) |
| outbox messages sent or failed | ``RETENTION_DAYS`` (pending ones until they are sent) |
| Slack event ids | one day (Slack retries an event within the hour) |
| drafts | open ones expire after a day; answered ones are deleted after a week |
| audit entries | `AUDIT_DAYS` |
| thread roots | `THREAD_DAYS`: an event for a thread older than that starts a new one |
| keys of items a scan saw (``each=``) | `TRIGGER_ITEM_DAYS` of its trigger's runs after the item was last listed |
| AI token counts | `AI_USAGE_DAYS` (the budget needs only today's) |
| hourly roll-ups of trigger runs and hook requests | `bot.glance.ROLLUP_RETENTION` (90 days), whatever ``RETENTION_DAYS`` says |

Trigger runs are pruned by the runner itself (the last 200 per trigger). Deliveries still
being received or processed are never deleted. Each statement deletes at most `BATCH` rows
and the pass sleeps between statements, so ingest (which shares SQLite's one connection)
never waits long. On SQLite the freed pages are returned to the file system
(``auto_vacuum=INCREMENTAL``, set up by `bot.db.Database.migrate`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import col

from bot.ai.budget import budget_day
from bot.clock import Clock
from bot.db import Database
from bot.glance import HOUR, ROLLUP_RETENTION
from bot.models import (
    ActionRun,
    AIUsage,
    AuditEntry,
    Delivery,
    Draft,
    Hook,
    HookHour,
    OutboxMessage,
    SlackEvent,
    ThreadRoot,
    Trigger,
    TriggerItem,
    TriggerRollup,
)

log = logging.getLogger(__name__)

BATCH: Final = 500
PAUSE_SECONDS: Final = 0.05  # between statements: ingest gets the connection in between
PASS_EVERY_SECONDS: Final = 3600.0
FIRST_PASS_AFTER_SECONDS: Final = 60.0  # start-up has enough to do
KEEP_PER_HOOK: Final = 20
SLACK_EVENT_DAYS: Final = 1
OPEN_DRAFT_DAYS: Final = 1
CLOSED_DRAFT_DAYS: Final = 7
AUDIT_DAYS: Final = 365
THREAD_DAYS: Final = 90
# A scanned item gone from its list this long (counted in its trigger's runs, so a paused
# trigger forgets nothing) is posted again if it comes back.
TRIGGER_ITEM_DAYS: Final = 90
AI_USAGE_DAYS: Final = 7
FINISHED_DELIVERIES: Final = ("posted", "filtered", "dropped", "failed", "acted")
VACUUM_PAGES: Final = 2000  # pages returned per statement (8 MB with 4 kB pages)


@dataclass(frozen=True)
class PassReport:
    """How many rows one pass deleted, per kind."""

    deleted: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


@dataclass
class Retention:
    """Deletes what is past its time; `run_forever` does a pass every hour."""

    db: Database
    clock: Clock
    days: float
    may_run: Callable[[], bool] = lambda: True  # only the leader prunes (one is enough)

    async def run_forever(self) -> None:
        await self.clock.sleep(FIRST_PASS_AFTER_SECONDS)
        while True:
            if self.may_run():
                try:
                    report = await self.run_once()
                    if report.total:
                        log.info("retention deleted %s", report.deleted)
                except Exception:
                    log.exception("retention pass failed; trying again later")
            await self.clock.sleep(PASS_EVERY_SECONDS)

    async def run_once(self) -> PassReport:
        """One full pass: every kind of row, in batches, then the space back (SQLite)."""
        now = self.clock.now()
        cutoff = now - timedelta(days=self.days)
        deleted = {
            "deliveries": await self._deliveries(cutoff),
            "outbox": await self._in_batches(
                OutboxMessage,
                col(OutboxMessage.created_at) < cutoff,
                col(OutboxMessage.status).in_(["sent", "failed"]),
            ),
            "slack_events": await self._in_batches(
                SlackEvent, col(SlackEvent.received_at) < now - timedelta(days=SLACK_EVENT_DAYS)
            ),
            "drafts": await self._drafts(now),
            "audit": await self._in_batches(
                AuditEntry, col(AuditEntry.at) < now - timedelta(days=AUDIT_DAYS)
            ),
            "thread_roots": await self._in_batches(
                ThreadRoot, col(ThreadRoot.created_at) < now - timedelta(days=THREAD_DAYS)
            ),
            "trigger_items": await self._trigger_items(),
            "action_runs": await self._in_batches(
                ActionRun,
                col(ActionRun.created_at) < cutoff,
                col(ActionRun.status).in_(["sent", "failed"]),
            ),
            "ai_usage": await self._in_batches(
                AIUsage, col(AIUsage.day) < budget_day(now - timedelta(days=AI_USAGE_DAYS))
            ),
            "trigger_rollups": await self._in_batches(
                TriggerRollup, col(TriggerRollup.hour) < now - ROLLUP_RETENTION - HOUR
            ),
            "hook_hours": await self._in_batches(
                HookHour, col(HookHour.hour) < now - ROLLUP_RETENTION - HOUR
            ),
        }
        if sum(deleted.values()) and self.db.is_sqlite:
            await self._give_space_back()
        return PassReport(deleted)

    async def _deliveries(self, cutoff: datetime) -> int:
        """Old deliveries of each hook, but never its newest `KEEP_PER_HOOK`."""
        async with self.db.sessions() as session:
            hook_ids = list((await session.execute(sa.select(col(Hook.id)))).scalars().all())
        total = 0
        for hook_id in hook_ids:
            kept_from = await self._oldest_kept(hook_id)
            if kept_from is None:
                continue
            total += await self._in_batches(
                Delivery,
                col(Delivery.hook_id) == hook_id,
                col(Delivery.received_at) < cutoff,
                col(Delivery.id) < kept_from,
                col(Delivery.status).in_(FINISHED_DELIVERIES),
            )
        return total

    async def _oldest_kept(self, hook_id: int | None) -> str | None:
        """The id of the oldest of the hook's newest `KEEP_PER_HOOK` deliveries (ids sort
        by arrival); None when it has no more than that, so none may go."""
        async with self.db.sessions() as session:
            ids = (
                await session.execute(
                    sa.select(col(Delivery.id))
                    .where(col(Delivery.hook_id) == hook_id)
                    .order_by(col(Delivery.id).desc())
                    .offset(KEEP_PER_HOOK - 1)
                    .limit(1)
                )
            ).scalars()
            return next(iter(ids), None)

    async def _trigger_items(self) -> int:
        """Keys of items no longer listed for `TRIGGER_ITEM_DAYS` before their trigger's
        last run (a key still listed is marked again at least daily while it runs)."""
        async with self.db.sessions() as session:
            scanning = sa.select(col(TriggerItem.trigger_id)).distinct().scalar_subquery()
            rows = await session.execute(
                sa.select(col(Trigger.id), col(Trigger.last_run_at)).where(
                    col(Trigger.id).in_(scanning), col(Trigger.last_run_at).is_not(None)
                )
            )
            last_runs = list(rows.all())
        total = 0
        for trigger_id, last_run in last_runs:
            total += await self._in_batches(
                TriggerItem,
                col(TriggerItem.trigger_id) == trigger_id,
                col(TriggerItem.seen_at) < last_run - timedelta(days=TRIGGER_ITEM_DAYS),
            )
        return total

    async def _drafts(self, now: datetime) -> int:
        async with self.db.transaction() as session:
            await session.execute(
                sa.update(Draft)
                .where(
                    col(Draft.status) == "open",
                    col(Draft.created_at) < now - timedelta(days=OPEN_DRAFT_DAYS),
                )
                .values(status="expired")
            )
        return await self._in_batches(
            Draft,
            col(Draft.status) != "open",
            col(Draft.created_at) < now - timedelta(days=CLOSED_DRAFT_DAYS),
        )

    async def _in_batches(self, table: type[Any], *where: Any) -> int:
        """DELETE rows matching ``where``, `BATCH` at a time, pausing between statements."""
        columns = list(table.__table__.primary_key.columns)
        key = columns[0] if len(columns) == 1 else sa.tuple_(*columns)
        total = 0
        while True:
            async with self.db.transaction() as session:
                found = (
                    await session.execute(sa.select(*columns).where(*where).limit(BATCH))
                ).all()
                chosen = [row[0] if len(columns) == 1 else tuple(row) for row in found]
                if chosen:
                    await session.execute(sa.delete(table).where(key.in_(chosen)))
            total += len(chosen)
            await asyncio.sleep(PAUSE_SECONDS)
            if len(chosen) < BATCH:
                return total

    async def _give_space_back(self) -> None:
        """Return SQLite's free pages to the file system, a few megabytes at a time."""
        previous = None
        while True:
            async with self.db.engine.connect() as connection:
                free = await connection.exec_driver_sql("PRAGMA freelist_count")
                pages = int(free.scalar() or 0)
                if pages == 0 or pages == previous:  # done, or SQLite will not give more
                    return
                # The pragma frees one page per step of the statement; the driver's
                # executescript steps it to the end (execute would stop after one page).
                raw = await connection.get_raw_connection()
                await raw.driver_connection.executescript(  # type: ignore[union-attr]
                    f"PRAGMA incremental_vacuum({VACUUM_PAGES});"
                )
            previous = pages
            await asyncio.sleep(PAUSE_SECONDS)
