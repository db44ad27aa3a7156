"""Attacks on today's features (actions, changes by talking, Socket Mode) from an ordinary
workspace member and an outside sender, over real HTTP against the real app. Each test is
an attack that must hold: the bot refuses, sends nothing it should not, and never breaks."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.actions.buttons import ACTION_BUTTON
from bot.actions.sender import MAX_IN_FLIGHT
from bot.clock import FakeClock
from bot.conversation.change_flow import CHANGE_APPLY, CHANGE_CANCEL, CHANGE_PICK
from bot.devtools.fake_socket_mode import EnvelopeType
from tests.action_target import Target, serving_target
from tests.conftest import RunningBot, eventually, fake_clock, until_bots_idle
from tests.test_actions_flow import deliver, ok, run_due, runs_of
from tests.test_conversation import click
from tests.test_socket_mode import answer_text, slash, socket_bot
from tests.test_talking_changes import DM, said

OWNER, MEMBER = "U0001", "U0002"
SECRET_VALUE = "restart-secret-value-9d1e"


async def as_member(running: RunningBot, command: str) -> str:
    return await running.command(command, user=MEMBER)


async def member_hook(running: RunningBot, name: str) -> tuple[str, str]:
    """A hook the member made: its path and secret (the member can sign deliveries)."""
    reply = await as_member(running, f"/hook create {name} preset=generic")
    url = re.search(r"https://bot\.example\.com(/hooks/[\w-]+)", reply)
    secret = re.search(r"\*Secret\* \(shown once — keep it\): `([^`]+)`", reply)
    assert url and secret, reply
    return url.group(1), secret.group(1)


async def ok_as_member(running: RunningBot, command: str) -> str:
    reply = await as_member(running, command)
    assert not re.search(r"can.t|isn.t|doesn.t|may not|no action|not sent|I don.t", reply), reply
    return reply


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    async with serving_target() as found:
        yield found


async def owners_restart_action(running: RunningBot, target: Target) -> None:
    """The owner's action, with a secret, that nobody else may run."""
    host = f"127.0.0.1:{target.url.rsplit(':', 1)[1]}"
    await ok(running, f"/secret set ops-token for {host} {SECRET_VALUE}")
    await ok(running, f"/action add restart POST {target.url}/restart auth=bearer:ops-token")
    await ok(running, '/action body restart {"service": {{ payload.service|tojson }}}')
    refused = await running.command("/action run restart", user=MEMBER)
    assert "You may not run *restart*" in refused


async def test_a_member_cannot_run_someone_elses_action_from_their_own_hook(
    start_bot, target: Target
) -> None:
    running: RunningBot = await start_bot()
    await owners_restart_action(running, target)
    path, secret = await member_hook(running, "mine")
    reply = await running.command("/hook set mine then=restart post=off", user=MEMBER)
    assert "You may not run *restart*" in reply
    await deliver(running, path, secret, b'{"service": "db"}', "application/json")
    await until_bots_idle(running)
    assert await runs_of(running) == [] and target.received == []
    # Once the owner allows them, they may.
    await ok(running, f"/action set restart allow=<@{MEMBER}>")
    assert "Updated" in await running.command("/hook set mine then=restart post=off", user=MEMBER)


async def test_a_member_cannot_run_someone_elses_action_from_their_own_trigger(
    start_bot, target: Target
) -> None:
    clock: FakeClock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await owners_restart_action(running, target)
    async with serving_target() as health:
        health.default = (503, {}, "down")
        made = await as_member(running, f"/trigger add site every 1m http {health.url}/h")
        assert "site" in made, made
        reply = await running.command("/trigger set site then=restart on=always", user=MEMBER)
        assert "You may not run *restart*" in reply
        await run_due(running, clock, "site")
        await until_bots_idle(running)
    assert await runs_of(running) == [] and target.received == []


async def test_a_password_in_an_actions_url_is_refused_so_nobody_reads_it(
    start_bot, fake_slack, target: Target
) -> None:
    running: RunningBot = await start_bot()
    password = "hunter2-in-the-url"
    base = target.url.replace("http://", f"http://bob:{password}@")
    reply = await running.command(f"/action add crm POST {base}/leads confirm=yes")
    assert "auth=basic:" in reply and password not in reply
    listed = await as_member(running, "/action list")
    assert password not in listed and "No actions yet" in listed
    await running.command(f"/action add crm POST {target.url.replace('http://', 'http://bob@')}/x")
    assert "No actions yet" in await as_member(running, "/action list")


async def test_one_members_slow_target_does_not_hold_everyone_elses_actions(
    start_bot, target: Target
) -> None:
    running: RunningBot = await start_bot()
    async with serving_target() as tarpit:
        tarpit.hang = 10_000  # answers nothing until the test ends
        await ok_as_member(running, f"/action add tarpit POST {tarpit.url}/slow timeout=60s")
        for _ in range(MAX_IN_FLIGHT + 4):
            assert "Running" in await as_member(running, "/action run tarpit")
        await tarpit.wait_for(1)
        await ok(running, f"/action add crm POST {target.url}/leads")
        assert "Running" in await running.command("/action run crm")
        (lead,) = await target.wait_for(1)
        assert lead.path == "/leads"
        assert len(tarpit.received) < MAX_IN_FLIGHT  # one person's share, not every place
        tarpit.release.set()


async def test_a_get_redirected_elsewhere_loses_the_secret_and_replies_never_show_it(
    start_bot, fake_slack, target: Target
) -> None:
    running: RunningBot = await start_bot()
    async with serving_target() as other:
        # The bound host sends the request on to another origin (another port).
        target.answers = [(302, {"Location": f"{other.url}/collect"}, "")]
        other.default = (200, {"X-Echo": SECRET_VALUE}, f'{{"token": "{SECRET_VALUE}"}}')
        host = f"127.0.0.1:{target.url.rsplit(':', 1)[1]}"
        await ok(running, f"/secret set ops-token for {host} {SECRET_VALUE}")
        await ok(running, f"/action add peek GET {target.url}/start auth=bearer:ops-token")
        await ok(running, "/action reply peek {{ response.text }} {{ response.headers }}")
        path, secret = await member_hook(running, "mine")
        await ok(running, "/action set peek allow=everyone")
        assert "Updated" in await as_member(running, "/hook set mine then=peek")
        await deliver(running, path, secret, b'{"x": 1}', "application/json")
        (moved,) = await other.wait_for(1)
        assert "Authorization" not in moved.headers
        assert target.received[0].headers["Authorization"] == f"Bearer {SECRET_VALUE}"
        await until_runs_sent(running)
    await until_bots_idle(running)
    said = json.dumps([call.args for call in fake_slack.calls], ensure_ascii=False)
    assert "→ peek: 200 OK" in said and "••••(ops-token)" in said
    assert SECRET_VALUE not in said
    assert SECRET_VALUE not in await as_member(running, "/action log peek")
    assert SECRET_VALUE not in await as_member(running, "/action show peek")


async def until_runs_sent(running: RunningBot) -> None:
    async def finished() -> bool:
        runs = await runs_of(running)
        return bool(runs) and all(run.status in ("sent", "failed") for run in runs)

    await eventually(finished)


async def test_internal_addresses_are_refused_and_a_redirect_inward_is_not_followed(
    start_bot, target: Target
) -> None:
    inner_port = target.url.rsplit(":", 1)[1]
    redirector = web.Application()

    async def inward(_request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{inner_port}/admin")

    redirector.router.add_get("/{tail:.*}", inward)
    runner = web.AppRunner(redirector)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.2", 0)
    await site.start()
    outer = f"http://127.0.0.2:{runner.addresses[0][1]}"
    try:
        running: RunningBot = await start_bot(check_allowlist=("127.0.0.2",))
        for url in (
            f"http://127.0.0.1:{inner_port}/",
            f"http://2130706433:{inner_port}/",
            f"http://0x7f.1:{inner_port}/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0/",
        ):
            reply = await as_member(running, f"/action add probe GET {url}")
            assert "can't be used" in reply, (url, reply)
        await ok_as_member(running, f"/action add probe GET {outer}/start")
        await ok_as_member(running, "/action run probe")
        named = await as_member(running, f"/action add local POST http://localhost:{inner_port}/")
        if "can't be used" not in named:  # a name is refused when it is sent, if not before
            await ok_as_member(running, "/action run local")
        await until_runs_sent(running)
        for run in await runs_of(running):
            assert run.status == "failed" and "refused" in (run.detail or ""), run.detail
        assert target.received == []
    finally:
        await runner.cleanup()


HUGE = "9" * 30  # digits, but no row id any database holds
FORGED_CLICKS = [
    (CHANGE_APPLY, HUGE),
    (CHANGE_APPLY, "²"),  # a digit to str.isdigit, not to int()
    (CHANGE_CANCEL, HUGE),
    (CHANGE_PICK, f"{HUGE}:0"),
    (CHANGE_PICK, "1:²"),
    (ACTION_BUTTON, json.dumps({"action": "restart", "from": f"trigger:{HUGE}"})),
    (ACTION_BUTTON, json.dumps({"action": "restart", "from": "trigger:²"})),
    (ACTION_BUTTON, json.dumps({"action": "restart", "from": f"delivery:{'x' * 5000}"})),
    (ACTION_BUTTON, "[]"),
    (ACTION_BUTTON, json.dumps({"action": "é" * 10_000, "from": None})),
]


@pytest.mark.parametrize(("action_id", "value"), FORGED_CLICKS)
async def test_a_forged_button_value_is_refused_quietly_and_changes_nothing(
    start_bot,
    fake_slack,
    target: Target,
    caplog: pytest.LogCaptureFixture,
    action_id: str,
    value: str,
) -> None:
    caplog.set_level(logging.WARNING)
    running: RunningBot = await start_bot()
    await owners_restart_action(running, target)
    await ok(running, "/action set restart allow=everyone")
    await running.interact(
        click(f"{action_id}:x" if action_id == ACTION_BUTTON else action_id, value, user=MEMBER)
    )
    await until_bots_idle(running)
    assert [r for r in caplog.records if r.exc_info] == [], caplog.text
    assert "Traceback" not in caplog.text


SCHEDULE_WORDS_FLOODS = [
    "remind me " + "at " * 330,  # each "at" starts a time: every length of each was tried
    "remind me every day " + "at " * 325,
    "post hi every 2nd " + "every 2nd " * 97,
]


@pytest.mark.parametrize("text", SCHEDULE_WORDS_FLOODS)
async def test_a_dm_of_schedule_words_is_answered_without_holding_the_bot(
    start_bot, fake_slack, text: str
) -> None:
    fake_slack.add_channel(DM[MEMBER], "dm-member")
    fake_slack.add_user(MEMBER, tz="UTC")
    running: RunningBot = await start_bot(clock=fake_clock())
    await running.event(said(text[:1000], MEMBER, 1))
    (answer,) = await fake_slack.wait_for("chat.postMessage")
    assert answer.args["channel"] == DM[MEMBER]
    assert "one schedule" in answer.args["text"], answer.args["text"]


async def test_confirm_no_does_not_confirm_an_action_that_asks_first(
    start_bot, target: Target
) -> None:
    running: RunningBot = await start_bot()
    await ok(running, f"/action add restart POST {target.url}/restart confirm=yes")
    for said_no in ("confirm=no", "confirm=", "confirm=false"):
        assert "asks first" in await running.command(f"/action run restart {said_no}")
    await until_bots_idle(running)
    assert await runs_of(running) == [] and target.received == []
    assert "Running" in await running.command("/action run restart confirm=yes")


def _without(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key not in keys}


async def test_socket_mode_envelopes_without_team_or_user_or_in_a_flood_are_acknowledged(
    start_bot, fake_slack, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    running = await socket_bot(start_bot, fake_slack)
    await owners_restart_action(running, target)
    sockets = fake_slack.socket_mode
    button = click(f"{ACTION_BUTTON}:restart", json.dumps({"action": "restart", "from": "x"}))
    odd: list[tuple[EnvelopeType, dict[str, Any]]] = [
        ("interactive", _without(button, "team", "user")),
        ("interactive", _without(button, "user") | {"user": {}}),
        ("interactive", {}),
        ("interactive", {"type": "block_actions"}),
        ("slash_commands", {"command": "/action", "text": "run restart"}),
        ("slash_commands", {}),
        ("events_api", {}),
        ("events_api", {"type": "event_callback", "event": "not an object"}),
        ("events_api", {"type": "event_callback", "event": {"type": "message"}}),
    ]
    for kind, payload in odd:
        await sockets.deliver(kind, payload)
    flood = [
        await sockets.send("slash_commands", slash(fake_slack, "/action list")) for _ in range(200)
    ]
    acks = [await sockets.wait_for_ack(envelope, 10.0) for envelope in flood]
    assert all("restart" in answer_text(ack) for ack in acks)
    await until_bots_idle(running)
    assert target.received == []
    assert [r for r in caplog.records if r.exc_info] == [], caplog.text
