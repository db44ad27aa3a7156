"""Stored hourly roll-ups of trigger runs (`bot.glance.HourlyRollup`), written as runs are
saved and read for the uptime bars and latency lines.

A finished run is added to its hour once, in the transaction that saves it (`add_runs`):
the hour's row is read and locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has one
writer at a time), merged with the run and written back; an hour not stored yet is
inserted (``INSERT … ON CONFLICT DO NOTHING``), and one that another replica inserted in
the meantime is locked and merged after all. Two replicas saving runs of the same hour
therefore wait for each other instead of losing a run. Rows are locked in (trigger, hour)
order, so two rounds never wait for each other crosswise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bot.db import Database, insert_skipping_conflicts
from bot.glance import (
    UPTIME_WINDOWS,
    Drawing,
    HourlyRollup,
    LatencyHistogram,
    Run,
    roll_up,
    trigger_drawing,
    window_start,
)
from bot.models import Trigger, TriggerRollup
from bot.slack.dates import slack_date

_ROLLUPS: sa.Table = TriggerRollup.__table__  # type: ignore[attr-defined]
_Key = tuple[int, datetime]

_UPDATE = (
    sa.update(_ROLLUPS)
    .where(
        _ROLLUPS.c.trigger_id == sa.bindparam("k_trigger"),
        _ROLLUPS.c.hour == sa.bindparam("k_hour"),
    )
    .values(
        runs=sa.bindparam("v_runs"),
        problems=sa.bindparam("v_problems"),
        latency=sa.bindparam("v_latency"),
    )
)


async def add_runs(
    session: Any, dialect: str, runs: Iterable[tuple[int, Run]], now: datetime
) -> None:
    """Add each finished ``(trigger id, run)`` to its hour's stored roll-up, once."""
    fresh = _by_key(runs, now)
    if not fresh:
        return
    keys = sorted(fresh)
    stored = await _locked(session, keys)  # most runs join an hour already stored
    new = [key for key in keys if key not in stored]
    if new:
        statement = insert_skipping_conflicts(_ROLLUPS, dialect).returning(
            _ROLLUPS.c.trigger_id, _ROLLUPS.c.hour
        )
        result = await session.execute(statement, [_row(key, fresh[key]) for key in new])
        inserted = {(tid, hour) for tid, hour in result.all()}
        raced = [key for key in new if key not in inserted]  # another replica's, just now
        if raced:
            stored |= await _locked(session, raced)
    if stored:
        await session.execute(
            _UPDATE,
            [
                {"k_trigger": key[0], "k_hour": key[1], **_values(stored[key].merge(fresh[key]))}
                for key in keys
                if key in stored
            ],
        )


def _by_key(runs: Iterable[tuple[int, Run]], now: datetime) -> dict[_Key, HourlyRollup]:
    merged: dict[_Key, HourlyRollup] = {}
    for trigger_id, run in runs:
        for rollup in roll_up([run], now):
            key = (trigger_id, rollup.hour)
            merged[key] = merged[key].merge(rollup) if key in merged else rollup
    return merged


async def _locked(session: Any, keys: Sequence[_Key]) -> dict[_Key, HourlyRollup]:
    """The stored roll-ups of ``keys``, locked until the transaction ends.

    Asked as ``trigger_id IN (…) AND hour IN (…)`` rather than as a row-value IN: SQLite
    answers the latter by scanning the whole table, which grows by a row per trigger and
    hour, and at 10,000 triggers a minute that scan in every save round delayed runs by
    seconds. A round's runs fall in one or two hours, so the product asked for is about
    the keys themselves."""
    trigger_ids = sorted({trigger_id for trigger_id, _ in keys})
    hours = sorted({hour for _, hour in keys})
    result = await session.execute(
        sa.select(_ROLLUPS)
        .where(_ROLLUPS.c.trigger_id.in_(trigger_ids), _ROLLUPS.c.hour.in_(hours))
        .order_by(_ROLLUPS.c.trigger_id, _ROLLUPS.c.hour)
        .with_for_update()
    )
    wanted = set(keys)
    rows = ((row["trigger_id"], row["hour"], row) for row in result.mappings())
    return {(tid, hour): _rollup(row) for tid, hour, row in rows if (tid, hour) in wanted}


async def rollups_since(
    session: Any, trigger_ids: Sequence[int], since: datetime
) -> dict[int, list[HourlyRollup]]:
    """Each trigger's stored roll-ups from the hour ``since`` on, oldest first (a trigger
    without any is left out)."""
    if not trigger_ids:
        return {}
    result = await session.execute(
        sa.select(_ROLLUPS)
        .where(_ROLLUPS.c.trigger_id.in_(list(trigger_ids)), _ROLLUPS.c.hour >= since)
        .order_by(_ROLLUPS.c.trigger_id, _ROLLUPS.c.hour)
    )
    found: dict[int, list[HourlyRollup]] = defaultdict(list)
    for row in result.mappings():
        found[row["trigger_id"]].append(_rollup(row))
    return dict(found)


def _row(key: _Key, rollup: HourlyRollup) -> dict[str, Any]:
    return {"trigger_id": key[0], "hour": key[1], **_values(rollup, prefix="")}


def _values(rollup: HourlyRollup, prefix: str = "v_") -> dict[str, Any]:
    return {
        f"{prefix}runs": rollup.runs,
        f"{prefix}problems": rollup.problems,
        f"{prefix}latency": rollup.latency.to_dict(),
    }


def _rollup(row: Mapping[str, Any]) -> HourlyRollup:
    return HourlyRollup(
        row["hour"], row["runs"], row["problems"], LatencyHistogram.from_dict(row["latency"])
    )


async def recent_rollups(
    db: Database, trigger_ids: Sequence[int], now: datetime
) -> dict[int, list[HourlyRollup]]:
    """`glance_rollups` in a session of its own."""
    async with db.sessions() as session:
        return await glance_rollups(session, trigger_ids, now)


async def glance_rollups(
    session: Any, trigger_ids: Sequence[int], now: datetime
) -> dict[int, list[HourlyRollup]]:
    """What `bot.glance.trigger_drawing` needs of each trigger, oldest first: the hours of
    the last day as stored, and the older hours of each longer window (`UPTIME_WINDOWS`)
    summed into one roll-up at the window's start (runs and problems only), so a Home
    full of triggers reads a few rows per trigger rather than 720."""
    starts = [window_start(now, hours) for _, hours in UPTIME_WINDOWS]
    found = await rollups_since(session, trigger_ids, starts[0])
    for start, end in zip(starts[1:], starts, strict=False):  # inserted before: oldest first
        for trigger_id, runs, problems in await _sums(session, trigger_ids, start, end):
            found.setdefault(trigger_id, []).insert(0, HourlyRollup(start, runs, problems))
    return found


async def _sums(
    session: Any, trigger_ids: Sequence[int], start: datetime, end: datetime
) -> list[tuple[int, int, int]]:
    if not trigger_ids:
        return []
    result = await session.execute(
        sa.select(
            _ROLLUPS.c.trigger_id, sa.func.sum(_ROLLUPS.c.runs), sa.func.sum(_ROLLUPS.c.problems)
        )
        .where(
            _ROLLUPS.c.trigger_id.in_(list(trigger_ids)),
            _ROLLUPS.c.hour >= start,
            _ROLLUPS.c.hour < end,
        )
        .group_by(_ROLLUPS.c.trigger_id)
    )
    return [(int(tid), int(runs), int(problems)) for tid, runs, problems in result.all()]


def shows_uptime(trigger: Trigger) -> bool:
    """Whether the trigger checks something (scheduled posts have no uptime to show)."""
    return trigger.kind not in ("message", "report")


async def drawings_in(
    session: Any, triggers: Sequence[Trigger], now: datetime
) -> dict[int, Drawing]:
    """Each trigger's uptime drawing for a channel message (hours as Slack date tokens),
    read in ``session`` (a recovery says it in the transaction that saves the run)."""
    ids = [trigger.id for trigger in triggers if trigger.id is not None]
    if not ids:
        return {}
    rollups = await glance_rollups(session, ids, now)
    return {
        trigger_id: trigger_drawing(
            rollups.get(trigger_id, []), now, UTC, lambda hour: slack_date(hour, now)
        )
        for trigger_id in ids
    }
