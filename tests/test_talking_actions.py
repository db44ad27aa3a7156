"""Running and wiring actions by talking, through /slack/events as Slack sends it.

Each phrase is a DM (the real ``message.im`` event); running or wiring an action is
answered with the exact command and Apply / Cancel, and only Apply (a signed
``block_actions`` click) runs it, as if the clicker typed the command: the same parsing
and permission checks as ``/action``, ``/trigger`` and ``/hook``. Each is said by the
action's creator (who may) and by someone else (who may not). The action's requests go
over real HTTP to a small target on loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.actions.form import ACTION_MODAL
from bot.actions.spec import names_in
from bot.devtools.fake_slack import FakeSlack
from tests.action_target import Target as Crm
from tests.action_target import serving_target
from tests.conftest import RunningBot, fake_clock
from tests.test_actions_flow import runs_of, until_runs_finished
from tests.test_conversation import click, stored_trigger
from tests.test_talking_changes import DM, OTHER, OWNER, Talk, buttons, stored_hook
from tests.test_triggers_flow import Target, target  # noqa: F401 (a fixture)


@pytest.fixture
async def crm() -> AsyncIterator[Crm]:
    async with serving_target() as found:
        yield found


@pytest.fixture
async def acting(start_bot, fake_slack: FakeSlack, target: Target, crm: Crm):  # noqa: F811
    for user, channel in DM.items():
        fake_slack.add_channel(channel, f"dm-{user}")
    fake_slack.add_user(OTHER, tz="UTC")
    running: RunningBot = await start_bot(clock=fake_clock())
    for command in (
        f"/action add crm POST {crm.url}/api/leads body=json",
        '/action body crm {"email": {{ params.email|tojson }}}',
        f"/trigger add site every 5m http {target.url}/site",
        "/hook create form preset=generic",
    ):
        reply = await running.command(command)
        assert "can't" not in reply and "isn't" not in reply, reply
    return running


async def test_an_action_is_run_by_talking_by_who_may_and_not_by_others(
    acting: RunningBot, fake_slack: FakeSlack, crm: Crm
) -> None:
    owner, other = Talk(acting, fake_slack, OWNER), Talk(acting, fake_slack, OTHER)

    refused = await other.say("run crm now")
    assert "You may not run *crm*" in refused.args["text"] and buttons(refused) == []

    answer = await owner.say("call crm with email=<mailto:ann@example.com|ann@example.com>")
    assert "Run *crm* now with email=ann@example.com" in answer.args["text"]
    assert "`/action run crm email=ann@example.com`" in answer.args["text"]
    assert buttons(answer) == ["Apply", "Cancel"]
    assert "Only <@U0001>" in await owner.press(answer, "Apply", user=OTHER)
    assert await runs_of(acting) == []  # nothing runs before Apply, nor on another's click

    assert "Running *crm*" in await owner.press(answer, "Apply")
    (lead,) = await crm.wait_for(1)
    assert (lead.method, lead.path) == ("POST", "/api/leads")
    assert lead.json() == {"email": "ann@example.com"}
    (run,) = await until_runs_finished(acting, 1)
    assert run.status == "sent" and "<@U0001> ran it by hand" in run.cause

    await acting.command("/action set crm allow=everyone")  # now the other may, too
    allowed = await other.say("run the crm action")
    assert buttons(allowed) == ["Apply", "Cancel"] and "/action run crm" in allowed.args["text"]


WIRINGS = [
    (
        "when the site check goes down, run crm",
        "Run *crm* each time *site* sees a problem.",
        "/trigger set site then=crm on=problem",
    ),
    ("put a crm button on the site alerts", "Put a *crm* button", "/trigger set site buttons=crm"),
    (
        "when a form arrives on the form hook, send it to crm and don't post",
        "Run *crm* for each delivery to hook *form*, without posting to Slack.",
        "/hook set form then=crm post=off",
    ),
]


@pytest.mark.parametrize(("phrase", "shown", "command"), WIRINGS)
async def test_an_action_is_wired_by_talking_by_who_may_and_not_by_others(
    acting: RunningBot, fake_slack: FakeSlack, phrase: str, shown: str, command: str
) -> None:
    owner, other = Talk(acting, fake_slack, OWNER), Talk(acting, fake_slack, OTHER)
    site_before, form_before = (
        await stored_trigger(acting, "site"),
        await stored_hook(acting, "form"),
    )

    refused = await other.say(phrase)
    assert "Only <@U0001>" in refused.args["text"] and buttons(refused) == []

    answer = await owner.say(phrase)
    assert shown in answer.args["text"] and f"`{command}`" in answer.args["text"]
    assert buttons(answer) == ["Apply", "Cancel"]
    assert await stored_trigger(acting, "site") == site_before
    assert await stored_hook(acting, "form") == form_before

    await owner.press(answer, "Apply")
    site, form = await stored_trigger(acting, "site"), await stored_hook(acting, "form")
    assert site is not None and form is not None
    if command.startswith("/hook"):
        assert names_in(form.actions) == ["crm"] and not form.post
    elif "buttons=" in command:
        assert names_in(site.settings.get("buttons")) == ["crm"]
    else:
        assert names_in(site.settings.get("then")) == ["crm"]
        assert site.settings.get("on") == "problem"


async def test_questions_about_actions_change_nothing_and_making_one_is_not_guessed(
    acting: RunningBot, fake_slack: FakeSlack
) -> None:
    owner = Talk(acting, fake_slack, OWNER)
    listed = await owner.say("what actions do I have?")
    assert "*crm*" in listed.args["text"] and buttons(listed) == []
    log = await owner.say("what did crm do?")
    assert "*crm* has not run yet" in log.args["text"]

    make = await owner.say("create an action that posts to https://crm.example.com/leads")
    assert "`/action add NAME POST https://crm.example.com/leads`" in make.args["text"]
    assert buttons(make) == ["Open the /action add form"]
    await acting.interact(click("change_action_form", "add", channel=DM[OWNER], ts="1.2"))
    (opened,) = await fake_slack.wait_for("views.open")
    assert opened.args["view"]["callback_id"] == ACTION_MODAL  # the /action add form
    assert await runs_of(acting) == []
    listing = await acting.command("/action list")
    assert listing.count("• ") == 1  # still only crm: nothing was made from the words


async def test_words_that_fit_several_triggers_ask_which_one_then_wire_it(
    acting: RunningBot,
    fake_slack: FakeSlack,
    target: Target,  # noqa: F811
) -> None:
    for name in ("db-eu", "db-us"):
        await acting.command(f"/trigger add {name} every 5m http {target.url}/{name}")
    owner = Talk(acting, fake_slack, OWNER)

    which = await owner.say("when the db check goes down, run crm")
    assert "Which one should run *crm*?" in which.args["text"]
    assert buttons(which) == ["db-eu", "db-us"]
    chosen = next(
        e
        for b in which.args["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["text"]["text"] == "db-us"
    )
    count = len(fake_slack.messages()) + 1
    await acting.interact(click(chosen["action_id"], chosen["value"], channel=DM[OWNER], ts="1.2"))
    await fake_slack.wait_for("chat.postMessage", count=count)
    proposal = fake_slack.calls_to("chat.postMessage")[-1]
    assert "`/trigger set db-us then=crm on=problem`" in proposal.args["text"]
    await owner.press(proposal, "Apply")
    us, eu = await stored_trigger(acting, "db-us"), await stored_trigger(acting, "db-eu")
    assert us is not None and names_in(us.settings.get("then")) == ["crm"]
    assert eu is not None and not eu.settings.get("then")


async def test_an_action_that_asks_first_and_a_second_moment_are_said_not_slipped_in(
    acting: RunningBot, fake_slack: FakeSlack, crm: Crm
) -> None:
    owner = Talk(acting, fake_slack, OWNER)
    await acting.command(f"/action add restart-api POST {crm.url}/restart confirm=yes")
    answer = await owner.say("restart api now")
    assert "`/action run restart-api confirm=yes`" in answer.args["text"]  # Apply confirms
    assert "Running *restart-api*" in await owner.press(answer, "Apply")
    assert len(await crm.wait_for(1)) == 1

    await acting.command("/trigger set site then=restart-api on=problem")
    moved = await owner.say("when site comes back up, call crm")  # would move restart-api
    assert "share one `on=`" in moved.args["text"] and buttons(moved) == []
    assert "`/trigger set site then=crm on=recover`" in moved.args["text"]
    added = await owner.say("when site goes down, call crm")  # the same moment: kept beside
    assert "`/trigger set site then=restart-api,crm on=problem`" in added.args["text"]
