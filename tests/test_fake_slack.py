"""The fake Slack Web API, exercised over real HTTP through slack_sdk's own client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.devtools.fake_slack import Call, FakeSlack, format_call, tz_offset_seconds
from bot.slack.signing import is_valid_slack_signature, signed_headers, slack_signature

SLACK_FIXTURES = Path(__file__).parent / "fixtures" / "slack"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*deploy* finished"}}]
MODAL = {
    "type": "modal",
    "callback_id": "silence",
    "title": {"type": "plain_text", "text": "Silence alert"},
    "blocks": [],
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-fake", base_url=fake.url, retry_handlers=[])


async def slack_error(call: Any) -> SlackApiError:
    """Await a slack_sdk call that must fail and return the SlackApiError it raised."""
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# ----- lifecycle -----------------------------------------------------------------------


async def test_url_is_an_ephemeral_local_base_url(fake: FakeSlack) -> None:
    assert fake.url.startswith("http://127.0.0.1:")
    assert fake.url.endswith("/api/")
    assert int(fake.url.split(":")[2].split("/")[0]) > 0


async def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        _ = FakeSlack().url


async def test_stop_releases_the_port() -> None:
    server = FakeSlack()
    await server.start()
    url = server.url
    await server.stop()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.post(url + "auth.test")


# ----- happy paths ---------------------------------------------------------------------


async def test_auth_test_identifies_the_bot(client: AsyncWebClient) -> None:
    response = await client.auth_test()
    assert (response["team_id"], response["user_id"], response["bot_id"]) == (
        "T0001",
        "UBOT",
        "B0001",
    )


async def test_post_update_react_delete_flow(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0001", text="deploying", blocks=BLOCKS)
    ts = posted["ts"]
    assert posted["channel"] == "C0001"
    assert posted["message"]["text"] == "deploying"
    assert posted["message"]["blocks"] == BLOCKS

    updated = await client.chat_update(channel="C0001", ts=ts, text="deployed")
    assert updated["ts"] == ts
    await client.reactions_add(channel="C0001", timestamp=ts, name="white_check_mark")

    message = fake.message_by_ts("C0001", ts)
    assert message is not None
    assert message["text"] == "deployed"
    assert message["blocks"] == BLOCKS
    assert message["reactions"] == [{"name": "white_check_mark", "users": ["UBOT"], "count": 1}]

    await client.chat_delete(channel="C0001", ts=ts)
    assert fake.message_by_ts("C0001", ts) is None


async def test_ts_values_are_unique_and_increasing(client: AsyncWebClient) -> None:
    stamps = [(await client.chat_postMessage(channel="C0002", text=str(i)))["ts"] for i in range(3)]
    assert stamps == ["1700000000.000100", "1700000000.000200", "1700000000.000300"]


async def test_post_by_channel_name_resolves_to_id(client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="#ops", text="hello ops")
    assert posted["channel"] == "C0002"


async def test_messages_lists_successful_posts_in_order(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel="C0001", text="one")
    await client.chat_postMessage(channel="C0002", text="two")
    await slack_error(client.chat_postMessage(channel="C9999", text="lost"))
    await client.chat_postMessage(channel="C0001", text="three", thread_ts="1700000000.000100")

    assert [m["text"] for m in fake.messages()] == ["one", "two", "three"]
    assert [m["text"] for m in fake.messages("C0001")] == ["one", "three"]
    assert fake.messages("C0001")[1]["thread_ts"] == "1700000000.000100"
    assert len(fake.calls_to("chat.postMessage")) == 4


async def test_ephemeral_returns_message_ts(fake: FakeSlack, client: AsyncWebClient) -> None:
    response = await client.chat_postEphemeral(channel="C0001", user="U0001", text="only you")
    assert response["message_ts"] == "1700000000.000100"
    assert fake.calls_to("chat.postEphemeral")[0].args == {
        "channel": "C0001",
        "user": "U0001",
        "text": "only you",
    }
    assert fake.messages() == []


async def test_users_info_reports_time_zone_and_roles(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.add_user("U0002", tz="America/New_York", is_admin=True, real_name="Grace Example")
    ada = (await client.users_info(user="U0001"))["user"]
    grace = (await client.users_info(user="U0002"))["user"]

    assert (ada["tz"], ada["is_admin"], ada["is_owner"]) == ("Europe/Berlin", False, False)
    assert ada["tz_offset"] in (3600, 7200)
    assert ada["real_name"] == "Ada Example"
    assert (grace["tz"], grace["is_admin"], grace["real_name"]) == (
        "America/New_York",
        True,
        "Grace Example",
    )
    assert grace["tz_offset"] in (-18000, -14400)


@pytest.mark.parametrize(
    ("tz", "when", "offset"),
    [
        ("Europe/Berlin", datetime(2024, 1, 15, 12, tzinfo=UTC), 3600),
        ("Europe/Berlin", datetime(2024, 7, 15, 12, tzinfo=UTC), 7200),
        ("America/New_York", datetime(2024, 1, 15, 12, tzinfo=UTC), -18000),
        ("Asia/Kolkata", datetime(2024, 7, 15, 12, tzinfo=UTC), 19800),
        ("UTC", datetime(2024, 7, 15, 12, tzinfo=UTC), 0),
    ],
)
def test_tz_offset_seconds(tz: str, when: datetime, offset: int) -> None:
    assert tz_offset_seconds(tz, when) == offset


async def test_views_open_update_publish(fake: FakeSlack, client: AsyncWebClient) -> None:
    opened = (await client.views_open(trigger_id="12345.98765.abcd", view=MODAL))["view"]
    assert opened["id"] in fake.views
    assert opened["callback_id"] == "silence"

    changed = {**MODAL, "title": {"type": "plain_text", "text": "Silenced"}}
    updated = (await client.views_update(view_id=opened["id"], hash=opened["hash"], view=changed))[
        "view"
    ]
    assert updated["id"] == opened["id"]
    assert fake.views[opened["id"]]["title"]["text"] == "Silenced"

    home = {"type": "home", "blocks": BLOCKS}
    first = (await client.views_publish(user_id="U0001", view=home))["view"]
    again = (await client.views_publish(user_id="U0001", view=home))["view"]
    assert first["id"] == again["id"]
    assert fake.views[first["id"]]["type"] == "home"


@pytest.mark.parametrize(
    ("method", "body", "error"),
    [
        ("views.open", {"view": MODAL}, "invalid_arguments"),
        ("views.update", {"view_id": "V404", "view": MODAL}, "not_found"),
        ("views.publish", {"user_id": "U404", "view": {"type": "home"}}, "user_not_found"),
        ("chat.update", {"channel": "C0001", "ts": "1.000001", "text": "x"}, "message_not_found"),
        ("chat.delete", {"channel": "C0001", "ts": "1.000001"}, "message_not_found"),
        ("chat.postMessage", {"channel": "C0001"}, "no_text"),
        ("chat.postMessage", {"channel": "C0404", "text": "x"}, "channel_not_found"),
        ("chat.postEphemeral", {"channel": "C0001", "user": "U404", "text": "x"}, "user_not_found"),
        ("users.info", {"user": "U404"}, "user_not_found"),
        ("conversations.info", {"channel": "C0404"}, "channel_not_found"),
        ("no.such.method", {}, "unknown_method"),
    ],
)
async def test_api_errors(
    client: AsyncWebClient, method: str, body: dict[str, Any], error: str
) -> None:
    failure = await slack_error(client.api_call(method, json=body))
    assert failure.response.status_code == 200
    assert failure.response["error"] == error


async def test_trigger_id_is_single_use(client: AsyncWebClient) -> None:
    await client.views_open(trigger_id="1.2.a", view=MODAL)
    failure = await slack_error(client.views_open(trigger_id="1.2.a", view=MODAL))
    assert failure.response["error"] == "exchanged_trigger_id"


async def test_views_update_with_stale_hash_conflicts(client: AsyncWebClient) -> None:
    opened = (await client.views_open(trigger_id="1.2.b", view=MODAL))["view"]
    failure = await slack_error(client.views_update(view_id=opened["id"], hash="stale", view=MODAL))
    assert failure.response["error"] == "hash_conflict"


async def test_repeated_reaction_is_already_reacted(client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel="C0001", text="x"))["ts"]
    await client.reactions_add(channel="C0001", timestamp=ts, name="eyes")
    failure = await slack_error(client.reactions_add(channel="C0001", timestamp=ts, name="eyes"))
    assert failure.response["error"] == "already_reacted"


# ----- channels ------------------------------------------------------------------------


async def test_not_in_channel_then_join_then_post(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_channel("C0003", "random", is_member=False)
    failure = await slack_error(client.chat_postMessage(channel="C0003", text="hi"))
    assert failure.response["error"] == "not_in_channel"

    joined = await client.conversations_join(channel="C0003")
    assert joined["channel"]["is_member"] is True
    posted = await client.chat_postMessage(channel="C0003", text="hi")

    assert posted["channel"] == "C0003"
    assert fake.channels["C0003"]["is_member"] is True
    assert [m["text"] for m in fake.messages("C0003")] == ["hi"]


async def test_join_when_already_member_warns(client: AsyncWebClient) -> None:
    joined = await client.conversations_join(channel="C0001")
    assert joined["warning"] == "already_in_channel"


async def test_private_channel_the_bot_is_not_in(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_channel("G0001", "secret", is_private=True, is_member=False)
    post = await slack_error(client.chat_postMessage(channel="G0001", text="hi"))
    join = await slack_error(client.conversations_join(channel="G0001"))
    info = await slack_error(client.conversations_info(channel="G0001"))
    assert post.response["error"] == "channel_not_found"
    assert join.response["error"] == "method_not_supported_for_channel_type"
    assert info.response["error"] == "channel_not_found"


async def test_conversations_info(client: AsyncWebClient) -> None:
    channel = (await client.conversations_info(channel="C0002"))["channel"]
    assert (channel["id"], channel["name"], channel["is_private"], channel["is_member"]) == (
        "C0002",
        "ops",
        False,
        True,
    )


# ----- request formats and auth --------------------------------------------------------


async def test_form_and_json_bodies_are_recorded_identically(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel="C0001", text="hi", blocks=BLOCKS)
    form = {"channel": "C0001", "text": "hi", "blocks": json.dumps(BLOCKS)}
    headers = {"Authorization": "Bearer xoxb-fake"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.url + "chat.postMessage", data=form, headers=headers) as response,
    ):
        body = await response.json()

    json_call, form_call = fake.calls_to("chat.postMessage")
    assert body["ok"] is True
    assert form_call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert json_call.headers["Content-Type"].startswith("application/json")
    assert form_call.args == json_call.args == {"channel": "C0001", "text": "hi", "blocks": BLOCKS}


async def test_token_in_form_body_is_accepted_and_not_recorded(fake: FakeSlack) -> None:
    form = {"token": "xoxb-fake", "channel": "C0002", "text": "via form token"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.url + "chat.postMessage", data=form) as response,
    ):
        body = await response.json()
    assert body["ok"] is True
    assert fake.calls[0].args == {"channel": "C0002", "text": "via form token"}


async def test_malformed_form_blocks_are_an_error(fake: FakeSlack) -> None:
    form = {"token": "xoxb-fake", "channel": "C0002", "text": "x", "blocks": "[{not json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.url + "chat.postMessage", data=form) as response,
    ):
        body = await response.json()
    assert body == {"ok": False, "error": "invalid_blocks_format"}
    assert fake.messages() == []


async def test_query_string_params_are_read(fake: FakeSlack, client: AsyncWebClient) -> None:
    # slack_sdk sends reactions.add as POST with its arguments in the query string.
    ts = (await client.chat_postMessage(channel="C0001", text="x"))["ts"]
    await client.reactions_add(channel="C0001", timestamp=ts, name=":rocket:")
    assert fake.calls_to("reactions.add")[0].args == {
        "channel": "C0001",
        "timestamp": ts,
        "name": ":rocket:",
    }
    message = fake.message_by_ts("C0001", ts)
    assert message is not None
    assert message["reactions"][0]["name"] == "rocket"


async def test_wrong_token_is_invalid_auth(fake: FakeSlack) -> None:
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=fake.url, retry_handlers=[])
    failure = await slack_error(wrong.chat_postMessage(channel="C0001", text="x"))
    assert failure.response.status_code == 200
    assert failure.response["error"] == "invalid_auth"
    assert fake.calls[0].headers["Authorization"] == "Bearer <redacted>"
    assert fake.messages() == []


async def test_missing_token_is_not_authed(fake: FakeSlack) -> None:
    anonymous = AsyncWebClient(token=None, base_url=fake.url, retry_handlers=[])
    failure = await slack_error(anonymous.auth_test())
    assert failure.response["error"] == "not_authed"


# ----- failure injection ---------------------------------------------------------------


async def test_rate_limit_surfaces_retry_after(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next(1, status=429, retry_after=7)
    failure = await slack_error(client.chat_postMessage(channel="C0001", text="x"))

    assert failure.response.status_code == 429
    assert failure.response.headers["Retry-After"] == "7"
    assert failure.response["error"] == "ratelimited"
    assert fake.calls[0].status == 429
    assert fake.message_by_ts("C0001", "1700000000.000100") is None

    posted = await client.chat_postMessage(channel="C0001", text="x")
    assert posted["ts"] == "1700000000.000100"


async def test_rate_limit_defaults_to_one_second(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next(1, status=429)
    failure = await slack_error(client.auth_test())
    assert failure.response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("status", "phrase"), [(500, "Internal Server Error"), (503, "Service Unavailable")]
)
async def test_server_errors_have_plain_bodies(
    fake: FakeSlack, client: AsyncWebClient, status: int, phrase: str
) -> None:
    fake.fail_next(2, status=status)
    first = await slack_error(client.chat_postMessage(channel="C0001", text="a"))
    second = await slack_error(client.chat_postMessage(channel="C0001", text="b"))
    third = await client.chat_postMessage(channel="C0001", text="c")

    assert (first.response.status_code, second.response.status_code) == (status, status)
    assert first.response.data == phrase
    assert third["ok"] is True
    assert [call.status for call in fake.calls] == [status, status, 200]
    assert [m["text"] for m in fake.messages()] == ["c"]


async def test_error_injection_limited_to_one_method(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.fail_next(1, error="fatal_error", method="reactions.add")
    ts = (await client.chat_postMessage(channel="C0001", text="x"))["ts"]
    failure = await slack_error(client.reactions_add(channel="C0001", timestamp=ts, name="eyes"))
    await client.reactions_add(channel="C0001", timestamp=ts, name="eyes")

    assert failure.response.status_code == 200
    assert failure.response["error"] == "fatal_error"
    assert [(c.method, c.error) for c in fake.calls] == [
        ("chat.postMessage", None),
        ("reactions.add", "fatal_error"),
        ("reactions.add", None),
    ]


async def test_stacked_failures_apply_in_order(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next(1, status=429, retry_after=2)
    fake.fail_next(1, status=502)
    for _ in range(3):
        with contextlib.suppress(SlackApiError):
            await client.auth_test()
    assert [call.status for call in fake.calls] == [429, 502, 200]


@pytest.mark.parametrize(("n", "status"), [(0, 500), (1, 404), (1, 200)])
def test_fail_next_rejects_nonsense(n: int, status: int) -> None:
    with pytest.raises(ValueError):
        FakeSlack().fail_next(n, status=status)


async def test_reset_forgets_calls_and_failures(fake: FakeSlack, client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel="C0001", text="kept"))["ts"]
    fake.fail_next(1, status=500)
    fake.reset()
    await client.auth_test()
    assert [call.status for call in fake.calls] == [200]
    assert fake.message_by_ts("C0001", ts) is not None


# ----- waiting, callbacks, response_url -------------------------------------------------


async def test_wait_for_wakes_on_new_calls(fake: FakeSlack, client: AsyncWebClient) -> None:
    waiter = asyncio.create_task(fake.wait_for("chat.postMessage", count=2, timeout=2.0))
    await client.chat_postMessage(channel="C0001", text="one")
    assert not waiter.done()
    await client.chat_postMessage(channel="C0001", text="two")
    calls = await asyncio.wait_for(waiter, timeout=2.0)
    assert [call.args["text"] for call in calls] == ["one", "two"]


async def test_wait_for_returns_at_once_when_already_seen(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    await client.auth_test()
    started = time.monotonic()
    calls = await fake.wait_for("auth.test", timeout=0.2)
    assert len(calls) == 1
    assert time.monotonic() - started < 0.1


async def test_wait_for_times_out_naming_what_it_saw(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    await client.auth_test()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"chat\.postMessage.*got 0.*auth\.test\(200\)"):
        await fake.wait_for("chat.postMessage", timeout=0.2)
    assert 0.15 <= time.monotonic() - started < 1.0


async def test_on_post_sees_every_call() -> None:
    seen: list[Call] = []
    async with FakeSlack(on_post=seen.append) as server:
        client = AsyncWebClient(token="xoxb-fake", base_url=server.url, retry_handlers=[])
        await client.chat_postMessage(channel="C0001", text="to the terminal")
        server.fail_next(1, status=500)
        await slack_error(client.auth_test())
    assert [(call.method, call.status) for call in seen] == [
        ("chat.postMessage", 200),
        ("auth.test", 500),
    ]
    assert format_call(seen[0]) == (
        '[fake slack] 200 chat.postMessage {"channel": "C0001", "text": "to the terminal"}'
    )


async def test_response_url_posts_are_recorded(fake: FakeSlack) -> None:
    webhook = AsyncWebhookClient(fake.response_url("T1/123/abc"))
    response = await webhook.send(text="done", response_type="in_channel", replace_original=True)

    assert (response.status_code, response.body) == (200, "ok")
    assert fake.responses("T1/123/abc") == [
        {"text": "done", "response_type": "in_channel", "replace_original": True}
    ]
    assert fake.responses("other") == []
    assert fake.calls[0].method == "response_url"


async def test_response_url_failure_injection(fake: FakeSlack) -> None:
    fake.fail_next(1, status=500, method="response_url")
    webhook = AsyncWebhookClient(fake.response_url("r1"))
    assert (await webhook.send(text="first")).status_code == 500
    assert (await webhook.send(text="second")).status_code == 200
    assert fake.responses("r1") == [{"text": "second"}]


async def test_latency_delays_answers() -> None:
    async with FakeSlack(latency=0.05) as server:
        client = AsyncWebClient(token="xoxb-fake", base_url=server.url, retry_handlers=[])
        started = time.monotonic()
        await client.auth_test()
        assert time.monotonic() - started >= 0.04  # asyncio may wake a tick early


# ----- request signing (bot.slack.signing, shared with the receiver) --------------------


def load_signing_vector() -> tuple[dict[str, str], bytes]:
    vector = json.loads((SLACK_FIXTURES / "signature_test_vector.json").read_text())
    body = (SLACK_FIXTURES / vector["body_file"]).read_bytes()
    return vector, body


def test_official_slack_signature_vector() -> None:
    vector, body = load_signing_vector()
    signature = slack_signature(vector["signing_secret"], vector["X-Slack-Request-Timestamp"], body)
    assert signature == vector["X-Slack-Signature"]
    assert signature == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


@pytest.mark.parametrize(
    ("mutate", "age", "valid"),
    [
        ("none", 0, True),
        ("none", 299, True),
        ("none", -299, True),
        ("none", 301, False),
        ("signature", 0, False),
        ("body", 0, False),
        ("secret", 0, False),
    ],
)
def test_is_valid_slack_signature(mutate: str, age: int, valid: bool) -> None:
    vector, body = load_signing_vector()
    secret, timestamp = vector["signing_secret"], vector["X-Slack-Request-Timestamp"]
    signature = vector["X-Slack-Signature"]
    if mutate == "signature":
        signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    if mutate == "body":
        body = body.replace(b"text=", b"text=x")
    if mutate == "secret":
        secret = secret.upper()
    now = int(timestamp) + age
    assert is_valid_slack_signature(secret, timestamp, body, signature, now=now) is valid


def test_non_numeric_timestamp_is_invalid() -> None:
    vector, body = load_signing_vector()
    signature = vector["X-Slack-Signature"]
    assert not is_valid_slack_signature(vector["signing_secret"], "abc", body, signature, now=0)


def test_signed_headers_round_trip() -> None:
    _, body = load_signing_vector()
    headers = signed_headers("s3cret", body, now=1_700_000_000)
    assert headers["X-Slack-Request-Timestamp"] == "1700000000"
    assert is_valid_slack_signature(
        "s3cret", "1700000000", body, headers["X-Slack-Signature"], now=1_700_000_060
    )
