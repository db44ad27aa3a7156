"""Recording deliveries durably, fast: concurrent requests share one commit.

Every request that passes verification waits until its delivery row is committed, then
gets its 202. Rows that arrive while a commit is in progress are written together in
the next one (`bot.batching.GroupCommit`). Duplicates (same hook, same sender delivery
id) are skipped by the database's unique constraint, inside the same statement.

A delivery whose hook needs no processing (no template, filter or action) has its
message queued in that same transaction; the others are left to the processor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bot.batching import GroupCommit
from bot.db import Database, insert_skipping_conflicts
from bot.models import Delivery, Hook
from bot.outbox import Message, enqueue
from bot.webhooks.delivery import NewDelivery
from bot.webhooks.traffic import HookTraffic

# Turns a just-stored delivery (and its parsed body) into its Slack message, or None to
# leave it to the processor (hooks with templates, filters or actions; paused hooks).
FastPath = Callable[[NewDelivery, Any, Hook], Message | None]

DELIVERIES: sa.Table = Delivery.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Recorded:
    """The stored delivery's id: the new one, or for a duplicate the original's."""

    id: str
    duplicate: bool


@dataclass(frozen=True)
class _Received:
    delivery: NewDelivery
    hook: Hook | None
    payload: Any


@dataclass
class DeliveryWriter:
    """Writes delivery rows in shared transactions; `record` returns once the row is durable."""

    db: Database
    fast_path: FastPath | None = None
    on_enqueued: Callable[..., None] = lambda *channels: None  # wakes the outbox
    on_unprocessed: Callable[[], None] = lambda: None  # wakes the delivery processor
    _rounds: GroupCommit[_Received, Recorded] = field(init=False)
    _known_channels: set[str] = field(default_factory=set)
    traffic: HookTraffic = field(init=False)  # requests per hook and hour, written each minute

    def __post_init__(self) -> None:
        self._rounds = GroupCommit(self._write)
        self.traffic = HookTraffic(self.db)

    async def record(
        self, delivery: NewDelivery, hook: Hook | None = None, payload: Any = None
    ) -> Recorded:
        """Store one delivery, unless it duplicates an earlier one (then name that one).

        With its ``hook`` and parsed ``payload``, a plain delivery's message is queued in
        the same transaction.
        """
        return await self._rounds.submit(_Received(delivery, hook, payload))

    def count_rejection(self, hook_id: int, at: datetime) -> None:
        """Count a request refused for failing verification (in memory: see `HookTraffic`)."""
        self.traffic.refused(hook_id, at)

    async def flush(self) -> None:
        """Wait until everything queued so far is written (the request counts are written
        by `HookTraffic` on its own schedule)."""
        await self._rounds.flush()

    async def _write(self, batch: list[_Received]) -> list[Recorded]:
        rows, messages = self._rows_and_fast_messages(batch)
        async with self.db.core_transaction() as session:
            inserted: set[str] = set()
            originals: dict[tuple[int, str], str] = {}
            if batch:
                # executemany of one cached statement: compiling a fresh multi-row VALUES
                # per batch cost more CPU than the whole rest of the request.
                statement = insert_skipping_conflicts(DELIVERIES, self.db.dialect).returning(
                    DELIVERIES.c.id
                )
                result = await session.execute(statement, rows)
                inserted = set(result.scalars().all())
                originals = await _originals_of(session, [i.delivery for i in batch], inserted)
            fresh = [message for row_id, message in messages.items() if row_id in inserted]
            if fresh:
                now = batch[-1].delivery.received_at
                await enqueue(session, now, *fresh, known_channels=self._known_channels)
        for item in batch:
            if item.delivery.id in inserted:
                self.traffic.received(item.delivery.hook_id, item.delivery.received_at)
        self._announce(fresh, len(inserted))
        return [_recorded(item.delivery, inserted, originals) for item in batch]

    def _rows_and_fast_messages(
        self, batch: list[_Received]
    ) -> tuple[list[dict[str, Any]], dict[str, Message]]:
        """The rows to insert, and the messages of deliveries that need no processing
        (their rows are stored as posted).

        A duplicate's row is not inserted, and then its message is not queued either.
        """
        rows: list[dict[str, Any]] = []
        messages: dict[str, Message] = {}
        for item in batch:
            delivery = item.delivery
            message = None
            if self.fast_path is not None and item.hook is not None:
                message = self.fast_path(delivery, item.payload, item.hook)
            if message is not None:
                delivery = delivery.posted()
                messages[delivery.id] = message
            rows.append(delivery.row())
        return rows, messages

    def _announce(self, fresh: list[Message], inserted: int) -> None:
        if fresh:
            channels = {message.channel for message in fresh}
            self._known_channels |= channels
            self.on_enqueued(*channels)
        if inserted > len(fresh):
            self.on_unprocessed()


async def _originals_of(
    session: Any, deliveries: list[NewDelivery], inserted: set[str]
) -> dict[tuple[int, str], str]:
    """For deliveries refused as duplicates, the id of the delivery each one repeats."""
    repeated = {
        (d.hook_id, d.dedupe_key) for d in deliveries if d.id not in inserted and d.dedupe_key
    }
    if not repeated:
        return {}
    result = await session.execute(
        sa.select(DELIVERIES.c.hook_id, DELIVERIES.c.dedupe_key, DELIVERIES.c.id).where(
            sa.tuple_(DELIVERIES.c.hook_id, DELIVERIES.c.dedupe_key).in_(list(repeated))
        )
    )
    return {(hook_id, key): row_id for hook_id, key, row_id in result.all()}


def _recorded(
    delivery: NewDelivery, inserted: set[str], originals: dict[tuple[int, str], str]
) -> Recorded:
    if delivery.id in inserted:
        return Recorded(delivery.id, duplicate=False)
    original = originals.get((delivery.hook_id, delivery.dedupe_key or ""), delivery.id)
    return Recorded(original, duplicate=True)
