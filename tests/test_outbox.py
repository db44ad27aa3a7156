"""The outbox against the fake Slack over HTTP, with a fake clock driving every wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.db import Database
from bot.devtools.fake_slack import FakeSlack
from bot.models import OutboxChannel, OutboxMessage
from bot.outbox import Message, Outbox, Pacing, enqueue
from bot.status import read_health
from tests.conftest import (
    BOT_TOKEN,
    ConnectionCount,
    assert_all_closed,
    count_connections,
    eventually,
    reset_postgres,
    until_outbox_idle,
)

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@dataclass
class Rig:
    db: Database
    outbox: Outbox
    clock: FakeClock
    fake: FakeSlack
    connections: ConnectionCount

    async def send(self, *messages: Message) -> None:
        async with self.db.transaction() as session:
            for message in messages:
                await enqueue(session, self.clock.now(), message)
        self.outbox.wake()

    async def rows(self) -> list[OutboxMessage]:
        async with self.db.sessions() as session:
            result = await session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))
            return list(result.scalars().all())

    def texts(self, channel: str) -> list[str]:
        return [m["text"] for m in self.fake.messages(channel)]

    def advance(self, seconds: float) -> None:
        """Move the clock, and tell the sender, as the passing of real time would.

        (A fake clock jumps: a sender that computed its next wake-up just before the jump
        would otherwise sleep past it, which real time never makes it do.)
        """
        self.clock.advance(seconds)
        self.outbox.wake()

    async def idle(self) -> None:
        """Wait until the sender has done all it can before the clock moves again."""
        await until_outbox_idle(self.outbox)

    async def close(self) -> None:
        try:
            # Bounds a hang: a send waiting for a token waits for the fake clock to move.
            async with asyncio.timeout(10):
                await self.outbox.stop()
        finally:
            await self.db.close()
        await assert_all_closed(self.connections)


async def make_rig(
    database_url: str, fake: FakeSlack, pacing: Pacing, *, fresh: bool = True
) -> Rig:
    if fresh and database_url.startswith("postgres"):
        await reset_postgres(database_url)
    db = Database(database_url)
    connections = count_connections(db)
    try:
        await db.migrate()
    except BaseException:
        await db.close()
        raise
    clock = FakeClock(datetime(2026, 11, 27, 10, 0, tzinfo=UTC))
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake.url, retry_handlers=[])
    outbox = Outbox(db=db, client=client, clock=clock, pacing=pacing)
    outbox.start()
    return Rig(db, outbox, clock, fake, connections)


@pytest.fixture
async def rig(database_url: str, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    rig = await make_rig(database_url, fake_slack, Pacing(rate=100, burst=100))
    try:
        yield rig
    finally:
        await rig.close()


@BOTH
async def test_messages_keep_their_order_per_channel(rig: Rig) -> None:
    await rig.send(*(Message("C0001", f"general {i}") for i in range(6)))
    await rig.send(*(Message("C0002", f"ops {i}") for i in range(4)))
    await rig.fake.wait_for("chat.postMessage", count=10)
    assert rig.texts("C0001") == [f"general {i}" for i in range(6)]
    assert rig.texts("C0002") == [f"ops {i}" for i in range(4)]

    async def all_sent() -> bool:
        return {row.status for row in await rig.rows()} == {"sent"}

    await eventually(all_sent)


@BOTH
async def test_429_waits_for_retry_after_and_loses_or_repeats_nothing(rig: Rig) -> None:
    rig.fake.fail_next(1, status=429, retry_after=30, method="chat.postMessage")
    await rig.send(*(Message("C0001", f"m{i}") for i in range(3)))
    await rig.fake.wait_for("chat.postMessage", count=1)
    await rig.idle()
    assert rig.texts("C0001") == []
    rig.advance(29)
    await rig.idle()
    assert len(rig.fake.calls_to("chat.postMessage")) == 1, "retried before Retry-After elapsed"
    rig.advance(1.5)
    await rig.fake.wait_for("chat.postMessage", count=4)
    await rig.idle()
    assert rig.texts("C0001") == ["m0", "m1", "m2"]
    assert len(rig.fake.calls_to("chat.postMessage")) == 4
    first = (await rig.rows())[0]
    assert first.attempts == 2 and first.status == "sent"


@BOTH
async def test_5xx_is_retried_with_growing_backoff(rig: Rig) -> None:
    rig.fake.fail_next(2, status=500, method="chat.postMessage")
    await rig.send(Message("C0001", "survives"))
    await rig.fake.wait_for("chat.postMessage", count=1)
    await rig.idle()
    row = (await rig.rows())[0]
    assert row.status == "pending" and "500" in (row.last_error or "")
    assert row.next_attempt_at == rig.clock.now() + timedelta(seconds=1)
    rig.advance(1)
    await rig.fake.wait_for("chat.postMessage", count=2)
    await rig.idle()
    assert (await rig.rows())[0].next_attempt_at == rig.clock.now() + timedelta(seconds=2)
    rig.advance(2)
    await rig.fake.wait_for("chat.postMessage", count=3)
    await rig.idle()
    assert rig.texts("C0001") == ["survives"]
    assert (await rig.rows())[0].status == "sent"


async def test_permanent_error_is_recorded_and_the_channel_moves_on(rig: Rig) -> None:
    rig.fake.fail_next(1, error="invalid_blocks", method="chat.postMessage")
    await rig.send(Message("C0001", "bad"), Message("C0001", "good"))
    await rig.fake.wait_for("chat.postMessage", count=2)
    await rig.idle()
    bad, good = await rig.rows()
    assert (bad.status, bad.last_error) == ("failed", "invalid_blocks")
    assert good.status == "sent"
    assert rig.texts("C0001") == ["good"]


async def test_unknown_channel_fails_with_slacks_reason(rig: Rig) -> None:
    await rig.send(Message("C9999", "nowhere"))
    await rig.fake.wait_for("chat.postMessage")
    await rig.idle()
    (row,) = await rig.rows()
    assert (row.status, row.last_error) == ("failed", "channel_not_found")


async def test_not_in_public_channel_joins_and_retries_once(rig: Rig) -> None:
    rig.fake.add_channel("C0777", "releases", is_private=False, is_member=False)
    await rig.send(Message("C0777", "hello releases"))
    await rig.fake.wait_for("chat.postMessage", count=2)
    await rig.idle()
    assert len(rig.fake.calls_to("conversations.join")) == 1
    assert rig.texts("C0777") == ["hello releases"]


async def test_private_channel_is_not_joined(rig: Rig) -> None:
    rig.fake.add_channel("G0001", "secret", is_private=True, is_member=False)
    await rig.send(Message("G0001", "psst"))
    await rig.fake.wait_for("chat.postMessage")
    await rig.idle()
    (row,) = await rig.rows()
    assert row.status == "failed"
    assert rig.fake.calls_to("conversations.join") == []


async def test_threads_reply_update_root_and_react(rig: Rig) -> None:
    first = Message("C0002", "PR #1 opened", thread_key="pr-1")
    closed = Message(
        "C0002", "PR #1 merged", thread_key="pr-1", updates_root=True, reaction="white_check_mark"
    )
    await rig.send(first)
    await rig.fake.wait_for("chat.postMessage")
    await rig.send(closed)
    await rig.fake.wait_for("reactions.add")
    posts = rig.fake.calls_to("chat.postMessage")
    assert posts[1].args["thread_ts"] is not None
    root_ts = posts[1].args["thread_ts"]
    root = rig.fake.message_by_ts("C0002", root_ts)
    assert root is not None and root["text"] == "PR #1 merged"
    assert rig.fake.calls_to("reactions.add")[0].args["name"] == "white_check_mark"


async def test_thread_mode_off_posts_each_on_its_own(rig: Rig) -> None:
    await rig.send(Message("C0001", "a", thread_key="k", thread_mode="off"))
    await rig.fake.wait_for("chat.postMessage")
    await rig.send(Message("C0001", "b", thread_key="k", thread_mode="off", updates_root=True))
    await rig.fake.wait_for("chat.postMessage", count=2)
    assert all("thread_ts" not in c.args for c in rig.fake.calls_to("chat.postMessage"))
    assert rig.fake.calls_to("chat.update") == []


async def test_pacing_holds_a_burst_to_the_channel_rate(
    database_url: str, fake_slack: FakeSlack
) -> None:
    rig = await make_rig(database_url, fake_slack, Pacing(rate=1, burst=2))
    start = rig.clock.now()

    async def sent(count: int) -> None:
        async def recorded() -> bool:
            return sum(row.status == "sent" for row in await rig.rows()) >= count

        await eventually(recorded)

    try:
        await rig.send(*(Message("C0001", f"p{i}") for i in range(4)))
        await sent(2)  # the burst
        rig.advance(1)  # (each step moves the clock only once the last send is recorded)
        await sent(3)
        rig.advance(1)
        await sent(4)
        await rig.idle()
        when = [(row.text, (row.sent_at - start).total_seconds()) for row in await rig.rows()]
        assert when == [("p0", 0), ("p1", 0), ("p2", 1), ("p3", 2)]
        assert rig.texts("C0001") == ["p0", "p1", "p2", "p3"]
    finally:
        await rig.close()


@BOTH
async def test_unsent_messages_are_sent_after_a_crash(
    database_url: str, fake_slack: FakeSlack
) -> None:
    if database_url.startswith("postgres"):
        await reset_postgres(database_url)
    crashed = Database(database_url)
    try:
        await crashed.migrate()
        now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
        async with crashed.transaction() as session:
            for i in range(3):
                await enqueue(session, now, Message("C0001", f"queued {i}"))
            # The crashed sender held the channel's lease for a while yet.
            await session.execute(
                sa.update(OutboxChannel).values(
                    lease_owner="dead", lease_until=now + timedelta(seconds=20)
                )
            )
    finally:
        await crashed.close()  # the process died before sending anything

    rig = await make_rig(database_url, fake_slack, Pacing(rate=100, burst=100), fresh=False)
    try:
        await rig.idle()
        assert rig.texts("C0001") == []  # the dead process's lease is respected ...
        rig.advance(31)  # ... until it expires
        await rig.fake.wait_for("chat.postMessage", count=3)
        await rig.idle()
        assert rig.texts("C0001") == ["queued 0", "queued 1", "queued 2"]
    finally:
        await rig.close()


async def test_stats_count_pending_and_failed(rig: Rig) -> None:
    rig.fake.fail_next(1, error="channel_not_found", method="chat.postMessage")
    await rig.send(Message("C0001", "x"))
    await rig.fake.wait_for("chat.postMessage")
    await rig.idle()
    stats = await read_health(rig.db, rig.clock.now())
    assert (stats.outbox_pending, stats.outbox_failed) == (0, 1)
    async with rig.db.sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1


@BOTH
async def test_slack_rate_limiting_then_failing_loses_nothing_and_keeps_order(rig: Rig) -> None:
    """Slack answers 429 (Retry-After 30) for 30 s, then 500 for about 10 s, then recovers."""
    rig.fake.fail_next(1, status=429, retry_after=30, method="chat.postMessage")
    rig.fake.fail_next(4, status=500, method="chat.postMessage")  # backoff 1 + 2 + 4 + 8 s
    await rig.send(
        *(Message("C0001", f"a{i}") for i in range(5)),
        *(Message("C0002", f"b{i}") for i in range(5)),
    )
    await rig.fake.wait_for("chat.postMessage", count=1)
    await rig.idle()
    rig.advance(29)
    await rig.idle()
    assert [c.status for c in rig.fake.calls_to("chat.postMessage")].count(429) == 1
    for _ in range(8):  # 30 s of Retry-After, then ~15 s of growing backoff
        rig.advance(8)
        await rig.idle()
    await rig.fake.wait_for("chat.postMessage", count=15, timeout=5)

    async def all_sent() -> bool:
        return {row.status for row in await rig.rows()} == {"sent"}

    await eventually(all_sent)
    await rig.idle()
    assert len(rig.fake.calls_to("chat.postMessage")) == 15  # 1 x 429, 4 x 500, 10 sent once
    assert rig.texts("C0001") == [f"a{i}" for i in range(5)]
    assert rig.texts("C0002") == [f"b{i}" for i in range(5)]
