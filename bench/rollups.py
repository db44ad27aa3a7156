"""What adding runs to their hourly roll-ups costs a trigger run's save transaction.

Run ``python -m bench.rollups``. On a fresh SQLite file with ``--triggers`` triggers, each
round saves one finished run of every trigger twice over, in one transaction each:

* **baseline:** the statements every save already runs for a run (``UPDATE trigger``,
  ``UPDATE trigger_run``, executemany);
* **with roll-ups:** the same, plus `bot.triggers.rollups.add_runs`.

Rounds alternate between the two so that machine noise hits both alike; the figure is the
ratio of their CPU time per round (``time.process_time``). The first round of each hour
inserts the hour's rows; later rounds lock, merge and update them, which is the common
case (a check every minute adds 60 runs to an hour), so most rounds here are merges.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.db import Database
from bot.models import Trigger, TriggerRun
from bot.triggers.rollups import add_runs
from bot.triggers.runner import UPDATE_RUN, UPDATE_TRIGGER

START = datetime(2031, 1, 6, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Ran:
    scheduled_for: datetime
    duration_ms: float | None
    outcome: str


async def setup(db: Database, triggers: int, rounds: int) -> None:
    await db.migrate()
    async with db.transaction() as session:
        for n in range(1, triggers + 1):
            session.add(
                Trigger(
                    id=n,
                    team_id="T",
                    name=f"t{n}",
                    channel_id="C",
                    kind="http",
                    target="http://127.0.0.1/",
                    schedule={},
                    options={},
                    state={},
                    created_by="U",
                    created_at=START,
                )
            )
        await session.flush()
        for step in range(2 * rounds):
            for n in range(1, triggers + 1):
                when = START + timedelta(seconds=step)
                session.add(TriggerRun(trigger_id=n, scheduled_for=when, started_at=when))


async def save(db: Database, triggers: int, step: int, roll_up: bool) -> float:
    when = START + timedelta(seconds=step)
    began = time.process_time()
    async with db.transaction() as session:
        await session.execute(
            UPDATE_TRIGGER,
            [
                {
                    "t_id": n,
                    "t_state": {"status": "ok"},
                    "t_last": when,
                    "t_next": when,
                    "t_incident": 0,
                }
                for n in range(1, triggers + 1)
            ],
        )
        await session.execute(
            UPDATE_RUN,
            [
                {
                    "r_trigger": n,
                    "r_when": when,
                    "r_ms": 80.0 + n,
                    "r_outcome": "ok",
                    "r_summary": "OK",
                }
                for n in range(1, triggers + 1)
            ],
        )
        if roll_up:
            runs: list[tuple[int, Any]] = [
                (n, Ran(when, 80.0 + n, "ok")) for n in range(1, triggers + 1)
            ]
            await add_runs(session, db.dialect, runs, when + timedelta(minutes=1))
    return time.process_time() - began


async def main(triggers: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            await setup(db, triggers, rounds)
            plain: list[float] = []
            rolled: list[float] = []
            for step in range(rounds):
                plain.append(await save(db, triggers, 2 * step, roll_up=False))
                rolled.append(await save(db, triggers, 2 * step + 1, roll_up=True))
            async with db.sessions() as session:
                stored = await session.scalar(sa.text("SELECT sum(runs) FROM trigger_rollup"))
        finally:
            await db.close()
    base, with_rollups = statistics.median(plain), statistics.median(rolled)
    print(f"{triggers} runs saved per round, {rounds} rounds each, SQLite")
    print(f"baseline save round     {base * 1000:7.2f} ms CPU (median)")
    print(f"with roll-ups           {with_rollups * 1000:7.2f} ms CPU (median)")
    print(f"ratio                   {with_rollups / base:7.2f}")
    print(f"runs in roll-ups        {stored} (expected {triggers * rounds})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triggers", type=int, default=50, help="runs saved per round")
    parser.add_argument("--rounds", type=int, default=100)
    options = parser.parse_args()
    asyncio.run(main(options.triggers, options.rounds))
