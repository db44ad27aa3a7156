"""Triggers end to end: /trigger over signed requests, a real target server, the fake Slack.

Runs are driven by calling the runner with the scheduled time while a fake clock stands
still or moves, so no test waits for a real schedule.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.db import Database
from bot.devtools.fake_slack import FakeSlack
from bot.models import Trigger, TriggerRun
from bot.triggers.runner import GRACE, NotRun, RunResult
from bot.triggers.scheduling import CLAIM_AHEAD
from tests.conftest import RunningBot, eventually, fake_clock, fixture_bytes, until_bots_idle


@dataclass
class Target:
    """A site whose health the test controls."""

    status: int = 200
    body: bytes = b"ok"
    content_type: str | None = None
    hits: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    state = Target()

    async def handle(request: web.Request) -> web.Response:
        state.hits.append(request.path)
        if request.path == "/feed":
            return web.Response(body=state.body, content_type="application/rss+xml")
        headers = {"Content-Type": state.content_type} if state.content_type else None
        return web.Response(status=state.status, body=state.body, headers=headers)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield state
    await runner.cleanup()


async def trigger_named(running: RunningBot, name: str) -> Trigger:
    async with running.bot.db.sessions() as session:
        result = await session.execute(select(Trigger).where(col(Trigger.name) == name))
        return result.scalars().one()


async def run_due(running: RunningBot, clock: FakeClock, name: str) -> None:
    """Move the clock to the trigger's next run and run it, as the scheduler would."""
    trigger = await trigger_named(running, name)
    assert trigger.id is not None and trigger.next_run_at is not None
    clock.set(max(clock.now(), trigger.next_run_at))
    await running.bot.triggers.run(trigger.id, trigger.next_run_at)


async def test_down_once_silent_while_down_recovered_once_in_thread(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    reply = await running.command(
        f"/trigger add site every 1m http {target.url}/health <#C0002|ops>"
    )
    assert ("Added *site*" in reply and "every minute" in reply) or "every 1 minute" in reply, reply
    await run_due(running, clock, "site")  # healthy: nothing to say
    target.status = 503
    for _ in range(3):
        await run_due(running, clock, "site")
    (down,) = await fake_slack.wait_for("chat.postMessage")
    assert "down" in down.args["text"] and "503" in down.args["text"]
    target.status = 200
    await run_due(running, clock, "site")
    posts = await fake_slack.wait_for("chat.postMessage", count=2)
    await until_bots_idle(running)
    assert len(fake_slack.calls_to("chat.postMessage")) == 2
    recovered = posts[1]
    assert "recovered" in recovered.args["text"] and recovered.args.get("thread_ts")
    root = fake_slack.message_by_ts("C0002", recovered.args["thread_ts"])
    assert root is not None and "recovered" in root["text"]
    assert len(target.hits) == 5


async def test_retries_suppress_a_blip(start_bot, fake_slack: FakeSlack, target: Target) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await running.command(f"/trigger add site every 1m http {target.url}/ retries=3")
    for status in (200, 503, 200, 503, 503, 200):
        target.status = status
        await run_due(running, clock, "site")
    await until_bots_idle(running)
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_json_condition_crossing_both_ways(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    target.body = fixture_bytes("json/statuspage.status.json")
    reply = await running.command(
        f'/trigger add status every 5m json {target.url}/api when json.status.indicator != "none"'
    )
    assert "Added" in reply, reply
    await run_due(running, clock, "status")
    await until_bots_idle(running)
    assert fake_slack.calls_to("chat.postMessage") == []
    target.body = target.body.replace(b'"indicator":"none"', b'"indicator":"major"').replace(
        b'"indicator": "none"', b'"indicator": "major"'
    )
    await run_due(running, clock, "status")
    await fake_slack.wait_for("chat.postMessage")
    target.body = fixture_bytes("json/statuspage.status.json")
    await run_due(running, clock, "status")
    await fake_slack.wait_for("chat.postMessage", count=2)


async def test_feed_items_posted_once_across_a_restart(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    feed = fixture_bytes("feeds/rss2sample.xml")
    first_item = feed.index(b"<item>")
    target.body = (
        feed[:first_item] + feed[feed.index(b"</item>", first_item) + 7 :]
    )  # one item hidden
    await running.command(f"/trigger add news every 30m rss {target.url}/feed")
    await run_due(running, clock, "news")  # first run: records, posts nothing
    await running.stop()
    again: RunningBot = await start_bot(clock=clock)
    target.body = feed
    await run_due(again, clock, "news")
    (post,) = await fake_slack.wait_for("chat.postMessage")
    assert "Star City" in post.args["text"]
    await run_due(again, clock, "news")
    await until_bots_idle(again)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_message_trigger_runs_in_the_users_time_zone(
    start_bot, fake_slack: FakeSlack
) -> None:
    clock = fake_clock("2026-11-27T06:00:00")
    running: RunningBot = await start_bot(clock=clock)
    reply = await running.command(
        '/trigger add standup every weekday at 9:30 message "Standup in 5 minutes" <#C0002|team>'
    )
    assert "Europe/Berlin" in reply and "09:30" in reply, reply
    trigger = await trigger_named(running, "standup")
    assert trigger.next_run_at == datetime(2026, 11, 27, 8, 30, tzinfo=UTC)  # 09:30 CET
    await run_due(running, clock, "standup")
    (post,) = await fake_slack.wait_for("chat.postMessage")
    assert post.args["text"] == "Standup in 5 minutes" and post.args["channel"] == "C0002"
    trigger = await trigger_named(running, "standup")
    assert trigger.next_run_at == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)  # Monday


async def test_missed_runs_after_downtime_are_reported_not_burst(
    start_bot, fake_slack: FakeSlack
) -> None:
    clock = fake_clock("2026-11-27T06:00:00")
    running: RunningBot = await start_bot(clock=clock)
    await running.command('/trigger add standup every day at 9:00 tz UTC message "Standup"')
    await running.stop()
    clock.set(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))  # down for two and a half days
    again: RunningBot = await start_bot(clock=clock)
    (missed,) = await fake_slack.wait_for("chat.postMessage")
    assert "missed" in missed.args["text"] and "the bot was down" in missed.args["text"]
    trigger = await trigger_named(again, "standup")
    assert trigger.next_run_at == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    await until_bots_idle(again)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_a_run_is_claimed_once(start_bot, fake_slack: FakeSlack) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await running.command('/trigger add ping every 1h message "ping"')
    trigger = await trigger_named(running, "ping")
    assert trigger.id is not None and trigger.next_run_at is not None
    results = await asyncio.gather(
        *(running.bot.triggers.run(trigger.id, trigger.next_run_at) for _ in range(3))
    )
    assert sum(isinstance(result, RunResult) for result in results) == 1
    assert [result for result in results if isinstance(result, NotRun)] == [NotRun("claimed")] * 2


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.7/", "private"),
        ("file:///etc/passwd", "http"),
        ("gopher://example.com/", "http"),
    ],
)
async def test_urls_into_our_own_network_are_refused(start_bot, url: str, reason: str) -> None:
    running: RunningBot = await start_bot()
    reply = await running.command(f"/trigger add sneaky every 5m http {url}")
    assert reason in reply and "Added" not in reply, reply
    assert "No triggers yet" in await running.command("/trigger list")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("add site every fortnight http https://example.com", "fortnight"),
        ("add site every 10s http https://example.com", "minute"),
        ("add site every 5m ftp https://example.com", "http, rss, json"),
        ("add status every 5m json https://example.com/x.json when", "when needs a condition"),
        ("add site every 5m http https://example.com when latency >", "condition"),
    ],
)
async def test_malformed_commands_name_the_part(start_bot, text: str, named: str) -> None:
    running: RunningBot = await start_bot()
    reply = await running.command(f"/trigger {text}")
    assert (named in reply and "Example" in reply) or "example" in reply.lower(), reply
    assert "Added" not in reply


async def test_list_show_pause_resume_delete_history(start_bot, target: Target) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await running.command(f"/trigger add site every 5m http {target.url}/")
    await run_due(running, clock, "site")
    assert "site" in await running.command("/trigger list")
    shown = await running.command("/trigger show site")
    assert "Next runs" in shown and "every 5 minutes" in shown
    assert "ok" in await running.command("/trigger history site")
    assert "Paused" in await running.command("/trigger pause site")
    assert (
        running.bot.scheduling.scheduler.get_job(
            f"trigger:{(await trigger_named(running, 'site')).id}"
        )
        is None
    )
    assert "Resumed" in await running.command("/trigger resume site")
    assert "Muted" in await running.command("/trigger mute site 2h")
    assert "Deleted" in await running.command("/trigger delete site")
    async with running.bot.db.sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Trigger)) == 0


async def test_trigger_run_tells_the_user_privately(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    running: RunningBot = await start_bot()
    await running.command(f"/trigger add site every 5m http {target.url}/")
    assert "Running" in await running.command("/trigger run site")
    (ephemeral,) = await fake_slack.wait_for("chat.postEphemeral")
    assert ephemeral.args["user"] == "U0001" and "HTTP 200" in ephemeral.args["text"]


async def test_a_run_missed_within_the_grace_period_runs_once_at_start_up(
    start_bot, fake_slack: FakeSlack, database_url: str
) -> None:
    # The real clock: APScheduler, which fires the caught-up run, keeps real time.
    running: RunningBot = await start_bot()
    await running.command('/trigger add ping every 1h message "ping" <#C0002|ops>')
    await running.stop()
    missed = datetime.now(UTC) - GRACE + timedelta(minutes=1)  # down a little under GRACE
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            await session.execute(
                sa.update(Trigger).where(col(Trigger.name) == "ping").values(next_run_at=missed)
            )
    finally:
        await db.close()
    again: RunningBot = await start_bot()
    (post,) = await fake_slack.wait_for("chat.postMessage", timeout=10)
    assert post.args["text"] == "ping" and post.args["channel"] == "C0002"
    trigger = await trigger_named(again, "ping")
    assert trigger.next_run_at is not None and trigger.next_run_at > datetime.now(UTC)
    await until_bots_idle(again)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # run once, not reported missed


async def test_a_delivery_runs_the_hooks_trigger(start_bot, target: Target) -> None:
    # A fake clock: on the real one the new check's first run would start at once too.
    running: RunningBot = await start_bot(clock=fake_clock())
    await running.command(f"/trigger add smoke every 1h http {target.url}/smoke")
    reply = await running.command("/hook create deploys preset=generic secret=deploy-secret-1")
    path = reply.split("https://bot.example.com", 1)[1].split("`", 1)[0]
    assert "no trigger named" in await running.command("/hook set deploys run=nope")
    assert "Updated" in await running.command("/hook set deploys run=smoke")
    body = b'{"event": "deploy.finished"}'
    status, _ = await running.post(
        path, body, {"Content-Type": "application/json", "Authorization": "Bearer deploy-secret-1"}
    )
    assert status == 202

    async def checked() -> bool:
        return bool(target.hits)

    await eventually(checked)
    await until_bots_idle(running)
    assert target.hits == ["/smoke"]


async def test_mute_reports_nothing_then_summarises(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await running.command(f"/trigger add site every 1m http {target.url}/")
    await run_due(running, clock, "site")
    assert "Muted" in await running.command("/trigger mute site 30m")
    target.status = 503
    for _ in range(5):
        await run_due(running, clock, "site")
    target.status = 200
    for _ in range(5):
        await run_due(running, clock, "site")
    await until_bots_idle(running)
    assert fake_slack.calls_to("chat.postMessage") == []
    clock.advance(timedelta(minutes=30))
    await run_due(running, clock, "site")
    (summary,) = await fake_slack.wait_for("chat.postMessage")
    assert "muted" in summary.args["text"] and "down" in summary.args["text"]


async def test_a_flapping_target_is_reported_once(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await running.command(f"/trigger add site every 1m http {target.url}/")
    for minute in range(30):
        target.status = 503 if minute % 2 else 200
        await run_due(running, clock, "site")
    await until_bots_idle(running)
    texts = [c.args["text"] for c in fake_slack.calls_to("chat.postMessage")]
    assert sum("flapping" in text for text in texts) == 1
    assert len(texts) <= 6, texts  # a few changes before it is called flapping, then silence


async def test_a_non_owner_cannot_delete_a_trigger(start_bot, fake_slack: FakeSlack) -> None:
    fake_slack.add_user("U0002", tz="UTC")
    running: RunningBot = await start_bot()
    await running.command('/trigger add ping every 1h message "ping"')
    assert "Only <@U0001>" in await running.command("/trigger delete ping", user="U0002")
    assert "ping" in await running.command("/trigger list", user="U0002")
    assert "Deleted" in await running.command("/trigger delete ping")


async def test_a_server_naming_a_non_text_charset_cannot_stall_its_check(
    start_bot, target: Target
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    target.body, target.content_type = b'{"status": "up"}', "application/json; charset=idna"
    await running.command(
        f'/trigger add api every 5m json {target.url}/api when json.status != "up"'
    )
    await run_due(running, clock, "api")
    history = await running.command("/trigger history api")
    assert "*ok*" in history and "running" not in history


async def test_the_creator_hears_when_a_triggers_channel_is_gone(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("C0777", "old-team", is_private=True)
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    assert "Added" in await running.command(
        '/trigger add ping every 1h message "ping" <#C0777|old-team>'
    )
    fake_slack.add_channel("C0777", "old-team", is_private=True, is_member=False)  # removed
    await run_due(running, clock, "ping")
    refused, notice = await fake_slack.wait_for("chat.postMessage", count=2)
    assert refused.error == "channel_not_found"
    assert notice.args["channel"] == "U0001" and notice.error is None
    assert "trigger *ping*" in notice.args["text"] and "/trigger edit ping" in notice.args["text"]


async def test_a_check_reads_no_more_than_check_max_bytes(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock, check_max_bytes=2048)
    target.body = b"x" * 11_248 + b"maintenance" + b"x" * 100
    await running.command(
        f'/trigger add site every 5m http {target.url}/ when body contains "maintenance"'
    )
    await run_due(running, clock, "site")
    (run,) = [line for line in (await running.command("/trigger history site")).splitlines()[1:]]
    assert "*ok*" in run  # the word lies past the 2,048 bytes the check may read
    target.body = b"maintenance" + b"x" * 11_248
    await run_due(running, clock, "site")
    (down,) = await fake_slack.wait_for("chat.postMessage")
    assert "condition held" in down.args["text"]


async def test_an_interval_counts_from_the_first_check_then_keeps_its_rhythm(
    start_bot, target: Target
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await running.command(f"/trigger add site every 5m http {target.url}/")
    created = (await trigger_named(running, "site")).next_run_at
    assert created is not None
    clock.advance(3)  # the first check starts 3 s after the trigger was created
    first = await trigger_named(running, "site")
    assert first.id is not None
    await running.bot.triggers.run(first.id, created)
    second_due = (await trigger_named(running, "site")).next_run_at
    assert second_due == created + timedelta(minutes=5, seconds=3)
    clock.set(second_due + timedelta(seconds=2))  # a late run does not move the rhythm
    await running.bot.triggers.run(first.id, second_due)
    third_due = (await trigger_named(running, "site")).next_run_at
    assert third_due == second_due + timedelta(minutes=5)


async def test_a_run_claimed_ahead_checks_when_it_is_due(start_bot, target: Target) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await running.command(f"/trigger add site every 5m http {target.url}/")
    await run_due(running, clock, "site")
    trigger = await trigger_named(running, "site")
    assert trigger.id is not None and trigger.next_run_at is not None
    clock.set(trigger.next_run_at - timedelta(seconds=1))
    hits = len(target.hits)
    run = asyncio.create_task(
        running.bot.triggers.run(trigger.id, trigger.next_run_at, not_before=trigger.next_run_at)
    )

    async def claimed() -> bool:
        async with running.bot.db.sessions() as session:
            found = await session.execute(
                select(TriggerRun).where(col(TriggerRun.scheduled_for) == trigger.next_run_at)
            )
            return found.first() is not None

    await eventually(claimed)  # claimed ahead, then waiting for its time: no request yet
    assert len(target.hits) == hits and not run.done()
    clock.set(trigger.next_run_at)
    assert isinstance(await run, RunResult)
    assert len(target.hits) == hits + 1


async def test_resync_puts_every_job_back_in_line_with_its_row(start_bot, target: Target) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    for name in ("kept", "lost", "moved"):
        await running.command(f"/trigger add {name} every 5m http {target.url}/{name}")
    scheduling = running.bot.scheduling
    lost, moved = await trigger_named(running, "lost"), await trigger_named(running, "moved")
    assert lost.id is not None and moved.id is not None and moved.next_run_at is not None
    scheduling.scheduler.remove_job(f"trigger:{lost.id}")  # a NOTIFY that never came
    later = moved.next_run_at + timedelta(minutes=2)
    async with running.bot.db.transaction() as session:  # edited by another replica
        await session.execute(
            sa.update(Trigger).where(col(Trigger.id) == moved.id).values(next_run_at=later)
        )
    scheduling.scheduler.add_job(lambda: None, "date", run_date=later, id="trigger:999999")
    await scheduling.resync()
    jobs = {job.id: job.next_run_time for job in scheduling.scheduler.get_jobs()}
    kept = await trigger_named(running, "kept")
    assert set(jobs) == {f"trigger:{t.id}" for t in (kept, lost, moved)}
    assert jobs[f"trigger:{moved.id}"] == later - CLAIM_AHEAD
    assert lost.next_run_at is not None
    assert jobs[f"trigger:{lost.id}"] == lost.next_run_at - CLAIM_AHEAD


async def test_a_first_run_on_schedule_keeps_the_schedules_rhythm(start_bot) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await running.command('/trigger add ping every 5m message "ping" <#C0002|ops>')
    trigger = await trigger_named(running, "ping")
    assert trigger.id is not None and trigger.next_run_at is not None
    assert trigger.next_run_at == trigger.created_at + timedelta(minutes=5)  # not at once
    clock.set(trigger.next_run_at + timedelta(seconds=3))  # a late first run
    await running.bot.triggers.run(trigger.id, trigger.next_run_at)
    after = await trigger_named(running, "ping")
    assert after.next_run_at == trigger.next_run_at + timedelta(minutes=5)
