"""Proof under faults, with real bot processes: kill -9 mid-burst, kill -9 the leader.

Each replica is ``python -m bot run`` in its own process, configured only through the
environment, against the fake Slack (in this process) and a real database.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import to_async_driver
from bot.devtools.fake_slack import FakeSlack
from tests.conftest import (
    BOT_TOKEN,
    SECRETS_KEY,
    SIGNING_SECRET,
    eventually,
    reset_postgres,
    slack_headers,
    slash_command_body,
    until_database_idle,
)
from tests.test_production import push

POSTGRES = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Replica:
    process: asyncio.subprocess.Process
    url: str
    log: IO[str]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)


@dataclass
class Cluster:
    database_url: str
    fake: FakeSlack
    workdir: Path
    http: aiohttp.ClientSession
    replicas: list[Replica] = field(default_factory=list)

    async def start(self) -> Replica:
        port = free_port()
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "PORT"))
        }
        env |= {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SECRETS_KEY": SECRETS_KEY,
            "SLACK_API_URL": self.fake.url,
            "DATABASE_URL": self.database_url,
            "PORT": str(port),
            "PUBLIC_URL": "https://bot.example.com",
            "TRIGGER_MIN_INTERVAL": "1",
            "SLACK_CHANNEL_RATE": "1000",
            "SLACK_CHANNEL_BURST": "1000",
            "LOG_LEVEL": os.environ.get("FAULT_LOG_LEVEL", "WARNING"),
        }
        log = open(self.workdir / f"replica-{port}.log", "w")  # noqa: SIM115, ASYNC230 - closed in stop_all
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=env,
            cwd=self.workdir,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        replica = Replica(process, f"http://127.0.0.1:{port}", log)
        self.replicas.append(replica)
        await self.until_healthy(replica)
        return replica

    async def until_healthy(self, replica: Replica, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                async with self.http.get(f"{replica.url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError("the replica did not start")

    async def is_leader(self, replica: Replica) -> bool:
        try:
            async with self.http.get(f"{replica.url}/metrics") as response:
                return "chatops_scheduler_leader 1.0" in await response.text()
        except aiohttp.ClientError:
            return False

    async def command(self, replica: Replica, text: str) -> str:
        name, _, rest = text.partition(" ")
        body = slash_command_body(name, rest)
        async with self.http.post(
            f"{replica.url}/slack/events", data=body, headers=slack_headers(body, form=True)
        ) as response:
            return str((await response.json())["text"])

    async def stop_all(self) -> None:
        for replica in self.replicas:
            if replica.process.returncode is None:
                replica.process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(replica.process.wait(), 15)
                except TimeoutError:
                    replica.kill()
                    await replica.process.wait()
            replica.log.close()


@pytest.fixture
async def cluster(
    database_url: str, fake_slack: FakeSlack, tmp_path: Path
) -> AsyncIterator[Cluster]:
    if database_url.startswith("postgres"):
        await reset_postgres(database_url)
    async with aiohttp.ClientSession() as http:
        running = Cluster(database_url, fake_slack, tmp_path, http)
        yield running
        await running.stop_all()


async def query(database_url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_async_engine(to_async_driver(database_url))
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(sa.text(sql))).all()]
    finally:
        await engine.dispose()


@BOTH
async def test_every_delivery_that_got_a_202_is_posted_after_a_kill_9(
    cluster: Cluster, fake_slack: FakeSlack
) -> None:
    replica = await cluster.start()
    reply = await cluster.command(replica, "/hook create burst preset=github")
    path = reply.split("https://bot.example.com", 1)[1].split("`", 1)[0]
    secret = reply.split("keep it): `", 1)[1].split("`", 1)[0]
    fake_slack.fail_next(
        10_000, status=503, method="chat.postMessage"
    )  # Slack is down: all stays queued
    accepted: list[str] = []

    async def send(n: int) -> None:
        body, headers = push(secret, f"burst-{n}")
        try:
            async with cluster.http.post(
                f"{replica.url}{path}", data=body, headers=headers
            ) as response:
                if response.status == 202:
                    accepted.append(f"burst-{n}")
        except aiohttp.ClientError:
            pass  # the process died under this request: no 202, so the sender retries

    sending = [asyncio.create_task(send(n)) for n in range(300)]

    async def some_accepted() -> bool:
        return len(accepted) >= 30

    await eventually(some_accepted, within=10)
    replica.kill()  # mid-burst
    await asyncio.gather(*sending)
    await replica.process.wait()
    assert accepted, "the burst should have been partly accepted before the kill"
    stored = await query(cluster.database_url, "SELECT dedupe_key FROM delivery")
    # Every 202 was stored (some stored requests lost their answer in the kill: fine, the
    # sender retries and the retry is deduplicated).
    assert {key for (key,) in stored} >= set(accepted)
    fake_slack.reset()  # Slack recovers
    await cluster.start()
    await fake_slack.wait_for("chat.postMessage", count=len(stored), timeout=60)
    await until_database_idle(cluster.database_url)
    assert len(fake_slack.messages()) == len(stored)  # each stored delivery posted exactly once


@POSTGRES
async def test_killing_the_leader_hands_the_schedule_over_without_losing_a_run(
    cluster: Cluster, fake_slack: FakeSlack
) -> None:
    first = await cluster.start()
    second = await cluster.start()

    async def one_leads() -> bool:
        return await cluster.is_leader(first) != await cluster.is_leader(second)

    await eventually(one_leads, within=10)
    leader, follower = (first, second) if await cluster.is_leader(first) else (second, first)
    reply = await cluster.command(follower, '/trigger add tick every 2s message "tick"')
    assert "Added" in reply, reply
    await fake_slack.wait_for("chat.postMessage", count=3, timeout=20)
    # Kill between ticks. (Killed in the instant between Slack accepting a post and the
    # outbox recording it, a message is sent again after takeover: delivery to Slack is
    # at-least-once, since chat.postMessage has no idempotency key. See the README.)
    await asyncio.sleep(0.7)
    leader.kill()
    killed_at = time.monotonic()
    while not await cluster.is_leader(follower):
        assert time.monotonic() - killed_at < 10, "no takeover within 10 s"
        await asyncio.sleep(0.1)
    takeover = time.monotonic() - killed_at
    posted_before = len(fake_slack.messages())
    # The dead leader's outbox lease on the channel must expire before the survivor posts.
    await fake_slack.wait_for("chat.postMessage", count=posted_before + 3, timeout=40)
    assert "Paused" in await cluster.command(follower, "/trigger pause tick")
    runs = await query(
        cluster.database_url,
        "SELECT scheduled_for, outcome FROM trigger_run ORDER BY scheduled_for",
    )

    async def every_run_posted() -> bool:
        return len(fake_slack.messages()) >= len(runs)

    await eventually(every_run_posted, within=20)
    await cluster.stop_all()
    runs = await query(  # again: a run in flight when the pause came may have finished since
        cluster.database_url,
        "SELECT scheduled_for, outcome FROM trigger_run ORDER BY scheduled_for",
    )
    times = [when for when, _ in runs]
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(times)}  # type: ignore[operator]
    assert gaps == {2.0}, (
        f"a run was lost or doubled around the failover ({takeover:.1f} s): {gaps}"
    )
    assert all(outcome == "ok" for _, outcome in runs)
    outbox = await query(cluster.database_url, "SELECT id FROM outbox")
    assert len(outbox) == len(runs)
    assert len(fake_slack.messages()) == len(runs)  # every run posted once


def _postgres_cluster() -> list[str] | None:
    """``pg_ctlcluster VERSION NAME`` for the local server, where this machine has it."""
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_lsclusters") is None:
        return None
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    )
    for line in listing.stdout.splitlines():
        version, name, port, *_ = line.split()
        if port == "5432":
            return ["pg_ctlcluster", "--skip-systemctl-redirect", version, name]
    return None


@POSTGRES
async def test_postgres_restart_under_load_gives_503s_then_recovers(
    cluster: Cluster, fake_slack: FakeSlack
) -> None:
    control = _postgres_cluster()
    if control is None:
        pytest.skip("no pg_ctlcluster for a local PostgreSQL on 5432 here")
    replica = await cluster.start()
    reply = await cluster.command(replica, "/hook create steady preset=github")
    path = reply.split("https://bot.example.com", 1)[1].split("`", 1)[0]
    secret = reply.split("keep it): `", 1)[1].split("`", 1)[0]
    statuses: dict[str, int] = {}
    stop = asyncio.Event()

    async def keep_sending() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            body, headers = push(secret, f"steady-{n}")
            try:
                async with cluster.http.post(
                    f"{replica.url}{path}", data=body, headers=headers
                ) as response:
                    statuses[f"steady-{n}"] = response.status
            except aiohttp.ClientError:
                statuses[f"steady-{n}"] = 0
            await asyncio.sleep(0.02)

    sender = asyncio.create_task(keep_sending())
    await asyncio.sleep(1)
    restart = await asyncio.create_subprocess_exec(
        *control, "restart", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    assert await restart.wait() == 0
    await asyncio.sleep(3)  # the bot reconnects on its own
    stop.set()
    await sender
    seen = set(statuses.values())
    assert seen <= {202, 503}, seen  # never a 500, never a dropped connection
    assert 503 in seen or all(s == 202 for s in statuses.values())
    recent = [statuses[k] for k in sorted(statuses, key=lambda k: int(k.split("-")[1]))[-10:]]
    assert recent == [202] * 10, recent  # serving again after the restart
    accepted = {key for key, status in statuses.items() if status == 202}
    await fake_slack.wait_for("chat.postMessage", count=len(accepted), timeout=60)
    stored = await query(cluster.database_url, "SELECT dedupe_key FROM delivery")
    assert {key for (key,) in stored} >= accepted  # every 202 was kept

    async def leads_again() -> bool:  # the scheduler's lock was lost with its connection
        return await cluster.is_leader(replica)

    await eventually(leads_again, within=10)
