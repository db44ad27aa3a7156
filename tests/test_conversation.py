"""Setting things up by talking and clicking, driven through /slack/events as Slack sends it.

Payload shapes are the published ones in fixtures/slack/ (view_submission, block_actions,
message.im, app_home_opened), with our ids and values put in.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from sqlmodel import col, select

from bot.devtools.fake_slack import FakeSlack
from bot.models import Hook, Trigger
from tests.conftest import RunningBot, fake_clock, fixture_json, until_bots_idle

VIEW_SUBMISSION = fixture_json("slack/view_submission.json")
BLOCK_ACTIONS = fixture_json("slack/block_actions.json")
MESSAGE_IM = fixture_json("slack/message.im.json")
HOME_OPENED = fixture_json("slack/app_home_opened.json")


def submission(view: dict[str, Any], values: dict[str, Any], user: str = "U0001") -> dict[str, Any]:
    """A view_submission of ``view`` (as the bot opened it) with the user's input."""
    payload = copy.deepcopy(VIEW_SUBMISSION)
    payload["team"]["id"] = "T0001"
    payload["user"] |= {"id": user, "team_id": "T0001"}
    payload["view"] |= {
        "callback_id": view["callback_id"],
        "private_metadata": view.get("private_metadata", ""),
        "blocks": view["blocks"],
        "state": {"values": values},
    }
    return payload


def text_value(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def trigger_values(**fields: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": {"name": text_value(fields.get("name"))},
        "kind": {
            "kind": {
                "type": "static_select",
                "selected_option": {"value": fields.get("kind", "http")},
            }
        },
        "target": {"target": text_value(fields.get("target"))},
        "schedule": {"schedule": text_value(fields.get("schedule"))},
        "condition": {"condition": text_value(fields.get("condition"))},
        "channel": {
            "channel": {
                "type": "conversations_select",
                "selected_conversation": fields.get("channel", "C0002"),
            }
        },
        "timezone": {"timezone": text_value(fields.get("timezone"))},
        "options": {"options": text_value(fields.get("options"))},
    }
    return values


def click(
    action_id: str,
    value: str,
    *,
    user: str = "U0001",
    channel: str | None = "C0001",
    ts: str | None = None,
) -> dict[str, Any]:
    payload = copy.deepcopy(BLOCK_ACTIONS)
    payload["team"]["id"] = "T0001"
    payload["user"] |= {"id": user, "team_id": "T0001"}
    payload["actions"] = [
        {
            "action_id": action_id,
            "block_id": "b",
            "value": value,
            "type": "button",
            "action_ts": "1",
        }
    ]
    if channel is None:
        payload["container"] = {"type": "view", "view_id": "V1"}
        payload.pop("channel", None)
    else:
        payload["container"] |= {
            "type": "message",
            "channel_id": channel,
            "message_ts": ts or "1548261231.000200",
        }
        payload["channel"] = {"id": channel, "name": "general"}
    return payload


def dm(text: str, *, user: str = "U0001", event_id: str = "Ev1") -> dict[str, Any]:
    envelope = copy.deepcopy(MESSAGE_IM)
    envelope["team_id"] = "T0001"
    envelope["event_id"] = event_id
    envelope["event"] |= {"text": text, "user": user, "channel": "D0001", "team": "T0001"}
    return envelope


async def stored_trigger(running: RunningBot, name: str) -> Trigger | None:
    async with running.bot.db.sessions() as session:
        result = await session.execute(select(Trigger).where(col(Trigger.name) == name))
        return result.scalars().first()


def block_ids(view: dict[str, Any]) -> list[str]:
    return [block["block_id"] for block in view["blocks"] if "block_id" in block]


async def test_modal_shows_inline_errors_then_saves(start_bot, fake_slack: FakeSlack) -> None:
    # A fake clock: on the real one the new trigger's first run would start at once, and
    # while it runs its job is (rightly) off the scheduler, which made the check below racy.
    running: RunningBot = await start_bot(clock=fake_clock())
    assert await running.command_raw("/trigger") == ""
    (opened,) = await fake_slack.wait_for("views.open")
    view = opened.args["view"]
    assert view["callback_id"] == "trigger_modal"
    assert {"name", "kind", "target", "schedule", "channel"} <= set(block_ids(view))

    bad = submission(
        view,
        trigger_values(name="status", target="https://example.com", schedule="every fortnight"),
    )
    answer = await running.interact(bad)
    assert answer["response_action"] == "errors" and "fortnight" in answer["errors"]["schedule"]
    assert await stored_trigger(running, "status") is None

    blocked = submission(
        view,
        trigger_values(name="status", target="http://169.254.169.254/", schedule="every 5 minutes"),
    )
    answer = await running.interact(blocked)
    assert "link-local" in answer["errors"]["target"]

    good = submission(
        view,
        trigger_values(name="status", target="https://example.com", schedule="every 5 minutes"),
    )
    assert await running.interact(good) in ("", None, {})
    trigger = await stored_trigger(running, "status")
    assert (
        trigger is not None
        and trigger.channel_id == "C0002"
        and trigger.schedule_text == "every 5 minutes"
    )
    assert running.bot.scheduling.scheduler.get_job(f"trigger:{trigger.id}") is not None
    (told,) = await fake_slack.wait_for("chat.postEphemeral")
    assert "Added *status*" in told.args["text"]


async def test_edit_opens_the_same_modal_filled_in(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    await running.command(
        '/trigger add standup every weekday at 9:30 message "Standup!" <#C0002|team>'
    )
    assert await running.command_raw("/trigger edit standup") == ""
    (opened,) = await fake_slack.wait_for("views.open")
    view = opened.args["view"]
    assert view["private_metadata"] == "standup"
    assert "every weekday at 9:30" in json.dumps(view)
    changed = submission(
        view,
        trigger_values(
            name="standup",
            kind="message",
            target="Standup now!",
            schedule="every weekday at 9:45",
            channel="C0002",
        ),
    )
    assert await running.interact(changed) in ("", None, {})
    trigger = await stored_trigger(running, "standup")
    assert (
        trigger is not None
        and trigger.target == "Standup now!"
        and trigger.schedule_text == "every weekday at 9:45"
    )


async def test_plain_language_dm_then_create(start_bot, fake_slack: FakeSlack) -> None:
    fake_slack.add_channel("D0001", "dm")
    running: RunningBot = await start_bot()
    await running.event(
        dm(
            "check <https://status.example.com|status.example.com> every 5 minutes and tell <#C0002|ops> if it's down"
        )
    )
    (proposal,) = await fake_slack.wait_for("chat.postMessage")
    assert proposal.args["channel"] == "D0001"
    assert (
        "every 5 minutes" in proposal.args["text"] and "status.example.com" in proposal.args["text"]
    )
    buttons = [e for b in proposal.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    create = next(b for b in buttons if b["action_id"] == "draft_create")
    assert create["value"].isdigit()  # button values carry only ids
    assert await stored_trigger(running, "status-example-com") is None  # nothing without the click

    await running.interact(
        click(
            "draft_create",
            create["value"],
            user="U0002",
            channel="D0001",
            ts=proposal.args.get("ts"),
        )
    )
    (refused,) = await fake_slack.wait_for("chat.postEphemeral")
    assert "Only <@U0001>" in refused.args["text"]

    await running.interact(
        click("draft_create", create["value"], channel="D0001", ts="1700000000.000100")
    )
    await fake_slack.wait_for("chat.postEphemeral", count=2)
    trigger = await stored_trigger(running, "status-example-com")
    assert trigger is not None and trigger.channel_id == "C0002" and trigger.kind == "http"
    (updated,) = await fake_slack.wait_for("chat.update")
    assert "Created" in updated.args["text"]


async def test_plain_language_that_cannot_be_understood_offers_the_form(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("D0001", "dm")
    running: RunningBot = await start_bot()
    await running.event(dm("what's the weather like"))
    (answer,) = await fake_slack.wait_for("chat.postMessage")
    assert "didn't get that" in answer.args["text"]
    assert "home_new_trigger" in json.dumps(answer.args["blocks"])


async def test_snooze_silences_reports_then_they_resume(start_bot, fake_slack: FakeSlack) -> None:
    from aiohttp import web

    status = {"code": 200}

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(status=status["code"])

    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    try:
        clock = fake_clock()
        running: RunningBot = await start_bot(clock=clock)
        await running.command(f"/trigger add site every 1m http {url}")
        trigger = await stored_trigger(running, "site")
        assert trigger is not None and trigger.id is not None

        async def run_due() -> None:
            current = await stored_trigger(running, "site")
            assert current is not None and current.next_run_at is not None
            clock.set(max(clock.now(), current.next_run_at))
            await running.bot.triggers.run(trigger.id, current.next_run_at)

        status["code"] = 503
        await run_due()
        (alert,) = await fake_slack.wait_for("chat.postMessage")
        assert "trigger_snooze" in json.dumps(alert.args["blocks"])  # the alert carries buttons
        await running.interact(click("trigger_snooze", str(trigger.id), channel="C0001"))
        (ok,) = await fake_slack.wait_for("chat.postEphemeral")
        assert "Muted" in ok.args["text"]
        status["code"] = 200
        await run_due()  # recovered while snoozed: nothing said
        status["code"] = 503
        await run_due()
        await until_bots_idle(running)
        assert len(fake_slack.calls_to("chat.postMessage")) == 1
        clock.advance(3600)
        await run_due()
        posts = await fake_slack.wait_for("chat.postMessage", count=2)
        assert "muted" in posts[1].args["text"]
    finally:
        await runner.cleanup()


async def test_app_home_lists_the_users_things(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    await running.command("/hook create deploys preset=github")
    await running.command('/trigger add standup every weekday at 9:30 message "Standup!"')
    await running.command('/trigger add theirs every weekday at 9:30 message "x"', user="U0002")
    await running.command("/hook create elsewhere preset=github", team="T0OTHER")
    envelope = copy.deepcopy(HOME_OPENED)
    envelope["team_id"] = "T0001"
    envelope["event"] |= {"tab": "home", "user": "U0001"}
    await running.event(envelope)
    (published,) = await fake_slack.wait_for("views.publish")
    view = json.dumps(published.args["view"])
    assert "deploys" in view and "standup" in view and "theirs" not in view
    assert "elsewhere" not in view  # the Home lists this workspace's things only
    assert "home_new_trigger" in view and "trigger_pause" in view


async def test_a_non_owner_clicking_delete_is_refused(start_bot, fake_slack: FakeSlack) -> None:
    fake_slack.add_user("U0002", tz="UTC")
    running: RunningBot = await start_bot()
    await running.command('/trigger add standup every weekday at 9:30 message "Standup!"')
    trigger = await stored_trigger(running, "standup")
    assert trigger is not None
    await running.interact(click("trigger_delete", str(trigger.id), user="U0002"))
    (refused,) = await fake_slack.wait_for("chat.postEphemeral")
    assert "Only <@U0001>" in refused.args["text"]
    assert await stored_trigger(running, "standup") is not None


async def test_hook_modal_creates_and_tells_the_url_privately(
    start_bot, fake_slack: FakeSlack
) -> None:
    running: RunningBot = await start_bot()
    assert await running.command_raw("/hook") == ""
    (opened,) = await fake_slack.wait_for("views.open")
    view = opened.args["view"]
    values = {
        "name": {"name": text_value("deploys")},
        "channel": {"channel": {"type": "conversations_select", "selected_conversation": "C0002"}},
        "preset": {"preset": {"type": "static_select", "selected_option": {"value": "github"}}},
        "secret": {"secret": text_value(None)},
    }
    answer = await running.interact(submission(view, values))
    # Shown in the modal, once: a private message would be stored (URL and secret) first.
    assert answer["response_action"] == "update" and "/hooks/" in json.dumps(answer["view"])
    assert not fake_slack.calls_to("chat.postEphemeral")
    async with running.bot.db.sessions() as session:
        hook = (await session.execute(select(Hook))).scalars().one()
    assert (hook.name, hook.channel_id, hook.preset) == ("deploys", "C0002", "github")
    taken = await running.interact(submission(view, values))
    assert "exists already" in taken["errors"]["name"]
