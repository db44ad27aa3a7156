"""Reports from data end to end: the bot on a real port, signed slash commands, the fake
Slack, and loopback APIs that answer as real ones do (bearer tokens, 401 without one,
pages linked by ``Link`` headers and by JSON cursors, a CSV export with a BOM and quoted
fields, a 503). Runs are driven at their scheduled times on a fake clock.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlmodel import col

from bot.devtools.fake_slack import FakeSlack
from bot.formatting import BLOCKS_TEXT_MAX
from bot.models import TriggerItem
from bot.retention import TRIGGER_ITEM_DAYS
from bot.slack.blocks import MAX_BLOCKS, SECTION_TEXT_MAX
from tests.conftest import RunningBot, fake_clock, until_bots_idle
from tests.test_retention import without_the_hourly_pass
from tests.test_triggers_flow import run_due, trigger_named

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
SHOP_TOKEN = "shop-token-4f9a2c7e1b"
CRM_TOKEN = "crm-token-8d3e5a1f6c"
BERLIN = ZoneInfo("Europe/Berlin")
SALES_TEMPLATE = (
    "*Sales {{ json.date|date('%A') }}:* {{ json.total|money('EUR') }} from "
    "{{ json.orders|number }} orders ({{ json.total|change(previous.total) }})"
)
LEADS_TEMPLATE = "New lead: *{{ item.name }}* ({{ item.company }}) {{ item.email }}"
# What Slack sends for text that looks like a domain (".date", ".name", ".email" are TLDs).
_LOOKS_LIKE_A_DOMAIN = re.compile(r"\b(json\.date|item\.name|item\.company|item\.email)\b")


def as_slack_sends(text: str) -> str:
    """``text`` as it reaches the bot: Slack links domain-like words and escapes &, <, >."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _LOOKS_LIKE_A_DOMAIN.sub(lambda found: f"<http://{found[1]}|{found[1]}>", escaped)


# -- the APIs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    path: str
    authorization: str | None


def lead(number: int) -> dict[str, Any]:
    return {
        "id": number,
        "name": f"Lead {number}",
        "company": f"Company {number}",
        "email": f"lead{number}@example.com",
    }


CSV_PAGES = [
    (
        "\ufeffregion,orders,revenue\r\n"
        '"North, East",412,"18,250.00"\r\n'
        '"South ""Coast""",305,12100.5\r\n'
    ),
    ('region,orders,revenue\r\nWest,517,"20,400.75"\r\n"Central\nHub",0,0\r\n'),
]


@dataclass
class Api:
    """A shop and a CRM on one loopback port.

    /api/reports/sales (bearer shop token), /api/leads (bearer crm token, 25 a page, pages
    linked by Link headers), /api/leads-by-cursor (bearer crm token, a JSON cursor),
    /export/weekly.csv (two pages, a Link between them), /api/customers (long).
    """

    sales: dict[str, Any] = field(default_factory=dict)
    sales_status: int = 200
    leads: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 25
    next_elsewhere: str | None = None
    customers: int = 0
    depth: int = 0
    bodies: list[bytes] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def record(self, request: web.Request) -> None:
        self.seen.append(Seen(request.path_qs, request.headers.get("Authorization")))

    def refused(self, request: web.Request, token: str) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return None

    async def sales_report(self, request: web.Request) -> web.Response:
        self.record(request)
        if (refused := self.refused(request, SHOP_TOKEN)) is not None:
            return refused
        if self.sales_status != 200:
            return web.json_response({"error": "unavailable"}, status=self.sales_status)
        return web.json_response(self.sales)

    async def leads_by_page(self, request: web.Request) -> web.Response:
        self.record(request)
        if (refused := self.refused(request, CRM_TOKEN)) is not None:
            return refused
        number = int(request.query.get("page", "1"))
        start = (number - 1) * self.page_size
        page = self.leads[start : start + self.page_size]
        headers = {}
        if self.next_elsewhere is not None:
            headers["Link"] = f'<{self.next_elsewhere}>; rel="next"'
        elif start + self.page_size < len(self.leads):
            following = f"/api/leads?status=new&page={number + 1}"
            headers["Link"] = f'<{following}>; rel="next", </api/leads?page=1>; rel="first"'
        return web.json_response({"data": page, "meta": {"page": number}}, headers=headers)

    async def leads_by_cursor(self, request: web.Request) -> web.Response:
        self.record(request)
        if (refused := self.refused(request, CRM_TOKEN)) is not None:
            return refused
        start = int(request.query.get("cursor", "0"))
        end = start + self.page_size
        following = str(end) if end < len(self.leads) else None
        page = {"data": self.leads[start:end], "meta": {"next_cursor": following}}
        return web.json_response(page)

    async def weekly_csv(self, request: web.Request) -> web.Response:
        self.record(request)
        number = int(request.query.get("page", "1"))
        headers = {"Content-Type": "text/csv; charset=utf-8"}
        if number == 1:
            headers["Link"] = '<weekly.csv?page=2>; rel="next"'
        return web.Response(body=CSV_PAGES[number - 1].encode("utf-8"), headers=headers)

    async def graphql(self, request: web.Request) -> web.Response:
        """A query API: the answer depends on the POSTed query."""
        self.record(request)
        body = await request.read()
        self.bodies.append(body)
        if request.content_type != "application/json":
            return web.json_response({"errors": ["send JSON"]}, status=415)
        query = json.loads(body)
        total = 42 if query.get("query") == "{orders{total}}" else 0
        return web.json_response({"data": {"orders": {"total": total, "since": query["since"]}}})

    async def health(self, request: web.Request) -> web.Response:
        self.record(request)
        return web.Response(text="all good <ok>", headers={"X-Version": "4.2.0"})

    async def queue(self, request: web.Request) -> web.Response:
        self.record(request)
        return web.json_response({"depth": self.depth})

    async def customer_list(self, request: web.Request) -> web.Response:
        self.record(request)
        rows = [{"name": f"Customer {n:05}", "total": n * 10} for n in range(self.customers)]
        return web.json_response({"rows": rows})


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    state = Api()
    app = web.Application()
    app.router.add_get("/api/reports/sales", state.sales_report)
    app.router.add_get("/api/leads", state.leads_by_page)
    app.router.add_get("/api/leads-by-cursor", state.leads_by_cursor)
    app.router.add_get("/export/weekly.csv", state.weekly_csv)
    app.router.add_get("/api/customers", state.customer_list)
    app.router.add_post("/graphql", state.graphql)
    app.router.add_get("/health", state.health)
    app.router.add_get("/api/queue", state.queue)
    runner, state.url = await serve(app)
    yield state
    await runner.cleanup()


@pytest.fixture
async def elsewhere() -> AsyncIterator[Api]:
    """Another origin (another port), which must never see a token."""
    state = Api()

    async def anything(request: web.Request) -> web.Response:
        state.record(request)
        return web.json_response({"data": [lead(999)]})

    app = web.Application()
    app.router.add_get("/{tail:.*}", anything)
    runner, state.url = await serve(app)
    yield state
    await runner.cleanup()


# -- helpers -----------------------------------------------------------------------------------


async def started(start_bot: Any, fake_slack: FakeSlack, clock: Any) -> RunningBot:
    fake_slack.add_channel("C0SALES", "sales")
    fake_slack.add_user("U0002", tz="UTC", real_name="Bo Other", name="bo")
    running: RunningBot = await start_bot(clock=clock)
    return running


async def secret(running: RunningBot, name: str, host: str, value: str) -> None:
    reply = await running.command(f"/secret set {name} for {host} {value}")
    assert f"*{name}*" in reply and value not in reply, reply


async def posts(fake_slack: FakeSlack, count: int) -> list[dict[str, Any]]:
    """The first ``count`` messages posted, waiting for them."""
    calls = await fake_slack.wait_for("chat.postMessage", count=count)
    return [call.args for call in calls]


async def nothing_more(running: RunningBot, fake_slack: FakeSlack, count: int) -> None:
    await until_bots_idle(running)
    assert len(fake_slack.calls_to("chat.postMessage")) == count, [
        call.args["text"] for call in fake_slack.calls_to("chat.postMessage")
    ]


def section_texts(message: dict[str, Any]) -> list[str]:
    blocks = message["blocks"]
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return [block["text"]["text"] for block in blocks]


# -- the daily report ------------------------------------------------------------------------


@BOTH
async def test_the_daily_sales_report_is_posted_at_9_with_the_change_on_the_day_before(
    start_bot, fake_slack: FakeSlack, api: Api
) -> None:
    clock = fake_clock()  # Monday 2031-01-06 10:00 UTC, 11:00 in Berlin (U0001's zone)
    running = await started(start_bot, fake_slack, clock)
    await secret(running, "shop-token", api.host, SHOP_TOKEN)
    reply = await running.command(
        f"/trigger add sales every day at 9am json {api.url}/api/reports/sales?period=yesterday "
        "auth=bearer:shop-token #sales"
    )
    assert "Added *sales*" in reply and "`/trigger template sales …`" in reply, reply
    api.sales = {"date": "2031-01-05", "total": 9000, "orders": 900}
    await run_due(running, clock, "sales")  # the run when added: no template yet, so silent
    await nothing_more(running, fake_slack, 0)

    reply = await running.command(f"/trigger template sales {as_slack_sends(SALES_TEMPLATE)}")
    assert "*sales* now posts a report on every run" in reply, reply
    trigger = await trigger_named(running, "sales")
    assert trigger.template == SALES_TEMPLATE
    assert trigger.next_run_at == datetime(2031, 1, 7, 8, 0, tzinfo=UTC)  # 9:00 in Berlin

    api.sales = {"date": "2031-01-06", "total": 12345.5, "orders": 1234}
    await run_due(running, clock, "sales")
    (first,) = await posts(fake_slack, 1)
    assert clock.now().astimezone(BERLIN).strftime("%a %H:%M") == "Tue 09:00"
    assert first["channel"] == "C0SALES"
    assert first["text"] == "*Sales Monday:* €12,345.50 from 1,234 orders (new)"
    assert section_texts(first) == [first["text"]]

    api.sales = {"date": "2031-01-07", "total": 13826.96, "orders": 1300}
    await run_due(running, clock, "sales")
    second = (await posts(fake_slack, 2))[1]
    assert clock.now().astimezone(BERLIN).strftime("%a %H:%M") == "Wed 09:00"
    assert second["text"] == "*Sales Tuesday:* €13,826.96 from 1,300 orders (+12%)"
    await nothing_more(running, fake_slack, 2)
    assert {seen.authorization for seen in api.seen} == {f"Bearer {SHOP_TOKEN}"}
    assert "report posted" in await running.command("/trigger history sales")


async def test_a_failing_report_says_so_once_is_retried_and_recovers_once(
    start_bot, fake_slack: FakeSlack, api: Api
) -> None:
    clock = fake_clock()
    running = await started(start_bot, fake_slack, clock)
    await secret(running, "shop-token", api.host, SHOP_TOKEN)
    await running.command(
        f"/trigger add sales every day at 9am json {api.url}/api/reports/sales?period=yesterday "
        "auth=bearer:shop-token #sales"
    )
    api.sales = {"date": "2031-01-05", "total": 100, "orders": 1}
    await run_due(running, clock, "sales")
    await running.command(f"/trigger template sales {as_slack_sends(SALES_TEMPLATE)}")
    nine = datetime(2031, 1, 7, 8, 0, tzinfo=UTC)

    api.sales_status = 503
    await run_due(running, clock, "sales")
    (failure,) = await posts(fake_slack, 1)
    assert failure["text"].startswith(f":red_circle: *sales* report: {api.host} answered 503 at ")
    assert "|08:00 UTC>; retrying at <!date^" in failure["text"]
    assert failure["text"].endswith("|08:05 UTC> (retries=3)")
    assert (await trigger_named(running, "sales")).next_run_at == nine + timedelta(minutes=5)

    await run_due(running, clock, "sales")  # still 503: nothing more is said
    await nothing_more(running, fake_slack, 1)
    assert (await trigger_named(running, "sales")).next_run_at == nine + timedelta(minutes=10)

    api.sales_status = 200
    api.sales = {"date": "2031-01-06", "total": 200, "orders": 2}
    await run_due(running, clock, "sales")
    recovered, report = (await posts(fake_slack, 3))[1:]
    assert "*sales* recovered after 10 min" in recovered["text"]
    root = fake_slack.message_by_ts("C0SALES", recovered["thread_ts"])
    assert root is not None and "recovered" in root["text"]  # the failure, closed
    assert report["text"] == "*Sales Monday:* €200.00 from 2 orders (new)"
    assert "thread_ts" not in report or report["thread_ts"] is None
    assert (await trigger_named(running, "sales")).next_run_at == nine + timedelta(days=1)
    await nothing_more(running, fake_slack, 3)

    # The next day it fails for good: one message, three retries, then the schedule again.
    api.sales_status = 503
    for _ in range(4):
        await run_due(running, clock, "sales")
    assert (await trigger_named(running, "sales")).next_run_at == nine + timedelta(days=2)
    await nothing_more(running, fake_slack, 4)
    history = await running.command("/trigger history sales")
    assert history.count("*problem*") == 6 and history.count("*ok*") == 2, history


async def test_a_report_too_long_for_slack_is_cut_visibly(
    start_bot, fake_slack: FakeSlack, api: Api
) -> None:
    clock = fake_clock()
    running = await started(start_bot, fake_slack, clock)
    api.customers = 3000
    await running.command(f"/trigger add customers every day at 9am json {api.url}/api/customers")
    await running.command(
        "/trigger template customers *Customers* {{ json.rows|length|number }}\n"
        "{% for row in json.rows %}{{ row.name }}: {{ row.total|money('EUR') }}\n{% endfor %}"
    )
    await run_due(running, clock, "customers")
    (message,) = await posts(fake_slack, 1)
    sections = section_texts(message)
    assert sections[0].startswith("*Customers* 3,000\nCustomer 00000: €0.00\n")
    assert len(sections) <= MAX_BLOCKS
    assert all(len(text) <= SECTION_TEXT_MAX for text in sections)
    assert sum(map(len, sections)) <= BLOCKS_TEXT_MAX
    cut = re.search(r"\(cut: ([\d,]+) more lines\)$", sections[-1])
    assert cut is not None, sections[-1][-200:]
    shown = sum(text.count("Customer ") for text in sections)
    assert shown + int(cut[1].replace(",", "")) == 3000
    assert len(message["text"]) <= BLOCKS_TEXT_MAX and "(cut: " in message["text"]


async def test_the_weekly_csv_report_with_a_table(
    start_bot, fake_slack: FakeSlack, api: Api
) -> None:
    clock = fake_clock()
    running = await started(start_bot, fake_slack, clock)
    reply = await running.command(
        f"/trigger add weekly every monday at 9am csv {api.url}/export/weekly.csv <#C0002|ops>"
    )
    assert "Added *weekly*: reads" in reply, reply
    await run_due(running, clock, "weekly")
    assert "OK: 2 rows" in await running.command("/trigger history weekly")  # a check: one page
    await running.command(
        "/trigger template weekly *Weekly numbers* ({{ now|date('%a %d %b %H:%M') }}) "
        "{{ rows|table('region, orders, revenue') }} "
        "{{ rows|sum(attribute='orders')|number }} orders"
    )
    await run_due(running, clock, "weekly")
    (message,) = await posts(fake_slack, 1)
    assert message["channel"] == "C0002"
    assert message["text"] == (
        "*Weekly numbers* (Mon 13 Jan 09:00) ```\n"
        "region         orders    revenue\n"
        "-------------  ------  ---------\n"
        "North, East       412  18,250.00\n"
        'South "Coast"     305   12,100.5\n'
        "West              517  20,400.75\n"
        "Central Hub         0          0\n"
        "``` 1,234 orders"
    )
    assert [seen.path for seen in api.seen][-2:] == [
        "/export/weekly.csv",
        "/export/weekly.csv?page=2",
    ]


# -- new items ---------------------------------------------------------------------------------


@BOTH
async def test_the_lead_scan_posts_each_new_lead_once_across_a_restart(
    start_bot, fake_slack: FakeSlack, api: Api
) -> None:
    clock = fake_clock()
    running = await started(start_bot, fake_slack, clock)
    await secret(running, "crm-token", api.host, CRM_TOKEN)
    api.leads = [lead(n) for n in range(30, 0, -1)]  # newest first, two pages
    reply = await running.command(
        f"/trigger add leads every day at 23:00 json {api.url}/api/leads?status=new "
        "auth=bearer:crm-token each=data key=id #sales"
    )
    assert "Each new item is posted" in reply, reply
    reply = await running.command(f"/trigger template leads {as_slack_sends(LEADS_TEMPLATE)}")
    assert "*leads* now posts each new item" in reply, reply
    assert (await trigger_named(running, "leads")).template == LEADS_TEMPLATE

    await run_due(running, clock, "leads")  # the first run records the 30 and says nothing
    await nothing_more(running, fake_slack, 0)
    assert [seen.path for seen in api.seen] == [
        "/api/leads?status=new",
        "/api/leads?status=new&page=2",
    ]
    assert "first run, 30 items recorded" in await running.command("/trigger history leads")

    api.leads = [lead(32), lead(31), *api.leads]
    await run_due(running, clock, "leads")
    new = await posts(fake_slack, 2)
    assert [message["text"] for message in new] == [
        "New lead: *Lead 32* (Company 32) lead32@example.com",
        "New lead: *Lead 31* (Company 31) lead31@example.com",
    ]
    assert all(message["channel"] == "C0SALES" for message in new)

    await running.stop()
    again: RunningBot = await start_bot(clock=clock)
    await run_due(again, clock, "leads")  # the same list after a restart: nothing new
    await nothing_more(again, fake_slack, 2)

    api.leads = [lead(n) for n in range(72, 32, -1)] + api.leads  # a burst of 40
    await run_due(again, clock, "leads")
    burst = (await posts(fake_slack, 3))[2]["text"]
    assert burst.startswith(":inbox_tray: *leads*: 40 new items\n• New lead: *Lead 72*")
    assert burst.count("• New lead:") == 10 and burst.endswith("…and 30 more")
    await nothing_more(again, fake_slack, 3)
    async with again.bot.db.sessions() as session:
        keys = await session.scalar(sa.select(sa.func.count()).select_from(TriggerItem))
    assert keys == 72


@BOTH
async def test_two_runs_at_once_on_two_replicas_post_each_new_item_once(
    start_bot, fake_slack: FakeSlack, api: Api, database_url: str
) -> None:
    clock = fake_clock()
    first = await started(start_bot, fake_slack, clock)
    # SQLite serves one process: there, the two runs race within it.
    replica = database_url.startswith("postgres")
    second: RunningBot = await start_bot(clock=clock) if replica else first
    await secret(first, "crm-token", api.host, CRM_TOKEN)
    api.page_size = 10
    api.leads = [lead(n) for n in range(1, 26)]
    await first.command(
        f"/trigger add leads every day at 23:00 json {api.url}/api/leads-by-cursor "
        "auth=bearer:crm-token each=data key=id next=meta.next_cursor #sales"
    )
    await run_due(first, clock, "leads")
    assert [seen.path for seen in api.seen] == [
        "/api/leads-by-cursor",
        "/api/leads-by-cursor?cursor=10",
        "/api/leads-by-cursor?cursor=20",
    ]
    api.leads += [lead(26), lead(27), lead(28)]
    trigger = await trigger_named(first, "leads")
    assert trigger.id is not None and trigger.next_run_at is not None
    clock.set(trigger.next_run_at)
    await asyncio.gather(  # the scheduled run on one, "Run now" on the other
        first.bot.triggers.run(trigger.id, trigger.next_run_at),
        second.bot.triggers.run(trigger.id, clock.now() + timedelta(seconds=1), manual=True),
    )
    await until_bots_idle(*([first, second] if replica else [first]))
    texts = [call.args["text"] for call in fake_slack.calls_to("chat.postMessage")]
    assert sorted(texts) == [f":new: *leads*: Lead {n}" for n in (26, 27, 28)]


async def test_latest_posts_the_first_items_listed_on_the_first_run(
    start_bot, fake_slack: FakeSlack, api: Api
) -> None:
    clock = fake_clock()
    running = await started(start_bot, fake_slack, clock)
    await secret(running, "crm-token", api.host, CRM_TOKEN)
    api.leads = [lead(n) for n in range(5, 0, -1)]
    await running.command(
        f"/trigger add leads every day at 23:00 json {api.url}/api/leads "
        "auth=bearer:crm-token each=data key=id latest=2"
    )
    await run_due(running, clock, "leads")
    first = await posts(fake_slack, 2)
    assert [message["text"] for message in first] == [
        ":new: *leads*: Lead 5",
        ":new: *leads*: Lead 4",
    ]
    await run_due(running, clock, "leads")
    await nothing_more(running, fake_slack, 2)


async def test_keys_of_items_long_gone_are_forgotten(
    start_bot, fake_slack: FakeSlack, api: Api
) -> None:
    clock = fake_clock()
    running = await without_the_hourly_pass(await started(start_bot, fake_slack, clock))
    await secret(running, "crm-token", api.host, CRM_TOKEN)
    api.leads = [lead(1), lead(2)]
    await running.command(
        f"/trigger add leads every day at 23:00 json {api.url}/api/leads "
        "auth=bearer:crm-token each=data key=id"
    )
    await run_due(running, clock, "leads")
    api.leads = [lead(2)]  # lead 1 is gone from the list
    clock.advance(timedelta(days=TRIGGER_ITEM_DAYS + 1))
    trigger = await trigger_named(running, "leads")
    assert trigger.id is not None
    await running.bot.triggers.run(trigger.id, clock.now(), manual=True)
    report = await running.bot.retention.run_once()
    assert report.deleted["trigger_items"] == 1
    async with running.bot.db.sessions() as session:
        kept = (await session.scalars(sa.select(col(TriggerItem.key)))).all()
    assert list(kept) == ["2"]
    await nothing_more(running, fake_slack, 0)


# -- secrets -----------------------------------------------------------------------------------


async def test_the_token_is_sent_only_to_its_host(
    start_bot, fake_slack: FakeSlack, api: Api, elsewhere: Api
) -> None:
    clock = fake_clock()
    running = await started(start_bot, fake_slack, clock)
    await secret(running, "crm-token", api.host, CRM_TOKEN)

    refused = await running.command(
        f"/trigger add other every day at 9am json {elsewhere.url}/api/leads "
        "auth=bearer:crm-token each=data key=id"
    )
    assert f"The secret `crm-token` may not be sent to {elsewhere.host}" in refused, refused
    assert f"it is bound to {api.host}" in refused
    theirs = await running.command(
        f"/trigger add theirs every day at 9am json {api.url}/api/leads auth=bearer:crm-token",
        user="U0002",
    )
    assert "You may not use the secret `crm-token`" in theirs, theirs
    listed = await running.command("/trigger list")
    assert "other" not in listed and "theirs" not in listed

    api.leads = [lead(1)]
    api.next_elsewhere = f"{elsewhere.url}/api/leads?page=2"
    await running.command(
        f"/trigger add leads every day at 23:00 json {api.url}/api/leads "
        "auth=bearer:crm-token each=data key=id #sales"
    )
    await run_due(running, clock, "leads")
    (alert,) = await posts(fake_slack, 1)
    assert alert["text"].startswith(":red_circle: *leads* is down: ")
    assert (
        f"(page 2): Not sent: the secret crm-token is not bound to {elsewhere.host}"
        in (alert["text"])
    )
    assert elsewhere.seen == []
    assert api.seen[-1].authorization == f"Bearer {CRM_TOKEN}"

    await running.command(
        f"/trigger add nokey every day at 9am json {api.url}/api/reports/sales #sales"
    )
    await run_due(running, clock, "nokey")
    unauthorized = (await posts(fake_slack, 2))[1]
    assert unauthorized["text"] == f":red_circle: *nokey* is down: {api.host} answered 401"
    assert api.seen[-1].authorization is None
    everything = json.dumps([call.args for call in fake_slack.calls])
    assert CRM_TOKEN not in everything

    in_use = await running.command("/secret delete crm-token")
    assert "is used by trigger leads" in in_use, in_use


# -- /trigger template ---------------------------------------------------------------------------


async def test_a_template_is_set_shown_and_cleared_by_its_owner_only(
    start_bot, fake_slack: FakeSlack, api: Api
) -> None:
    clock = fake_clock()
    running = await started(start_bot, fake_slack, clock)
    await running.command(
        f"/trigger add weekly every monday at 9am csv {api.url}/export/weekly.csv"
    )
    await running.command("/trigger add blog every 30m rss https://example.com/feed.xml")

    assert "has no template" in await running.command("/trigger template weekly")
    broken = await running.command("/trigger template weekly {{ rows|table( }}")
    assert "That template doesn't compile" in broken, broken
    assert "Only json, csv and http triggers" in await running.command(
        "/trigger template blog {{ x }}"
    )
    theirs = await running.command("/trigger template weekly {{ rows|length }}", user="U0002")
    assert "weekly" in theirs and "template set" not in theirs
    assert (await trigger_named(running, "weekly")).template is None

    await running.command("/trigger template weekly {{ rows|length }} rows")
    shown = await running.command("/trigger show weekly")
    assert "*Template:* `{{ rows|length }} rows`" in shown and "template set by <@U0001>" in shown
    assert "posts with `{{ rows|length }} rows`" in await running.command(
        "/trigger template weekly"
    )
    assert "alerts only on problems again" in await running.command(
        "/trigger template weekly clear"
    )
    assert (await trigger_named(running, "weekly")).template is None


# -- other reports -------------------------------------------------------------------------------


async def test_a_query_api_gets_its_body_rendered_for_each_run(
    start_bot, fake_slack: FakeSlack, api: Api
) -> None:
    clock = fake_clock()
    running = await started(start_bot, fake_slack, clock)
    body = """body={"query":"{orders{total}}","since":"{{now|date('%Y-%m-%d')}}"}"""
    reply = await running.command(
        f"/trigger add orders every day at 9am json {api.url}/graphql {as_slack_sends(body)}"
    )
    assert "Added *orders*" in reply, reply
    assert (await trigger_named(running, "orders")).options == {
        "body": """{"query":"{orders{total}}","since":"{{now|date('%Y-%m-%d')}}"}"""
    }
    await running.command(
        "/trigger template orders {{ json.data.orders.total }} orders since "
        "{{ json.data.orders.since }}"
    )
    await run_due(running, clock, "orders")
    (message,) = await posts(fake_slack, 1)
    assert message["text"] == "42 orders since 2031-01-06"
    assert json.loads(api.bodies[-1]) == {"query": "{orders{total}}", "since": "2031-01-06"}
    assert "body=••••" in await running.command("/trigger show orders", user="U0002")
    assert 'body={"query"' in await running.command("/trigger show orders")


async def test_an_http_report_sees_the_status_headers_and_body(
    start_bot, fake_slack: FakeSlack, api: Api
) -> None:
    clock = fake_clock()
    running = await started(start_bot, fake_slack, clock)
    await running.command(f"/trigger add version every day at 9am http {api.url}/health")
    await running.command(
        "/trigger template version {{ status }} {{ headers['x-version'] }} {{ body }}"
    )
    await run_due(running, clock, "version")
    (message,) = await posts(fake_slack, 1)
    assert message["text"] == "200 4.2.0 all good &lt;ok&gt;"


async def test_a_report_with_a_condition_is_posted_only_when_it_holds(
    start_bot, fake_slack: FakeSlack, api: Api
) -> None:
    clock = fake_clock()
    running = await started(start_bot, fake_slack, clock)
    await running.command(
        f"/trigger add queue every 5m json {api.url}/api/queue when json.depth > 100"
    )
    await running.command("/trigger template queue Queue: {{ json.depth|number }} jobs waiting")
    api.depth = 50
    await run_due(running, clock, "queue")
    await nothing_more(running, fake_slack, 0)
    assert "condition false, nothing posted" in await running.command("/trigger history queue")
    api.depth = 1500
    await run_due(running, clock, "queue")
    (message,) = await posts(fake_slack, 1)
    assert message["text"] == "Queue: 1,500 jobs waiting"
    await nothing_more(running, fake_slack, 1)  # a report, not an alert: no "is down"


async def test_a_template_that_fails_is_said_once_and_not_retried(
    start_bot, fake_slack: FakeSlack, api: Api
) -> None:
    clock = fake_clock()
    running = await started(start_bot, fake_slack, clock)
    await running.command(f"/trigger add queue every day at 9am json {api.url}/api/queue")
    await run_due(running, clock, "queue")
    await running.command("/trigger template queue {{ json.missing.depth }} jobs")
    await run_due(running, clock, "queue")
    (failure,) = await posts(fake_slack, 1)
    assert failure["text"].startswith(":red_circle: *queue* report: the template failed: ")
    assert "'missing'" in failure["text"] and "; next run <!date^" in failure["text"]
    nine = datetime(2031, 1, 7, 8, 0, tzinfo=UTC)
    assert (await trigger_named(running, "queue")).next_run_at == nine + timedelta(days=1)
    await running.command("/trigger template queue {{ json.depth }} jobs")
    await run_due(running, clock, "queue")
    recovered, report = (await posts(fake_slack, 3))[1:]
    assert "*queue* recovered after 1 d" in recovered["text"] and report["text"] == "0 jobs"
