"""Nothing grows for ever: old rows go, what `log`, replay and threads need stays, the
SQLite file shrinks, and a hook's daily byte budget is answered with 429."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from bot.models import Delivery, Draft, OutboxMessage, SlackEvent
from bot.retention import KEEP_PER_HOOK
from bot.webhooks.verify import sign_generic
from tests.conftest import RunningBot, eventually, fake_clock

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def without_the_hourly_pass(running: RunningBot) -> RunningBot:
    """Stop the background pass: these tests move the clock days and run passes themselves."""
    for task in running.bot.loops:
        if task.get_name() == "retention":
            task.cancel()
    return running


async def generic_hook(running: RunningBot, name: str) -> tuple[str, str]:
    reply = await running.command(f"/hook create {name} preset=generic")
    path = "/hooks/" + reply.split("/hooks/")[1].split("`")[0]
    secret = reply.split("*Secret* (shown once — keep it): `")[1].split("`")[0]
    return path, secret


async def deliver(running: RunningBot, path: str, secret: str, payload: object) -> int:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Signature-256": sign_generic(secret, body)}
    status, _ = await running.post(path, body, headers)
    return status


async def count(running: RunningBot, statement: sa.Select[tuple[int]]) -> int:
    async with running.bot.db.sessions() as session:
        return int((await session.execute(statement)).scalar() or 0)


async def outbox_idle(running: RunningBot) -> bool:
    pending = sa.select(sa.func.count()).where(col(OutboxMessage.status) == "pending")
    return await count(running, pending) == 0


@BOTH
async def test_old_rows_go_and_what_the_log_needs_stays(start_bot) -> None:
    clock = fake_clock()
    running = await without_the_hourly_pass(await start_bot(clock=clock, retention_days=30))
    path, secret = await generic_hook(running, "busy")
    for n in range(30):
        assert await deliver(running, path, secret, {"text": f"old {n}"}) == 202
        clock.advance(60)
    await eventually(lambda: outbox_idle(running))
    clock.advance(timedelta(days=40))
    for n in range(5):
        assert await deliver(running, path, secret, {"text": f"new {n}"}) == 202
    await eventually(lambda: outbox_idle(running))
    async with running.bot.db.transaction() as session:
        session.add(SlackEvent(event_id="Ev-old", received_at=clock.now() - timedelta(days=2)))
        session.add(SlackEvent(event_id="Ev-new", received_at=clock.now()))
        session.add(
            Draft(
                team_id="T0001",
                user_id="U0001",
                channel_id="C0001",
                kind="trigger",
                created_at=clock.now() - timedelta(days=2),
            )
        )

    deliveries = sa.select(sa.func.count()).select_from(Delivery)
    report = await running.bot.retention.run_once()

    assert await count(running, deliveries) == KEEP_PER_HOOK  # 5 new + the newest 15 old
    assert report.deleted["deliveries"] == 35 - KEEP_PER_HOOK
    old_sent = sa.select(sa.func.count()).where(
        col(OutboxMessage.created_at) < clock.now() - timedelta(days=30)
    )
    assert await count(running, old_sent) == 0
    assert report.deleted["outbox"] == 30
    async with running.bot.db.sessions() as session:
        kept_events = (await session.execute(select(SlackEvent.event_id))).scalars().all()
        drafts = (await session.execute(select(Draft.status))).scalars().all()
    assert list(kept_events) == ["Ev-new"]
    assert list(drafts) == ["expired"]
    log = await running.command("/hook log busy")
    assert log.count("• `") == KEEP_PER_HOOK


async def test_unprocessed_deliveries_and_unsent_messages_are_never_deleted(start_bot) -> None:
    clock = fake_clock()
    running = await without_the_hourly_pass(await start_bot(clock=clock, retention_days=1))
    path, secret = await generic_hook(running, "slow")
    await running.command("/hook filter slow true")  # filtered hooks wait for the processor
    await running.bot.deliveries.stop()  # … which is not running
    for n in range(25):
        assert await deliver(running, path, secret, {"n": n}) == 202
    async with running.bot.db.transaction() as session:
        session.add(
            OutboxMessage(
                channel="C0001", text="waiting", created_at=clock.now(), next_attempt_at=clock.now()
            )
        )
    await running.bot.outbox.stop()
    clock.advance(timedelta(days=10))

    await running.bot.retention.run_once()

    received = sa.select(sa.func.count()).where(col(Delivery.status) == "received")
    assert await count(running, received) == 25
    pending = sa.select(sa.func.count()).where(col(OutboxMessage.status) == "pending")
    assert await count(running, pending) == 1


async def test_the_sqlite_file_gives_the_space_back(start_bot, database_url: str) -> None:
    clock = fake_clock()  # stands still: the channel's burst must cover every post
    running = await without_the_hourly_pass(
        await start_bot(clock=clock, retention_days=1, slack_channel_burst=1000)
    )
    path, secret = await generic_hook(running, "big")
    await running.command("/hook set big rate=10000")
    for n in range(120):
        assert await deliver(running, path, secret, {"n": n, "pad": "x" * 60_000}) == 202
    await eventually(lambda: outbox_idle(running))
    file = Path(database_url.removeprefix("sqlite:///"))
    async with running.bot.db.engine.connect() as connection:
        await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    before = file.stat().st_size
    clock.advance(timedelta(days=3))

    report = await running.bot.retention.run_once()
    assert report.deleted["deliveries"] == 120 - KEEP_PER_HOOK

    async with running.bot.db.engine.connect() as connection:
        await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    after = file.stat().st_size
    assert before > 6_000_000
    assert after < before / 3, (before, after)


async def test_a_hooks_daily_byte_budget_is_answered_with_429_until_tomorrow(start_bot) -> None:
    clock = fake_clock("2031-01-06T23:00:00")
    running: RunningBot = await start_bot(clock=clock, webhook_max_bytes_per_day=1 << 20)
    path, secret = await generic_hook(running, "greedy")
    await running.command("/hook set greedy rate=10000")
    statuses = [await deliver(running, path, secret, {"pad": "x" * 200_000}) for _ in range(6)]
    assert statuses == [202, 202, 202, 202, 202, 429]
    body = json.dumps({"pad": "x" * 200_000}).encode()
    headers = {"Content-Type": "application/json", "X-Signature-256": sign_generic(secret, body)}
    async with running.http.post(
        f"{running.base_url}{path}", data=body, headers=headers
    ) as refused:
        assert refused.status == 429
        assert int(refused.headers["Retry-After"]) == 3600  # until midnight UTC
        assert "bytes today" in (await refused.json())["error"]
    clock.advance(timedelta(hours=1))
    assert await deliver(running, path, secret, {"pad": "x" * 200_000}) == 202
