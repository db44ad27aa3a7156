"""Two replicas on PostgreSQL: ingest scaling, end-to-end latency, failover, slash-command acks.

Run ``python -m bench.replicas`` (PostgreSQL at ``--database-url``; its ``public`` schema is
dropped and recreated first). Each replica is a real ``python -m bot run`` process configured
only through environment variables, as in ``tests/test_faults.py``; the load generator and the
fake Slack share this process. Payloads, signing, hook creation and percentiles come from
``bench.webhooks``. Everything talks to 127.0.0.1 only. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.webhooks import (
    ARRIVAL_TIMEOUT,
    BENCH_SECRETS_KEY,
    BOT_TOKEN,
    SIGNING_SECRET,
    Arrivals,
    CreatedHook,
    RequestFactory,
    Server,
    create_hook,
    github_headers,
    percentile,
    signed_push_factory,
    slash_command,
    stop_process,
    trimmed_push,
)
from bot.config import to_async_driver
from bot.devtools.fake_slack import Call, FakeSlack

DEFAULT_DATABASE_URL: Final = "postgresql://postgres@127.0.0.1:5432/test"
LEADER_LINE: Final = "chatops_scheduler_leader 1.0"
THROUGHPUT_CHANNELS: Final = ("C7001", "C7002", "C7003", "C7004")
E2E_CHANNEL_BASE: Final = 9000
FAILOVER_LIMIT: Final = 30.0  # give up on one takeover after this many seconds
SLASH_REFERENCE_SECONDS: Final = 2.0
DRAIN_LIMIT: Final = 60.0  # seconds to wait for the outbox to post every accepted delivery


# ----- CPU accounting from /proc ---------------------------------------------------------


def _stat_fields(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads) so far."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU of every ``postgres`` process, including reaped backends (via the parent's cutime)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = _stat_fields(entry.name)
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds every core has spent busy (not idle or iowait), from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


CpuProbe = Callable[[], float]


@dataclass(frozen=True)
class CpuUse:
    """CPU each process used over one window, as % of one core."""

    percent: dict[str, float]


@contextlib.contextmanager
def measured_cpu(probes: dict[str, CpuProbe], into: list[CpuUse]) -> Iterator[None]:
    """Append the CPU each probe's process used inside the block to ``into``."""
    before = {name: probe() for name, probe in probes.items()}
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    into.append(
        CpuUse({name: 100 * (probe() - before[name]) / elapsed for name, probe in probes.items()})
    )


def cpu_probes(replicas: Sequence[Replica]) -> dict[str, CpuProbe]:
    """Probes for the client (this process), each replica and PostgreSQL."""
    probes: dict[str, CpuProbe] = {"client": lambda: process_cpu_seconds(os.getpid())}
    for replica in replicas:
        probes[replica.name] = replica.server.cpu_seconds
    probes["postgres"] = postgres_cpu_seconds
    probes["machine"] = machine_busy_seconds
    return probes


# ----- replicas ---------------------------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def replica_env(database_url: str, slack_url: str, port: int) -> dict[str, str]:
    """The environment of one ``python -m bot run``: the only way a replica is configured."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "DATABASE_", "PORT", "WEBHOOK_", "LOG_"))
    }
    return inherited | {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SECRETS_KEY": BENCH_SECRETS_KEY,
        "SLACK_API_URL": slack_url,
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "PUBLIC_URL": "https://bot.example.com",
        "WEBHOOK_RATE_LIMIT": "1000000",  # the per-hook limit would cap a throughput run
        "WEBHOOK_MAX_BYTES_PER_DAY": str(1 << 40),  # and so would its daily 200 MB
        "SLACK_CHANNEL_RATE": "1000",  # so outbox pacing does not shape the figures
        "SLACK_CHANNEL_BURST": "1000",
        "LOG_LEVEL": "WARNING",
    }


@dataclass
class Replica:
    """One ``python -m bot run`` process and its log."""

    name: str
    server: Server
    log: IO[str]

    @property
    def url(self) -> str:
        """Where the replica listens."""
        return self.server.base_url


@dataclass
class Cluster:
    """Starts, kills and stops replicas against one database and one fake Slack."""

    database_url: str
    slack_url: str
    workdir: Path
    http: aiohttp.ClientSession
    replicas: list[Replica] = field(default_factory=list)
    started: int = 0

    async def start(self, name: str) -> Replica:
        """Start a replica and return once its /healthz answers 200."""
        port = free_port()
        self.started += 1
        log = (self.workdir / f"{name}-{self.started}.log").open("w")
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot", "run"),
            env=replica_env(self.database_url, self.slack_url, port),
            cwd=self.workdir,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        replica = Replica(name, Server(process, f"http://127.0.0.1:{port}"), log)
        self.replicas.append(replica)
        await self.until_healthy(replica)
        return replica

    async def until_healthy(self, replica: Replica, within: float = 30.0) -> None:
        """Poll /healthz; raise if the replica is not up within ``within`` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with self.http.get(f"{replica.url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{replica.name} did not start; see {replica.log.name}")

    async def is_leader(self, replica: Replica) -> bool:
        """Whether the replica's /metrics says it runs the scheduler."""
        try:
            async with self.http.get(f"{replica.url}/metrics") as response:
                return LEADER_LINE in await response.text()
        except aiohttp.ClientError:
            return False

    async def kill(self, replica: Replica) -> None:
        """kill -9, and forget the replica."""
        replica.server.process.send_signal(signal.SIGKILL)
        await replica.server.process.wait()
        replica.log.close()
        self.replicas.remove(replica)

    async def stop_all(self) -> None:
        """SIGTERM every replica still running."""
        for replica in self.replicas:
            await stop_process(replica.server.process)
            replica.log.close()
        self.replicas.clear()


@contextlib.asynccontextmanager
async def running_cluster(database_url: str, slack_url: str) -> AsyncIterator[Cluster]:
    """A cluster with no replicas yet; every replica is stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        async with aiohttp.ClientSession() as http:
            cluster = Cluster(database_url, slack_url, Path(tmp), http)
            try:
                yield cluster
            finally:
                await cluster.stop_all()


async def ensure_database(database_url: str) -> None:
    """Create the URL's database if it does not exist (so a dedicated one is one flag away)."""
    scheme, _, rest = database_url.partition("://")
    server, _, name = rest.partition("/")
    engine = create_async_engine(
        to_async_driver(f"{scheme}://{server}/postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            query = sa.text("SELECT 1 FROM pg_database WHERE datname = :name")
            if (await conn.execute(query, {"name": name})).first() is None:
                await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


async def reset_postgres(database_url: str) -> None:
    """Drop and recreate the public schema, as the tests do."""
    engine = create_async_engine(to_async_driver(database_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


# ----- posts reaching the fake Slack --------------------------------------------------------


@dataclass
class Posts:
    """Counts chat.postMessage calls at the fake Slack and timestamps marked ones."""

    arrivals: Arrivals = field(default_factory=Arrivals)
    count: int = 0

    def on_post(self, call: Call) -> None:
        """FakeSlack's callback."""
        if call.method == "chat.postMessage" and call.ok:
            self.count += 1
            self.arrivals.on_post(call)

    async def until_count(self, expected: int, within: float) -> float:
        """Seconds until ``expected`` posts have arrived (NaN if they did not in time)."""
        started = time.monotonic()
        while self.count < expected:
            if time.monotonic() - started > within:
                return float("nan")
            await asyncio.sleep(0.05)
        return time.monotonic() - started


# ----- closed-loop load over one or more replicas ------------------------------------------


@dataclass(frozen=True)
class Load:
    """One closed-loop phase: what was sent where, and what came back."""

    label: str
    concurrency: int
    seconds: float
    sent: int  # every request, warm-up included (for the outbox drain)
    latencies_ms: list[float]
    errors: int
    statuses: dict[int, int]
    cpu: CpuUse

    @property
    def rate(self) -> float:
        """Successful requests per second over the measured window."""
        return (len(self.latencies_ms) - self.errors) / self.seconds


@dataclass
class _Tally:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    sent: int = 0


@dataclass(frozen=True)
class Target:
    """Where a closed loop sends and what it expects back."""

    urls: tuple[str, ...]  # requests alternate over these, as a load balancer would
    make: RequestFactory
    expected_status: int


async def _worker(
    http: aiohttp.ClientSession,
    target: Target,
    numbers: itertools.count[int],
    deadline: float,
    tally: _Tally,
    measuring: bool,
) -> None:
    while time.monotonic() < deadline:
        number = next(numbers)
        body, headers = target.make(number)
        started = time.perf_counter()
        url = target.urls[number % len(target.urls)]
        async with http.post(url, data=body, headers=headers) as response:
            await response.read()
        tally.sent += 1
        if measuring:
            tally.latencies_ms.append(1000 * (time.perf_counter() - started))
            tally.statuses[response.status] = tally.statuses.get(response.status, 0) + 1


async def _run_workers(
    http: aiohttp.ClientSession,
    target: Target,
    numbers: itertools.count[int],
    concurrency: int,
    seconds: float,
    tally: _Tally,
    measuring: bool,
) -> None:
    deadline = time.monotonic() + seconds
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(_worker(http, target, numbers, deadline, tally, measuring))


async def closed_loop(
    target: Target,
    probes: dict[str, CpuProbe],
    *,
    label: str,
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
) -> Load:
    """``concurrency`` clients posting back to back for ``seconds`` after a warm-up."""
    numbers, tally, cpu = itertools.count(), _Tally(), list[CpuUse]()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        await _run_workers(http, target, numbers, concurrency, warmup, tally, False)
        started = time.monotonic()
        with measured_cpu(probes, cpu):
            await _run_workers(http, target, numbers, concurrency, seconds, tally, True)
        elapsed = time.monotonic() - started
    errors = sum(n for status, n in tally.statuses.items() if status != target.expected_status)
    return Load(
        label, concurrency, elapsed, tally.sent, tally.latencies_ms, errors, tally.statuses, cpu[0]
    )


# ----- phase 1: ingest with one, then two replicas -----------------------------------------


@dataclass(frozen=True)
class Drained:
    """How long the outbox took, after the load stopped, to post every accepted delivery."""

    seconds: float  # NaN: not within DRAIN_LIMIT
    posts_per_second: float  # over the whole phase: warm-up + load + drain
    # CPU of the replicas over the whole phase (ingest and posting) per accepted delivery
    cpu_ms_per_delivery: float


async def ingest_phase(
    replicas: Sequence[Replica],
    hooks: Sequence[CreatedHook],
    posts: Posts,
    options: Options,
) -> tuple[Load, Drained]:
    """Closed-loop pushes over ``hooks``, alternating replicas; then wait for the outbox."""
    factories = [signed_push_factory(hook) for hook in hooks]
    paths = [hook.path for hook in hooks]
    urls = tuple(replica.url + path for path in paths for replica in replicas)

    def make(number: int) -> tuple[bytes, dict[str, str]]:
        # urls cycle replica-fastest; the hook advances every len(replicas) requests.
        return factories[(number // len(replicas)) % len(factories)](number)

    label = f"{len(replicas)} replica" + ("s" if len(replicas) > 1 else "")
    posts_before, started = posts.count, time.monotonic()
    cpu_before = sum(replica.server.cpu_seconds() for replica in replicas)
    load = await closed_loop(
        Target(urls, make, 202),
        cpu_probes(replicas),
        label=label,
        concurrency=options.concurrency,
        seconds=options.seconds,
    )
    expected = posts_before + load.sent - load.errors
    drain = await posts.until_count(expected, DRAIN_LIMIT)
    rate = (posts.count - posts_before) / (time.monotonic() - started)
    cpu = sum(replica.server.cpu_seconds() for replica in replicas) - cpu_before
    return load, Drained(drain, rate, 1000 * cpu / max(1, load.sent - load.errors))


# ----- phase 2: end to end over two replicas ------------------------------------------------


@dataclass(frozen=True)
class EndToEnd:
    """POST → chat.postMessage at the fake Slack."""

    sent: int
    received: int
    latencies_ms: list[float]


async def end_to_end(
    replicas: Sequence[Replica], hooks: Sequence[CreatedHook], posts: Posts, options: Options
) -> EndToEnd:
    """Open loop: ``rate`` events/s, round-robin over hooks and alternating replicas."""
    count = int(options.e2e_rate * options.e2e_seconds)
    sent_at: dict[int, float] = {}
    started = time.monotonic()
    async with aiohttp.ClientSession() as http, asyncio.TaskGroup() as group:
        for number in range(1, count + 1):
            await asyncio.sleep(
                max(0.0, started + (number - 1) / options.e2e_rate - time.monotonic())
            )
            url = replicas[number % len(replicas)].url + hooks[number % len(hooks)].path
            secret = hooks[number % len(hooks)].secret
            group.create_task(_send_marked(http, url, secret, number, sent_at))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ARRIVAL_TIMEOUT):
            await posts.arrivals.wait_for_all(set(sent_at))
    at = posts.arrivals.at
    latencies = [1000 * (at[n] - sent_at[n]) for n in sent_at if n in at]
    return EndToEnd(len(sent_at), len(latencies), latencies)


async def _send_marked(
    http: aiohttp.ClientSession, url: str, secret: str, number: int, sent_at: dict[int, float]
) -> None:
    body = trimmed_push(f"benchmark{number}")
    headers = github_headers(body, secret, f"replicas-e2e-{number}")
    sent_at[number] = time.monotonic()
    async with http.post(url, data=body, headers=headers) as response:
        await response.read()
        if response.status != 202:
            del sent_at[number]


# ----- phase 3: failover ------------------------------------------------------------------


async def the_leader(cluster: Cluster, within: float = 15.0) -> Replica:
    """The one replica whose /metrics says it leads (waits for an election)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        leaders = [r for r in cluster.replicas if await cluster.is_leader(r)]
        if len(leaders) == 1:
            return leaders[0]
        await asyncio.sleep(0.05)
    raise RuntimeError("no single leader among the replicas")


async def failover_once(cluster: Cluster) -> float:
    """kill -9 the leader; seconds until the survivor's /metrics says it leads (NaN: never)."""
    leader = await the_leader(cluster)
    (survivor,) = [r for r in cluster.replicas if r is not leader]
    await cluster.kill(leader)
    killed_at = time.monotonic()
    while not await cluster.is_leader(survivor):
        if time.monotonic() - killed_at > FAILOVER_LIMIT:
            return float("nan")
        await asyncio.sleep(0.02)
    takeover = time.monotonic() - killed_at
    await cluster.start(leader.name)  # back to two replicas for the next round
    return takeover


# ----- phase 4: slash-command acknowledgements ----------------------------------------------


async def slash_phase(replica: Replica, concurrency: int, seconds: float) -> Load:
    """Signed ``/hook list`` commands, closed loop, against one replica."""

    def make(_number: int) -> tuple[bytes, dict[str, str]]:
        return slash_command("/hook list", THROUGHPUT_CHANNELS[0])

    return await closed_loop(
        Target((replica.url + "/slack/events",), make, 200),
        cpu_probes([replica]),
        label=f"c={concurrency}",
        concurrency=concurrency,
        seconds=seconds,
    )


# ----- the run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What the run does."""

    database_url: str
    seconds: float
    concurrency: int
    e2e_rate: float
    e2e_seconds: float
    e2e_channels: int
    failovers: int
    slash_concurrency: int
    slash_seconds: float


@dataclass
class Results:
    """Everything measured, for the report."""

    one: Load | None = None
    one_drained: Drained | None = None
    two: Load | None = None
    two_drained: Drained | None = None
    e2e: EndToEnd | None = None
    failovers: list[float] = field(default_factory=list)
    slash: list[Load] = field(default_factory=list)


async def measure(options: Options) -> Results:
    """Run every phase in order; a phase that fails leaves the earlier results intact."""
    results = Results()
    await ensure_database(options.database_url)
    await reset_postgres(options.database_url)
    posts = Posts()
    async with (
        FakeSlack(token=BOT_TOKEN, on_post=posts.on_post) as fake,
        running_cluster(options.database_url, fake.url) as cluster,
    ):
        try:
            await _all_phases(options, fake, cluster, posts, results)
        except (RuntimeError, aiohttp.ClientError, OSError) as error:
            print(f"stopped early: {error}", file=sys.stderr)
    return results


async def _all_phases(
    options: Options, fake: FakeSlack, cluster: Cluster, posts: Posts, results: Results
) -> None:
    first = await cluster.start("replica-1")
    hooks = await _make_hooks(fake, first, THROUGHPUT_CHANNELS, "load")
    results.one, results.one_drained = await ingest_phase([first], hooks, posts, options)
    # c=1 first: the time one command costs, without queueing behind 15 others.
    results.slash.append(await slash_phase(first, 1, SLASH_REFERENCE_SECONDS))
    results.slash.append(await slash_phase(first, options.slash_concurrency, options.slash_seconds))
    second = await cluster.start("replica-2")
    results.two, results.two_drained = await ingest_phase([first, second], hooks, posts, options)
    channels = [f"C{E2E_CHANNEL_BASE + index}" for index in range(options.e2e_channels)]
    e2e_hooks = await _make_hooks(fake, first, channels, "e2e")
    results.e2e = await end_to_end([first, second], e2e_hooks, posts, options)
    for _ in range(options.failovers):
        results.failovers.append(await failover_once(cluster))


async def _make_hooks(
    fake: FakeSlack, replica: Replica, channels: Sequence[str], prefix: str
) -> list[CreatedHook]:
    for channel in channels:
        fake.add_channel(channel, f"{prefix}-{channel.lower()}")
    return [
        await create_hook(replica.server, f"{prefix}-{channel.lower()}", channel)
        for channel in channels
    ]


# ----- the report -------------------------------------------------------------------------


def _ms(values: Sequence[float], fraction: float) -> str:
    return f"{percentile(values, fraction):>7.1f}"


def print_header(options: Options) -> None:
    """What ran where."""
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"bench.replicas on {options.database_url}: {os.cpu_count()} CPUs shared by the client"
        f" (load generator + fake Slack), the replicas and PostgreSQL; load average {load}"
    )


def print_ingest(results: Results, options: Options) -> None:
    """Table 1: one replica vs two, with each process's CPU over the window."""
    print(
        f"\n1. Webhook ingest, closed loop c={options.concurrency}, ~2 KB signed GitHub push,"
        f" {len(THROUGHPUT_CHANNELS)} hooks on {len(THROUGHPUT_CHANNELS)} channels,"
        f" {options.seconds:g} s after 1 s warm-up"
    )
    print(
        f"{'replicas':<10} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
        f"   CPU % of one core: {'client':>6} {'rep-1':>6} {'rep-2':>6} {'pg':>6} {'other':>6}"
        f" {'busy':>6}"
        f"   {'drain s':>7} {'posts/s':>7}"
    )
    for load, drained in ((results.one, results.one_drained), (results.two, results.two_drained)):
        if load is not None and drained is not None:
            print(_ingest_row(load, drained))
    _print_ratio(results)


def _ingest_row(load: Load, drained: Drained) -> str:
    return (
        f"{load.label:<10} {load.rate:>7.0f} {_ms(load.latencies_ms, 0.5)} "
        f"{_ms(load.latencies_ms, 0.99)} {load.errors:>6}   {'':>19}{_cpu_columns(load.cpu)}"
        f"   {drained.seconds:>7.1f} {drained.posts_per_second:>7.0f}"
    )


def _cpu_columns(cpu: CpuUse) -> str:
    """client, replicas, postgres, everything else on the machine, and the machine's total."""
    names = ("client", "replica-1", "replica-2", "postgres")
    columns = [cpu.percent.get(name) for name in names]
    ours = sum(value for value in columns if value is not None)
    columns += [cpu.percent["machine"] - ours, cpu.percent["machine"]]
    return " ".join("     -" if value is None else f"{value:>6.0f}" for value in columns)


def _print_ratio(results: Results) -> None:
    if results.one is None or results.two is None:
        return
    ratio = results.two.rate / results.one.rate
    total = results.two.cpu.percent["machine"]
    capacity = 100 * (os.cpu_count() or 1)
    print(
        f"two/one = {ratio:.2f}x req/s; the two-replica window used {total:.0f}% of the"
        f" {capacity}% CPU this machine has (busy column, all processes), so req/s cannot"
        " show scaling here: CPU per delivery can"
    )
    one_cost, two_cost = (
        _replica_cpu_ms_per_request(results.one),
        _replica_cpu_ms_per_request(results.two),
    )
    if one_cost and two_cost:
        print(
            f"replica CPU per request while ingesting: {one_cost:.2f} ms with one,"
            f" {two_cost:.2f} ms with two (scaling efficiency {one_cost / two_cost:.2f})"
        )
    if results.one_drained is not None and results.two_drained is not None:
        one_all = results.one_drained.cpu_ms_per_delivery
        two_all = results.two_drained.cpu_ms_per_delivery
        print(
            f"replica CPU per delivery, ingest and posting (load start to last post):"
            f" {one_all:.2f} ms with one, {two_all:.2f} ms with two"
            f" (scaling efficiency {one_all / two_all:.2f})"
        )
    for load in (results.one, results.two):
        if load.errors:
            print(f"  {load.label}: statuses {load.statuses}")


def _replica_cpu_ms_per_request(load: Load) -> float:
    """CPU the replicas spent per answered request, in ms (0 when nothing was answered)."""
    replicas = sum(load.cpu.percent.get(name) or 0.0 for name in ("replica-1", "replica-2"))
    return 10 * replicas / load.rate if load.rate else 0.0


def print_end_to_end(results: Results, options: Options) -> None:
    """Table 2: POST → chat.postMessage over two replicas."""
    if results.e2e is None:
        return
    print(
        f"\n2. End to end, two replicas: POST -> chat.postMessage at the fake Slack,"
        f" {options.e2e_rate:g} events/s over {options.e2e_channels} channels for"
        f" {options.e2e_seconds:g} s"
    )
    e2e = results.e2e
    print(f"{'sent':>6} {'posted':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    worst = max(e2e.latencies_ms, default=float("nan"))
    print(
        f"{e2e.sent:>6} {e2e.received:>6} {_ms(e2e.latencies_ms, 0.5)} "
        f"{_ms(e2e.latencies_ms, 0.99)} {worst:>7.1f}"
    )


def print_failovers(results: Results) -> None:
    """Phase 3: each takeover time."""
    if not results.failovers:
        return
    shown = ", ".join(f"{seconds:.2f} s" for seconds in results.failovers)
    verdict = "all" if all(s < 10 for s in results.failovers) else "NOT all"
    print(
        "\n3. Failover: kill -9 the leader -> the survivor's /metrics shows"
        f" '{LEADER_LINE}' (polled every 20 ms)"
    )
    print(f"takeover: {shown} ({verdict} under the 10 s target)")


def print_slash(results: Results, options: Options) -> None:
    """Phase 4: slash-command acknowledgement latency."""
    if not results.slash:
        return
    print(
        f"\n4. Slash-command ack, one replica, signed '/hook list', closed loop"
        f" ({SLASH_REFERENCE_SECONDS:g} s at c=1 for reference, then"
        f" {options.slash_seconds:g} s at c={options.slash_concurrency})"
    )
    print(
        f"{'clients':<7} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
        f"   CPU % of one core: {'client':>6} {'rep-1':>6} {'rep-2':>6} {'pg':>6} {'other':>6}"
        f" {'busy':>6}"
    )
    for load in results.slash:
        print(
            f"{load.label:<7} {load.rate:>7.0f} {_ms(load.latencies_ms, 0.5)}"
            f" {_ms(load.latencies_ms, 0.99)} {load.errors:>6}   {'':>19}{_cpu_columns(load.cpu)}"
        )
        if load.errors:
            print(f"  statuses {load.statuses}")
    p99 = percentile(results.slash[-1].latencies_ms, 0.99)
    verdict = "meets" if p99 < 50 else "misses"
    print(
        f"p99 at c={options.slash_concurrency} {verdict} the 50 ms target"
        " (Slack's own limit is 3 s)"
    )


def report(results: Results, options: Options) -> None:
    """Print every table."""
    print_ingest(results, options)
    print_end_to_end(results, options)
    print_failovers(results)
    print_slash(results, options)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--seconds", type=float, default=6.0, help="each ingest phase")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--e2e-rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--e2e-seconds", type=float, default=10.0)
    parser.add_argument("--e2e-channels", type=int, default=40)
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--slash-concurrency", type=int, default=16)
    parser.add_argument("--slash-seconds", type=float, default=5.0)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the report."""
    args = _parser().parse_args(argv)
    if not args.database_url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--database-url must be a postgresql:// URL (replicas need PostgreSQL)")
    options = Options(
        database_url=args.database_url,
        seconds=min(args.seconds, 30.0),
        concurrency=args.concurrency,
        e2e_rate=args.e2e_rate,
        e2e_seconds=min(args.e2e_seconds, 60.0),
        e2e_channels=args.e2e_channels,
        failovers=args.failovers,
        slash_concurrency=args.slash_concurrency,
        slash_seconds=min(args.slash_seconds, 30.0),
    )
    print_header(options)
    started = time.monotonic()
    results = asyncio.run(measure(options))
    report(results, options)
    print(f"\n(whole run {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
