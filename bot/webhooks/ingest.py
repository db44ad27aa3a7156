"""Recording deliveries durably, fast: concurrent requests share one commit.

Every request that passes verification waits until its delivery row is committed, then
gets its 202. Rows that arrive while a commit is in progress are written together in
the next one (no timer: a lone request commits at once), which is what lets durable
ingest keep up with a bare route. Duplicates (same hook, same sender delivery id) are
skipped by the database's unique constraint, inside the same statement.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from bot.db import Database
from bot.models import Delivery, Hook
from bot.outbox import Message, enqueue

log = logging.getLogger(__name__)

MAX_BATCH = 200


# Turns a just-stored delivery into its Slack message, or None to leave it to the
# processor (hooks with templates, filters or actions; paused hooks).
FastPath = Callable[[dict[str, Any], Hook], Message | None]


@dataclass
class _Pending:
    row: dict[str, Any]
    hook: Hook | None
    done: asyncio.Future[bool]


@dataclass
class DeliveryWriter:
    """Writes delivery rows in shared transactions; `record` returns once the row is durable."""

    db: Database
    fast_path: FastPath | None = None
    on_enqueued: Callable[..., None] = lambda *channels: None  # wakes the outbox
    on_unprocessed: Callable[[], None] = lambda: None  # wakes the delivery processor
    _queue: list[_Pending] = field(default_factory=list)
    _known_channels: set[str] = field(default_factory=set)
    _rejections: Counter[int] = field(default_factory=Counter)
    _writing: asyncio.Task[None] | None = None

    async def record(self, row: dict[str, Any], hook: Hook | None = None) -> bool:
        """Store one delivery. True if it is new, False if it duplicates an earlier one.

        With its ``hook``, a plain delivery's message is queued in the same transaction,
        saving the processor a second transaction for the common case.
        """
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(row, hook, done))
        self._ensure_writer()
        return await done

    def count_rejection(self, hook_id: int) -> None:
        """Count a refused request against its hook (written with the next batch)."""
        self._rejections[hook_id] += 1
        self._ensure_writer()

    async def flush(self) -> None:
        """Wait until everything queued so far is written."""
        while self._writing is not None:
            await asyncio.shield(self._writing)

    def _ensure_writer(self) -> None:
        if self._writing is None:
            self._writing = asyncio.create_task(self._write_all())

    async def _write_all(self) -> None:
        try:
            while self._queue or self._rejections:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                rejections, self._rejections = self._rejections, Counter()
                await self._write(batch, rejections)
        finally:
            self._writing = None

    async def _write(self, batch: list[_Pending], rejections: Counter[int]) -> None:
        try:
            inserted = await self._insert(batch, rejections)
        except Exception as error:
            log.exception("writing %d deliveries failed", len(batch))
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_exception(error)
            return
        for pending in batch:
            if not pending.done.done():
                pending.done.set_result(pending.row["id"] in inserted)

    async def _insert(self, batch: list[_Pending], rejections: Counter[int]) -> set[str]:
        messages = self._fast_messages(batch)
        async with self.db.transaction() as session:
            inserted: set[str] = set()
            if batch:
                # executemany of one cached statement: compiling a fresh multi-row VALUES
                # per batch cost more CPU than the whole rest of the request.
                statement = _insert_skipping_duplicates(self.db).returning(DELIVERIES.c.id)
                result = await session.execute(statement, [p.row for p in batch])
                inserted = set(result.scalars().all())
            fresh = [message for row_id, message in messages.items() if row_id in inserted]
            if fresh:
                now = batch[-1].row["received_at"]
                await enqueue(session, now, *fresh, known_channels=self._known_channels)
            for hook_id, count in rejections.items():
                await session.execute(
                    sa.update(Hook)
                    .where(col(Hook.id) == hook_id)
                    .values(rejected=col(Hook.rejected) + count)
                )
        if fresh:
            channels = {message.channel for message in fresh}
            self._known_channels |= channels
            self.on_enqueued(*channels)
        if len(inserted) > len(fresh):
            self.on_unprocessed()
        return inserted

    def _fast_messages(self, batch: list[_Pending]) -> dict[str, Message]:
        """Messages for deliveries that need no processing; their rows are stored as posted.

        A duplicate's row is not inserted, and then its message is not queued either.
        """
        messages: dict[str, Message] = {}
        if self.fast_path is None:
            return messages
        for pending in batch:
            message = self.fast_path(pending.row, pending.hook) if pending.hook else None
            if message is not None:
                pending.row["status"] = "posted"
                messages[pending.row["id"]] = message
        return messages


DELIVERIES: sa.Table = Delivery.__table__  # type: ignore[attr-defined]


def _insert_skipping_duplicates(db: Database) -> Any:
    dialect = sqlite if db.is_sqlite else postgresql
    return dialect.insert(DELIVERIES).on_conflict_do_nothing()
