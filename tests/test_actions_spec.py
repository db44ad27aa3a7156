"""The pure parts of actions: the /action add grammar, bodies, judging answers, backoff,
and what a trigger's run asks its actions to do."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from bot.actions.sender import judge, retry_after, retry_delay
from bot.actions.spec import BodyError, encode_body, parse_add, unescape_rendered
from bot.errors import SpecError
from bot.models import Action, Trigger
from bot.net import FetchResult
from bot.triggers.acting import Seen, trigger_requests
from bot.triggers.evaluate import Announcement
from bot.triggers.observation import FeedItem, Observation
from bot.triggers.reporting import ScanItem

NOW = datetime(2031, 1, 6, 10, 0, tzinfo=UTC)


def test_add_reads_every_option() -> None:
    spec = parse_add(
        [
            "CRM",
            "post",
            "<https://crm.example.com/api/leads|crm.example.com/api/leads>",
            "auth=bearer:crm-token",
            "header.X-Api-Key=secret:crm-key",
            "header.X-Trace=chatops",
            "body=form",
            "confirm=yes",
            "timeout=5s",
            "retries=2",
        ]
    )
    assert (spec.name, spec.method, spec.url) == (
        "crm",
        "POST",
        "https://crm.example.com/api/leads",
    )
    assert spec.options() == {
        "auth": "bearer:crm-token",
        "header.X-Api-Key": "secret:crm-key",
        "header.X-Trace": "chatops",
    }
    assert (spec.body_kind, spec.confirm, spec.timeout, spec.retries) == ("form", True, 5.0, 2)


@pytest.mark.parametrize(
    ("words", "field", "said"),
    [
        (["crm"], "method", "needs a name, a method and a URL"),
        (["crm", "POST"], "url", "needs a name, a method and a URL"),
        (["Bad Name!", "POST", "https://x.example"], "name", "can't be an action's name"),
        (["crm", "FETCH", "https://x.example"], "method", "isn't an HTTP method"),
        (["crm", "POST", "ftp://x.example"], "url", "isn't an http(s) URL"),
        (["crm", "POST", "https://x.example", "body=xml"], "options", "use json or form"),
        (["crm", "POST", "https://x.example", "timeout=2h"], "options", "up to 60 s"),
        (["crm", "POST", "https://x.example", "retries=-1"], "options", "from 0 to 10"),
        (["crm", "POST", "https://x.example", "retries=²"], "options", "from 0 to 10"),
        (["crm", "POST", "https://x.example", "auth=token:x"], "options", "bearer:NAME"),
        (["crm", "POST", "https://x.example", "header.Token=abc"], "options", "credential"),
        (["crm", "POST", "https://x.example", "extra"], "options", "key=value"),
        (["crm", "POST", "https://x.example", "header.Idempotency-Key=1"], "options", "the bot"),
        (["crm", "POST", "https://x.example", "header.content-type=x"], "options", "the bot"),
    ],
)
def test_add_names_the_wrong_part(words: list[str], field: str, said: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_add(words)
    assert caught.value.field == field and said in str(caught.value)


def test_bodies_are_checked_json_and_forms_are_encoded() -> None:
    assert encode_body('{"a": "x &amp; y &lt;z&gt;"}', "json") == '{"a": "x & y <z>"}'
    assert encode_body('{"sku": "A-1", "qty": 2, "gift": true}', "form") == (
        "sku=A-1&qty=2&gift=true"
    )
    assert encode_body("  \n", "json") is None
    with pytest.raises(BodyError, match="not JSON"):
        encode_body('{"a": x}', "json")
    with pytest.raises(BodyError, match="JSON object of fields"):
        encode_body("[1, 2]", "form")
    # Slack's escaping is undone exactly: an escaped "&lt;" stays "&lt;".
    assert unescape_rendered("&amp;lt; &lt;") == "&lt; <"


def result(status: int, **headers: str) -> FetchResult:
    return FetchResult(status, CIMultiDictProxy(CIMultiDict(headers)), b"", False, 5.0, "")


@pytest.mark.parametrize(
    ("status", "headers", "verdict", "wait"),
    [
        (201, {}, "sent", None),
        (204, {}, "sent", None),
        (302, {"Location": "/x"}, "failed", None),
        (400, {}, "failed", None),
        (404, {}, "failed", None),
        (429, {"Retry-After": "12"}, "retry", 12.0),
        (429, {"Retry-After": "Mon, 06 Jan 2031 10:01:00 GMT"}, "retry", 60.0),
        (500, {}, "retry", None),
        (503, {"Retry-After": "3"}, "retry", 3.0),
    ],
)
def test_answers_are_judged(
    status: int, headers: dict[str, str], verdict: str, wait: float | None
) -> None:
    attempt = judge(result(status, **headers), NOW)
    assert (attempt.verdict, attempt.wait) == (verdict, wait)


def test_backoff_takes_about_half_an_hour_over_five_retries() -> None:
    delays = [retry_delay(n) for n in range(1, 6)]
    assert delays == [60, 120, 240, 480, 960] and 25 * 60 < sum(delays) < 35 * 60
    assert retry_after({"Retry-After": "999999"}, NOW) == 3600
    assert retry_after({"Retry-After": "soon"}, NOW) is None


def action(name: str) -> Action:
    return Action(
        id=1, team_id="T1", name=name, method="POST", url="https://x.example", created_by="U1"
    )


def trigger(on: str) -> Trigger:
    return Trigger(
        id=7,
        team_id="T1",
        name="site",
        channel_id="C1",
        kind="http",
        target="https://x.example",
        schedule={},
        options={},
        state={},
        settings={"then": "restart,notify", "on": on},
        created_by="U1",
    )


DOWN = Announcement("down", "site is down")
RECOVERED = Announcement("recovered", "site recovered", follows_up=True)
FAILING = Observation(ok=False, summary="HTTP 503", status=503)


@pytest.mark.parametrize(
    ("on", "announcements", "causes", "threaded"),
    [
        ("problem", [DOWN], ["trigger site: problem"] * 2, True),
        ("problem", [RECOVERED], [], True),
        ("recover", [RECOVERED], ["trigger site: recovered"] * 2, True),
        ("recover", [DOWN], [], True),
        ("always", [], ["trigger site: ran"] * 2, False),
    ],
)
def test_a_trigger_runs_its_actions_on_what_it_asks(
    on: str, announcements: list[Announcement], causes: list[str], threaded: bool
) -> None:
    actions = {"restart": action("restart"), "notify": action("notify")}
    requests = trigger_requests(trigger(on), actions, Seen(FAILING, announcements, 4))
    assert [r.cause for r in requests] == causes
    assert [r.action.name for r in requests] == ["restart", "notify"][: len(causes)]
    for request in requests:
        assert request.context["trigger"]["name"] == "site"
        assert request.context["result"] == {
            "ok": False,
            "summary": "HTTP 503",
            "status": 503,
            "duration_ms": 0,
        }
        assert (request.thread_key == "trigger:7:incident:4") == threaded


def test_each_new_item_runs_the_actions_with_the_item_in_scope() -> None:
    actions = {"restart": action("restart")}  # "notify" no longer exists: skipped
    scan = Seen(Observation(ok=True, summary="2 new"), [], 0, [ScanItem("a", {"id": "a"})])
    (request,) = trigger_requests(trigger("item"), actions, scan)
    assert request.context["item"] == {"id": "a"} and request.thread_key is None
    post = FeedItem(id="p1", title="Hello", link="https://blog.example/p1")
    feed = Seen(Observation(ok=True, summary="1 new"), [Announcement("new_item", "x", post)], 0)
    (request,) = trigger_requests(trigger("item"), actions, feed)
    assert request.context["item"]["title"] == "Hello"
