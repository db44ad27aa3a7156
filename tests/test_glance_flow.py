"""State at a glance end to end: runs made by the real runner against a loopback target on
a fake clock, hook requests over HTTP, then `/trigger show`, `/hook show`, a recovery
message and the App Home as the fake Slack receives them."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiohttp import web
from alembic import command
from sqlmodel import col, select

from bot.conversation.home import Glances, home_view
from bot.db import Database, alembic_config
from bot.devtools.fake_slack import FakeSlack
from bot.glance import (
    HOUR,
    ROLLUP_RETENTION,
    SQUARES,
    BucketState,
    HourlyRollup,
    LatencyHistogram,
    hour_start,
    traffic_drawing,
    trigger_drawing,
    window_start,
)
from bot.models import Trigger, TriggerRollup, TriggerRun
from bot.slack.blocks import SECTION_TEXT_MAX
from bot.triggers.evaluate import Announcement
from bot.triggers.messages import announcement_message
from bot.webhooks.verify import sign_generic
from tests.conftest import RunningBot, fake_clock, fixture_json, reset_postgres, until_bots_idle
from tests.test_views import assert_blocks_ok, assert_view_ok, hook, trigger

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
HOME_OPENED = fixture_json("slack/app_home_opened.json")
OK, DOWN, NO_DATA = (SQUARES[s] for s in (BucketState.OK, BucketState.DOWN, BucketState.NO_DATA))


@dataclass
class Target:
    """A site whose health the test controls."""

    status: int = 200
    hits: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    state = Target()

    async def handle(request: web.Request) -> web.Response:
        state.hits.append(request.path)
        return web.Response(status=state.status, text="ok")

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


async def run_due(running: RunningBot, clock, name: str) -> None:
    """Move the clock to the trigger's next run and run it, as the scheduler would."""
    trigger = await trigger_named(running, name)
    assert trigger.id is not None and trigger.next_run_at is not None
    clock.set(max(clock.now(), trigger.next_run_at))
    await running.bot.triggers.run(trigger.id, trigger.next_run_at)


async def open_home(running: RunningBot, fake_slack: FakeSlack, count: int = 1) -> str:
    envelope = copy.deepcopy(HOME_OPENED)
    envelope["team_id"] = "T0001"
    envelope["event_id"] = f"Ev-home-{count}"
    envelope["event"] |= {"tab": "home", "user": "U0001"}
    await running.event(envelope)
    published = await fake_slack.wait_for("views.publish", count=count)
    return json.dumps(published[-1].args["view"], ensure_ascii=False)


@BOTH
async def test_a_check_down_for_2_of_the_last_24_hours_shows_exactly_those_buckets_red(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await running.command(f"/trigger add site every 1h http {target.url}/health <#C0002|ops>")
    for hour in range(24):
        target.status = 503 if hour in (12, 13) else 200
        await run_due(running, clock, "site")
    assert len(target.hits) == 24

    shown = await running.command("/trigger show site")
    bar = OK * 12 + DOWN * 2 + OK * 10
    assert f"{bar} down 2 of the last 24 hours (" in shown, shown
    assert "*Uptime:* 24 h 91.7% · 7 d 91.7% · 30 d 91.7%" in shown, shown
    latency = next(line for line in shown.splitlines() if line.startswith("*Latency"))
    assert " p50 " in latency and " · p95 " in latency and " ms" in latency, latency
    assert "(hourly medians: low " in latency, latency  # the sparkline in words
    assert any(bar_char in latency for bar_char in "▁▂▃▄▅▆▇█"), latency

    # The recovery said the same, in words in its notification text and drawn in its block.
    posts = await fake_slack.wait_for("chat.postMessage", count=2)
    recovered = posts[1].args
    assert "recovered" in recovered["text"], recovered
    assert "down 2 of the last 24 hours (<!date^" in recovered["text"], recovered["text"]
    drawn = json.dumps(recovered["blocks"], ensure_ascii=False)
    # At the recovery (the 15th run) the window began 9 hours before the first run.
    assert NO_DATA * 9 + OK * 12 + DOWN * 2 + OK + " down 2 of" in drawn, drawn

    home = await open_home(running, fake_slack)
    assert bar in home and "91.7%" in home and "p95" in home, home
    await until_bots_idle(running)


async def test_a_message_trigger_shows_no_uptime(start_bot) -> None:
    running: RunningBot = await start_bot(clock=fake_clock())
    await running.command('/trigger add standup every weekday at 9:30 message "Standup!"')
    shown = await running.command("/trigger show standup")
    assert "*Uptime:*" not in shown and "*Latency" not in shown, shown


async def test_a_new_check_says_it_has_no_runs_yet(start_bot, target: Target) -> None:
    running: RunningBot = await start_bot(clock=fake_clock())
    await running.command(f"/trigger add site every 1h http {target.url}/health")
    shown = await running.command("/trigger show site")
    assert "*Uptime:* no runs yet" in shown, shown


@BOTH
async def test_roll_ups_outlive_the_raw_runs_for_90_days(start_bot, target: Target) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    for task in running.bot.loops:  # this test runs the passes itself
        if task.get_name() == "retention":
            task.cancel()
    await running.command(f"/trigger add site every 1m http {target.url}/health")
    trigger = await trigger_named(running, "site")
    assert trigger.id is not None
    first = clock.now()
    await running.bot.triggers.run(trigger.id, first)
    clock.advance(ROLLUP_RETENTION - timedelta(hours=1))
    second = clock.now()
    await running.bot.triggers.run(trigger.id, second)
    clock.advance(timedelta(hours=2))  # the first hour ended exactly 90 days ago
    await running.bot.retention.run_once()
    assert await stored_hours(running) == [hour_start(first), hour_start(second)]

    clock.advance(timedelta(minutes=1))
    await running.bot.retention.run_once()
    assert await stored_hours(running) == [hour_start(second)]
    # /trigger show still counts the newer hour.
    shown = await running.command("/trigger show site")
    assert "30 d 100%" in shown, shown


@BOTH
async def test_the_week_and_the_month_count_their_own_runs(start_bot, target: Target) -> None:
    clock = fake_clock()
    now = clock.now() + timedelta(days=20)  # the clock only moves forward
    running: RunningBot = await start_bot(clock=clock)
    await running.command(f"/trigger add site every 1h http {target.url}/health")
    trigger = await trigger_named(running, "site")
    assert trigger.id is not None
    for ago, status in [(20 * 24, 503), (3 * 24, 503), (3 * 24 - 1, 200), (1, 200), (0, 200)]:
        clock.set(now - timedelta(hours=ago))
        target.status = status
        await running.bot.triggers.run(trigger.id, clock.now())
    shown = await running.command("/trigger show site")
    assert "*Uptime:* 24 h 100% · 7 d 75.0% · 30 d 60.0%" in shown, shown


async def stored_hours(running: RunningBot) -> list:
    async with running.bot.db.sessions() as session:
        rows = await session.execute(sa.select(TriggerRollup.hour).order_by(TriggerRollup.hour))
        return list(rows.scalars())


@BOTH
async def test_runs_of_one_hour_saved_at_once_are_all_counted(
    start_bot, target: Target, database_url: str
) -> None:
    """On PostgreSQL by two replicas at once; SQLite has one process, which saves runs
    that finish together in one round and later ones into the stored hour."""
    clock = fake_clock()
    one: RunningBot = await start_bot(clock=clock)
    two = await start_bot(clock=clock) if database_url.startswith("postgres") else one
    await one.command(f"/trigger add site every 1m http {target.url}/health")
    trigger = await trigger_named(one, "site")
    assert trigger.id is not None
    hour = hour_start(clock.now())
    clock.advance(timedelta(minutes=59))  # every run below is due by now
    for n in range(0, 40, 2):  # each replica saves a run of the hour at the same time
        await asyncio.gather(
            one.bot.triggers.run(trigger.id, hour + timedelta(seconds=n)),
            two.bot.triggers.run(trigger.id, hour + timedelta(seconds=n + 1)),
        )
    async with one.bot.db.sessions() as session:
        stored = (await session.execute(select(TriggerRollup))).scalars().all()
        raw = await session.scalar(sa.select(sa.func.count()).select_from(TriggerRun))
    assert raw == 40
    assert [(row.hour, row.runs) for row in stored] == [(hour, 40)]


@BOTH
async def test_hook_deliveries_per_hour_and_the_share_that_failed_verification(
    start_bot, fake_slack: FakeSlack
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    reply = await running.command("/hook create busy preset=generic <#C0002|ops>")
    path = "/hooks/" + reply.split("/hooks/")[1].split("`")[0]
    secret = reply.split("*Secret* (shown once — keep it): `")[1].split("`")[0]

    async def deliver(n: int, *, forged: bool = False) -> int:
        body = json.dumps({"text": f"event {n}"}).encode()
        signature = sign_generic("not-the-secret" if forged else secret, body)
        headers = {"Content-Type": "application/json", "X-Signature-256": signature}
        status, _ = await running.post(path, body, headers)
        return status

    clock.advance(timedelta(hours=-3))
    assert [await deliver(n) for n in range(2)] == [202, 202]
    clock.advance(timedelta(hours=3))
    assert [await deliver(n) for n in range(2, 7)] == [202] * 5
    assert await deliver(7, forged=True) == 401

    shown = await running.command("/hook show busy")
    # 24 hourly counts from zero: 2 three hours ago (2/5 of the height), 5 now (full).
    deliveries = "▁" * 20 + "▄▁▁█ 7 in all (hourly: low 0, high 5, latest 5)"
    assert f"*Deliveries, last 24 h:* {deliveries}" in shown, shown
    assert "*Failed verification:* 12.5% (1 refused)" in shown, shown
    assert "*Rejected requests:* 1" in shown, shown

    home = await open_home(running, fake_slack)
    assert "▄▁▁█ 7 in all" in home and "12.5%" in home, home
    await until_bots_idle(running)


async def test_forged_requests_cost_no_write_each(start_bot) -> None:
    """A flood of forged requests is counted in memory and written once."""
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    reply = await running.command("/hook create busy preset=generic")
    path = "/hooks/" + reply.split("/hooks/")[1].split("`")[0]
    writes: list[str] = []

    def count_write(_conn, _cursor, statement: str, *_args) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            writes.append(statement)

    engine = running.bot.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", count_write)
    try:
        for n in range(30):
            body = json.dumps({"n": n}).encode()
            headers = {"Content-Type": "application/json", "X-Signature-256": "sha256=00"}
            assert (await running.post(path, body, headers))[0] == 401
        assert writes == []
        await running.bot.receiver.writer.traffic.flush()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count_write)
    assert len(writes) == 2, writes  # one upsert of the hour's counts, one of the total
    assert "*Rejected requests:* 30" in await running.command("/hook show busy")


@BOTH
async def test_a_report_charts_a_value_over_its_last_runs(start_bot, fake_slack: FakeSlack) -> None:
    totals: list[int] = []

    async def sales(_request: web.Request) -> web.Response:
        return web.json_response({"total": totals[-1]})

    app = web.Application()
    app.router.add_get("/sales", sales)
    server = web.AppRunner(app)
    await server.setup()
    await web.TCPSite(server, "127.0.0.1", 0).start()
    try:
        clock = fake_clock()
        running: RunningBot = await start_bot(clock=clock)
        url = f"http://127.0.0.1:{server.addresses[0][1]}/sales"
        await running.command(f"/trigger add sales every 1h json {url} <#C0002|ops>")
        template = (
            "Sales {{ json.total }} {{ history('json.total', 3)|sparkline(low=0) }} "
            "({{ history('json.total', 3)|join(' → ') }})"
        )
        reply = await running.command(f"/trigger template sales {template}")
        assert "now posts a report" in reply, reply
        for total in (10, 20, 40, 80):
            totals.append(total)
            await run_due(running, clock, "sales")
        posted = [call.args["text"] for call in await fake_slack.wait_for("chat.postMessage", 4)]
        # From zero: 10 of 10 is full height; 10, 20 of 20 half and full; and so on.
        assert posted == [
            "Sales 10 █ (10)",
            "Sales 20 ▅█ (10 → 20)",
            "Sales 40 ▃▅█ (10 → 20 → 40)",
            "Sales 80 ▃▅█ (20 → 40 → 80)",
        ], posted
        await until_bots_idle(running)
    finally:
        await server.cleanup()


@BOTH
async def test_the_upgrade_rolls_up_the_runs_already_stored(database_url: str) -> None:
    if database_url.startswith("postgres"):
        await reset_postgres(database_url)
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0012"))
            await conn.execute(
                sa.text(
                    "INSERT INTO trigger (id, team_id, name, channel_id, kind, schedule, options,"
                    " settings, state, routes, paused, created_by, created_at, incident)"
                    " VALUES (7, 'T', 'site', 'C', 'http', '{}', '{}', '{}', '{}', '[]', false,"
                    " 'U', :at, 0)"
                ),
                {"at": datetime(2031, 1, 1)},
            )
            runs = [("10:05", "ok", 80.0), ("10:35", "problem", 120.0), ("11:05", "ok", 90.0)]
            runs += [("11:35", "running", 0.0)]  # unfinished: not counted
            for at, outcome, took in runs:
                await conn.execute(
                    sa.text(
                        "INSERT INTO trigger_run (trigger_id, scheduled_for, started_at,"
                        " duration_ms, outcome, summary) VALUES (7, :at, :at, :ms, :outcome, '')"
                    ),
                    {
                        "at": datetime.fromisoformat(f"2031-01-01T{at}"),
                        "ms": took,
                        "outcome": outcome,
                    },
                )
        await db.migrate()
        async with db.sessions() as session:
            stored = (await session.execute(select(TriggerRollup))).scalars().all()
    finally:
        await db.close()
    assert [(row.hour.hour, row.runs, row.problems) for row in stored] == [(10, 2, 1), (11, 1, 0)]
    assert stored[0].latency["min"] == 80.0 and stored[0].latency["max"] == 120.0


def _busiest_month(now: datetime) -> list[HourlyRollup]:
    """30 days of hours, every one with runs, problems and a wide spread of latencies."""
    first = window_start(now, 24 * 30)
    return [
        HourlyRollup(
            first + n * HOUR,
            60,
            n % 61,
            LatencyHistogram.of([0.3, 1.0 + n, 900.0 * (n % 7), 125_000.0 + n]),
        )
        for n in range(24 * 30)
    ]


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") in ("mrkdwn", "plain_text") else []
        return own + [text for value in node.values() for text in _texts(value)]
    if isinstance(node, list):
        return [text for value in node for text in _texts(value)]
    return []


def test_every_drawing_fits_block_kit_whole() -> None:
    now = datetime(2031, 1, 6, 10, 30, tzinfo=UTC)
    drawing = trigger_drawing(_busiest_month(now), now, ZoneInfo("Asia/Kolkata"))
    traffic = traffic_drawing([10**12] * 24, [10**12 - 1] * 24)
    ids = range(1, 201)
    view = home_view(
        [hook(i) for i in ids],
        [trigger(i) for i in ids],
        states={},
        next_runs={},
        glances=Glances(dict.fromkeys(ids, drawing), dict.fromkeys(ids, traffic)),
    )
    assert_view_ok(view)
    texts = _texts(view["blocks"])
    assert all(len(text) <= SECTION_TEXT_MAX for text in texts)
    shown = "\n".join(texts)
    assert all(line in shown for line in (*drawing.lines, *traffic.lines))  # none cut

    site = trigger(1)
    recovered = Announcement("recovered", "x" * 2000 + " recovered", follows_up=True)
    message = announcement_message(site, recovered, 1, drawing)
    assert message.blocks is not None
    assert_blocks_ok(message.blocks)
    assert all(len(text) <= SECTION_TEXT_MAX for text in _texts(message.blocks))
    assert all(line in message.blocks[0]["text"]["text"] for line in drawing.lines)
    assert message.text.endswith(drawing.words) and "🟥" not in drawing.words


async def test_request_counts_are_written_when_the_bot_stops(start_bot) -> None:
    clock = fake_clock()
    first: RunningBot = await start_bot(clock=clock)
    reply = await first.command("/hook create busy preset=generic")
    path = "/hooks/" + reply.split("/hooks/")[1].split("`")[0]
    secret = reply.split("*Secret* (shown once — keep it): `")[1].split("`")[0]
    body = b'{"text": "hello"}'
    signed = {"Content-Type": "application/json", "X-Signature-256": sign_generic(secret, body)}
    assert (await first.post(path, body, signed))[0] == 202
    forged = signed | {"X-Signature-256": sign_generic("not-the-secret", body)}
    assert (await first.post(path, body, forged))[0] == 401
    await first.stop()  # within the minute: nothing written yet but what stopping writes
    shown = await (await start_bot(clock=clock)).command("/hook show busy")
    assert "▁▁█ 1 in all" in shown and "*Failed verification:* 50.0% (1 refused)" in shown, shown
    assert "*Rejected requests:* 1" in shown, shown
