"""The test harness: the real app on a real port, the fake Slack over HTTP, a real database.

``database_url`` is SQLite by default; tests that matter on both engines say
``@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)``.
PostgreSQL runs where TEST_DATABASE_URL is set (CI sets it); elsewhere that case skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col

from bot.app import Bot, build
from bot.clock import Clock, FakeClock, SystemClock
from bot.config import Secret, Settings, to_async_driver
from bot.db import Database
from bot.devtools.fake_slack import FakeSlack
from bot.models import Delivery, OutboxChannel, OutboxMessage
from bot.outbox import Outbox
from bot.slack.signing import signed_headers

FIXTURES = Path(__file__).parent / "fixtures"
SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-fake"
# SECRETS_KEY of the test bots: encrypts hook signing secrets and /secret values at rest.
SECRETS_KEY = "4GjLu2Fvt24BtLND4MkiQN_545DgPDrdW6a4WpFQCeY="


def fixture_bytes(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def fixture_json(relative: str) -> Any:
    return json.loads(fixture_bytes(relative))


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set; PostgreSQL cases run in CI")
    return url


async def reset_postgres(url: str) -> None:
    engine = create_async_engine(to_async_driver(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=BOT_TOKEN) as fake:
        yield fake


@dataclass
class RunningBot:
    """One bot process-equivalent: the app served on a real port."""

    bot: Bot
    runner: web.AppRunner
    base_url: str
    http: aiohttp.ClientSession

    async def command(
        self, text: str, *, user: str = "U0001", channel: str = "C0001", team: str = "T0001"
    ) -> str:
        """Send a signed slash command as Slack does; return the private reply's text."""
        name, _, rest = text.partition(" ")
        body = slash_command_body(name, rest, user=user, channel=channel, team=team)
        async with self.http.post(
            f"{self.base_url}/slack/events", data=body, headers=slack_headers(body, form=True)
        ) as response:
            assert response.status == 200, await response.text()
            return str((await response.json())["text"])

    async def command_raw(self, text: str, *, user: str = "U0001", channel: str = "C0001") -> str:
        """Send a signed slash command; return the raw answer (empty when a modal opened)."""
        name, _, rest = text.partition(" ")
        body = slash_command_body(name, rest, user=user, channel=channel)
        status, answer = await self.post("/slack/events", body, slack_headers(body, form=True))
        assert status == 200, answer
        return answer if isinstance(answer, str) else json.dumps(answer)

    async def interact(self, payload: dict[str, Any]) -> Any:
        """Send a signed interactivity payload (button click, modal submission) as Slack does."""
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        status, answer = await self.post("/slack/events", body, slack_headers(body, form=True))
        assert status == 200, answer
        return answer

    async def post_interaction(self, payload: dict[str, Any]) -> tuple[int, Any]:
        """Send a signed interactivity payload; return the status and the answer, whatever
        they are (for payloads the bot should refuse)."""
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post("/slack/events", body, slack_headers(body, form=True))

    async def event(self, envelope: dict[str, Any]) -> None:
        """Send a signed Events API request."""
        body = json.dumps(envelope).encode()
        status, answer = await self.post("/slack/events", body, slack_headers(body, form=False))
        assert status == 200, answer

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        async with self.http.post(f"{self.base_url}{path}", data=body, headers=headers) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def stop(self) -> None:
        await self.runner.cleanup()


def slash_command_body(
    command: str, text: str, *, user: str = "U0001", channel: str = "C0001", team: str = "T0001"
) -> bytes:
    """A slash-command body with every field Slack sends (see fixtures/slack/slash_command.txt)."""
    return urllib.parse.urlencode(
        {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": team,
            "team_domain": "example",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": "steve",
            "command": command,
            "text": text,
            "response_url": "https://hooks.slack.com/commands/1234/5678",
            "trigger_id": f"13345224609.738474920.{int(time.time() * 1000)}",
            "api_app_id": "A123456",
        }
    ).encode()


def slack_headers(
    body: bytes, *, form: bool, secret: str = SIGNING_SECRET, now: float | None = None
) -> dict[str, str]:
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    return signed_headers(secret, body, now=now) | {"Content-Type": content_type}


@pytest.fixture
async def start_bot(database_url: str, fake_slack: FakeSlack) -> AsyncIterator[Callable[..., Any]]:
    """Start the bot (again) on the same database: ``await start_bot(clock=..., **settings)``.

    Every bot started is stopped at the end, even when the test or another bot's shutdown
    fails, and must have handed back every database connection when it stopped.
    """
    if database_url.startswith("postgres"):
        await reset_postgres(database_url)
    async with contextlib.AsyncExitStack() as stack:

        async def start(clock: Clock | None = None, **overrides: Any) -> RunningBot:
            settings = replace(settings_for(database_url, fake_slack), **overrides)
            bot = build(settings, clock=clock or SystemClock())
            stack.push_async_callback(assert_all_closed, count_connections(bot.db))
            runner = web.AppRunner(bot.web, shutdown_timeout=2)
            stack.push_async_callback(runner.cleanup)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            http = aiohttp.ClientSession()
            stack.push_async_callback(http.close)
            return RunningBot(bot, runner, f"http://127.0.0.1:{port}", http)

        yield start


@dataclass
class ConnectionCount:
    """How many database connections an engine opened and closed."""

    opened: int = 0
    closed: int = 0

    def open_one(self, *_: Any) -> None:
        self.opened += 1

    def close_one(self, *_: Any) -> None:
        self.closed += 1


def count_connections(db: Database) -> ConnectionCount:
    """Count ``db``'s connections (in every pool it has, also those made after a close)."""
    count = ConnectionCount()
    sa.event.listen(db.engine.sync_engine, "connect", count.open_one)
    sa.event.listen(db.engine.sync_engine, "close", count.close_one)
    sa.event.listen(db.engine.sync_engine, "close_detached", count.close_one)
    return count


async def assert_all_closed(count: ConnectionCount) -> None:
    """Fail the test that left a connection open when its bot stopped, rather than the test
    in which the garbage collector later happens to find it."""
    left = count.opened - count.closed
    assert left == 0, f"{left} database connection(s) still open after the bot stopped"


def settings_for(database_url: str, fake: FakeSlack) -> Settings:
    return Settings(
        slack_bot_token=Secret(BOT_TOKEN),
        slack_signing_secret=Secret(SIGNING_SECRET),
        slack_api_url=fake.url,
        database_url=database_url,
        public_url="https://bot.example.com",
        check_allowlist=("127.0.0.1",),
        slack_channel_burst=100,
        slack_channel_rate=100.0,
        secrets_key=Secret(SECRETS_KEY),
    )


def fake_clock(at: str = "2031-01-06T10:00:00") -> FakeClock:
    """A stopped clock. The default lies years ahead of the real one, because APScheduler
    keeps real time: jobs scheduled on the fake clock then never come due mid-test. Tests
    that pick an earlier date schedule nothing within minutes of the real time."""
    return FakeClock(datetime.fromisoformat(at).replace(tzinfo=UTC))


async def eventually(check: Callable[[], Any], within: float = 5.0) -> None:
    """Wait until ``await check()`` is true (the workers run in the same event loop).

    Polls every few milliseconds, so a passing test takes only as long as the work does.
    """
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still not true after {within} s: {check.__name__}")
        await asyncio.sleep(0.005)


async def until_outbox_idle(
    *outboxes: Outbox, within: float = 10.0, also: Callable[[], list[str]] = list
) -> None:
    """Wait until nothing more will be posted unless the test acts, so that a "nothing more
    was posted" check can follow: a late duplicate is then already in Slack's record.

    Idle is: each outbox's dispatcher has looked at the database since this call (two full
    passes seen), no drain is sending, no delivery waits for the processor, and no channel
    free to send has a pending message that is due. On a fake clock, messages waiting for
    the clock to move are not due; on the real clock every pending message counts. ``also``
    names more work in flight. Fails, naming what was still busy, after ``within`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    owners = {outbox.owner for outbox in outboxes}
    clock = outboxes[0].clock
    while True:
        for outbox in outboxes:
            await _two_dispatcher_passes(outbox, deadline)
        due_by = clock.now() if isinstance(clock, FakeClock) else None
        busy = [
            f"{outbox.sending} channel(s) being sent to" for outbox in outboxes if outbox.sending
        ]
        busy += await outbox_activity(outboxes[0].db, owners=owners, due_by=due_by) + also()
        if not busy:
            return
        if loop.time() > deadline:
            raise AssertionError(f"the outbox was still busy after {within} s: {'; '.join(busy)}")
        await asyncio.sleep(0.005)


async def _two_dispatcher_passes(outbox: Outbox, deadline: float) -> None:
    """Return once the dispatcher has run a whole pass that began after this call.

    The dispatcher counts its passes as each begins, so two more than now means the first
    pass that began after this call has finished.
    """
    loop = asyncio.get_running_loop()
    finished = outbox.passes + 2  # the pass under way may have looked before this call
    while outbox.passes < finished:
        outbox.wake()
        if loop.time() > deadline:
            raise AssertionError("the outbox dispatcher did not run (is the outbox stopped?)")
        await asyncio.sleep(0.001)


async def outbox_activity(
    db: Database, *, owners: Collection[str] | None, due_by: datetime | None
) -> list[str]:
    """What in the database says more will be posted (empty when nothing does).

    A lease held by one of ``owners`` (any live lease when None) is a drain in flight; a
    lease held by another owner keeps its channel's messages back until it expires. With
    ``due_by``, a pending message counts only when its channel's oldest one is due by then.
    """
    now = due_by or datetime.now(UTC)
    lease_live = sa.and_(
        col(OutboxChannel.lease_owner).is_not(None), col(OutboxChannel.lease_until) >= now
    )
    ours = col(OutboxChannel.lease_owner).in_(owners) if owners is not None else lease_live
    held_elsewhere = sa.and_(lease_live, sa.not_(ours)) if owners is not None else sa.false()
    head_due = (
        sa.select(col(OutboxMessage.next_attempt_at))
        .where(
            col(OutboxMessage.channel) == col(OutboxChannel.channel),
            col(OutboxMessage.status) == "pending",
        )
        .order_by(col(OutboxMessage.id))
        .limit(1)
        .scalar_subquery()
    )
    waiting = head_due <= due_by if due_by is not None else head_due.is_not(None)
    async with db.sessions() as session:
        received = await session.scalar(
            sa.select(sa.func.count()).where(col(Delivery.status).in_(["received", "processing"]))
        )
        leased = (await session.scalars(sa.select(OutboxChannel.channel).where(ours))).all()
        due = (
            await session.scalars(
                sa.select(OutboxChannel.channel).where(waiting, sa.not_(held_elsewhere))
            )
        ).all()
    busy = [f"{received} delivery(ies) not yet processed"] if received else []
    busy += [f"channel {channel} leased by a sender" for channel in leased]
    busy += [f"channel {channel} has a message due" for channel in due]
    return busy


async def until_bots_idle(*bots: RunningBot, within: float = 10.0) -> None:
    """`until_outbox_idle` for whole bots: their webhook commits written, their trigger runs
    (``/trigger run``, runs a hook started) finished."""
    for running in bots:
        await running.bot.receiver.writer.flush()

    def runs_in_flight() -> list[str]:
        runs = sum(running.bot.background.in_flight for running in bots)
        return [f"{runs} trigger run(s) in flight"] if runs else []

    await until_outbox_idle(
        *(running.bot.outbox for running in bots), within=within, also=runs_in_flight
    )


async def until_database_idle(database_url: str, within: float = 30.0) -> None:
    """`until_outbox_idle` for bots in other processes, seen through their database only:
    no delivery waiting, no live lease (a send in flight), no pending message at all."""
    db = Database(database_url)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while busy := await outbox_activity(db, owners=None, due_by=None):
            if loop.time() > deadline:
                raise AssertionError(f"still busy after {within} s: {'; '.join(busy)}")
            await asyncio.sleep(0.05)
    finally:
        await db.close()
