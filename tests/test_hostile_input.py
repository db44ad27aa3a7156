"""Hostile or malformed input gets a clear answer and changes nothing: signed payloads of
shapes Slack never sends, and races between people creating the same thing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import col, select

from bot.models import Hook, Trigger
from tests.conftest import RunningBot

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "view_submission", "view": {"callback_id": "trigger_modal"}, "user": {"id": "U1"}},
        {"type": "view_submission", "view": "not an object", "user": {"id": "U1"}},
        {"type": "block_actions", "actions": "not a list", "user": {"id": "U1"}},
        {"type": "block_actions", "actions": [1, 2], "user": {"id": "U1"}},
        {"type": "block_actions", "actions": [{"action_id": 7}], "user": {"id": "U1"}},
        {"type": 5},
        {"type": "block_actions", "container": [], "user": {"id": "U1"}},
    ],
)
async def test_a_signed_payload_of_a_shape_slack_never_sends_is_a_400(
    start_bot, payload: dict[str, Any]
) -> None:
    running: RunningBot = await start_bot()
    status, answer = await running.post_interaction(payload)
    assert status == 400, answer
    assert "malformed payload" in answer["error"]


@BOTH
async def test_people_creating_the_same_hook_at_once_get_one_hook_and_clear_answers(
    start_bot,
) -> None:
    running: RunningBot = await start_bot()
    replies = await asyncio.gather(*(running.command("/hook create racey") for _ in range(10)))
    created = [reply for reply in replies if reply.startswith("Created hook *racey*")]
    taken = [reply for reply in replies if "exists already" in reply]
    assert len(created) == 1 and len(taken) == 9, replies
    async with running.bot.db.sessions() as session:
        hooks = (await session.execute(select(Hook).where(col(Hook.name) == "racey"))).all()
    assert len(hooks) == 1


@BOTH
async def test_people_creating_the_same_trigger_at_once_get_one_trigger(start_bot) -> None:
    running: RunningBot = await start_bot()
    command = '/trigger add racey every day at 9:00 message "hi"'
    replies = await asyncio.gather(*(running.command(command) for _ in range(10)))
    assert sum(reply.startswith("Added *racey*") for reply in replies) == 1, replies
    assert sum("exists already" in reply for reply in replies) == 9, replies
    async with running.bot.db.sessions() as session:
        found = (await session.execute(select(Trigger).where(col(Trigger.name) == "racey"))).all()
    assert len(found) == 1


# A sender (or anyone who knows an unsigned hook's URL) controls every string in a payload.
HOSTILE = "<!here> <https://evil.example/login|Re-authenticate> <@U0ADMIN> <#C0SECRET>"
SLACK_MARKUP = ("<!here", "<https://evil", "<@U0ADMIN", "<#C0SECRET")


def poisoned(value: Any) -> Any:
    """Every string in a payload replaced by hostile Slack markup, the shape kept."""
    if isinstance(value, str):
        return HOSTILE
    if isinstance(value, list):
        return [poisoned(item) for item in value]
    if isinstance(value, dict):
        return {key: poisoned(item) for key, item in value.items()}
    return value


def readable_texts(rendered: Any) -> list[str]:
    """The fallback text and every text Slack would render as mrkdwn."""
    texts = [rendered.text]
    stack: list[Any] = list(rendered.blocks)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                texts.append(node["text"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return texts


@pytest.mark.parametrize(
    "sender", ["github", "gitlab", "alertmanager", "grafana", "sentry", "stripe", "generic"]
)
def test_no_preset_lets_a_payload_ping_people_or_disguise_a_link(sender: str) -> None:
    from bot.webhooks import presets
    from bot.webhooks.event import InboundEvent

    sample = presets.sample_event(sender)  # type: ignore[arg-type]
    for event_name in (sample.event, HOSTILE):
        event = InboundEvent(sample.sender, event_name, poisoned(sample.payload), sample.headers)
        for text in readable_texts(presets.render(event)):
            assert not any(markup in text for markup in SLACK_MARKUP), (sender, text)


def test_the_generic_fallback_escapes_the_event_name() -> None:
    from bot.webhooks import presets
    from bot.webhooks.event import InboundEvent

    event = InboundEvent("generic", HOSTILE, {"action": HOSTILE}, {"x-event-type": HOSTILE})
    rendered = presets.render(event)
    assert rendered.text.startswith("Webhook &lt;!here&gt;")


# A template and a filter that each run until their time limit, on every delivery.
SLOW_TEMPLATE = "{% for a in range(3000) %}{% for b in range(3000) %}{% endfor %}{% endfor %}x"
SLOW_FILTER = " + ".join(["(range(100000)|map('string')|join|length)"] * 20) + " > 0"


async def test_hostile_user_code_cannot_stall_the_bot(start_bot) -> None:
    import json
    import time

    from bot.webhooks.verify import sign_generic

    running: RunningBot = await start_bot()
    hooks = []
    for name, setting in (
        ("slowtpl", f"template slowtpl {SLOW_TEMPLATE}"),
        ("slowflt", f"filter slowflt {SLOW_FILTER}"),
    ):
        reply = await running.command(f"/hook create {name} preset=generic")
        path = "/hooks/" + reply.split("/hooks/")[1].split("`")[0]
        secret = reply.split("*Secret* (shown once — keep it): `")[1].split("`")[0]
        assert "now" in await running.command(f"/hook {setting}")
        hooks.append((path, secret))

    async def flood() -> None:
        for n in range(15):
            for path, secret in hooks:
                body = json.dumps({"n": n}).encode()
                headers = {
                    "Content-Type": "application/json",
                    "X-Signature-256": sign_generic(secret, body),
                }
                assert (await running.post(path, body, headers))[0] == 202

    async def timed(call: Any) -> float:
        started = time.perf_counter()
        await call
        return time.perf_counter() - started

    flooding = asyncio.create_task(flood())
    waits: list[float] = []
    while not flooding.done() or len(waits) < 20:
        waits.append(await timed(running.http.get(f"{running.base_url}/healthz")))
        waits.append(await timed(running.command("/hook list")))
        await asyncio.sleep(0.05)
    await flooding
    assert max(waits) < 1.5, sorted(waits)[-5:]  # Slack gives a command 3 s


@pytest.mark.parametrize(
    "padding",
    [" " * 40_000 + "x", "," * 40_000 + "x", " thanks" * 5_000 + "x", "every " * 6_000],
)
def test_a_dm_of_slacks_maximum_length_is_answered_at_once(padding: str) -> None:
    import time
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from bot.conversation.understand import NotUnderstood, understand

    started = time.monotonic()
    answer = understand(
        "check https://a.example every 5m" + padding,
        default_tz=ZoneInfo("UTC"),
        now=datetime(2031, 1, 6, tzinfo=UTC),
        min_interval=timedelta(minutes=1),
        user_id="U1",
    )
    assert time.monotonic() - started < 1.0  # it was 4 s, and quadratic in the padding
    assert isinstance(answer, NotUnderstood) and "longer than I read" in answer.reason


async def test_nobody_makes_the_bot_post_in_a_private_channel_they_are_not_in(
    start_bot, fake_slack: Any
) -> None:
    fake_slack.add_user("U0002", tz="UTC")
    fake_slack.add_channel("G0SECRET", "secret", is_private=True, members=["U0002"])
    running: RunningBot = await start_bot()
    intrusion = (
        '/trigger add x at 2030-01-01 09:00 message "<!channel> log in again" <#G0SECRET|secret>'
    )
    refused = await running.command(intrusion)
    assert "private conversation you are not in" in refused
    assert "private conversation" in await running.command("/hook create h <#G0SECRET|secret>")
    assert "Added" in await running.command(intrusion, user="U0002")  # a member may
    async with running.bot.db.sessions() as session:
        hooks = (await session.execute(select(Hook))).all()
    assert hooks == []


async def test_a_private_channel_the_bot_is_not_in_and_someone_elses_dm_are_refused(
    start_bot, fake_slack: Any
) -> None:
    fake_slack.add_channel("G0HIDDEN", "hidden", is_private=True, is_member=False)
    fake_slack.add_user("U0002", tz="UTC")
    fake_slack.add_channel("D0002", "U0002", is_private=True)
    running: RunningBot = await start_bot()
    assert "invite me" in await running.command("/hook create h <#G0HIDDEN|hidden>")
    theirs = await running.command('/trigger add y every day at 9:00 message "hi" <#D0002>')
    assert "private conversation you are not in" in theirs
    mine = await running.command('/trigger add y every day at 9:00 message "hi" <#D0001>')
    assert "Added" in mine


async def test_credentials_in_a_trigger_url_are_shown_only_to_who_may_change_it(
    start_bot, fake_slack: Any
) -> None:
    from tests.conftest import fake_clock

    fake_slack.add_user("U0002", tz="UTC")
    running: RunningBot = await start_bot(clock=fake_clock())
    url = "http://ops:hunter22@127.0.0.1:9/status?api_key=abc123&verbose=1"
    added = await running.command(f"/trigger add site every 5m http {url}")
    assert "Added" in added and "stored secret is safer" in added
    theirs = await running.command("/trigger show site", user="U0002")
    assert "hunter22" not in theirs and "abc123" not in theirs
    assert "••••@127.0.0.1:9/status?api_key=••••" in theirs
    assert "hunter22" in await running.command("/trigger show site")  # the creator's own
    refused = await running.command_raw("/trigger edit site", user="U0002")
    assert "Only <@U0001>" in refused and "hunter22" not in refused
    assert fake_slack.calls_to("views.open") == []


async def test_a_non_owner_running_a_trigger_gets_a_private_check_and_nobody_floods(
    start_bot, fake_slack: Any
) -> None:
    from aiohttp import web

    from tests.conftest import until_bots_idle

    hits: list[str] = []

    async def failing(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/{tail:.*}", failing)
    server = web.AppRunner(app)
    await server.setup()
    await web.TCPSite(server, "127.0.0.1", 0).start()
    try:
        from tests.conftest import fake_clock

        fake_slack.add_user("U0002", tz="UTC")
        running: RunningBot = await start_bot(clock=fake_clock())
        port = server.addresses[0][1]
        await running.command(f"/trigger add site every 1h http http://127.0.0.1:{port}/x")
        answers = await asyncio.gather(
            *(running.command("/trigger run site", user="U0002") for _ in range(20))
        )
        checks = [answer for answer in answers if "Checking *site* for you" in answer]
        refused = [a for a in answers if "running already" in a or "please wait" in a]
        assert 1 <= len(checks) <= 6 and len(checks) + len(refused) == 20, answers
        await until_bots_idle(running)
        told = fake_slack.calls_to("chat.postEphemeral")
        assert len(told) == len(checks)
        assert all(t.args["user"] == "U0002" and "checked for you" in t.args["text"] for t in told)
        assert fake_slack.calls_to("chat.postMessage") == []  # the channel heard nothing
        assert len(hits) == len(checks)
        while "please wait" not in await running.command("/trigger run site", user="U0002"):
            await until_bots_idle(running)
        assert len(hits) <= 6
        await running.command("/hook create deploys preset=generic")
        assert "only <@U0001> or an admin" in await running.command(
            "/hook test deploys", user="U0002"
        )
    finally:
        await server.cleanup()


async def test_a_report_counts_only_its_own_workspaces_refused_posts(
    start_bot, fake_slack: Any
) -> None:
    import json
    import re

    from sqlmodel import col, select

    from bot.models import Trigger
    from bot.webhooks.verify import sign_generic
    from tests.conftest import fake_clock, until_bots_idle

    fake_slack.add_user("U0002", tz="UTC")
    fake_slack.add_channel("C0999", "gone")
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    reply = await running.command(
        "/hook create theirs <#C0999|gone> preset=generic", user="U0002", team="T0002"
    )
    path = re.search(r"(/hooks/[\w-]+)", reply)
    secret = re.search(r"\*Secret\* \(shown once — keep it\): `([^`]+)`", reply)
    assert path and secret, reply
    del fake_slack.channels["C0999"]
    body = json.dumps({"text": "lost"}).encode()
    headers = {"Content-Type": "application/json", "X-Signature-256": sign_generic(secret[1], body)}
    assert (await running.post(path[1], body, headers))[0] == 202
    await until_bots_idle(running)
    for team, user, channel in (("T0001", "U0001", "C0001"), ("T0002", "U0002", "C0002")):
        added = await running.command(
            "/trigger add weekly every monday at 9am report", user=user, team=team, channel=channel
        )
        assert "Added" in added, added
    async with running.bot.db.sessions() as session:
        reports = (
            (await session.execute(select(Trigger).where(col(Trigger.kind) == "report")))
            .scalars()
            .all()
        )
    for report in reports:
        assert report.id is not None and report.next_run_at is not None
        clock.set(max(clock.now(), report.next_run_at))
        await running.bot.triggers.run(report.id, report.next_run_at)
    await until_bots_idle(running)
    texts = {
        m.args["channel"]: m.args["text"]
        for m in fake_slack.calls_to("chat.postMessage")
        if "*Report*" in m.args.get("text", "")
    }
    assert "refused" not in texts["C0001"]  # T0001's report: none of T0002's failures
    assert "no deliveries" in texts["C0001"]
    assert "1 × theirs" in texts["C0002"] and "Messages Slack refused:* 1" in texts["C0002"]


async def test_a_slack_error_is_never_taken_as_an_answer_about_a_person(
    start_bot, fake_slack: Any
) -> None:
    from sqlmodel import col, select

    from bot.models import Trigger
    from tests.conftest import eventually, fake_clock

    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    # One 429 asking for a second: waited for (on the bot's clock), then asked again.
    fake_slack.fail_next(1, status=429, retry_after=1, method="users.info")
    command = asyncio.create_task(
        running.command('/trigger add standup every weekday at 9:30 message "Standup"')
    )
    await eventually(lambda: _calls(fake_slack, "users.info", 1))
    # The bot may not be asleep yet when the call is seen (a busy machine): move the
    # clock a second at a time until the answer comes, rather than once.
    while not command.done():
        clock.advance(1)
        await asyncio.wait({command}, timeout=0.2)
    assert "Added" in await command
    async with running.bot.db.sessions() as session:
        trigger = (
            await session.execute(select(Trigger).where(col(Trigger.name) == "standup"))
        ).scalar_one()
    assert trigger.schedule["tz"] == "Europe/Berlin"  # the person's zone, not a guessed UTC
    # Slack keeps failing: the bot says so and creates nothing …
    fake_slack.fail_next(1, status=503, method="users.info")
    running.bot.users._cache.clear()
    refused = await running.command('/trigger add other every day at 9:00 message "x"')
    assert "couldn't check your Slack profile" in refused and "Nothing was changed" in refused
    # … and does not remember the failure: the next try works.
    assert "Added" in await running.command('/trigger add other every day at 9:00 message "x"')


async def _calls(fake_slack: Any, method: str, count: int) -> bool:
    return len(fake_slack.calls_to(method)) >= count


async def test_an_admin_is_not_refused_because_slack_hiccuped(start_bot, fake_slack: Any) -> None:
    fake_slack.add_user("U0002", tz="UTC", is_admin=True)
    running: RunningBot = await start_bot()
    await running.command('/trigger add site every day at 9:00 message "x"')
    fake_slack.fail_next(1, status=500, method="users.info")
    hiccup = await running.command("/trigger pause site", user="U0002")
    assert "couldn't check your Slack profile" in hiccup
    assert "Paused" in await running.command("/trigger pause site", user="U0002")


async def test_a_submitted_form_is_answered_before_a_slow_app_home_refresh(
    start_bot, fake_slack: Any
) -> None:
    import time

    running: RunningBot = await start_bot()
    fake_slack.slow["views.publish"] = 2.5
    submission = {
        "type": "view_submission",
        "team": {"id": "T0001"},
        "user": {"id": "U0001", "team_id": "T0001"},
        "view": {
            "callback_id": "hook_modal",
            "type": "modal",
            "private_metadata": "",
            "state": {
                "values": {
                    "name": {"name": {"type": "plain_text_input", "value": "deploys"}},
                    "channel": {
                        "channel": {
                            "type": "conversations_select",
                            "selected_conversation": "C0001",
                        }
                    },
                    "preset": {
                        "preset": {
                            "type": "static_select",
                            "selected_option": {"value": "github"},
                        }
                    },
                }
            },
        },
    }
    started = time.monotonic()
    status, _answer = await running.post_interaction(submission)
    assert status == 200 and time.monotonic() - started < 2.0  # Slack waits 3 s at most
    await fake_slack.wait_for("views.publish")  # the Home is still refreshed, afterwards
