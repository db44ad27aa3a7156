"""Asking back instead of refusing, driven through /slack/events as Slack sends it.

A DM (the real ``message.im`` event) with a piece missing gets one question with buttons
at the fake Slack; the click (a signed ``block_actions`` payload: a button, or the
channel picker's ``conversations_select``) or a typed answer continues the same request
until the proposal, whose Create saves what the summary said.
"""

from __future__ import annotations

import copy
from typing import Any

from bot.devtools.fake_slack import Call, FakeSlack
from tests.conftest import RunningBot, fake_clock
from tests.test_conversation import BLOCK_ACTIONS, click, dm, stored_trigger


def elements(message: Call) -> list[dict[str, Any]]:
    blocks = message.args.get("blocks") or []
    return [e for block in blocks if block["type"] == "actions" for e in block["elements"]]


def button(message: Call, label: str) -> dict[str, Any]:
    return next(e for e in elements(message) if e.get("text", {}).get("text") == label)


def labels(message: Call) -> list[str]:
    return [e["text"]["text"] for e in elements(message) if e["type"] == "button"]


def picked(block_id: str, channel: str, *, user: str = "U0001") -> dict[str, Any]:
    """A ``block_actions`` payload for a channel chosen in a ``conversations_select``."""
    payload = copy.deepcopy(BLOCK_ACTIONS)
    payload["team"]["id"] = "T0001"
    payload["user"] |= {"id": user, "team_id": "T0001"}
    payload["actions"] = [
        {
            "type": "conversations_select",
            "action_id": "question_channel",
            "block_id": block_id,
            "selected_conversation": channel,
            "action_ts": "1",
        }
    ]
    payload["container"] |= {"type": "message", "channel_id": "D0001", "message_ts": "1.2"}
    payload["channel"] = {"id": "D0001", "name": "directmessage"}
    return payload


async def pressed(running: RunningBot, message: Call, label: str, *, user: str = "U0001") -> None:
    chosen = button(message, label)
    await running.interact(
        click(chosen["action_id"], chosen["value"], user=user, channel="D0001", ts="1.2")
    )


async def test_two_addresses_and_no_channel_are_asked_then_created(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("D0001", "dm")
    fake_slack.add_channel("C0002", "ops")
    fake_slack.add_user("U0002", tz="UTC")
    running: RunningBot = await start_bot(clock=fake_clock())
    await running.event(
        dm("check <https://a.example.com> and <https://b.example.com> every 5 minutes")
    )
    (which,) = await fake_slack.wait_for("chat.postMessage")
    assert "one address at a time" in which.args["text"]
    assert labels(which) == ["https://a.example.com", "https://b.example.com", "Other…"]

    await pressed(running, which, "https://b.example.com", user="U0002")  # not theirs
    (refused,) = await fake_slack.wait_for("chat.postEphemeral")
    assert "Only <@U0001>" in refused.args["text"]

    await pressed(running, which, "https://b.example.com")
    where = (await fake_slack.wait_for("chat.postMessage", count=2))[-1]
    assert where.args["text"] == "Where should I post it?"
    assert any(e["type"] == "conversations_select" for e in elements(where))
    assert labels(where) == ["Here"]
    answered = (await fake_slack.wait_for("chat.update"))[-1]
    assert "https://b.example.com" in answered.args["text"]

    block_id = where.args["blocks"][1]["block_id"]
    await running.interact(picked(block_id, "C0002"))
    proposal = (await fake_slack.wait_for("chat.postMessage", count=3))[-1]
    assert "b.example.com" in proposal.args["text"] and "every 5 minutes" in proposal.args["text"]
    assert "a.example.com" not in proposal.args["text"]
    assert await stored_trigger(running, "b-example-com") is None  # nothing without Create

    await pressed(running, proposal, "Create")
    await fake_slack.wait_for("chat.postEphemeral", count=2)
    trigger = await stored_trigger(running, "b-example-com")
    assert trigger is not None
    assert (trigger.target, trigger.channel_id) == ("https://b.example.com", "C0002")

    # "it" is now the trigger just created.
    await running.event(dm("pause it", event_id="Ev2"))
    pause = (await fake_slack.wait_for("chat.postMessage", count=4))[-1]
    assert "Pause *b-example-com*" in pause.args["text"]


async def test_a_default_time_is_said_and_one_click_changes_it(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("D0001", "dm")
    fake_slack.add_channel("C0003", "team")
    running: RunningBot = await start_bot(clock=fake_clock())
    await running.event(dm("every morning remind <#C0003|team>: standup"))
    (first,) = await fake_slack.wait_for("chat.postMessage")
    assert "every day at 09:00 Europe/Berlin" in first.args["text"]  # U0001's zone, said
    assert '"every morning" read as 9:00' in first.args["text"]
    assert labels(first) == ["9:00", "8:00", "10:00", "Other…", "Create", "Edit", "Cancel"]

    await pressed(running, first, "8:00")
    second = (await fake_slack.wait_for("chat.postMessage", count=2))[-1]
    assert "every day at 08:00 Europe/Berlin" in second.args["text"]
    assert "read as" not in second.args["text"]

    await pressed(running, first, "Create")  # the first proposal was replaced by the second
    (stale,) = await fake_slack.wait_for("chat.postEphemeral")
    assert "no longer open" in stale.args["text"]
    await pressed(running, second, "Create")
    await fake_slack.wait_for("chat.postEphemeral", count=2)
    trigger = await stored_trigger(running, "standup")
    assert trigger is not None and trigger.schedule["times"] == ["08:00"]

    # Once created, the time offered beside it is moot: "7:30" is a new request.
    await running.event(dm("7:30", event_id="Ev2"))
    after = (await fake_slack.wait_for("chat.postMessage", count=3))[-1]
    assert "didn't get that" in after.args["text"]


async def test_an_unknown_zone_is_asked_and_a_typed_answer_continues(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("D0001", "dm")
    fake_slack.add_channel("C0003", "team")
    running: RunningBot = await start_bot(clock=fake_clock())
    await running.event(dm("every day at 9am Narnia time remind <#C0003|team>: standup"))
    (question,) = await fake_slack.wait_for("chat.postMessage")
    assert 'I don\'t know the time zone "Narnia"' in question.args["text"]
    assert labels(question)[-1] == "Other…"

    await pressed(running, question, "Other…")
    (prompt,) = await fake_slack.wait_for("chat.postEphemeral")
    assert "Europe/London" in prompt.args["text"]

    await running.event(dm("Asia/Tokyo", event_id="Ev2"))
    proposal = (await fake_slack.wait_for("chat.postMessage", count=2))[-1]
    assert "every day at 09:00 Asia/Tokyo" in proposal.args["text"]

    # The question is answered: the same words again are a new request, read afresh.
    await running.event(dm("Asia/Tokyo", event_id="Ev3"))
    again = (await fake_slack.wait_for("chat.postMessage", count=3))[-1]
    assert "didn't get that" in again.args["text"]


async def test_a_refusal_names_the_part_and_gives_an_example(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("D0001", "dm")
    running: RunningBot = await start_bot(clock=fake_clock())
    await running.event(dm("check <https://example.com> every blue moon in <#C0002|ops>"))
    (answer,) = await fake_slack.wait_for("chat.postMessage")
    assert 'near "every blue"' in answer.args["text"]
    assert '"every 2 weeks"' in answer.args["text"]
