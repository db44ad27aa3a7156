"""How many requests reach each hook per UTC hour: deliveries stored, and requests refused
for failing verification (for ``/hook show`` and the App Home).

Counting must not cost a database write per request, or a flood of forged requests would
become a flood of writes: requests are counted in memory and added to ``hook_hour`` (and
to each hook's ``rejected`` total) once a minute, in one transaction, by an atomic
``INSERT … ON CONFLICT DO UPDATE`` that replicas can run side by side. A crash loses at
most the last minute of counts.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlmodel import col

from bot.clock import Clock
from bot.db import Database, insert_adding
from bot.glance import HOUR, hour_start, window_start
from bot.models import Hook, HookHour

log = logging.getLogger(__name__)

FLUSH_SECONDS: Final = 60.0
_HOURS: sa.Table = HookHour.__table__  # type: ignore[attr-defined]
_Key = tuple[int, datetime]  # (hook id, start of the UTC hour)


@dataclass(frozen=True)
class HourlyTraffic:
    """A hook's requests in each of the last hours, oldest first."""

    received: list[int]
    refused: list[int]


@dataclass
class HookTraffic:
    """Counts requests in memory; `flush` adds them to the database."""

    db: Database
    _received: Counter[_Key] = field(default_factory=Counter)
    _refused: Counter[_Key] = field(default_factory=Counter)

    def received(self, hook_id: int, at: datetime, count: int = 1) -> None:
        """Count deliveries stored for the hook."""
        self._received[(hook_id, hour_start(at))] += count

    def refused(self, hook_id: int, at: datetime) -> None:
        """Count a request refused for failing verification."""
        self._refused[(hook_id, hour_start(at))] += 1

    async def flush(self) -> None:
        """Add what was counted since the last flush to ``hook_hour`` and ``hook.rejected``
        (kept for the next flush when the write fails)."""
        received, self._received = self._received, Counter()
        refused, self._refused = self._refused, Counter()
        if not received and not refused:
            return
        try:
            await self._write(received, refused)
        except BaseException:
            self._received.update(received)
            self._refused.update(refused)
            raise

    async def _write(self, received: Counter[_Key], refused: Counter[_Key]) -> None:
        keys = sorted(received.keys() | refused.keys())
        rejected: Counter[int] = Counter()
        for (hook, _), count in refused.items():
            rejected[hook] += count
        async with self.db.transaction() as session:
            # A hook deleted since its requests came has no row to count them against.
            live = set(
                (
                    await session.execute(
                        sa.select(col(Hook.id)).where(col(Hook.id).in_({k[0] for k in keys}))
                    )
                ).scalars()
            )
            rows = [
                {
                    "hook_id": key[0],
                    "hour": key[1],
                    "received": received[key],
                    "refused": refused[key],
                }
                for key in keys
                if key[0] in live
            ]
            if rows:
                statement = insert_adding(
                    _HOURS, self.db.dialect, ["hook_id", "hour"], ["received", "refused"]
                )
                await session.execute(statement, rows)
            for hook, count in sorted(rejected.items()):
                if hook in live:
                    await session.execute(
                        sa.update(Hook)
                        .where(col(Hook.id) == hook)
                        .values(rejected=col(Hook.rejected) + count)
                    )

    async def run_forever(self, clock: Clock) -> None:
        """Flush once a minute (the final flush is the caller's, at shutdown)."""
        while True:
            await clock.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception:
                log.exception("writing hook request counts failed; trying again in a minute")


async def recent_traffic(
    db: Database, hook_ids: Sequence[int], now: datetime, hours: int = 24
) -> dict[int, HourlyTraffic]:
    """Each hook's requests in each of the last ``hours`` hours (the current one last)."""
    first = window_start(now, hours)
    found = {hook: HourlyTraffic([0] * hours, [0] * hours) for hook in hook_ids}
    if not hook_ids:
        return found
    async with db.sessions() as session:
        result = await session.execute(
            sa.select(_HOURS).where(_HOURS.c.hook_id.in_(list(hook_ids)), _HOURS.c.hour >= first)
        )
        for row in result.mappings():
            index = (row["hour"] - first) // HOUR
            if 0 <= index < hours:
                found[row["hook_id"]].received[index] += row["received"]
                found[row["hook_id"]].refused[index] += row["refused"]
    return found
