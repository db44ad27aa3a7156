"""check_http, check_json and check_feed against a real HTTP server serving the fixtures."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict, CIMultiDictProxy

from bot.net import AddressPolicy, FetchResult, SafeFetcher
from bot.triggers.checks import (
    check_feed,
    check_http,
    check_json,
    condition_context,
    decode_body,
    json_observation,
    shorten,
    strip_html,
)
from bot.triggers.observation import FeedItem

FIXTURES = Path(__file__).parent / "fixtures"
FEEDS = FIXTURES / "feeds"
STATUS_JSON = FIXTURES / "json" / "statuspage.status.json"
INCIDENTS_JSON = FIXTURES / "json" / "statuspage.incidents.json"
SUMMARY_JSON = FIXTURES / "json" / "statuspage.summary.json"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
MS = r"\d+ ms"


def _file_route(path: Path, content_type: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=path.read_bytes(), content_type=content_type)

    return handler


async def _status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="upstream says no")


async def _text(request: web.Request) -> web.Response:
    return web.Response(text=request.query.get("say", "all good: healthy"))


def _app(hits: list[str]) -> web.Application:
    app = web.Application()
    for feed in FEEDS.iterdir():
        app.router.add_get(f"/feeds/{feed.name}", _file_route(feed, "application/xml"))
    for doc in (STATUS_JSON, INCIDENTS_JSON, SUMMARY_JSON):
        app.router.add_get(f"/json/{doc.name}", _file_route(doc, "application/json"))
    app.router.add_get("/status/{code}", _status)
    app.router.add_get("/text", _text)

    async def secret(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="secret")

    app.router.add_get("/secret", secret)
    return app


@pytest.fixture
def hits() -> list[str]:
    return []


@pytest.fixture
async def server(hits: list[str]) -> AsyncIterator[TestServer]:
    test_server = TestServer(_app(hits), host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
async def fetcher() -> AsyncIterator[SafeFetcher]:
    async with SafeFetcher(AddressPolicy.from_allowlist(["127.0.0.1"])) as safe:
        yield safe


def url(server: TestServer, path: str, **query: str) -> str:
    return str(server.make_url(path).with_query(query or None))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield silent.sockets[0].getsockname()[1]
    for writer in writers:
        writer.close()
    silent.close()
    await silent.wait_closed()


# --- check_http ---------------------------------------------------------------------


async def test_http_ok(server: TestServer, fetcher: SafeFetcher) -> None:
    seen = await check_http(fetcher, url(server, "/text"), timeout=5)
    assert seen.ok is True
    assert re.fullmatch(rf"OK: HTTP 200 in {MS}", seen.summary)
    assert seen.status == 200
    assert seen.duration_ms > 0


@pytest.mark.parametrize("code", [404, 500, 503])
async def test_http_bad_status_is_a_problem(
    server: TestServer, fetcher: SafeFetcher, code: int
) -> None:
    seen = await check_http(fetcher, url(server, f"/status/{code}"), timeout=5)
    assert seen.ok is False
    assert re.fullmatch(rf"HTTP {code} in {MS}", seen.summary)
    assert seen.status == code


async def test_http_blocked_address_is_a_problem(server: TestServer) -> None:
    async with SafeFetcher(AddressPolicy()) as strict:
        seen = await check_http(strict, url(server, "/text"), timeout=5)
    assert seen.ok is False
    assert seen.summary == (
        "refused: 127.0.0.1 is a loopback address; add it to CHECK_ALLOWLIST to allow it"
    )
    assert seen.status is None


async def test_http_metadata_url_is_a_problem(fetcher: SafeFetcher) -> None:
    seen = await check_http(fetcher, "http://169.254.169.254/latest/meta-data/", timeout=5)
    assert (seen.ok, seen.status) == (False, None)
    assert "169.254.169.254 is a link-local address (cloud metadata)" in seen.summary


async def test_http_refused_connection(fetcher: SafeFetcher) -> None:
    seen = await check_http(fetcher, f"http://127.0.0.1:{_closed_port()}/", timeout=5)
    assert (seen.ok, seen.summary, seen.status) == (False, "connection refused", None)


async def test_http_timeout(fetcher: SafeFetcher, silent_port: int) -> None:
    seen = await check_http(fetcher, f"http://127.0.0.1:{silent_port}/", timeout=0.2)
    assert (seen.ok, seen.summary) == (False, "timed out after 0.2 s")
    assert 150 < seen.duration_ms < 2000


@pytest.mark.parametrize(
    ("path", "condition", "text", "ok"),
    [
        ("/text", lambda c: c["status"] == 200, "status == 200", False),
        ("/text", lambda c: c["status"] != 200, "status != 200", True),
        ("/text", lambda c: c["latency_ms"] > 60_000, "latency_ms > 60000", True),
        ("/text", lambda c: c["latency_ms"] >= 0, "latency_ms >= 0", False),
        ("/text", lambda c: "healthy" not in c["body"], "'healthy' not in body", True),
        ("/text?say=degraded", lambda c: "healthy" not in c["body"], "not healthy", False),
        ("/text", lambda c: c["json"] is None, "json is None", False),
        ("/text", lambda c: c["cert_days_left"] is not None, "cert_days_left", True),
        (
            "/json/statuspage.status.json",
            lambda c: c["json"]["status"]["indicator"] != "none",
            "json.status.indicator != 'none'",
            True,
        ),
        (
            "/json/statuspage.status.json",
            lambda c: c["headers"]["content-type"].startswith("application/json"),
            "headers['content-type'] is JSON",
            False,
        ),
    ],
)
async def test_http_condition(
    server: TestServer,
    fetcher: SafeFetcher,
    path: str,
    condition: Any,
    text: str,
    ok: bool,
) -> None:
    target = str(server.make_url(path))
    seen = await check_http(
        fetcher, target, timeout=5, condition=condition, condition_text=text, now=NOW
    )
    assert seen.ok is ok
    expected = (
        rf"OK: HTTP 200 in {MS}"
        if ok
        else rf"condition held: {re.escape(text)} \(HTTP 200 in {MS}\)"
    )
    assert re.fullmatch(expected, seen.summary)


async def test_http_condition_sees_the_documented_context(
    server: TestServer, fetcher: SafeFetcher
) -> None:
    seen_contexts: list[Mapping[str, Any]] = []

    def record(context: Mapping[str, Any]) -> bool:
        seen_contexts.append(context)
        return False

    await check_http(
        fetcher, url(server, "/json/statuspage.status.json"), timeout=5, condition=record
    )
    (context,) = seen_contexts
    assert set(context) == {"status", "latency_ms", "body", "json", "headers", "cert_days_left"}
    assert context["status"] == 200
    assert context["json"] == json.loads(STATUS_JSON.read_bytes())
    assert context["body"] == STATUS_JSON.read_text(encoding="utf-8")
    assert context["headers"]["content-type"] == "application/json"
    assert context["cert_days_left"] is None
    assert isinstance(context["latency_ms"], float)


@pytest.mark.parametrize(
    ("condition", "summary"),
    [
        (
            lambda c: c["json"]["nope"],
            "condition error: TypeError: 'NoneType' object is not subscriptable",
        ),
        (lambda c: c["headers"]["x-missing"], "condition error: KeyError: 'x-missing'"),
        (lambda c: 1 / 0, "condition error: ZeroDivisionError: division by zero"),
    ],
)
async def test_http_condition_error_is_a_problem(
    server: TestServer, fetcher: SafeFetcher, condition: Any, summary: str
) -> None:
    seen = await check_http(fetcher, url(server, "/text"), timeout=5, condition=condition)
    assert (seen.ok, seen.summary, seen.status) == (False, summary, 200)


def _result(body: bytes, content_type: str, **changes: Any) -> FetchResult:
    fields: dict[str, Any] = {
        "status": 200,
        "headers": CIMultiDictProxy(CIMultiDict({"Content-Type": content_type})),
        "body": body,
        "truncated": False,
        "elapsed_ms": 42.4,
        "final_url": "https://status.example.com/api/v2/status.json",
        "cert_not_after": None,
    }
    fields.update(changes)
    return FetchResult(**fields)


@pytest.mark.parametrize(
    ("not_after", "days"),
    [
        (datetime(2026, 1, 11, 12, tzinfo=UTC), 10.5),
        (datetime(2025, 12, 31, tzinfo=UTC), -1.0),
        (None, None),
    ],
)
def test_cert_days_left(not_after: datetime | None, days: float | None) -> None:
    result = _result(b"{}", "application/json", cert_not_after=not_after)
    assert condition_context(result, NOW)["cert_days_left"] == days


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        (b"caf\xe9", "text/plain; charset=iso-8859-1", "café"),
        ("café".encode(), "text/plain", "café"),
        (b"caf\xe9", "text/plain", "caf\ufffd"),
        ("café".encode(), "text/plain; charset=no-such-charset", "café"),
        (b"ok", "", "ok"),
        # codecs that are no text encoding, named by a hostile or broken server
        (b"ok", "application/json; charset=idna", "ok"),
        (b"ok", "application/json; charset=undefined", "ok"),
        (b"ok", "application/json; charset=punycode", "ok"),
        (b"ok", "text/plain; charset=base64", "ok"),
    ],
)
def test_decode_body_is_lenient(body: bytes, content_type: str, text: str) -> None:
    assert decode_body(body, {"Content-Type": content_type}) == text


def test_repeated_headers_are_joined_under_lower_case_names() -> None:
    headers = CIMultiDictProxy(CIMultiDict([("Vary", "Accept"), ("VARY", "Origin")]))
    result = _result(b"", "text/plain", headers=headers)
    assert condition_context(result, NOW)["headers"] == {"vary": "Accept, Origin"}


# --- check_json ---------------------------------------------------------------------


def _indicator_is_not_none(context: Mapping[str, Any]) -> bool:
    return bool(context["data"]["status"]["indicator"] != "none")


async def test_json_condition_false_is_ok(server: TestServer, fetcher: SafeFetcher) -> None:
    seen = await check_json(
        fetcher,
        url(server, "/json/statuspage.status.json"),
        timeout=5,
        condition=_indicator_is_not_none,
        condition_text='status.indicator != "none"',
    )
    assert seen.ok is True
    assert re.fullmatch(
        rf'OK: condition false: status.indicator != "none" \(HTTP 200 in {MS}\)', seen.summary
    )


@pytest.mark.parametrize(
    ("path", "condition", "text"),
    [
        (
            "/json/statuspage.status.json",
            lambda c: c["data"]["status"]["description"] == "All Systems Operational",
            "description is operational",
        ),
        (
            "/json/statuspage.incidents.json",
            lambda c: c["json"]["incidents"][0]["impact"] == "minor",
            "latest incident is minor",
        ),
        (
            "/json/statuspage.summary.json",
            lambda c: c["data"]["components"][0]["name"] == "South Korea" and c["status"] == 200,
            "South Korea listed",
        ),
    ],
)
async def test_json_condition_true_is_reported(
    server: TestServer, fetcher: SafeFetcher, path: str, condition: Any, text: str
) -> None:
    seen = await check_json(
        fetcher, str(server.make_url(path)), timeout=5, condition=condition, condition_text=text
    )
    assert seen.ok is False
    assert re.fullmatch(rf"condition true: {text} \(HTTP 200 in {MS}\)", seen.summary)
    assert seen.status == 200


async def test_json_body_that_is_not_json(server: TestServer, fetcher: SafeFetcher) -> None:
    seen = await check_json(
        fetcher, url(server, "/text"), timeout=5, condition=_indicator_is_not_none
    )
    assert (seen.ok, seen.status) == (False, 200)
    assert seen.summary == (
        "fetch failed: response is not JSON (Expecting value: line 1 column 1 (char 0))"
    )


async def test_json_cut_body_says_it_was_cut() -> None:
    cut = STATUS_JSON.read_bytes()[:50]
    seen = await json_observation(
        _result(cut, "application/json", truncated=True), _indicator_is_not_none, None, NOW
    )
    assert seen.ok is False
    assert seen.summary.startswith("fetch failed: response is not JSON (")
    assert seen.summary.endswith("; body cut at 50 bytes)")


async def test_json_bad_status_is_a_fetch_failure(server: TestServer, fetcher: SafeFetcher) -> None:
    seen = await check_json(
        fetcher, url(server, "/status/502"), timeout=5, condition=_indicator_is_not_none
    )
    assert seen.ok is False
    assert re.fullmatch(rf"fetch failed: HTTP 502 in {MS}", seen.summary)


async def test_json_unreachable_is_a_fetch_failure(fetcher: SafeFetcher) -> None:
    seen = await check_json(
        fetcher,
        f"http://127.0.0.1:{_closed_port()}/api/v2/status.json",
        timeout=5,
        condition=_indicator_is_not_none,
    )
    assert (seen.ok, seen.summary) == (False, "fetch failed: connection refused")


async def test_json_condition_error(server: TestServer, fetcher: SafeFetcher) -> None:
    seen = await check_json(
        fetcher,
        url(server, "/json/statuspage.status.json"),
        timeout=5,
        condition=lambda c: c["data"]["components"],
    )
    assert (seen.ok, seen.summary) == (False, "condition error: KeyError: 'components'")


# --- check_feed ---------------------------------------------------------------------


async def test_feed_rss2_sample(server: TestServer, fetcher: SafeFetcher) -> None:
    seen = await check_feed(fetcher, url(server, "/feeds/rss2sample.xml"), timeout=5)
    assert seen.ok is True
    assert re.fullmatch(rf"OK: 4 items \(HTTP 200 in {MS}\)", seen.summary)
    assert seen.items[0] == FeedItem(
        id="http://liftoff.msfc.nasa.gov/2003/06/03.html#item573",
        title="Star City",
        link="http://liftoff.msfc.nasa.gov/news/2003/news-starcity.asp",
        summary=(
            "How do Americans get ready to work with Russians aboard the International Space "
            "Station? They take a crash course in culture, language and protocol at Russia's "
            "Star City."
        ),
        published="2003-06-03T09:39:21+00:00",
    )
    # The second item has a guid and a description but no title and no link.
    assert seen.items[1].id == "http://liftoff.msfc.nasa.gov/2003/05/30.html#item572"
    assert seen.items[1].title == "(untitled)"
    assert [i.title for i in seen.items[2:]] == [
        "The Engine That Does More",
        "Astronauts' Dirty Laundry",
    ]


async def test_feed_hacker_news_is_sorted_newest_first(
    server: TestServer, fetcher: SafeFetcher
) -> None:
    seen = await check_feed(fetcher, url(server, "/feeds/hackernews.rss.xml"), timeout=5)
    assert seen.ok is True
    assert len(seen.items) == 30
    newest, second = seen.items[0], seen.items[1]
    assert newest.title == "Show HN: MetricFlow – open-source metric framework"
    assert newest.id == newest.link == "https://github.com/transform-data/metricflow"
    assert newest.published == "2022-04-06T22:12:03+00:00"
    assert second.title == "Inside London's first Ketamine therapy clinic"
    assert seen.items[-1].title == "Wolfenstein 3D's winding journey from pitch to release"
    assert seen.items[-1].published == "2022-04-03T02:07:52+00:00"
    assert {i.summary for i in seen.items} == {"Comments"}
    published = [i.published or "" for i in seen.items]
    assert published == sorted(published, reverse=True)


async def test_feed_atom_blog_summary_is_plain_and_cut(
    server: TestServer, fetcher: SafeFetcher
) -> None:
    seen = await check_feed(fetcher, url(server, "/feeds/feedjira_blog.atom.xml"), timeout=5)
    (item,) = seen.items
    assert item.id == "http://feedjira.com/blog/2014/03/17/feedjira-goes-one-point-oh.html"
    assert item.link == item.id
    assert item.title == "Feedjira Goes One-Point-Oh"
    assert item.published == "2014-03-17T00:00:00+00:00"
    assert item.summary is not None
    assert len(item.summary) <= 300
    assert item.summary.startswith(
        "Last fall, I asked Paul Dix if I could take over maintenance of his gem Feedzirra."
    )
    assert "didn\u2019t have time" in item.summary
    assert "<" not in item.summary
    assert item.summary.endswith("so I should feel free to do whatever I thought was…")
    assert re.fullmatch(rf"OK: 1 item \(HTTP 200 in {MS}\)", seen.summary)


async def test_feed_rfc4287_example(server: TestServer, fetcher: SafeFetcher) -> None:
    seen = await check_feed(fetcher, url(server, "/feeds/atom_rfc4287_example.xml"), timeout=5)
    assert seen.items == (
        FeedItem(
            id="urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a",
            title="Atom-Powered Robots Run Amok",
            link="http://example.org/2003/12/13/atom03",
            summary="Some text.",
            published="2003-12-13T18:30:02+00:00",
        ),
    )


def test_every_feed_fixture_has_a_test() -> None:
    tested = {
        "rss2sample.xml",
        "hackernews.rss.xml",
        "feedjira_blog.atom.xml",
        "atom_rfc4287_example.xml",
    }
    assert {p.name for p in FEEDS.iterdir()} == tested


@pytest.mark.parametrize(
    ("say", "reason"),
    [
        ("garbage {", "syntax error"),
        ("{}", "not well-formed (invalid token)"),
    ],
)
async def test_feed_garbage_is_a_problem(
    server: TestServer, fetcher: SafeFetcher, say: str, reason: str
) -> None:
    seen = await check_feed(fetcher, url(server, "/text", say=say), timeout=5)
    assert seen.ok is False
    assert seen.items == ()
    assert re.fullmatch(
        rf"not an RSS or Atom feed: {re.escape(reason)} \(HTTP 200 in {MS}\)", seen.summary
    )


async def test_feed_body_naming_a_file_is_not_opened(
    server: TestServer, fetcher: SafeFetcher
) -> None:
    # Given bytes, feedparser tries them as a file path first; that file is a valid feed.
    path = str((FEEDS / "rss2sample.xml").resolve())
    seen = await check_feed(fetcher, url(server, "/text", say=path), timeout=5)
    assert (seen.ok, seen.items) == (False, ())


async def test_feed_body_naming_a_url_is_not_fetched(
    server: TestServer, fetcher: SafeFetcher, hits: list[str]
) -> None:
    # feedparser fetches a str that looks like a URL; the body must reach it as data.
    secret = url(server, "/secret")
    seen = await check_feed(fetcher, url(server, "/text", say=secret), timeout=5)
    assert seen.ok is False
    assert hits == []


async def test_feed_bad_status(server: TestServer, fetcher: SafeFetcher) -> None:
    seen = await check_feed(fetcher, url(server, "/status/404"), timeout=5)
    assert seen.ok is False
    assert re.fullmatch(rf"HTTP 404 in {MS}", seen.summary)


async def test_feed_blocked(fetcher: SafeFetcher) -> None:
    seen = await check_feed(fetcher, "http://10.0.0.1/feed.xml", timeout=5)
    assert (seen.ok, seen.items) == (False, ())
    assert seen.summary.startswith("refused: 10.0.0.1 is a private address")


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>One</p><p>Two</p>", "One Two"),
        ('Read <a href="x">this</a> &amp; that', "Read this & that"),
        ("didn&rsquo;t", "didn\u2019t"),
        ("  spaced\n\n out  ", "spaced out"),
        ("line<br>break", "line break"),
    ],
)
def test_strip_html(markup: str, text: str) -> None:
    assert strip_html(markup) == text


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 300, "short"),
        ("x" * 300, 300, "x" * 300),
        ("x" * 301, 300, "x" * 299 + "…"),
        ("word " * 10, 12, "word word w…"),
    ],
)
def test_shorten(text: str, limit: int, expected: str) -> None:
    assert shorten(text, limit) == expected
