"""Triggers measured from outside: created through ``/trigger add``, timed at the target.

``python -m bench.triggers --arrivals`` (see bench/README.md). The bot is a real
``python -m bot run`` process on a fresh SQLite file, configured through its environment.
N ``http`` triggers ``every 1m`` are created with signed ``/trigger add`` slash commands
over HTTP (open loop at ``--rate`` commands/s, at most ``--in-flight`` at once), each
pointing at its own path on a small aiohttp target server in a process of its own, which
records when each request arrives. After the last trigger is created the bot is watched
for ``--seconds``; then each trigger's intervals between consecutive arrivals are compared
with 60 s, and each run's stages are timed from its ``trigger_run`` row and its arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from bench.replicas import free_port, replica_env
from bench.webhooks import BOT_TOKEN, ROOT, Server, percentile, read_port, slash_command
from bot.db import Database
from bot.devtools.fake_slack import FakeSlack
from bot.models import Trigger, TriggerRun

EVERY: Final = 60.0
CHANNELS: Final = 100
SAMPLE_SECONDS: Final = 2.0


# ----- the target: its own process, so the load generator cannot delay its clock ---------


def _target_app() -> web.Application:
    arrivals: dict[str, list[float]] = defaultdict(list)

    async def hit(request: web.Request) -> web.Response:
        arrivals[request.match_info["name"]].append(time.time())
        return web.Response(text="ok")

    async def report(_request: web.Request) -> web.Response:
        return web.json_response(arrivals)

    app = web.Application()
    app.router.add_get("/t/{name}", hit)
    app.router.add_get("/arrivals", report)
    return app


async def serve_target() -> None:
    """Be the target (``--serve-target``): print the port, serve until SIGTERM."""
    runner = web.AppRunner(_target_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=1800)
    await runner.cleanup()


@contextlib.asynccontextmanager
async def _child(*argv: str, env: dict[str, str] | None = None) -> AsyncIterator[Server]:
    from bench.webhooks import stop_process

    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        port = await asyncio.wait_for(read_port(process), timeout=60)
        yield Server(process, f"http://127.0.0.1:{port}")
    finally:
        await stop_process(process)


@contextlib.asynccontextmanager
async def running_bot(database_url: str, slack_url: str, log: Path) -> AsyncIterator[Server]:
    """``python -m bot run`` as deployed (its own event loop choice, ``gc.freeze``)."""
    from bench.webhooks import stop_process

    port = free_port()
    env = replica_env(database_url, slack_url, port) | {"CHECK_ALLOWLIST": "127.0.0.1"}
    with log.open("w") as stderr:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot", "run"),
            cwd=log.parent,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
        server = Server(process, f"http://127.0.0.1:{port}")
        try:
            await _until_healthy(server, log)
            yield server
        finally:
            await stop_process(process)


async def _until_healthy(server: Server, log: Path) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{server.base_url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the bot did not start; see {log}")


# ----- creating the triggers --------------------------------------------------------------


@dataclass(frozen=True)
class Creation:
    """How creating the triggers went."""

    created: int
    failed: list[str]
    seconds: float
    latencies_ms: list[float]
    ended_at: float  # wall clock (time.time) of the last answer


async def create_triggers(
    bot: Server, target: str, count: int, rate: float, in_flight: int
) -> Creation:
    """Open loop: ``rate`` signed ``/trigger add`` commands a second, ``in_flight`` at most."""
    limit = asyncio.Semaphore(in_flight)
    failed: list[str] = []
    latencies: list[float] = []
    url = f"{bot.base_url}/slack/events"
    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as http, asyncio.TaskGroup() as group:
        for number in range(count):
            await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
            await limit.acquire()
            group.create_task(_add(http, url, target, number, limit, failed, latencies))
    return Creation(count - len(failed), failed, time.monotonic() - started, latencies, time.time())


async def _add(
    http: aiohttp.ClientSession,
    url: str,
    target: str,
    number: int,
    limit: asyncio.Semaphore,
    failed: list[str],
    latencies: list[float],
) -> None:
    channel = f"C{8000 + number % CHANNELS}"
    text = f"/trigger add t{number} every 1m http {target}/t/t{number} <#{channel}|bench>"
    body, headers = slash_command(text, channel)
    began = time.perf_counter()
    try:
        async with http.post(url, data=body, headers=headers) as response:
            reply = await response.text()
        latencies.append(1000 * (time.perf_counter() - began))
        if response.status != 200 or "Added" not in reply:
            failed.append(f"t{number}: {response.status} {reply[:200]}")
    finally:
        limit.release()


# ----- measuring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """The bot's CPU share over the watched window and its highest RSS over the run."""

    cpu_percent: float
    peak_rss_mb: float


async def watch(bot: Server, seconds: float, peak_so_far: float) -> Usage:
    """Sample the bot for ``seconds``."""
    cpu_before, started, peak = bot.cpu_seconds(), time.monotonic(), peak_so_far
    while (left := started + seconds - time.monotonic()) > 0:
        await asyncio.sleep(min(SAMPLE_SECONDS, left))
        peak = max(peak, bot.rss_mb())
    elapsed = time.monotonic() - started
    return Usage(100 * (bot.cpu_seconds() - cpu_before) / elapsed, peak)


async def peak_rss_while(bot: Server, work: asyncio.Task[Creation]) -> float:
    """The bot's highest RSS seen while ``work`` runs."""
    peak = bot.rss_mb()
    while not work.done():
        await asyncio.sleep(0.5)
        peak = max(peak, bot.rss_mb())
    return peak


@dataclass(frozen=True)
class Deviations:
    """|interval − 60 s| between consecutive arrivals (ms), for intervals ending after the
    last trigger was created: from the first run (made at creation, while the other
    triggers were still being created) to the second, and between later runs."""

    first: list[float]
    later: list[float]


def deviations_ms(arrivals: dict[str, list[float]], after: float) -> Deviations:
    """Each trigger's intervals between arrivals, compared with 60 s."""
    first: list[float] = []
    later: list[float] = []
    for times in arrivals.values():
        for index, (earlier, arrived) in enumerate(itertools.pairwise(sorted(times))):
            if arrived > after:
                (later if index else first).append(1000 * abs(arrived - earlier - EVERY))
    return Deviations(first, later)


@dataclass(frozen=True)
class Stages:
    """Per run (later runs: those ending in the window), in ms: scheduled → started (the scheduler and the
    concurrency limit; for a first run, also the rest of its creation), started → arrival
    at the target (claim, the check's path, connect, send); first runs apart."""

    to_start: list[float]
    to_arrival: list[float]
    first_to_start: list[float]
    first_to_arrival: list[float]


async def stages(database_url: str, arrivals: dict[str, list[float]], after: float) -> Stages:
    """Match each trigger's runs (in order) with its arrivals (in order)."""
    runs = await _runs_by_name(database_url)
    found = Stages([], [], [], [])
    for name, seen in arrivals.items():
        ordered = sorted(runs.get(name, []))
        for index, ((scheduled, started), arrived) in enumerate(
            zip(ordered, sorted(seen), strict=False)
        ):
            if index and arrived <= after:  # every first run: they all happen at creation
                continue
            to_start = found.first_to_start if index == 0 else found.to_start
            to_arrival = found.first_to_arrival if index == 0 else found.to_arrival
            to_start.append(1000 * (started - scheduled).total_seconds())
            to_arrival.append(1000 * (arrived - started.timestamp()))
    return found


async def _runs_by_name(database_url: str) -> dict[str, list[tuple[datetime, datetime]]]:
    db = Database(database_url)
    try:
        async with db.sessions() as session:
            names = dict((await session.execute(sa.select(Trigger.id, Trigger.name))).all())
            rows = (
                await session.execute(
                    sa.select(
                        TriggerRun.trigger_id, TriggerRun.scheduled_for, TriggerRun.started_at
                    )
                )
            ).all()
    finally:
        await db.close()
    runs: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for trigger_id, scheduled_for, started_at in rows:
        runs[names[trigger_id]].append((scheduled_for, started_at))
    return runs


async def _arrivals(target: Server) -> dict[str, list[float]]:
    async with aiohttp.ClientSession() as http, http.get(f"{target.base_url}/arrivals") as got:
        arrivals: dict[str, list[float]] = json.loads(await got.read())
    return arrivals


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _row(label: str, values: Sequence[float]) -> str:
    return (
        f"{label:<44} {len(values):>7} {percentile(values, 0.5):>8.1f} "
        f"{percentile(values, 0.99):>8.1f} {max(values, default=float('nan')):>8.1f}"
    )


def print_report(
    count: int, creation: Creation, usage: Usage, deviations: Deviations, stage: Stages, load: str
) -> None:
    """The results."""
    rate = creation.created / creation.seconds if creation.seconds else 0.0
    print(f"\nTriggers from outside: {count} http triggers every 1m, created through /trigger add")
    print(f"load average before / after: {load}")
    print(
        f"created {creation.created} in {creation.seconds:.1f} s ({rate:.0f}/s); "
        f"failed {len(creation.failed)}; /trigger add p50 "
        f"{percentile(creation.latencies_ms, 0.5):.1f} ms, p99 "
        f"{percentile(creation.latencies_ms, 0.99):.1f} ms"
    )
    for failure in creation.failed[:3]:
        print(f"  failed: {failure}")
    print(
        f"bot over the watched window: {usage.cpu_percent:.1f}% of one core; "
        f"peak RSS over the run {usage.peak_rss_mb:.0f} MB"
    )
    head = "ms, intervals and runs ending in the window"
    print(f"{head:<44} {'n':>7} {'p50':>8} {'p99':>8} {'max':>8}")
    print(_row("|interval - 60 s|, all", [*deviations.first, *deviations.later]))
    print(_row("|interval - 60 s|, 2nd run on", deviations.later))
    print(_row("|interval - 60 s|, 1st run (at creation) -> 2nd", deviations.first))
    print(_row("2nd run on: scheduled -> started", stage.to_start))
    print(_row("2nd run on: started -> arrival", stage.to_arrival))
    print(_row("1st run: scheduled -> started", stage.first_to_start))
    print(_row("1st run: started -> arrival", stage.first_to_arrival))


async def measure(count: int, seconds: float, rate: float, in_flight: int) -> None:
    """Create the triggers, watch, collect the arrivals and print the report."""
    load_before = _load_average()
    async with FakeSlack(token=BOT_TOKEN) as fake:
        for number in range(CHANNELS):
            fake.add_channel(f"C{8000 + number}", f"bench-{number}")
        with tempfile.TemporaryDirectory(prefix="bench-arrivals-") as tmp:
            url = f"sqlite:///{tmp}/triggers.db"
            async with (
                _child("-m", "bench.triggers", "--serve-target") as target,
                running_bot(url, fake.url, Path(tmp) / "bot.log") as bot,
            ):
                work = asyncio.create_task(
                    create_triggers(bot, target.base_url, count, rate, in_flight)
                )
                peak = await peak_rss_while(bot, work)
                creation = await work
                usage = await watch(bot, seconds, peak)
                arrivals = await _arrivals(target)
            stage = await stages(url, arrivals, creation.ended_at)
            import shutil

            shutil.copy(Path(tmp) / "bot.log", "/tmp/h5_bot.log")
    deviations = deviations_ms(arrivals, creation.ended_at)
    load = f"{load_before} / {_load_average()}"
    print_report(count, creation, usage, deviations, stage, load)
