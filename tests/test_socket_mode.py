"""Socket Mode end to end: the real app connects to the fake Slack over a real websocket.

With ``SLACK_APP_TOKEN`` set, the bot asks the fake's ``apps.connections.open`` for a URL
(at SLACK_API_URL, with the app-level token) and takes Slack's requests as envelopes over
that socket, answering each in its acknowledgement. Payloads are the published shapes in
fixtures/slack/, as in the HTTP flow tests.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.config import Secret
from bot.devtools.fake_slack import FakeSlack
from bot.devtools.fake_socket_mode import Ack, EnvelopeType
from bot.errors import ConfigError
from tests.conftest import (
    RunningBot,
    eventually,
    fake_clock,
    slash_command_body,
    until_bots_idle,
)
from tests.test_app import Exit, LocalBot, cli  # noqa: F401 (cli: a fixture)
from tests.test_conversation import click, dm, stored_trigger, submission, trigger_values


async def socket_bot(start_bot: Any, fake_slack: FakeSlack, **settings: Any) -> RunningBot:
    """A bot in Socket Mode, once its connection is open."""
    token = Secret(fake_slack.socket_mode.app_token)
    running: RunningBot = await start_bot(slack_app_token=token, **settings)
    await fake_slack.socket_mode.wait_connected()
    return running


def slash(fake_slack: FakeSlack, typed: str, *, user: str = "U0001") -> dict[str, Any]:
    """A slash command's payload as Socket Mode carries it: the HTTP form's fields."""
    name, _, text = typed.partition(" ")
    form = slash_command_body(name, text, user=user).decode()
    payload = dict(urllib.parse.parse_qsl(form, keep_blank_values=True))
    return payload | {"response_url": fake_slack.response_url(f"cmd-{name.strip('/')}")}


def answer_text(ack: Ack) -> str:
    assert ack.payload is not None, "the command was acknowledged without an answer"
    return str(ack.payload["text"])


async def test_a_slash_command_is_answered_in_its_acknowledgement(
    start_bot, fake_slack: FakeSlack
) -> None:
    await socket_bot(start_bot, fake_slack)
    sockets = fake_slack.socket_mode
    (opened,) = fake_slack.calls_to("apps.connections.open")
    assert opened.ok and opened.headers["Authorization"] == "Bearer <redacted>"

    ack = await sockets.deliver("slash_commands", slash(fake_slack, "/hook help"))
    assert "/hook create" in answer_text(ack)
    assert ack.payload is not None and ack.payload["response_type"] == "ephemeral"

    added = await sockets.deliver(
        "slash_commands", slash(fake_slack, '/trigger add standup every day at 9am message "hi"')
    )
    assert "Added *standup*" in answer_text(added)
    assert await stored_trigger_names(sockets, fake_slack) == ["standup"]
    assert sockets.unexpected == []


async def stored_trigger_names(sockets: Any, fake_slack: FakeSlack) -> list[str]:
    listed = await sockets.deliver("slash_commands", slash(fake_slack, "/trigger list"))
    return [name for name in ("standup", "site") if f"*{name}*" in answer_text(listed)]


async def test_a_dm_is_understood_and_a_click_creates_what_it_proposed(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("D0001", "dm")
    running = await socket_bot(start_bot, fake_slack)
    sockets = fake_slack.socket_mode
    asked = dm(
        "check <https://status.example.com|status.example.com> every 5 minutes "
        "and tell <#C0002|ops> if it's down"
    )
    ack = await sockets.deliver("events_api", asked)
    assert ack.payload is None  # an event's acknowledgement carries nothing
    (proposal,) = await fake_slack.wait_for("chat.postMessage")
    assert proposal.args["channel"] == "D0001" and "every 5 minutes" in proposal.args["text"]
    buttons = [e for b in proposal.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    create = next(b for b in buttons if b["action_id"] == "draft_create")
    assert await stored_trigger(running, "status-example-com") is None

    pressed = click("draft_create", create["value"], channel="D0001", ts="1700000000.000100")
    clicked = await sockets.deliver("interactive", pressed)
    assert clicked.payload is None
    (told,) = await fake_slack.wait_for("chat.postEphemeral")
    assert "Added" in told.args["text"]
    trigger = await stored_trigger(running, "status-example-com")
    assert trigger is not None and trigger.kind == "http" and trigger.channel_id == "C0002"
    (updated,) = await fake_slack.wait_for("chat.update")
    assert "Created" in updated.args["text"]


async def test_a_modal_submission_gets_its_errors_in_the_acknowledgement(
    start_bot, fake_slack: FakeSlack
) -> None:
    running = await socket_bot(start_bot, fake_slack, clock=fake_clock())
    sockets = fake_slack.socket_mode
    ack = await sockets.deliver("slash_commands", slash(fake_slack, "/trigger"))
    assert ack.payload is None  # no reply: a form opened instead
    (opened,) = await fake_slack.wait_for("views.open")
    view = opened.args["view"]

    wrong = trigger_values(name="status", target="https://example.com", schedule="every fortnight")
    refused = await sockets.deliver("interactive", submission(view, wrong))
    assert refused.payload is not None and refused.payload["response_action"] == "errors"
    assert "fortnight" in refused.payload["errors"]["schedule"]
    assert await stored_trigger(running, "status") is None

    right = trigger_values(name="status", target="https://example.com", schedule="every 5 minutes")
    accepted = await sockets.deliver("interactive", submission(view, right))
    assert accepted.payload is None  # the form closes
    trigger = await stored_trigger(running, "status")
    assert trigger is not None and trigger.schedule_text == "every 5 minutes"


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_nothing_is_lost_or_repeated_across_a_reconnect(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("D0001", "dm")
    running = await socket_bot(start_bot, fake_slack, clock=fake_clock())
    sockets = fake_slack.socket_mode
    sent: list[str] = []

    async def send(kind: EnvelopeType, payload: dict[str, Any]) -> None:
        sent.append(await sockets.send(kind, payload))

    # One sent just before Slack asks for a new connection, some while the bot reconnects,
    # and some once it has.
    await send("slash_commands", slash(fake_slack, '/trigger add t0 every day at 9am message "x"'))
    await sockets.disconnect("refresh_requested")
    for n in (1, 2, 3):
        await send("slash_commands", slash(fake_slack, f'/trigger add t{n} every 1h message "x"'))
        await send("events_api", dm("what's the weather like", event_id=f"Ev{n}"))
    await sockets.wait_connected(count=2)
    await send("slash_commands", slash(fake_slack, '/trigger add t4 every 1h message "x"'))
    await send("events_api", dm("what's the weather like", event_id="Ev4"))

    acks = await asyncio.gather(*(sockets.wait_for_ack(envelope) for envelope in sent))
    added = [ack for ack in acks if ack.payload is not None]
    assert [answer_text(ack).split("*")[1] for ack in added] == ["t0", "t1", "t2", "t3", "t4"]
    for n in range(5):
        assert await stored_trigger(running, f"t{n}") is not None
    # Each envelope went out once and was acknowledged once; after the disconnect, only
    # the new connection carried any.
    assert sorted(ack.envelope_id for ack in sockets.acks) == sorted(sent)
    assert [sockets.deliveries(envelope) for envelope in sent[1:]] == [[2]] * (len(sent) - 1)
    await until_bots_idle(running)
    replies = fake_slack.calls_to("chat.postMessage")
    assert len(replies) == 4 and all("didn't get that" in r.args["text"] for r in replies)
    assert sockets.connections_opened == 2 and sockets.live_connections == 1


async def test_a_dropped_connection_is_reopened_and_a_repeated_event_handled_once(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("D0001", "dm")
    running = await socket_bot(start_bot, fake_slack)
    sockets = fake_slack.socket_mode
    await sockets.drop()  # Slack closes the socket without a disconnect message first
    waiting = await sockets.send("events_api", dm("what's the weather like", event_id="EvA"))
    await sockets.wait_connected(count=2)
    await sockets.wait_for_ack(waiting)
    assert sockets.deliveries(waiting) == [2]
    # Slack retries an event it thinks unanswered; the bot answers it once.
    again = await sockets.deliver("events_api", dm("what's the weather like", event_id="EvA"))
    assert again.payload is None
    await until_bots_idle(running)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_stopping_finishes_the_envelopes_in_hand_first(
    start_bot, fake_slack: FakeSlack
) -> None:
    running = await socket_bot(start_bot, fake_slack)
    socket_mode = running.bot.socket_mode
    assert socket_mode is not None
    fake_slack.slow["views.open"] = 0.3  # the form opens while the bot is asked to stop
    opening = await fake_slack.socket_mode.send("slash_commands", slash(fake_slack, "/trigger"))

    async def in_hand() -> bool:
        return socket_mode.in_hand == 1

    await eventually(in_hand)
    await running.stop()
    ack = await fake_slack.socket_mode.wait_for_ack(opening, timeout=0)
    assert ack.payload is None and fake_slack.calls_to("views.open")[0].ok
    assert fake_slack.socket_mode.live_connections == 0


async def test_a_payload_of_a_shape_slack_never_sends_is_acknowledged_and_dropped(
    start_bot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    await socket_bot(start_bot, fake_slack)
    sockets = fake_slack.socket_mode
    odd = click("draft_create", "1") | {"actions": "not a list"}
    ack = await sockets.deliver("interactive", odd)
    assert ack.payload is None
    assert "actions must be a list of objects" in caplog.text
    helped = await sockets.deliver("slash_commands", slash(fake_slack, "/hook help"))
    assert "/hook create" in answer_text(helped)  # still connected and answering


async def test_a_token_slack_refuses_stops_start_up_and_names_the_setting(
    start_bot, fake_slack: FakeSlack
) -> None:
    with pytest.raises(ConfigError, match=r"SLACK_APP_TOKEN.*\(invalid_auth\)"):
        await start_bot(slack_app_token=Secret("xapp-1-A0001-wrong"))
    with pytest.raises(ConfigError, match=r"not_allowed_token_type"):
        await start_bot(slack_app_token=Secret("xoxb-fake"))
    assert fake_slack.socket_mode.connections_opened == 0


async def test_a_slack_that_fails_at_start_up_is_asked_again(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.fail_next(1, status=503, method="apps.connections.open")
    running = await socket_bot(start_bot, fake_slack)  # started, then connected
    opened = fake_slack.calls_to("apps.connections.open")
    assert [call.status for call in opened] == [503, 200]
    ack = await fake_slack.socket_mode.deliver("slash_commands", slash(fake_slack, "/hook help"))
    assert "/hook create" in answer_text(ack) and running.bot.socket_mode is not None


async def test_the_fake_takes_the_app_token_only_in_the_authorization_header(
    fake_slack: FakeSlack,
) -> None:
    import aiohttp

    token = fake_slack.socket_mode.app_token
    url = fake_slack.url + "apps.connections.open"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data={"token": token}) as as_field:
            assert (await as_field.json())["error"] == "not_authed"
        headers = {"Authorization": f"Bearer {token}"}
        async with http.post(url, headers=headers) as answer:
            link = (await answer.json())["url"]
        assert link.startswith(fake_slack.base_url.replace("http", "ws", 1) + "/link/?ticket=")
        async with http.ws_connect(link) as ws:
            hello = await ws.receive_json()
            assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == "A0001"
        # A URL is good for one connection.
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(link)


async def test_the_fake_speaks_slack_s_protocol_to_a_plain_websocket_client(
    fake_slack: FakeSlack,
) -> None:
    """The fake, without the SDK: envelopes, acks, a disconnect and the next connection."""
    import aiohttp

    sockets = fake_slack.socket_mode
    headers = {"Authorization": f"Bearer {sockets.app_token}"}
    url = fake_slack.url + "apps.connections.open"
    async with aiohttp.ClientSession(headers=headers) as http:

        async def connect() -> aiohttp.ClientWebSocketResponse:
            async with http.post(url) as answer:
                ws = await http.ws_connect((await answer.json())["url"])
            assert (await ws.receive_json())["type"] == "hello"
            return ws

        first = await connect()
        sent = await sockets.send("slash_commands", {"command": "/hook", "text": "help"})
        envelope = await first.receive_json()
        assert envelope == {
            "envelope_id": sent,
            "type": "slash_commands",
            "payload": {"command": "/hook", "text": "help"},
            "accepts_response_payload": True,
        }
        await first.send_str("not json")
        await first.send_json({"envelope_id": sent, "payload": {"text": "the help"}})
        assert await sockets.wait_for_ack(sent) == Ack(sent, {"text": "the help"}, 1)
        assert sockets.unexpected == ["not json"]

        await sockets.disconnect("warning")
        assert await first.receive_json() == {
            "type": "disconnect",
            "reason": "warning",
            "debug_info": {"host": "applink-fake", "build_number": 1},
        }
        event = {"type": "event_callback", "event_id": "Ev9"}
        waiting = await sockets.send("events_api", event)
        assert sockets.deliveries(waiting) == []  # not on a connection told to go
        second = await connect()
        delivered = await second.receive_json()
        assert delivered["envelope_id"] == waiting and delivered["retry_attempt"] == 0
        await second.send_json({"envelope_id": waiting})
        assert (await sockets.wait_for_ack(waiting)).payload is None
        assert sockets.deliveries(waiting) == [2]
        await first.close()
        await second.close()


def test_slack_s_http_bodies_become_the_envelopes_slack_would_send() -> None:
    from bot.devtools.fake_socket_mode import envelope_of

    form = slash_command_body("/hook", "help")
    assert envelope_of("application/x-www-form-urlencoded", form) == (
        "slash_commands",
        dict(urllib.parse.parse_qsl(form.decode(), keep_blank_values=True)),
    )
    clicked = urllib.parse.urlencode({"payload": json.dumps({"type": "block_actions"})})
    assert envelope_of("application/x-www-form-urlencoded", clicked.encode()) == (
        "interactive",
        {"type": "block_actions"},
    )
    assert envelope_of("application/json", b'{"type": "event_callback"}') == (
        "events_api",
        {"type": "event_callback"},
    )
    assert envelope_of("application/json", b"[1]") is None
    assert envelope_of("application/x-www-form-urlencoded", b"text=hi") is None


def test_local_mode_talks_over_socket_mode_when_asked(
    cli: Callable[..., Exit],  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    """``LOCAL_SOCKET_MODE=1 make run``: ``say`` hands what it types to the fake Slack,
    which sends it to the bot over the socket and prints the answer from the ack."""
    bot = LocalBot(tmp_path, cli, LOCAL_SOCKET_MODE="1")
    try:
        assert "over Socket Mode (LOCAL_SOCKET_MODE=1)" in bot.wait_for_banner()
        state = json.loads((tmp_path / ".chatops-local.json").read_text())
        assert state["socket_mode"] is True

        helped = bot.say("/hook help")
        assert helped.code == 0 and "/hook create" in helped.stdout, helped.stderr
        asked = bot.say("--dm", "give me a webhook for github pushes in #ops")
        assert "[Create] [Edit] [Cancel]" in asked.stdout, asked.stderr
        created = bot.say("--click", "Create")
        assert "Created hook *github-ops* → #ops." in created.stdout, created.stderr
        form = bot.say("/trigger")
        assert '── form "New trigger" opened ──' in form.stdout, form.stderr
        wrong = bot.say("--submit", "name=site", "kind=http", "schedule=every fortnight")
        assert wrong.code == 1 and "schedule: " in wrong.stdout
    finally:
        printed = bot.stop()
    assert "connected to Slack over Socket Mode" in printed
    assert "Traceback" not in printed


def test_local_socket_mode_is_a_local_mode_setting() -> None:
    from bot.config import load_settings

    assert load_settings({"LOCAL_SOCKET_MODE": "1"}).local_socket_mode is True
    assert load_settings({"LOCAL_SOCKET_MODE": "off"}).local_socket_mode is False
    with pytest.raises(ConfigError, match="LOCAL_SOCKET_MODE must be 1 or 0"):
        load_settings({"LOCAL_SOCKET_MODE": "maybe"})
    workspace = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "LOCAL_SOCKET_MODE": "1"}
    with pytest.raises(ConfigError, match="set SLACK_APP_TOKEN"):
        load_settings(workspace)
