"""Issue 12, defect 6: conditions and kinds that can never work are refused when added.

A condition may read only the names its kind's check provides (and the language's own
globals); an rss trigger's address is fetched once at ``add`` and refused when it answers
with something that is not a feed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from bot.net import FetchResult
from bot.triggers.checks import condition_context
from bot.triggers.conditions import CONDITION_NAMES, ConditionError, check_condition, names_used
from bot.triggers.service import FEED_PROBE_SECONDS
from tests.conftest import RunningBot, fixture_bytes
from tests.test_triggers_flow import trigger_named

RSS = fixture_bytes("feeds/rss2sample.xml")


def test_the_names_offered_are_the_names_a_check_provides() -> None:
    result = FetchResult(
        status=200,
        headers=CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"})),
        body=b"{}",
        truncated=False,
        elapsed_ms=1.0,
        final_url="https://example.com/",
    )
    provided = set(condition_context(result, datetime(2031, 1, 6, tzinfo=UTC)))
    assert set(CONDITION_NAMES["http"]) == provided
    assert set(CONDITION_NAMES["json"]) == provided | {"data"}  # check_json adds data


@pytest.mark.parametrize(
    ("condition", "names"),
    [
        ("latency > 500ms", ["latency_ms"]),
        ('body contains "maintenance"', ["body"]),
        ("cert expires < 14d", ["cert_days_left"]),
        ('json.status.indicator != "none" and status == 200', ["json", "status"]),
        ("len(json) > 0", ["len", "json"]),
        ("data.queue|length > range(3)|list|length", ["data", "range"]),
    ],
)
def test_names_used_are_the_free_names_of_the_rewritten_condition(
    condition: str, names: list[str]
) -> None:
    assert names_used(condition) == names


@pytest.mark.parametrize(
    ("condition", "kind"),
    [
        ("status != 200", "http"),
        ("latency > 500ms or body contains 'x'", "http"),
        ("json|length > 0", "json"),
        ("data.queue.depth > 100", "json"),
        ("headers['content-type'] != 'application/json'", "http"),
        ("json is none", "http"),
    ],
)
def test_conditions_over_what_the_check_sees_are_accepted(condition: str, kind: str) -> None:
    check_condition(condition, kind)


@pytest.mark.parametrize(
    ("condition", "kind", "said"),
    [
        ("len(json) > 0", "json", "`len(json)` is `json|length`"),
        ("data.queue.depth > 100", "http", "`data`, which an http check doesn't have"),
        ("response.status == 200", "http", "`response`"),
    ],
)
def test_a_name_the_check_lacks_is_refused_with_the_names_that_exist(
    condition: str, kind: str, said: str
) -> None:
    with pytest.raises(ConditionError) as refused:
        check_condition(condition, kind)
    message = str(refused.value)
    assert said in message
    assert all(f"`{name}`" in message for name in CONDITION_NAMES[kind])


async def test_the_issues_condition_is_refused_at_add_and_nothing_is_added(start_bot) -> None:
    running: RunningBot = await start_bot()
    reply = await running.command(
        "/trigger add x every day at 2am json https://example.com/api when len(json) > 0"
    )
    assert "Added" not in reply and "`len`" in reply and "json|length" in reply
    assert "no trigger named" in (await running.command("/trigger show x")).lower()


# ----- an rss trigger's address is fetched once, at add ------------------------------------


@pytest.fixture
async def site() -> AsyncIterator[str]:
    """A site with a feed at /feed, an HTML page at /page, and a page that never answers."""
    never = asyncio.Event()

    async def feed(_request: web.Request) -> web.Response:
        return web.Response(body=RSS, content_type="application/rss+xml")

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Our blog</body></html>", content_type="text/html")

    async def slow(_request: web.Request) -> web.Response:
        await never.wait()
        return web.Response(text="too late")

    app = web.Application()
    app.router.add_get("/feed", feed)
    app.router.add_get("/page", page)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    never.set()
    await runner.cleanup()


async def test_an_rss_trigger_on_a_page_that_is_no_feed_is_refused_privately(
    start_bot, site: str
) -> None:
    running: RunningBot = await start_bot()
    reply = await running.command(f"/trigger add blog every 30m rss {site}/page #ops")
    assert "Added" not in reply
    assert "not an RSS or Atom feed" in reply and "/feed, /rss or .xml" in reply
    assert "no trigger named" in (await running.command("/trigger show blog")).lower()


async def test_an_rss_trigger_on_a_feed_is_added(start_bot, site: str) -> None:
    running: RunningBot = await start_bot()
    assert "Added *blog*" in await running.command(f"/trigger add blog every 30m rss {site}/feed")


async def test_a_feed_that_does_not_answer_in_time_is_added_within_slacks_deadline(
    start_bot, site: str
) -> None:
    running: RunningBot = await start_bot()
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await running.command(f"/trigger add blog every 30m rss {site}/slow")
    took = loop.time() - started
    assert "Added *blog*" in reply
    # Time-boxed: a hang would have lasted the check timeout (10 s). Only a hang is bounded
    # here (the machine may be busy); FEED_PROBE_SECONDS keeps a second of Slack's 3 s free.
    assert took < 8 and FEED_PROBE_SECONDS <= 2
    assert (await trigger_named(running, "blog")).kind == "rss"
