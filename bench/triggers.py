"""Trigger scheduling benchmark: N http triggers every 60 s against a local target server.

Run ``python -m bench.triggers`` (``--triggers 10000`` for the large case; ``--arrivals``
for the same measured from outside, see `bench.trigger_arrivals`). Trigger rows
are inserted straight into a fresh SQLite file, staggered over the first minute; then the
bot starts in its own OS process (this module re-invoked with ``--serve``) and runs them
for ``--seconds``. Lateness comes from ``trigger_run.started_at - scheduled_for`` in the
database afterwards. Everything talks to 127.0.0.1 only. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from aiohttp import web
from sqlmodel import select

from bench import trigger_arrivals
from bench.webhooks import BENCH_SECRETS_KEY, BOT_TOKEN, ROOT, Server, percentile, stop_process
from bot.config import Secret, Settings
from bot.db import Database
from bot.devtools.fake_slack import FakeSlack
from bot.models import Trigger, TriggerRun
from bot.triggers.evaluate import TriggerState
from bot.triggers.schedule import IntervalSchedule

EVERY: Final = timedelta(seconds=60)
LEAD: Final = timedelta(seconds=5)  # first runs start this long after the rows are written
CHANNELS: Final = 100  # reports spread over this many channels, as real teams would
SAMPLE_SECONDS: Final = 5.0


# ----- the target the checks hit ---------------------------------------------------------


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


@contextlib.asynccontextmanager
async def target_server() -> AsyncIterator[str]:
    """A local aiohttp server answering ``GET /ok`` with 200; yields its URL."""
    app = web.Application()
    app.router.add_get("/ok", _ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/ok"
    finally:
        await runner.cleanup()


# ----- the database -----------------------------------------------------------------------


def trigger_rows(count: int, target: str, first_run: datetime) -> list[dict[str, Any]]:
    """``count`` active http triggers every 60 s, first runs spread evenly over a minute."""
    schedule = IntervalSchedule(tz_name="UTC", every=EVERY).to_dict()
    state = TriggerState.initial().to_dict()
    return [
        {
            "team_id": "T0001",
            "name": f"bench-{number}",
            "channel_id": f"C{8000 + number % CHANNELS}",
            "kind": "http",
            "target": target,
            "condition": None,
            "schedule": schedule,
            "options": {},
            "state": state,
            "paused": False,
            "created_by": "U0001",
            "created_at": first_run - LEAD,
            "next_run_at": first_run + EVERY * number / count,
            "incident": 0,
        }
        for number in range(count)
    ]


async def insert_triggers(database_url: str, rows: list[dict[str, Any]]) -> None:
    """Migrate a fresh database and insert the trigger rows in one transaction."""
    db = Database(database_url)
    try:
        await db.migrate()
        async with db.transaction() as session:
            await session.execute(sa.insert(Trigger), rows)
    finally:
        await db.close()


@dataclass(frozen=True)
class Run:
    """One trigger run as recorded."""

    trigger_id: int
    scheduled_for: datetime
    started_at: datetime
    outcome: str


async def read_runs(database_url: str) -> list[Run]:
    """Every trigger_run row (read after the bot has stopped)."""
    db = Database(database_url)
    try:
        async with db.sessions() as session:
            rows = (await session.execute(select(TriggerRun))).scalars().all()
    finally:
        await db.close()
    return [Run(r.trigger_id, r.scheduled_for, r.started_at, r.outcome) for r in rows]


# ----- the bot process --------------------------------------------------------------------


def bench_settings(database_url: str, slack_url: str) -> Settings:
    """The bot's settings: checks allowed to 127.0.0.1 only, fake Slack, WARNING logs."""
    return Settings(
        slack_bot_token=Secret(BOT_TOKEN),
        slack_signing_secret=Secret("bench-signing-secret-0123456789"),
        slack_api_url=slack_url,
        database_url=database_url,
        check_allowlist=("127.0.0.1",),
        log_level="WARNING",
        secrets_key=Secret(BENCH_SECRETS_KEY),
    )


async def _serve(database_url: str, slack_url: str) -> None:
    from bot.app import build
    from bot.logs import configure_logging

    configure_logging("WARNING", "text")
    started = time.monotonic()
    bot = build(bench_settings(database_url, slack_url))
    runner = web.AppRunner(bot.web, access_log=None)
    await runner.setup()  # runs the bot's start-up: migrate, then schedule every trigger
    ready = time.monotonic() - started
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    jobs = len(bot.scheduling.scheduler.get_jobs())
    print(f"PORT {runner.addresses[0][1]} {ready:.3f} {jobs}", flush=True)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=900)
    await runner.cleanup()


@dataclass(frozen=True)
class StartUp:
    """What the bot process reported once it was serving."""

    seconds: float
    jobs: int


@contextlib.asynccontextmanager
async def running_bot(database_url: str, slack_url: str) -> AsyncIterator[tuple[Server, StartUp]]:
    """Start ``python -m bench.triggers --serve`` and SIGTERM it afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.triggers",
        "--serve",
        "--database-url",
        database_url,
        "--slack-url",
        slack_url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        start_up = await asyncio.wait_for(_read_start_up(process), timeout=120)
        port = start_up[0]
        yield Server(process, f"http://127.0.0.1:{port}"), StartUp(start_up[1], start_up[2])
    finally:
        await stop_process(process)


async def _read_start_up(process: asyncio.subprocess.Process) -> tuple[int, float, int]:
    assert process.stdout is not None
    words = (await process.stdout.readline()).decode().split()
    if len(words) != 4 or words[0] != "PORT":
        raise RuntimeError(f"bot did not start: {words!r}")
    return int(words[1]), float(words[2]), int(words[3])


# ----- measuring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """The bot process's CPU share and peak memory over the measured window."""

    cpu_percent: float
    peak_rss_mb: float


async def sample_usage(server: Server, seconds: float) -> Usage:
    """Watch the bot for ``seconds``: CPU % of one core and the highest RSS seen."""
    cpu_before, started, peak = server.cpu_seconds(), time.monotonic(), server.rss_mb()
    deadline = started + seconds
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(SAMPLE_SECONDS, left))
        peak = max(peak, server.rss_mb())
    elapsed = time.monotonic() - started
    return Usage(100 * (server.cpu_seconds() - cpu_before) / elapsed, peak)


def lateness_ms(runs: Sequence[Run]) -> list[float]:
    """Per run: when it started minus when it was scheduled (interval triggers get no jitter)."""
    return [1000 * (r.started_at - r.scheduled_for).total_seconds() for r in runs]


def print_report(
    count: int, start_up: StartUp, usage: Usage, runs: Sequence[Run], seconds: float
) -> None:
    """The results table."""
    late = lateness_ms(runs)
    expected = round(count * seconds / EVERY.total_seconds())
    print(f"\nTriggers: {count} http checks every 60 s, staggered; watched {seconds:g} s")
    print(f"start-up to all scheduled: {start_up.seconds:.2f} s ({start_up.jobs} jobs scheduled)")
    print(f"runs recorded: {len(runs)} (about {expected} expected: N x watched s / 60)")
    print(f"outcomes: {dict(Counter(r.outcome for r in runs))}")
    print(f"bot CPU: {usage.cpu_percent:.1f}% of one core; peak RSS {usage.peak_rss_mb:.0f} MB")
    print(f"{'lateness ms':<26} {'p50':>8} {'p99':>8} {'max':>8}")
    print(
        f"{'started - scheduled':<26} {percentile(late, 0.5):>8.1f} {percentile(late, 0.99):>8.1f} "
        f"{max(late, default=float('nan')):>8.1f}"
    )


async def measure(count: int, seconds: float) -> None:
    """Insert the triggers, run the bot for ``seconds``, then read and print the runs."""
    async with FakeSlack(token=BOT_TOKEN) as fake, target_server() as target:
        for number in range(CHANNELS):
            fake.add_channel(f"C{8000 + number}", f"bench-{number}")
        with tempfile.TemporaryDirectory(prefix="bench-triggers-") as tmp:
            url = f"sqlite:///{tmp}/triggers.db"
            rows = trigger_rows(count, target, datetime.now(UTC) + LEAD)
            await insert_triggers(url, rows)
            async with running_bot(url, fake.url) as (server, start_up):
                usage = await sample_usage(server, seconds)
            runs = await read_runs(url)
    print_report(count, start_up, usage, runs, seconds)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.triggers", description=__doc__)
    parser.add_argument("--triggers", type=int, default=2000, help="active triggers")
    parser.add_argument("--seconds", type=float, default=150.0, help="how long to watch")
    parser.add_argument(
        "--arrivals",
        action="store_true",
        help="create the triggers through /trigger add and time them at the target "
        "(--seconds is then the window watched after the last one is created)",
    )
    parser.add_argument("--rate", type=float, default=240.0, help="--arrivals: commands/s")
    parser.add_argument("--in-flight", type=int, default=32, help="--arrivals: commands at once")
    parser.add_argument("--serve-target", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--slack-url", default="", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, or (with the internal ``--serve``) be the bot under test."""
    args = _parser().parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.database_url, args.slack_url))
        return
    if args.serve_target:
        asyncio.run(trigger_arrivals.serve_target())
        return
    count = max(1, min(args.triggers, 50_000))
    if args.arrivals:
        seconds = max(10.0, min(args.seconds, 900.0))
        rate, in_flight = max(1.0, args.rate), max(1, args.in_flight)
        asyncio.run(trigger_arrivals.measure(count, seconds, rate, in_flight))
        return
    asyncio.run(measure(count, max(10.0, min(args.seconds, 600.0))))


if __name__ == "__main__":
    main()
