"""Reports from data, the pure parts: options, Link headers, paths, merged pages, CSV, the
scan decisions, failure texts, memory, templates typed in Slack; and the page loop against
a real loopback server through the real `SafeFetcher`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from bot.expressions import compile_template, render_template
from bot.formatting import BLOCKS_TEXT_MAX
from bot.models import Trigger
from bot.net import AddressPolicy, SafeFetcher
from bot.slack.blocks import SECTION_TEXT_MAX
from bot.triggers.fetching import (
    MISSING,
    BodyFailed,
    Fetched,
    FetchFailed,
    FetchPlan,
    Request,
    decode_text,
    fetch_pages,
    fetch_plan,
    merge_pages,
    next_link,
    option_check,
    options_problem,
    parse_csv,
    parse_path,
    value_at,
    with_query,
)
from bot.triggers.grammar import TriggerSyntaxError, parse_trigger_add
from bot.triggers.reporting import (
    MAX_KEY_CHARS,
    MAX_PREVIOUS_CHARS,
    ReportMemory,
    ScanItem,
    ScanList,
    decide_scan,
    default_item_text,
    failure_text,
    handles,
    key_text,
    memory_of,
    mode_of,
    remembered,
    report_message,
    retry_time,
    scan_list,
    scan_posts,
    template_from_slack,
)
from bot.triggers.slash import HELP

NOW = datetime(2031, 1, 6, 8, 0, tzinfo=UTC)
BERLIN_ZONE = "Europe/Berlin"


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "kind", "problem"),
    [
        ("auth", "bearer:shop-token", "json", None),
        ("auth", "basic:crm-login", "csv", None),
        ("auth", "token:x", "json", "is not understood"),
        ("auth", "bearer:shop-token", "rss", "is for http, json and csv triggers"),
        ("header.X-Api-Key", "secret:crm-key", "http", None),
        ("header.X-Api-Key", "abc123", "json", "looks like a credential"),
        ("header.X-Trace", "chatops", "json", None),
        ("header.Host", "evil.example", "json", "set by the bot itself"),
        ("method", "post", "json", None),
        ("method", "DELETE", "json", "must be GET or POST"),
        ("body", '{"query":"{orders{total}}"}', "json", None),
        ("body", "{{ broken", "json", "is not a template that compiles"),
        ("query.status", "new", "json", None),
        ("query.api_key", "abc123", "json", "looks like a credential"),
        ("query.access-token", "abc123", "http", "looks like a credential"),
        ("pages", "10", "json", None),
        ("pages", "0", "json", "from 1 to 100"),
        ("pages", "101", "csv", "from 1 to 100"),
        ("next", "meta.next_page_url", "json", None),
        ("next", "<http://meta.next|meta.next>", "json", None),
        ("next", "meta..x", "json", "a path of names"),
        ("next", "meta.next", "csv", "Link"),
        ("each", "data.leads", "json", None),
        ("each", "rows", "csv", None),
        ("each", "data", "http", "is for json and csv"),
        ("key", "id", "json", None),
        ("key", ".", "json", "must name a field"),
        ("cursor", "page_token", "json", None),
        ("cursor", "a b", "json", "query parameter name"),
        ("latest", "5", "json", None),
        ("latest", "11", "json", "from 0 to 10"),
    ],
)
def test_option_checks(key: str, value: str, kind: str, problem: str | None) -> None:
    check = option_check(key, kind)
    assert check is not None
    said = check(value)
    assert (said is None) if problem is None else (said is not None and problem in said), said


def test_options_that_are_not_ours_are_left_to_the_grammar() -> None:
    assert option_check("retries", "json") is None
    assert option_check("latest", "rss") is None  # 0 or 1 there, as before


@pytest.mark.parametrize(
    ("kind", "options", "condition", "part"),
    [
        ("json", {"each": "data"}, None, "each"),
        ("json", {"key": "id"}, None, "key"),
        ("json", {"each": "data", "key": "id"}, "json.x > 1", "each"),
        ("csv", {"each": "data", "key": "id"}, None, "each"),
        ("json", {"body": "x=1", "method": "GET"}, None, "body"),
        ("json", {"auth": "bearer:a-token", "header.Authorization": "secret:b-token"}, None, ""),
    ],
)
def test_options_that_do_not_go_together(
    kind: str, options: dict[str, str], condition: str | None, part: str
) -> None:
    problem = options_problem(kind, options, condition)
    assert problem is not None
    assert part in problem.part


def test_options_that_go_together() -> None:
    assert options_problem("csv", {"each": "rows", "key": "id"}, None) is None
    assert options_problem("json", {"each": "data", "key": "id", "pages": "3"}, None) is None
    assert options_problem("json", {"body": "{}", "method": "POST"}, None) is None


def test_the_grammar_takes_request_options_with_names_and_json_bodies() -> None:
    spec = parse_trigger_add(
        'q every day at 9am json https://api.example.com/graphql method=POST body={"query":'
        '"{ orders(first: 10) { total } }"} header.X-Api-Key=secret:crm-key query.Since=today'
        " pages=3 next=data.orders.cursor #ops",
        default_tz=ZoneInfo("UTC"),
        now=NOW,
        min_interval=timedelta(minutes=1),
    )
    assert spec.condition is None and spec.channel == "#ops"
    assert dict(spec.options) == {
        "method": "POST",
        "body": '{"query":"{ orders(first: 10) { total } }"}',
        "header.X-Api-Key": "secret:crm-key",
        "query.Since": "today",
        "pages": "3",
        "next": "data.orders.cursor",
    }


def test_the_grammar_refuses_a_condition_on_csv_and_request_options_on_rss() -> None:
    with pytest.raises(TriggerSyntaxError, match="csv trigger takes no condition"):
        add("w every day at 9am csv https://x.example/a.csv when rows")
    with pytest.raises(TriggerSyntaxError, match="is for http, json and csv"):
        add("b every 30m rss https://x.example/feed auth=bearer:crm-token")


def add(text: str) -> Any:
    return parse_trigger_add(
        text, default_tz=ZoneInfo("UTC"), now=NOW, min_interval=timedelta(minutes=1)
    )


def test_the_three_examples_in_the_help_parse_as_typed() -> None:
    commands = [line for line in HELP.splitlines() if "`, then `/trigger template" in line]
    assert len(commands) == 3
    for line in commands:
        add_text, template_text = line.split("`, then `")
        spec = add(add_text.split("`/trigger add ", 1)[1])
        template = template_text.split("`")[0].split(" ", 3)[3]
        compile_template(template)
        assert spec.kind in ("json", "csv")
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for line in commands:
        for quoted in line.split("`")[1::2]:
            if quoted.startswith("/trigger"):
                assert quoted in readme, quoted


def test_the_sales_example_renders_as_the_issue_says() -> None:
    template = (
        "*Sales {{ json.date|date('%A') }}:* {{ json.total|money('EUR') }} from "
        "{{ json.orders|number }} orders ({{ json.total|change(previous.total) }})"
    )
    context = {
        "json": {"date": "2031-01-07", "total": 13826.96, "orders": 1300},
        "previous": {"date": "2031-01-06", "total": 12345.5, "orders": 1234},
        "zone": BERLIN_ZONE,
    }
    text = render_template(compile_template(template), context)
    assert text == "*Sales Tuesday:* €13,826.96 from 1,300 orders (+12%)"
    first = render_template(compile_template(template), {**context, "previous": None})
    assert first.endswith("(new)")


# -- Link headers, paths, queries ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        (
            ['<https://api.example.com/items?page=2>; rel="next"'],
            "https://api.example.com/items?page=2",
        ),
        (
            ['<https://a.example/x?page=1>; rel="prev", <https://a.example/x?page=3>; rel="next"'],
            "https://a.example/x?page=3",
        ),
        (
            ['</items?page=2&ids=1,2,3>; rel=next; title="Next"'],
            "https://api.example.com/items?page=2&ids=1,2,3",
        ),
        (['<?page=2>; rel="next last"'], "https://api.example.com/items?page=2"),
        (
            ['<https://a.example/1>; rel="last"', '<https://a.example/2>; rel="next"'],
            "https://a.example/2",
        ),
        (['<https://a.example/1>; rel="prev"'], None),
        (["not a link"], None),
        ([], None),
    ],
)
def test_the_next_link(links: list[str], expected: str | None) -> None:
    headers = CIMultiDictProxy(CIMultiDict([("Link", link) for link in links]))
    assert next_link(headers, "https://api.example.com/items?page=1") == expected


def test_paths_read_objects_and_lists() -> None:
    data = {"data": {"leads": [{"id": 1}, {"id": 2}]}, "meta": {"next": None}}
    assert value_at(data, parse_path("data.leads.1.id")) == 2
    assert value_at(data, parse_path("data.leads.-1.id")) == 2
    assert value_at(data, parse_path("data.leads.5")) is MISSING
    assert value_at(data, parse_path("meta.next")) is None
    assert value_at(data, parse_path("meta.next.x")) is MISSING
    assert value_at(data, parse_path(".")) is data
    assert parse_path("<http://data.email|data.email>") == ("data", "email")


def test_query_options_are_added_to_the_url() -> None:
    assert (
        with_query("https://a.example/x?status=old&page=1", [("status", "new"), ("q", "a b")])
        == "https://a.example/x?page=1&status=new&q=a+b"
    )
    assert with_query("https://a.example/x?y=1", []) == "https://a.example/x?y=1"


def test_a_plan_from_options() -> None:
    plan = fetch_plan(
        "json", "https://a.example/g", {"body": '{"q":1}', "query.x": "1"}, paginate=True
    )
    assert (plan.method, plan.url, plan.pages) == ("POST", "https://a.example/g?x=1", 10)
    assert plan.headers == {"Accept": "application/json", "Content-Type": "application/json"}
    form = fetch_plan("http", "https://a.example/s", {"body": "q=1"}, paginate=True)
    assert form.headers is not None and form.headers["Content-Type"].startswith("application/x-www")
    assert not form.paginate
    assert fetch_plan("json", "https://a.example/j", {"pages": "4"}, paginate=False).pages == 1


# -- pages and CSV -------------------------------------------------------------------------------


def test_pages_merge_lists_and_objects_and_keep_the_first_scalars() -> None:
    first = {"data": [1, 2], "meta": {"page": 1, "tags": ["a"]}, "total": 4}
    second = {"data": [3, 4], "meta": {"page": 2, "tags": ["b"]}, "extra": True}
    assert merge_pages(first, second) == {
        "data": [1, 2, 3, 4],
        "meta": {"page": 1, "tags": ["a", "b"]},
        "total": 4,
        "extra": True,
    }
    assert merge_pages([1], [2]) == [1, 2]
    assert merge_pages({"a": 1}, [2]) == {"a": 1}


def test_csv_with_a_bom_quoted_fields_and_odd_headers() -> None:
    body = (
        "\ufeffregion,orders,revenue,,orders\r\n"
        '"North, East",12,"1,234.50",x,1\r\n'
        '"Say ""hi""",007,-3.5\r\n'
        "\r\n"
        '"two\nlines",4,10,a,b,c\r\n'
    ).encode("utf-8")
    rows = parse_csv(decode_text(body, {"Content-Type": "text/csv"}))
    assert list(rows[0]) == ["region", "orders", "revenue", "column_4", "orders_2"]
    assert rows[0] == {
        "region": "North, East",
        "orders": 12,
        "revenue": "1,234.50",
        "column_4": "x",
        "orders_2": 1,
    }
    assert rows[1]["region"] == 'Say "hi"' and rows[1]["orders"] == "007"
    assert rows[1]["revenue"] == -3.5 and rows[1]["column_4"] == ""
    assert rows[2]["region"] == "two\nlines" and rows[2]["orders_2"] == "b"
    assert len(rows) == 3


def test_csv_in_latin_1_and_without_rows() -> None:
    body = "name\nJosé\n".encode("latin-1")
    assert parse_csv(decode_text(body, {"Content-Type": "text/csv; charset=iso-8859-1"})) == [
        {"name": "José"}
    ]
    assert parse_csv("") == []
    assert parse_csv("a,b\n") == []
    with pytest.raises(ValueError, match="not CSV"):
        parse_csv('a\n"' + "x" * 200_000 + '"\n')


# -- the page loop, over a real server -------------------------------------------------------------


@dataclass
class Pages:
    """A paginated API: /links (Link headers), /cursor (JSON cursors), /post (a cursor in
    the body), /loop (a next link back to itself), /fail (page 2 answers 503)."""

    items: list[int] = field(default_factory=lambda: list(range(1, 8)))
    size: int = 3
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)
    url: str = ""

    def page(self, number: int) -> list[int]:
        return self.items[(number - 1) * self.size : number * self.size]

    def last(self) -> int:
        return -(-len(self.items) // self.size)


@pytest.fixture
async def pages() -> AsyncIterator[Pages]:
    state = Pages()

    async def links(request: web.Request) -> web.Response:
        state.requests.append((request.method, request.path_qs, await request.read()))
        number = int(request.query.get("page", "1"))
        headers = {}
        if number < state.last():
            headers["Link"] = f'<{request.path}?page={number + 1}>; rel="next"'
        return web.json_response(
            {"data": state.page(number), "meta": {"page": number}}, headers=headers
        )

    async def cursor(request: web.Request) -> web.Response:
        state.requests.append((request.method, request.path_qs, await request.read()))
        number = int(request.query.get("cursor", "c1")[1:])
        following = f"c{number + 1}" if number < state.last() else None
        return web.json_response({"data": state.page(number), "meta": {"next": following}})

    async def post(request: web.Request) -> web.Response:
        body = await request.read()
        state.requests.append((request.method, request.path_qs, body))
        number = int(json.loads(body).get("after") or 1)
        following = str(number + 1) if number < state.last() else None
        return web.json_response({"data": {"items": state.page(number), "after": following}})

    async def loop(request: web.Request) -> web.Response:
        state.requests.append((request.method, request.path_qs, b""))
        return web.json_response([1], headers={"Link": f'<{request.path}>; rel="next"'})

    async def fail(request: web.Request) -> web.Response:
        state.requests.append((request.method, request.path_qs, b""))
        if request.query.get("page") == "2":
            return web.Response(status=503)
        return web.json_response([1], headers={"Link": '</fail?page=2>; rel="next"'})

    app = web.Application()
    app.router.add_get("/links", links)
    app.router.add_get("/cursor", cursor)
    app.router.add_post("/post", post)
    app.router.add_get("/loop", loop)
    app.router.add_get("/fail", fail)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield state
    await runner.cleanup()


async def fetch(
    plan: FetchPlan, *, max_bytes: int = 1 << 20, body: Any = None
) -> Fetched | FetchFailed:
    async with SafeFetcher(AddressPolicy.from_allowlist(["127.0.0.1"])) as fetcher:

        async def send(request: Request, seconds: float, room: int) -> Any:
            return await fetcher.request(
                request.method,
                request.url,
                headers=request.headers,
                body=request.body,
                timeout=seconds,
                max_bytes=room,
            )

        async def no_body(cursor: str | None) -> str | BodyFailed:
            return ""

        return await fetch_pages(send, plan, body or no_body, timeout=10, max_bytes=max_bytes)


async def test_link_headers_are_followed_and_pages_merged(pages: Pages) -> None:
    fetched = await fetch(fetch_plan("json", f"{pages.url}/links", {}, paginate=True))
    assert isinstance(fetched, Fetched)
    assert fetched.data == {"data": [1, 2, 3, 4, 5, 6, 7], "meta": {"page": 1}}
    assert (fetched.pages, fetched.note) == (3, "")
    assert [path for _, path, _ in pages.requests] == ["/links", "/links?page=2", "/links?page=3"]


async def test_the_page_cap_stops_and_says_so(pages: Pages) -> None:
    fetched = await fetch(fetch_plan("json", f"{pages.url}/links", {"pages": "2"}, paginate=True))
    assert isinstance(fetched, Fetched)
    assert fetched.data["data"] == [1, 2, 3, 4, 5, 6]
    assert fetched.note == "read 2 pages (pages=2); more were left"


async def test_a_json_cursor_is_sent_back_as_a_query_parameter(pages: Pages) -> None:
    options = {"next": "meta.next", "cursor": "cursor", "query.status": "new"}
    fetched = await fetch(fetch_plan("json", f"{pages.url}/cursor", options, paginate=True))
    assert isinstance(fetched, Fetched) and fetched.data["data"] == [1, 2, 3, 4, 5, 6, 7]
    assert [path for _, path, _ in pages.requests] == [
        "/cursor?status=new",
        "/cursor?status=new&cursor=c2",
        "/cursor?status=new&cursor=c3",
    ]


async def test_a_cursor_goes_into_the_body_template_of_a_post(pages: Pages) -> None:
    source = '{"after": {{ cursor|tojson }}}'
    options = {"body": source, "next": "data.after"}

    async def body(cursor: str | None) -> str | BodyFailed:
        return render_template(compile_template(source), {"cursor": cursor})

    fetched = await fetch(
        fetch_plan("json", f"{pages.url}/post", options, paginate=True), body=body
    )
    assert isinstance(fetched, Fetched)
    assert fetched.data["data"]["items"] == [1, 2, 3, 4, 5, 6, 7]
    assert [sent for _, _, sent in pages.requests] == [
        b'{"after": null}',
        b'{"after": "2"}',
        b'{"after": "3"}',
    ]


async def test_a_next_link_back_to_a_page_already_read_ends_the_reading(pages: Pages) -> None:
    fetched = await fetch(fetch_plan("json", f"{pages.url}/loop", {}, paginate=True))
    assert isinstance(fetched, Fetched) and fetched.pages == 1 and len(pages.requests) == 1


async def test_a_later_page_failing_fails_the_fetch_and_names_the_page(pages: Pages) -> None:
    failed = await fetch(fetch_plan("json", f"{pages.url}/fail", {}, paginate=True))
    assert isinstance(failed, FetchFailed)
    assert failed.summary.endswith("answered 503 (page 2)") and failed.status == 503


async def test_the_byte_budget_is_shared_by_the_pages(pages: Pages) -> None:
    pages.items = list(range(1000, 1030))
    pages.size = 10
    plan = fetch_plan("json", f"{pages.url}/links", {}, paginate=True)
    whole = await fetch(plan)
    assert isinstance(whole, Fetched) and whole.pages == 3
    one_page = len(json.dumps({"data": pages.page(1), "meta": {"page": 1}}))
    cut = await fetch(plan, max_bytes=one_page * 2 + 10)
    assert isinstance(cut, Fetched) and cut.pages == 2
    assert "the next one would pass" in cut.note
    too_small = await fetch(plan, max_bytes=one_page // 2)
    assert isinstance(too_small, FetchFailed) and "larger than" in too_small.summary


async def test_a_page_that_is_not_json_fails(pages: Pages) -> None:
    failed = await fetch(fetch_plan("json", f"{pages.url}/nothing-here", {}, paginate=True))
    assert isinstance(failed, FetchFailed) and "answered 404" in failed.summary


# -- scans --------------------------------------------------------------------------------------


def items(*keys: str) -> list[ScanItem]:
    return [ScanItem(key, {"id": key, "name": f"Lead {key}"}) for key in keys]


def test_a_first_scan_records_everything_and_posts_only_latest() -> None:
    listed = items("a", "b", "c")
    first = decide_scan(listed, {}, scanned=False, latest=0, now=NOW)
    assert first.record == ("a", "b", "c") and first.new == () and first.first_run
    latest = decide_scan(listed, {}, scanned=False, latest=2, now=NOW)
    assert [item.key for item in latest.new] == ["a", "b"] and not latest.as_list


def test_later_scans_post_the_unseen_and_refresh_old_marks() -> None:
    seen = {"a": NOW - timedelta(days=2), "b": NOW - timedelta(hours=1)}
    decision = decide_scan(items("c", "a", "b", "d"), seen, scanned=True, latest=3, now=NOW)
    assert [item.key for item in decision.new] == ["c", "d"]
    assert decision.record == ("c", "d") and decision.refresh == ("a",)
    assert not decision.as_list and not decision.first_run


def test_more_than_ten_new_items_are_listed_in_one_message() -> None:
    listed = items(*[f"k{n}" for n in range(40)])
    decision = decide_scan(listed, {}, scanned=True, latest=0, now=NOW)
    assert decision.as_list and len(decision.shown) == 10 and len(decision.new) == 40
    rendered = [(item.key, f"Lead {item.key}") for item in decision.shown]
    keys = [item.key for item in decision.new]
    (message,) = scan_posts("leads", rendered, keys, set(keys))
    assert message.startswith(":inbox_tray: *leads*: 40 new items\n• Lead k0\n")
    assert message.endswith("• Lead k9\n…and 30 more")


def test_items_another_run_recorded_first_are_not_posted() -> None:
    rendered = [("a", "A"), ("b", "B"), ("c", "  ")]
    assert scan_posts("leads", rendered, ["a", "b", "c"], {"a", "c"}) == ["A"]
    assert scan_posts("leads", rendered, ["a", "b", "c"], set()) == []


def test_a_scan_list_is_keyed_once_per_item() -> None:
    data = {"data": [{"id": 1}, {"id": "1"}, {"id": 2}, {"name": "no id"}, {"id": None}, {"id": 3}]}
    listed = scan_list(data, "data", "id")
    assert isinstance(listed, ScanList)
    assert [item.key for item in listed.items] == ["1", "2", "3"]
    assert listed.without_key == 2
    cut = scan_list(data, "data", "id", limit=2)
    assert isinstance(cut, ScanList) and cut.left_out == 3
    assert scan_list(data, "leads", "id") == "nothing at each=leads"
    assert scan_list({"data": {"a": 1}}, "data", "id") == "each=data is an object, not a list"
    assert scan_list([{"id": "x"}], ".", "id") == ScanList((ScanItem("x", {"id": "x"}),))


def test_keys_are_text_and_long_ones_hashed() -> None:
    assert (
        key_text(42) == "42"
        and key_text("abc") == "abc"
        and key_text({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'
    )
    assert key_text(None) is None and key_text("") is None
    long = key_text("x" * 500)
    assert long is not None and long.startswith("sha256:") and len(long) <= MAX_KEY_CHARS


def test_an_item_without_a_template_is_posted_with_its_title_or_key() -> None:
    lead = ScanItem("7", {"id": 7, "name": "<!channel> Ada", "url": "https://crm.example.com/l/7"})
    assert default_item_text("leads", lead) == (
        ":new: *leads*: <https://crm.example.com/l/7|&lt;!channel&gt; Ada>"
    )
    assert default_item_text("leads", ScanItem("k1", [1, 2])) == ":new: *leads*: k1"


# -- modes, memory, failures ---------------------------------------------------------------------


def test_which_triggers_report() -> None:
    assert mode_of("json", "x", {}) == "report"
    assert mode_of("json", "x", {"each": "data", "key": "id"}) == "scan"
    assert mode_of("http", None, {}) == "check"
    assert handles("csv", None, None, {})
    assert handles("json", None, None, {})
    assert not handles("json", "json.x > 1", None, {"retries": "3", "latest": "1"})
    assert handles("http", None, None, {"auth": "bearer:a-token"})
    assert not handles("rss", None, None, {})


def test_memory_is_dropped_when_what_it_is_about_changes() -> None:
    memory = ReportMemory("json https://a.example each= key=", True, {"total": 1}, "t", 2)
    assert memory_of(memory.to_dict(), memory.source) == memory
    assert memory_of(memory.to_dict(), "json https://b.example each= key=") == ReportMemory(
        "json https://b.example each= key="
    )
    assert memory_of(None, "x") == ReportMemory("x")
    assert remembered({"a": [1, 2]}) == {"a": [1, 2]}
    assert remembered({"a": "x" * MAX_PREVIOUS_CHARS}) is None


def test_a_failed_report_is_retried_until_its_retries_or_the_next_run() -> None:
    tomorrow = NOW + timedelta(days=1)
    assert retry_time(
        retries_made=0, retries=3, now=NOW, next_scheduled=tomorrow
    ) == NOW + timedelta(minutes=5)
    assert retry_time(retries_made=3, retries=3, now=NOW, next_scheduled=tomorrow) is None
    soon = NOW + timedelta(minutes=4)
    assert retry_time(retries_made=0, retries=3, now=NOW, next_scheduled=soon) is None


def test_the_failure_message_says_what_when_and_what_next() -> None:
    text = failure_text(
        "sales",
        "shop.example.com answered 503",
        failed_at=NOW,
        now=NOW,
        retry_at=NOW + timedelta(minutes=5),
        retries=3,
        next_run=NOW + timedelta(days=1),
    )
    assert text.startswith(":red_circle: *sales* report: shop.example.com answered 503 at <!date^")
    assert "|08:00 UTC>; retrying at <!date^" in text and text.endswith("|08:05 UTC> (retries=3)")
    later = failure_text(
        "sales", "x", failed_at=NOW, now=NOW, retry_at=None, retries=3, next_run=None
    )
    assert later.endswith("; no further run is scheduled")


# -- messages and templates typed in Slack -------------------------------------------------------


def test_a_report_too_long_for_slack_is_cut_visibly() -> None:
    trigger = Trigger(
        team_id="T", name="big", channel_id="C1", kind="json", created_by="U", created_at=NOW
    )
    trigger.id = 1
    text = "\n".join(f"row {n}: " + "x" * 50 for n in range(2000))
    message = report_message(trigger, text)
    assert message.blocks is not None and len(message.blocks) <= 50
    sections = [block["text"]["text"] for block in message.blocks]
    assert all(len(section) <= SECTION_TEXT_MAX for section in sections)
    assert sum(map(len, sections)) <= BLOCKS_TEXT_MAX
    assert sections[-1].endswith("more lines)") and "(cut: " in sections[-1]
    assert len(message.text) <= BLOCKS_TEXT_MAX and "(cut: " in message.text


def test_a_template_typed_in_slack_comes_back_as_typed() -> None:
    sent = (
        "New lead: *{{ <http://item.name|item.name> }}* ({{ <http://item.company|item.company> }}) "
        "{{ <http://item.email|item.email> }} &lt;{{ json.date|date(‘%A’) }}&gt; &amp; "
        "<https://crm.example.com/leads> <@U0001> “quoted”"
    )
    assert template_from_slack(sent) == (
        "New lead: *{{ item.name }}* ({{ item.company }}) {{ item.email }} "
        "<{{ json.date|date('%A') }}> & https://crm.example.com/leads <@U0001> “quoted”"
    )
