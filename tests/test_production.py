"""Running in production: metrics, readiness, self-status, leadership, replicas on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from bot.devtools.fake_slack import FakeSlack
from bot.webhooks.verify import sign_github
from tests.conftest import RunningBot, eventually, fake_clock, fixture_bytes, until_bots_idle

POSTGRES = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


async def github_hook(running: RunningBot, name: str = "gh") -> tuple[str, str]:
    reply = await running.command(f"/hook create {name} preset=github")
    path = re.search(r"https://bot\.example\.com(/hooks/[\w-]+)", reply)
    secret = re.search(r"keep it\): `([^`]+)`", reply)
    assert path and secret, reply
    return path.group(1), secret.group(1)


def push(secret: str, delivery: str, body: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    body = body or fixture_bytes("github/push.json")
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign_github(secret, body),
    }
    return body, headers


async def get(running: RunningBot, path: str) -> tuple[int, str]:
    async with running.http.get(f"{running.base_url}{path}") as response:
        return response.status, await response.text()


async def test_metrics_count_webhooks_and_slack_calls(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    path, secret = await github_hook(running)
    await running.post(path, *push(secret, "d1"))
    await running.post(path, *push(secret, "d1"))
    await running.post(path, *push("wrong", "d2"))
    await fake_slack.wait_for("chat.postMessage")
    status, text = await get(running, "/metrics")
    assert status == 200
    assert 'chatops_webhooks_total{hook="gh",outcome="accepted"} 1.0' in text
    assert 'chatops_webhooks_total{hook="gh",outcome="duplicate"} 1.0' in text
    assert 'chatops_webhooks_total{hook="gh",outcome="rejected"} 1.0' in text
    assert 'chatops_slack_api_calls_total{method="chat_postMessage",outcome="ok"}' in text
    assert "chatops_outbox_pending" in text and "chatops_scheduler_leader 1.0" in text


async def test_readyz_checks_database_migrations_and_slack(
    start_bot, fake_slack: FakeSlack
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    status, text = await get(running, "/readyz")
    ready = {"status": "ready", "database": "ok", "migrations": "ok", "slack": "ok"}
    assert status == 200 and json.loads(text) == ready
    fake_slack.fail_next(1, error="invalid_auth", method="auth.test")
    assert (await get(running, "/readyz"))[0] == 200  # Slack is asked at most every 10 s
    clock.advance(11)
    status, text = await get(running, "/readyz")
    assert status == 503 and json.loads(text)["slack"] == "failing"


async def test_database_outage_gives_503_not_202(start_bot) -> None:
    running: RunningBot = await start_bot()
    path, secret = await github_hook(running)
    healthy = running.bot.db.engine
    # The database goes away: every new connection is refused.
    running.bot.db.engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    running.bot.db.sessions.configure(bind=running.bot.db.engine)
    running.bot.receiver.hooks.forget(path.rsplit("/", 1)[1])
    try:
        status, _ = await get(running, "/healthz")
        assert status == 503
        status, answer = await running.post(path, *push(secret, "outage"))
        assert status == 503 and "retry" in answer["error"]
    finally:
        await running.bot.db.engine.dispose()
        running.bot.db.engine = healthy
        running.bot.db.sessions.configure(bind=healthy)
    status, _ = await running.post(path, *push(secret, "outage"))
    assert status == 202  # the sender's retry is accepted once the database is back


async def test_trigger_status_reports_the_bot_itself(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    path, secret = await github_hook(running)
    await running.post(path, *push(secret, "s1"))
    await fake_slack.wait_for("chat.postMessage")
    reply = await running.command("/trigger status")
    assert "Scheduler: runs here" in reply and "Outbox:" in reply and "Overdue triggers: 0" in reply
    assert "Last webhook received: 20" in reply


@POSTGRES
async def test_two_replicas_share_the_work_and_post_each_delivery_once(
    start_bot, fake_slack: FakeSlack
) -> None:
    first: RunningBot = await start_bot(slack_channel_rate=1000.0, slack_channel_burst=1000)
    second: RunningBot = await start_bot(slack_channel_rate=1000.0, slack_channel_burst=1000)
    path, secret = await github_hook(first)
    deliveries = [f"r{i}" for i in range(200)]

    async def send(n: int, delivery: str) -> int:
        replica = (first, second)[n % 2]
        status, _ = await replica.post(path, *push(secret, delivery))
        return status

    statuses = await asyncio.gather(*(send(n, d) for n, d in enumerate(deliveries)))
    assert set(statuses) == {202}
    await fake_slack.wait_for("chat.postMessage", count=200, timeout=30)
    await until_bots_idle(first, second)
    assert len(fake_slack.calls_to("chat.postMessage")) == 200
    # Exactly one replica leads the scheduler.
    assert first.bot.leadership.is_leader != second.bot.leadership.is_leader


@POSTGRES
async def test_a_change_through_a_follower_reaches_the_leader(start_bot) -> None:
    first: RunningBot = await start_bot()
    await eventually(_is_leader(first))
    second: RunningBot = await start_bot()
    assert not second.bot.leadership.is_leader
    await second.command('/trigger add ping every 1h message "ping"')

    async def leader_scheduled() -> bool:
        return any(
            job.id.startswith("trigger:") for job in first.bot.scheduling.scheduler.get_jobs()
        )

    await eventually(leader_scheduled, within=3)
    assert second.bot.scheduling.scheduler.get_jobs() == []


def _is_leader(running: RunningBot):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return running.bot.leadership.is_leader

    return check
