"""Changing things by talking, through /slack/events as Slack sends it.

Each phrase is a DM (the real ``message.im`` event); a change is answered with the exact
change and Apply / Cancel, and only Apply (a signed ``block_actions`` click) changes the
trigger, through the same service and permission checks as ``/trigger``. Every phrase is
said by the creator (who may) and by someone else (who may not).
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from bot.devtools.fake_slack import Call, FakeSlack
from bot.models import Hook
from bot.triggers.evaluate import state_from_dict
from tests.conftest import RunningBot, fake_clock, fixture_bytes
from tests.test_conversation import MESSAGE_IM, click, stored_trigger
from tests.test_triggers_flow import Target, target  # noqa: F401 (a fixture)

OWNER, OTHER = "U0001", "U0002"
DM = {OWNER: "D0001", OTHER: "D0002"}


def said(text: str, user: str, number: int) -> dict[str, Any]:
    envelope = copy.deepcopy(MESSAGE_IM)
    envelope["team_id"] = "T0001"
    envelope["event_id"] = f"Ev{user}{number}"
    envelope["event"] |= {"text": text, "user": user, "channel": DM[user], "team": "T0001"}
    return envelope


class Talk:
    """One person's DM with the bot: say something, read the answer, click its buttons."""

    def __init__(self, running: RunningBot, fake: FakeSlack, user: str) -> None:
        self.running, self.fake, self.user, self.said = running, fake, user, 0

    async def say(self, text: str) -> Call:
        before = len(self.fake.messages(DM[self.user]))
        self.said += 1
        await self.running.event(said(text, self.user, self.said))
        await self.fake.wait_for("chat.postMessage", count=len(self.fake.messages()) + 1)
        answers = self.fake.messages(DM[self.user])
        assert len(answers) == before + 1
        return next(
            c
            for c in reversed(self.fake.calls_to("chat.postMessage"))
            if c.args["channel"] == DM[self.user]
        )

    async def press(self, answer: Call, label: str, *, user: str | None = None) -> str:
        """Click ``label`` on ``answer``; the private replies the clicker got since."""
        buttons = [
            e
            for b in answer.args.get("blocks") or []
            if b["type"] == "actions"
            for e in b["elements"]
        ]
        chosen = next(b for b in buttons if b["text"]["text"] == label)
        count = len(self.fake.calls_to("chat.postEphemeral")) + 1
        await self.running.interact(
            click(
                chosen["action_id"],
                chosen["value"],
                user=user or self.user,
                channel=DM[self.user],
                ts="1.2",
            )
        )
        replies = await self.fake.wait_for("chat.postEphemeral", count=count)
        return "\n".join(call.args["text"] for call in replies[count - 1 :])


def buttons(answer: Call) -> list[str]:
    blocks = answer.args.get("blocks") or []
    return [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


@pytest.fixture
async def talking(start_bot, fake_slack: FakeSlack, target: Target):  # noqa: F811
    target.body = fixture_bytes("feeds/rss2sample.xml")
    for user, channel in DM.items():
        fake_slack.add_channel(channel, f"dm-{user}")
    fake_slack.add_user(OTHER, tz="UTC")
    fake_slack.add_channel("C0NEWS", "news")
    running: RunningBot = await start_bot(clock=fake_clock())
    for command in (
        '/trigger add standup every weekday at 9:30 message "Standup!"',
        f"/trigger add site every 5m http {target.url}/site",
        f"/trigger add blog every 30m rss {target.url}/feed",
        f"/trigger add sales every day at 9am json {target.url}/sales",
    ):
        reply = await running.command(command)
        assert "Added" in reply or "added" in reply, reply
    return running


CHANGES = [
    ("pause the standup reminder", "standup", "Pause *standup*", "/trigger pause standup"),
    ("make the site check every 10 minutes", "site", "every 5 minutes → *every 10 minutes*", ""),
    ("move the blog feed to <#C0NEWS|news>", "blog", "to <#C0NEWS>", ""),
    ("delete the old feed", "blog", "Delete *blog*", "/trigger delete blog"),
    ("mute site for 2 hours", "site", "Mute *site*", "/trigger mute site 2h"),
    ("run the site check now", "site", "Run *site*", "/trigger run site"),
]


@pytest.mark.parametrize(("phrase", "name", "shown", "command"), CHANGES)
async def test_a_change_is_shown_then_applied_for_who_may(
    talking: RunningBot, fake_slack: FakeSlack, phrase: str, name: str, shown: str, command: str
) -> None:
    owner = Talk(talking, fake_slack, OWNER)
    answer = await owner.say(phrase)
    assert shown in answer.args["text"]
    assert command in answer.args["text"]
    assert buttons(answer) == ["Apply", "Cancel"]
    before = await stored_trigger(talking, name)
    assert before is not None

    refused = await owner.press(answer, "Apply", user=OTHER)  # not the asker's click
    assert "Only <@U0001>" in refused
    assert await stored_trigger(talking, name) == before

    done = await owner.press(answer, "Apply")
    after = await stored_trigger(talking, name)
    if phrase.startswith("pause"):
        assert after is not None and after.paused and "Paused" in done
    elif phrase.startswith("make"):
        assert after is not None and after.schedule["seconds"] == 600
    elif phrase.startswith("move"):
        assert after is not None and after.channel_id == "C0NEWS"
    elif phrase.startswith("delete"):
        assert after is None
    elif phrase.startswith("mute"):
        assert after is not None
        muted = state_from_dict(after.state).muted_until
        assert muted == talking.bot.clock.now() + timedelta(hours=2)
    else:
        assert "Running *site* now" in done


@pytest.mark.parametrize(("phrase", "name", "shown", "command"), CHANGES)
async def test_a_change_is_refused_for_who_may_not_and_nothing_changes(
    talking: RunningBot, fake_slack: FakeSlack, phrase: str, name: str, shown: str, command: str
) -> None:
    other = Talk(talking, fake_slack, OTHER)
    before = await stored_trigger(talking, name)
    answer = await other.say(phrase)
    if phrase.startswith("run"):  # anyone may look: a check for them alone, no change
        assert buttons(answer) == ["Apply", "Cancel"]
        assert "for you" in await other.press(answer, "Apply")  # checked for them only
    else:
        assert "Only <@U0001>" in answer.args["text"]
        assert buttons(answer) == []
    assert await stored_trigger(talking, name) == before


async def test_resume_it_means_the_one_just_discussed(
    talking: RunningBot, fake_slack: FakeSlack
) -> None:
    owner, other = Talk(talking, fake_slack, OWNER), Talk(talking, fake_slack, OTHER)
    await owner.press(await owner.say("pause the standup reminder"), "Apply")

    answer = await owner.say("resume it")
    assert "Resume *standup*" in answer.args["text"]
    assert "/trigger resume standup" in answer.args["text"]
    await owner.press(answer, "Apply")
    standup = await stored_trigger(talking, "standup")
    assert standup is not None and not standup.paused

    unsure = await other.say("resume it")  # nothing was discussed with them
    assert "not sure what" in unsure.args["text"]


async def test_cancel_changes_nothing(talking: RunningBot, fake_slack: FakeSlack) -> None:
    owner = Talk(talking, fake_slack, OWNER)
    answer = await owner.say("delete the old feed")
    await talking.interact(
        click("change_cancel", buttons_value(answer, "Cancel"), channel="D0001", ts="1.2")
    )
    (updated,) = await fake_slack.wait_for("chat.update")
    assert "nothing was changed" in updated.args["text"]
    assert await stored_trigger(talking, "blog") is not None


def buttons_value(answer: Call, label: str) -> str:
    blocks = answer.args.get("blocks") or []
    elements = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    return str(next(e["value"] for e in elements if e["text"]["text"] == label))


@pytest.mark.parametrize("user", [OWNER, OTHER])
async def test_questions_are_answered_without_changing_anything(
    talking: RunningBot, fake_slack: FakeSlack, user: str
) -> None:
    talk = Talk(talking, fake_slack, user)
    mine = await talk.say("what triggers do I have?")
    if user == OWNER:
        assert all(
            f"*{name}*" in mine.args["text"] for name in ("standup", "site", "blog", "sales")
        )
    else:
        assert "no triggers or hooks yet" in mine.args["text"]
    failing = await talk.say("what's failing?")
    assert "Nothing is failing: 4 triggers" in failing.args["text"]
    shown = await talk.say("show me the sales report")
    assert "*sales*" in shown.args["text"] and "/trigger show sales" in shown.args["text"]
    assert buttons(shown) == []


async def test_a_name_that_matches_nothing_is_answered_with_the_names(
    talking: RunningBot, fake_slack: FakeSlack
) -> None:
    answer = await Talk(talking, fake_slack, OWNER).say("pause the payroll reminder")
    assert 'that "the payroll reminder" names' in answer.args["text"]
    assert "*standup*" in answer.args["text"]


async def test_a_hook_is_paused_and_moved_by_talking(
    talking: RunningBot, fake_slack: FakeSlack
) -> None:
    created = await talking.command("/hook create deploys preset=github")
    assert "Created hook *deploys*" in created
    owner, other = Talk(talking, fake_slack, OWNER), Talk(talking, fake_slack, OTHER)

    refused = await other.say("stop the deploys hook")
    assert "Only <@U0001>" in refused.args["text"] and buttons(refused) == []

    answer = await owner.say("stop the deploys hook")
    assert "Pause *deploys*" in answer.args["text"] and "/hook pause deploys" in answer.args["text"]
    assert "Paused hook *deploys*" in await owner.press(answer, "Apply")
    hook = await stored_hook(talking, "deploys")
    assert hook is not None and hook.paused

    moved = await owner.say("move it to <#C0NEWS|news>")
    assert "to <#C0NEWS>" in moved.args["text"]
    await owner.press(moved, "Apply")
    hook = await stored_hook(talking, "deploys")
    assert hook is not None and hook.channel_id == "C0NEWS"


async def stored_hook(running: RunningBot, name: str) -> Hook | None:
    async with running.bot.db.sessions() as session:
        result = await session.execute(select(Hook).where(col(Hook.name) == name))
        return result.scalars().first()


async def test_words_that_fit_several_things_ask_which_one(
    talking: RunningBot, fake_slack: FakeSlack
) -> None:
    for name in ("db-eu", "db-us"):
        await talking.command(f'/trigger add {name} every weekday at 9:00 message "Backup {name}"')
    owner = Talk(talking, fake_slack, OWNER)

    which = await owner.say("pause the db reminder")
    assert 'Which one do you mean by "the db reminder"?' in which.args["text"]
    assert buttons(which) == ["db-eu", "db-us"]

    before = len(fake_slack.messages("D0001"))
    chosen = next(
        e
        for b in which.args["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["text"]["text"] == "db-us"
    )
    await talking.interact(click(chosen["action_id"], chosen["value"], channel="D0001", ts="1.2"))
    await fake_slack.wait_for("chat.postMessage", count=len(fake_slack.messages()) + 1)
    proposal = fake_slack.calls_to("chat.postMessage")[-1]
    assert len(fake_slack.messages("D0001")) == before + 1
    assert "Pause *db-us*" in proposal.args["text"]
    await owner.press(proposal, "Apply")
    us, eu = await stored_trigger(talking, "db-us"), await stored_trigger(talking, "db-eu")
    assert us is not None and us.paused and eu is not None and not eu.paused
