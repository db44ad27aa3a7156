"""Webhook ingest benchmark: the bare aiohttp ceiling, the bot's /hooks/{token}, end to end.

Run ``python -m bench.webhooks`` (``make bench``). The server under test runs in its own
OS process (this module re-invoked with ``--serve``) so that the load generator does not
share its event loop; the fake Slack lives in the client process, which timestamps
``chat.postMessage`` arrivals. Everything talks to 127.0.0.1 only. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import sys
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import aiohttp
from aiohttp import web

from bot.config import Secret, Settings
from bot.devtools.fake_slack import Call, FakeSlack
from bot.slack.signing import signed_headers
from bot.webhooks.verify import sign_github

ROOT: Final = Path(__file__).resolve().parents[1]
PUSH_FIXTURE: Final = ROOT / "tests" / "fixtures" / "github" / "push.json"
SIGNING_SECRET: Final = "bench-signing-secret-0123456789"
BOT_TOKEN: Final = "xoxb-bench"
BENCH_SECRETS_KEY: Final = "b7m0dC2bJ2bV8hXbYI1r5Zp3a3v9S0k7uQ4wE6tY1nA="  # SECRETS_KEY
MARKER: Final = re.compile(r"benchmark(\d+)")
ARRIVAL_TIMEOUT: Final = 15.0  # seconds to wait for the last posts after sending stops
# Repository fields the GitHub preset and typical templates read; the rest is trimmed so
# the body is ~2 KB, the size the reference figures in ../shared/PERFORMANCE.md use.
KEPT_REPO_FIELDS: Final = (
    "id",
    "node_id",
    "name",
    "full_name",
    "private",
    "html_url",
    "description",
    "fork",
    "url",
    "created_at",
    "updated_at",
    "pushed_at",
    "git_url",
    "ssh_url",
    "clone_url",
    "default_branch",
    "visibility",
)

ServerKind = Literal["bare", "bot"]


# ----- payloads -------------------------------------------------------------------------


def trimmed_push(marker: str) -> bytes:
    """GitHub's published push payload trimmed to ~2 KB, with ``marker`` as the pusher."""
    payload = json.loads(PUSH_FIXTURE.read_bytes())
    repo = payload["repository"]
    payload["repository"] = {key: repo[key] for key in KEPT_REPO_FIELDS if key in repo}
    payload["repository"]["owner"] = {
        key: repo["owner"][key] for key in ("login", "id", "html_url", "type")
    }
    payload["pusher"] = {"name": marker, "email": f"{marker}@example.com"}
    return json.dumps(payload).encode()


def github_headers(body: bytes, secret: str, delivery: str) -> dict[str, str]:
    """Headers GitHub sends with a signed push delivery."""
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign_github(secret, body),
        "User-Agent": "GitHub-Hookshot/044aadd",
    }


def slash_command(text: str, channel: str) -> tuple[bytes, dict[str, str]]:
    """A signed ``/hook ...`` slash command body and its headers."""
    name, _, rest = text.partition(" ")
    fields = {
        "team_id": "T0001",
        "team_domain": "example",
        "channel_id": channel,
        "channel_name": "general",
        "user_id": "U0001",
        "user_name": "bench",
        "command": name,
        "text": rest,
        "response_url": "https://hooks.slack.com/commands/1234/5678",
        "trigger_id": f"13345224609.738474920.{time.time_ns()}",
        "api_app_id": "A123456",
    }
    body = urllib.parse.urlencode(fields).encode()
    headers = signed_headers(SIGNING_SECRET, body)
    return body, headers | {"Content-Type": "application/x-www-form-urlencoded"}


# ----- the server process -----------------------------------------------------------------


async def _bare_handler(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=202)


def _bare_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/bare", _bare_handler)
    return app


def bench_settings(database_url: str, slack_url: str) -> Settings:
    """The bot's settings for every phase: real signing, fake Slack, pacing 1/s burst 3."""
    return Settings(
        slack_bot_token=Secret(BOT_TOKEN),
        slack_signing_secret=Secret(SIGNING_SECRET),
        slack_api_url=slack_url,
        database_url=database_url,
        public_url="https://bot.example.com",
        webhook_rate_limit=1_000_000,  # the per-hook limit would cap a throughput run
        webhook_max_bytes_per_day=1 << 40,  # and so would its daily 200 MB (100k pushes)
        slack_channel_rate=1.0,
        slack_channel_burst=3,
        log_level="WARNING",
        secrets_key=Secret(BENCH_SECRETS_KEY),
    )


def _server_app(kind: ServerKind, database_url: str, slack_url: str) -> web.Application:
    if kind == "bare":
        return _bare_app()
    from bot.app import build

    return build(bench_settings(database_url, slack_url)).web


async def _serve(kind: ServerKind, database_url: str, slack_url: str) -> None:
    from bot.cli import freeze_startup_heap
    from bot.logs import configure_logging

    configure_logging("WARNING", "text")
    runner = web.AppRunner(_server_app(kind, database_url, slack_url), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    freeze_startup_heap()  # as `chatops-bot run` does
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    with contextlib.suppress(TimeoutError):
        # A bound on the server's life, in case the client dies without stopping it.
        await asyncio.wait_for(stopping.wait(), timeout=300)
    await runner.cleanup()


@dataclass
class Server:
    """A server under test, running in a child process."""

    process: asyncio.subprocess.Process
    base_url: str

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (from /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory of the server process in MB."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 1e6


@contextlib.asynccontextmanager
async def running_server(
    kind: ServerKind, database_url: str = "", slack_url: str = ""
) -> AsyncIterator[Server]:
    """Start ``python -m bench.webhooks --serve KIND`` and stop it (SIGTERM) afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.webhooks",
        "--serve",
        kind,
        "--database-url",
        database_url,
        "--slack-url",
        slack_url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        port = await asyncio.wait_for(read_port(process), timeout=30)
        yield Server(process, f"http://127.0.0.1:{port}")
    finally:
        await stop_process(process)


async def read_port(process: asyncio.subprocess.Process) -> int:
    assert process.stdout is not None
    line = (await process.stdout.readline()).decode()
    if not line.startswith("PORT "):
        raise RuntimeError(f"server did not start: {line!r}")
    return int(line.split()[1])


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=15)
        except TimeoutError:
            process.kill()
            await process.wait()


# ----- load generation ------------------------------------------------------------------

RequestFactory = Callable[[int], tuple[bytes, dict[str, str]]]


@dataclass(frozen=True)
class LoadResult:
    """One closed-loop load phase."""

    label: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_s: float

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.errors) / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU time per request."""
        return 1000 * self.server_cpu_s / max(1, self.requests)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class _Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


async def _worker(
    http: aiohttp.ClientSession,
    url: str,
    make: RequestFactory,
    numbers: itertools.count[int],
    deadline: float,
    tally: _Tally | None,
) -> None:
    while time.monotonic() < deadline:
        body, headers = make(next(numbers))
        started = time.perf_counter()
        async with http.post(url, data=body, headers=headers) as response:
            await response.read()
        if tally is None:
            continue
        tally.latencies_ms.append(1000 * (time.perf_counter() - started))
        tally.statuses[response.status] = tally.statuses.get(response.status, 0) + 1
        tally.errors += response.status != 202


async def closed_loop(
    server: Server,
    path: str,
    make: RequestFactory,
    *,
    label: str,
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
) -> LoadResult:
    """``concurrency`` clients posting back to back for ``seconds`` (after a warm-up)."""
    numbers = itertools.count()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        url = server.base_url + path
        await _run_workers(http, url, make, numbers, concurrency, warmup, None)
        tally = _Tally()
        cpu_before, started = server.cpu_seconds(), time.monotonic()
        await _run_workers(http, url, make, numbers, concurrency, seconds, tally)
        elapsed, cpu = time.monotonic() - started, server.cpu_seconds() - cpu_before
    if tally.errors:
        print(f"  {label} c={concurrency}: statuses {tally.statuses}", file=sys.stderr)
    count = len(tally.latencies_ms)
    return LoadResult(label, concurrency, count, tally.errors, elapsed, tally.latencies_ms, cpu)


async def _run_workers(
    http: aiohttp.ClientSession,
    url: str,
    make: RequestFactory,
    numbers: itertools.count[int],
    concurrency: int,
    seconds: float,
    tally: _Tally | None,
) -> None:
    deadline = time.monotonic() + seconds
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(_worker(http, url, make, numbers, deadline, tally))


# ----- the bot's hooks --------------------------------------------------------------------

HOOK_REPLY: Final = re.compile(r"(/hooks/[\w-]+)")
SECRET_REPLY: Final = re.compile(r"\*Secret\* \(shown once — keep it\): `([^`]+)`")


@dataclass(frozen=True)
class CreatedHook:
    """A hook made with ``/hook create``: where to post and what to sign with."""

    path: str
    secret: str
    channel: str


async def create_hook(server: Server, name: str, channel: str) -> CreatedHook:
    """Create a github-preset hook posting to ``channel`` with a signed slash command."""
    body, headers = slash_command(f"/hook create {name} <#{channel}|{name}> preset=github", channel)
    url = f"{server.base_url}/slack/events"
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        reply = str((await r.json())["text"])
    path, secret = HOOK_REPLY.search(reply), SECRET_REPLY.search(reply)
    if path is None or secret is None:
        raise RuntimeError(f"/hook create failed: {reply}")
    return CreatedHook(path.group(1), secret.group(1), channel)


def signed_push_factory(hook: CreatedHook) -> RequestFactory:
    """Requests with one pre-signed ~2 KB body and a unique delivery id each."""
    body = trimmed_push("benchmark0")
    base = github_headers(body, hook.secret, "")
    run = time.time_ns()

    def make(number: int) -> tuple[bytes, dict[str, str]]:
        return body, base | {"X-GitHub-Delivery": f"bench-{run}-{number}"}

    return make


# ----- end to end -------------------------------------------------------------------------


@dataclass
class Arrivals:
    """When each marked message reached the fake Slack (monotonic seconds)."""

    at: dict[int, float] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_post(self, call: Call) -> None:
        """FakeSlack's callback: timestamp a chat.postMessage carrying a marker."""
        if call.method != "chat.postMessage" or not call.ok:
            return
        found = MARKER.search(json.dumps(call.args))
        if found is not None:
            self.at.setdefault(int(found.group(1)), time.monotonic())
            self.changed.set()

    async def wait_for_all(self, expected: set[int]) -> None:
        """Return once every number in ``expected`` has arrived (bound it with a timeout)."""
        while not expected <= self.at.keys():
            await self.changed.wait()
            self.changed.clear()


@dataclass(frozen=True)
class EndToEnd:
    """Latency from POST to chat.postMessage at the fake Slack."""

    sent: int
    received: int
    latencies_ms: list[float]
    seconds: float


async def end_to_end(
    server: Server, hooks: Sequence[CreatedHook], arrivals: Arrivals, rate: float, seconds: float
) -> EndToEnd:
    """Open loop: ``rate`` events/s round-robin over ``hooks``; wait for the posts."""
    count = int(rate * seconds)
    sent_at: dict[int, float] = {}
    started = time.monotonic()
    async with aiohttp.ClientSession() as http, asyncio.TaskGroup() as group:
        for number in range(1, count + 1):
            await _sleep_until(started + (number - 1) / rate)
            hook = hooks[number % len(hooks)]
            group.create_task(_send_marked(http, server, hook, number, sent_at))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ARRIVAL_TIMEOUT):
            await arrivals.wait_for_all(set(sent_at))
    latencies = [1000 * (arrivals.at[n] - sent_at[n]) for n in sent_at if n in arrivals.at]
    return EndToEnd(len(sent_at), len(latencies), latencies, time.monotonic() - started)


async def _sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


async def _send_marked(
    http: aiohttp.ClientSession,
    server: Server,
    hook: CreatedHook,
    number: int,
    sent_at: dict[int, float],
) -> None:
    body = trimmed_push(f"benchmark{number}")
    headers = github_headers(body, hook.secret, f"e2e-{number}")
    sent_at[number] = time.monotonic()
    async with http.post(server.base_url + hook.path, data=body, headers=headers) as response:
        await response.read()
        if response.status != 202:
            del sent_at[number]


# ----- the run and the report ------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What the benchmark run does."""

    seconds: float
    concurrencies: tuple[int, ...]
    e2e_rate: float
    e2e_seconds: float
    e2e_channels: int


async def measure(options: Options) -> None:
    """Run every phase and print the tables."""
    arrivals = Arrivals()
    async with FakeSlack(token=BOT_TOKEN, on_post=arrivals.on_post) as fake:
        bare = await _bare_phases(options)
        with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
            bot = await _bot_phases(options, f"sqlite:///{tmp}/ingest.db", fake.url)
            e2e = await _e2e_phase(options, f"sqlite:///{tmp}/e2e.db", fake, arrivals)
    print_throughput(bare, bot)
    print_end_to_end(e2e, options)


async def _bare_phases(options: Options) -> list[LoadResult]:
    body = trimmed_push("benchmark0")

    def make(_number: int) -> tuple[bytes, dict[str, str]]:
        return body, {"Content-Type": "application/json"}

    async with running_server("bare") as server:
        return [
            await closed_loop(
                server, "/bare", make, label="bare", concurrency=c, seconds=options.seconds
            )
            for c in options.concurrencies
        ]


async def _bot_phases(options: Options, database_url: str, slack_url: str) -> list[LoadResult]:
    async with running_server("bot", database_url, slack_url) as server:
        hook = await create_hook(server, "bench", "C0001")
        make = signed_push_factory(hook)
        results = [
            await closed_loop(
                server, hook.path, make, label="bot", concurrency=c, seconds=options.seconds
            )
            for c in options.concurrencies
        ]
        print(f"  bot server RSS after ingest: {server.rss_mb():.0f} MB", file=sys.stderr)
        return results


async def _e2e_phase(
    options: Options, database_url: str, fake: FakeSlack, arrivals: Arrivals
) -> EndToEnd:
    channels = [f"C{9000 + index}" for index in range(options.e2e_channels)]
    for channel in channels:
        fake.add_channel(channel, channel.lower())
    async with running_server("bot", database_url, fake.url) as server:
        hooks = [await create_hook(server, f"e2e-{ch.lower()}", ch) for ch in channels]
        return await end_to_end(server, hooks, arrivals, options.e2e_rate, options.e2e_seconds)


def print_throughput(bare: Sequence[LoadResult], bot: Sequence[LoadResult]) -> None:
    """The throughput table: each row with its ratio to the bare route at the same c."""
    ceiling = {result.concurrency: result.rate for result in bare}
    print("\nWebhook ingest (closed loop, ~2 KB GitHub push, Python aiohttp client)")
    print(
        f"{'route':<28} {'c':>3} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'srv CPU ms/req':>14} {'errors':>6} {'ratio':>6}"
    )
    for result in [*bare, *bot]:
        name = "bare aiohttp POST -> 202" if result.label == "bare" else "bot POST /hooks/{token}"
        ratio = result.rate / ceiling[result.concurrency] if ceiling.get(result.concurrency) else 0
        print(
            f"{name:<28} {result.concurrency:>3} {result.rate:>8.0f} "
            f"{percentile(result.latencies_ms, 0.5):>7.2f} "
            f"{percentile(result.latencies_ms, 0.99):>7.2f} "
            f"{result.cpu_ms_per_request:>14.3f} {result.errors:>6} {ratio:>6.2f}"
        )


def print_end_to_end(result: EndToEnd, options: Options) -> None:
    """The end-to-end table: POST sent to chat.postMessage received by the fake Slack."""
    print(
        f"\nEnd to end: POST -> chat.postMessage at the fake Slack, {options.e2e_rate:g} events/s"
        f" over {options.e2e_channels} channels for {options.e2e_seconds:g} s"
        " (pacing 1/s, burst 3)"
    )
    print(f"{'sent':>6} {'posted':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    latencies = result.latencies_ms
    print(
        f"{result.sent:>6} {result.received:>6} {percentile(latencies, 0.5):>7.1f} "
        f"{percentile(latencies, 0.99):>7.1f} {max(latencies, default=float('nan')):>7.1f}"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each load phase")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--e2e-rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--e2e-seconds", type=float, default=15.0)
    parser.add_argument("--e2e-channels", type=int, default=40)
    parser.add_argument("--serve", choices=["bare", "bot"], help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--slack-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--profile", default="", help=argparse.SUPPRESS)
    parser.add_argument(
        "--wrk",
        action="store_true",
        help="drive both routes with wrk (-t1), alternating, --rounds times each; "
        "--seconds is wrk's -d",
    )
    parser.add_argument("--rounds", type=int, default=2, help="--wrk: phases per route")
    return parser


def _run_server(kind: ServerKind, database_url: str, slack_url: str, profile: str) -> None:
    from bot.cli import run_in_loop

    serving = _serve(kind, database_url, slack_url)
    # The bot on the event loop `chatops-bot run` uses; the ceiling on asyncio's own.
    run = run_in_loop if kind == "bot" else asyncio.run
    if not profile:
        run(serving)
        return
    import cProfile

    with cProfile.Profile() as profiler:
        run(serving)
    profiler.dump_stats(profile)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, or (with the internal ``--serve``) be the server under test."""
    args = _parser().parse_args(argv)
    if args.serve:
        _run_server(args.serve, args.database_url, args.slack_url, args.profile)
        return
    if args.wrk:
        from bench import wrk

        seconds = min(args.seconds, 60.0)
        asyncio.run(wrk.measure(tuple(args.concurrency), seconds, max(1, args.rounds)))
        return
    options = Options(
        seconds=min(args.seconds, 30.0),
        concurrencies=tuple(args.concurrency),
        e2e_rate=args.e2e_rate,
        e2e_seconds=min(args.e2e_seconds, 60.0),
        e2e_channels=args.e2e_channels,
    )
    asyncio.run(measure(options))


if __name__ == "__main__":
    main()
