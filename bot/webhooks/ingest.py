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
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from bot.db import Database
from bot.models import Delivery, Hook

log = logging.getLogger(__name__)

MAX_BATCH = 200


@dataclass
class _Pending:
    row: dict[str, Any]
    done: asyncio.Future[bool]


@dataclass
class DeliveryWriter:
    """Writes delivery rows in shared transactions; `record` returns once the row is durable."""

    db: Database
    _queue: list[_Pending] = field(default_factory=list)
    _rejections: Counter[int] = field(default_factory=Counter)
    _writing: asyncio.Task[None] | None = None

    async def record(self, row: dict[str, Any]) -> bool:
        """Store one delivery. True if it is new, False if it duplicates an earlier one."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(row, done))
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
        async with self.db.transaction() as session:
            inserted: set[str] = set()
            if batch:
                statement = _insert_skipping_duplicates(self.db, [p.row for p in batch])
                result = await session.execute(statement.returning(col(Delivery.id)))
                inserted = set(result.scalars().all())
            for hook_id, count in rejections.items():
                await session.execute(
                    sa.update(Hook)
                    .where(col(Hook.id) == hook_id)
                    .values(rejected=col(Hook.rejected) + count)
                )
        return inserted


def _insert_skipping_duplicates(db: Database, rows: list[dict[str, Any]]) -> Any:
    dialect = sqlite if db.is_sqlite else postgresql
    return dialect.insert(Delivery).values(rows).on_conflict_do_nothing()
