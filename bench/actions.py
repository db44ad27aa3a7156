"""Actions benchmark: signed deliveries to a hook whose action POSTs to a local target.

Run ``python -m bench.actions``. The bot runs in its own OS process (this module
re-invoked with ``--serve``) on a fresh SQLite file; the load generator, the target and
the fake Slack live in this process, so the 202 and the target's arrivals are timed on one
clock. Three phases, each on a fresh bot and database (see bench/README.md):

1. **direct**: the same number of POSTs sent straight to the target by this client;
   **ceiling**: the deliveries to a ``post=off`` hook that runs nothing (202s per second);
2. **actions**: ``--deliveries`` signed deliveries to a ``post=off`` hook with
   ``then=crm``; every run must reach the target exactly once (one 201 per
   Idempotency-Key); runs/s and p50/p99 from the 202 to the arrival at the target;
3. **storm**: the same while the target answers 503 for the first ``--storm`` seconds,
   with the bot's backoff base at ``--backoff`` seconds (60 in production): nothing lost,
   nothing doubled, and the delay the backoff adds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import aiohttp
from aiohttp import web

from bench.webhooks import (
    BOT_TOKEN,
    ROOT,
    Server,
    bench_settings,
    percentile,
    read_port,
    slash_command,
    stop_process,
)
from bot.devtools.fake_slack import FakeSlack
from bot.webhooks.verify import sign_generic

HOOK_REPLY: Final = re.compile(r"(/hooks/[\w-]+)")
SECRET_REPLY: Final = re.compile(r"\*Secret\* \(shown once — keep it\): `([^`]+)`")
CONCURRENCY: Final = 16
SETTLE_TIMEOUT: Final = 600.0  # seconds to wait for the last runs to arrive


# ----- the server process -----------------------------------------------------------------


async def _serve(database_url: str, slack_url: str, backoff: float) -> None:
    from bot.app import build
    from bot.cli import freeze_startup_heap
    from bot.logs import configure_logging

    configure_logging("WARNING", "text")
    settings = replace(bench_settings(database_url, slack_url), check_allowlist=("127.0.0.1",))
    bot = build(settings)
    bot.actions.backoff_base = backoff
    runner = web.AppRunner(bot.web, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    freeze_startup_heap()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=SETTLE_TIMEOUT + 300)
    await runner.cleanup()


@contextlib.asynccontextmanager
async def running_bot(database_url: str, slack_url: str, backoff: float) -> AsyncIterator[Server]:
    """Start ``python -m bench.actions --serve`` and stop it (SIGTERM) afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.actions",
        "--serve",
        "--database-url",
        database_url,
        "--slack-url",
        slack_url,
        "--backoff",
        str(backoff),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        port = await asyncio.wait_for(read_port(process), timeout=30)
        yield Server(process, f"http://127.0.0.1:{port}")
    finally:
        await stop_process(process)


# ----- the target -----------------------------------------------------------------------


@dataclass
class Target:
    """The other system: records when each run's request arrived, and answers 503 until
    ``storm_until`` (monotonic seconds), 201 after."""

    storm_until: float = 0.0
    arrivals: dict[int, float] = field(default_factory=dict)  # n → first 201
    answered_201: dict[str, int] = field(default_factory=dict)  # key → 201s given
    attempts: dict[int, int] = field(default_factory=dict)  # n → requests
    refused: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.monotonic()
        number = int(json.loads(body)["n"]) if body else -1
        self.attempts[number] = self.attempts.get(number, 0) + 1
        if now < self.storm_until:
            self.refused += 1
            return web.Response(status=503, text="busy")
        key = request.headers.get("Idempotency-Key", "")
        self.answered_201[key] = self.answered_201.get(key, 0) + 1
        self.arrivals.setdefault(number, now)
        self.changed.set()
        return web.Response(status=201, text='{"id": "lead"}')

    async def wait_for(self, count: int) -> None:
        while len(self.arrivals) < count:
            await self.changed.wait()
            self.changed.clear()


@contextlib.asynccontextmanager
async def serving(target: Target) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/leads", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# ----- load ---------------------------------------------------------------------------------


async def command(http: aiohttp.ClientSession, server: Server, text: str) -> str:
    body, headers = slash_command(text, "C0001")
    async with http.post(f"{server.base_url}/slack/events", data=body, headers=headers) as r:
        return str((await r.json())["text"])


async def set_up(
    http: aiohttp.ClientSession, server: Server, target_url: str, *, act: bool = True
) -> tuple[str, str]:
    """The action and a ``post=off`` hook that runs it (``act``: else runs nothing); the
    hook's path and secret."""
    await command(http, server, f"/action add crm POST {target_url}/leads body=json")
    await command(http, server, '/action body crm {"n": {{ payload.n|tojson }}, "src": "bench"}')
    reply = await command(http, server, "/hook create form preset=generic")
    path, secret = HOOK_REPLY.search(reply), SECRET_REPLY.search(reply)
    if path is None or secret is None:
        raise RuntimeError(f"/hook create failed: {reply}")
    then = "then=crm " if act else ""
    said = await command(http, server, f"/hook set form {then}post=off")
    if "Updated" not in said:
        raise RuntimeError(f"/hook set failed: {said}")
    return path.group(1), secret.group(1)


async def closed_loop(
    http: aiohttp.ClientSession, url: str, bodies: Sequence[tuple[bytes, dict[str, str]]]
) -> dict[int, float]:
    """POST every body with `CONCURRENCY` clients; when each got its 2xx (by index)."""
    answered: dict[int, float] = {}
    queue = iter(enumerate(bodies))

    async def worker() -> None:
        for number, (body, headers) in queue:
            async with http.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status < 300:
                    answered[number] = time.monotonic()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return answered


def signed(count: int, secret: str) -> list[tuple[bytes, dict[str, str]]]:
    bodies = []
    for number in range(count):
        body = json.dumps({"n": number, "email": f"lead{number}@example.com"}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Signature-256": sign_generic(secret, body),
        }
        bodies.append((body, headers))
    return bodies


@dataclass(frozen=True)
class Phase:
    label: str
    sent: int
    arrived: int
    doubled: int
    seconds: float
    latencies_ms: list[float]
    requests: int
    max_attempts: int

    @property
    def rate(self) -> float:
        return self.arrived / self.seconds if self.seconds else float("nan")


async def ceiling(count: int) -> Phase:
    """The target alone: this client POSTing straight to it."""
    target = Target()
    async with serving(target) as url, aiohttp.ClientSession() as http:
        bodies = [(json.dumps({"n": n}).encode(), {}) for n in range(count)]
        started = time.monotonic()
        answered = await closed_loop(http, f"{url}/leads", bodies)
        seconds = time.monotonic() - started
    return Phase("client → target directly", count, len(answered), 0, seconds, [], count, 1)


async def ingest_only(count: int, slack_url: str) -> Phase:
    """The ceiling: the same deliveries to a ``post=off`` hook that runs nothing (the
    bot's receive and processing path alone), deliveries per second."""
    target = Target()
    with tempfile.TemporaryDirectory(prefix="bench-actions-") as tmp:
        async with (
            serving(target) as url,
            running_bot(f"sqlite:///{tmp}/ingest.db", slack_url, 60.0) as server,
            aiohttp.ClientSession() as http,
        ):
            path, secret = await set_up(http, server, url, act=False)
            started = time.monotonic()
            accepted = await closed_loop(http, f"{server.base_url}{path}", signed(count, secret))
            seconds = time.monotonic() - started
    label = "ceiling: hook alone (no action)"
    return Phase(label, len(accepted), len(accepted), 0, seconds, [], 0, 0)


async def through_the_bot(
    label: str, count: int, storm: float, backoff: float, slack_url: str
) -> Phase:
    target = Target()
    with tempfile.TemporaryDirectory(prefix="bench-actions-") as tmp:
        async with (
            serving(target) as url,
            running_bot(f"sqlite:///{tmp}/actions.db", slack_url, backoff) as server,
            aiohttp.ClientSession() as http,
        ):
            path, secret = await set_up(http, server, url)
            bodies = signed(count, secret)
            started = time.monotonic()
            target.storm_until = started + storm
            accepted = await closed_loop(http, f"{server.base_url}{path}", bodies)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SETTLE_TIMEOUT):
                    await target.wait_for(len(accepted))
            last = max(target.arrivals.values(), default=started)
            await asyncio.sleep(2.0)  # a late duplicate would arrive now
    latencies = [
        1000 * (target.arrivals[n] - accepted[n]) for n in accepted if n in target.arrivals
    ]
    doubled = sum(count - 1 for count in target.answered_201.values() if count > 1)
    return Phase(
        label,
        len(accepted),
        len(target.arrivals),
        doubled,
        last - started,
        latencies,
        sum(target.attempts.values()),
        max(target.attempts.values(), default=0),
    )


def report(phases: Sequence[Phase], options: argparse.Namespace) -> None:
    ceiling_rate = phases[1].rate  # the hook alone
    print(
        f"\n{options.deliveries} deliveries, {CONCURRENCY} clients; storm {options.storm:g} s, "
        f"backoff base {options.backoff:g} s\n"
    )
    header = (
        f"{'phase':34} {'sent':>5} {'arrived':>7} {'doubled':>7} {'runs/s':>8} {'ratio':>6} "
        f"{'p50 ms':>9} {'p99 ms':>9} {'requests':>8} {'max att':>7}"
    )
    print(header)
    print("-" * len(header))
    for phase in phases:
        print(
            f"{phase.label:34} {phase.sent:>5} {phase.arrived:>7} {phase.doubled:>7} "
            f"{phase.rate:>8.0f} {phase.rate / ceiling_rate:>6.2f} "
            f"{percentile(phase.latencies_ms, 0.5):>9.0f} "
            f"{percentile(phase.latencies_ms, 0.99):>9.0f} "
            f"{phase.requests:>8} {phase.max_attempts:>7}"
        )


async def measure(options: argparse.Namespace) -> None:
    async with FakeSlack(token=BOT_TOKEN) as fake:
        phases = [
            await ceiling(options.deliveries),
            await ingest_only(options.deliveries, fake.url),
            await through_the_bot("actions", options.deliveries, 0.0, options.backoff, fake.url),
            await through_the_bot(
                f"actions, 503 for the first {options.storm:g} s",
                options.deliveries,
                options.storm,
                options.backoff,
                fake.url,
            ),
        ]
    report(phases, options)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.actions", description=__doc__)
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--storm", type=float, default=30.0, help="seconds of 503 answers")
    parser.add_argument(
        "--backoff", type=float, default=60.0, help="the bot's backoff base (60 s in production)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--slack-url", default="", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, or (with the internal ``--serve``) be the bot under test."""
    args = _parser().parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.database_url, args.slack_url, args.backoff))
        return
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
