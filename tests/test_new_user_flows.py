"""Issue 12: a new user's stories end to end, over signed HTTP against the fake Slack.

Each test names the defect it covers; each failed before its fix.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from bot.devtools.fake_slack import FakeSlack
from bot.models import Hook
from bot.webhooks.slash import SETTABLE
from tests.conftest import RunningBot, fake_clock, fixture_bytes, fixture_json, slack_headers
from tests.test_conversation import click, dm
from tests.test_triggers_flow import run_due, trigger_named
from tests.test_webhooks_flow import create_hook, github_headers

HOME_OPENED = fixture_json("slack/app_home_opened.json")
CLOCK_TIME = re.compile(r"\w{3} \d{2} \w{3} \d{2}:\d{2} \w+")


async def open_home(running: RunningBot, fake_slack: FakeSlack, user: str = "U0001") -> str:
    """Open the App Home as ``user``; the published view as text."""
    before = len(fake_slack.calls_to("views.publish"))
    event = copy.deepcopy(HOME_OPENED)
    event["team_id"] = "T0001"
    event["event"] |= {"tab": "home", "user": user}
    body = json.dumps(event).encode()
    status, _ = await running.post("/slack/events", body, slack_headers(body, form=False))
    assert status == 200
    calls = await fake_slack.wait_for("views.publish", before + 1)
    return json.dumps(calls[-1].args["view"], ensure_ascii=False)


def next_after(label: str, text: str) -> str:
    """The first clock time after ``label`` in ``text``."""
    found = CLOCK_TIME.search(text.split(label, 1)[1])
    assert found, text
    return found.group(0)


# Defect 3: `/trigger show` skipped the real next run of `every N` schedules.


async def test_every_place_names_the_same_next_run_and_show_starts_with_it(
    start_bot, fake_slack: FakeSlack
) -> None:
    clock = fake_clock("2031-01-06T18:46:30")  # 19:46:30 in Berlin, U0001's zone
    running: RunningBot = await start_bot(clock=clock)
    added = await running.command('/trigger add tick every 1m message "tick"')
    listed = await running.command("/trigger list")
    shown = await running.command("/trigger show tick")
    home = await open_home(running, fake_slack)
    expected = "Mon 06 Jan 19:47 CET"
    assert next_after("next:", added) == expected
    assert next_after("next:", listed) == expected
    assert next_after("next:", home) == expected
    runs = shown.split("*Next runs:* ", 1)[1].splitlines()[0]
    assert runs == "Mon 06 Jan 19:47 CET, Mon 06 Jan 19:48 CET, Mon 06 Jan 19:49 CET"


async def test_a_check_that_runs_at_once_shows_that_run_first(start_bot) -> None:
    clock = fake_clock("2031-01-06T18:46:30")
    running: RunningBot = await start_bot(clock=clock)
    await running.command("/trigger add site every day at 9am http https://example.com")
    shown = await running.command("/trigger show site")
    runs = shown.split("*Next runs:* ", 1)[1].splitlines()[0]
    # An http check runs once when added; then every day at 9.
    assert runs == "Mon 06 Jan 19:46 CET, Tue 07 Jan 09:00 CET, Wed 08 Jan 09:00 CET"


# Defect 1: a duplicate's reply named a delivery that does not exist.


async def test_a_duplicate_names_the_original_delivery_which_replay_finds(
    start_bot, fake_slack: FakeSlack
) -> None:
    running: RunningBot = await start_bot()
    path, secret = await create_hook(running, "deploys <#C0002|ops> preset=github")
    body = fixture_bytes("github/push.json")
    headers = github_headers("push", body, secret, delivery="72d3162e-cc78-11e3")
    status, first = await running.post(path, body, headers)
    again, second = await running.post(path, body, headers)
    assert (status, again) == (202, 202)
    assert second == {"ok": True, "delivery": first["delivery"], "duplicate": True}
    replayed = await running.command(f"/hook replay deploys {second['delivery']}")
    assert replayed.startswith(f"Replaying `{first['delivery']}` as `"), replayed
    await fake_slack.wait_for("chat.postMessage", 2)  # the original and its replay


# Defect 2: creating a webhook by DM failed ("create create …", "#ops" not a channel).


async def test_a_webhook_asked_for_by_dm_is_created_as_the_summary_showed(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("D0001", "dm")
    running: RunningBot = await start_bot()
    await running.event(dm("give me a webhook for github pushes in #ops"))
    (proposal,) = await fake_slack.wait_for("chat.postMessage")
    summary = proposal.args["text"]
    assert "create create" not in json.dumps(proposal.args)
    name = re.search(r"webhook \*([\w-]+)\* for (\w+), posting in (\S+?)\.", summary)
    assert name, summary
    create = button(proposal.args, "draft_create")
    await running.interact(click("draft_create", create["value"], channel="D0001"))
    # The URL and secret are shown once, in a form (never stored in a message).
    (shown,) = await fake_slack.wait_for("views.open")
    assert f"Created hook *{name.group(1)}* → " in json.dumps(
        shown.args["view"], ensure_ascii=False
    )
    hook = await stored_hook(running, name.group(1))
    assert hook is not None and hook.preset == name.group(2) == "github"
    # "#ops" as typed is the fake workspace's #ops: the hook posts there, by its id.
    assert name.group(3) in ("#ops", "<#C0002>")
    assert hook.channel_id == "C0002"


def button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    """The button ``action_id`` in a posted message's blocks."""
    elements = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    return next(e for e in elements if e["action_id"] == action_id)


async def stored_hook(running: RunningBot, name: str) -> Hook | None:
    async with running.bot.db.sessions() as session:
        result = await session.execute(select(Hook).where(col(Hook.name) == name))
        return result.scalars().first()


# Defect 9: `run=` was hidden; every option is in the help, the README and `show`.


async def test_every_hook_setting_is_in_the_help_the_readme_and_show(start_bot) -> None:
    running: RunningBot = await start_bot()
    await running.command("/hook create deploys preset=github")
    help_text = await running.command("/hook help")
    shown = await running.command("/hook show deploys")
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    set_in_readme = readme.split("`set NAME", 1)[1].split("`", 1)[0]
    for key in SETTABLE:
        assert f"{key}=" in help_text, key
        assert f"{key}=" in set_in_readme, key
        assert f"{key}=" in shown, key
    assert "run=TRIGGER" in readme and "*Runs trigger:* none" in shown


# Defect 4: plain-language conditions were dropped silently.


async def test_a_condition_said_about_the_address_is_kept_through_create(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("D0001", "dm")
    running: RunningBot = await start_bot(clock=fake_clock())
    await running.event(
        dm("tell #ops if <https://example.com> is slower than 500ms, check every 2 minutes")
    )
    (proposal,) = await fake_slack.wait_for("chat.postMessage")
    assert "when latency &gt; 500ms" in proposal.args["text"], proposal.args["text"]
    create = button(proposal.args, "draft_create")
    await running.interact(click("draft_create", create["value"], channel="D0001"))
    await fake_slack.wait_for("chat.postEphemeral")
    trigger = await trigger_named(running, "example-com")
    assert (trigger.condition, trigger.channel_id) == ("latency > 500ms", "C0002")


# Defect 8: a re-fired alert hid in an old, resolved thread.


async def test_an_alert_that_fires_again_after_resolving_gets_a_new_message(
    start_bot, fake_slack: FakeSlack
) -> None:
    running: RunningBot = await start_bot()
    path, _ = await create_hook(running, "alerts <#C0002|ops> preset=alertmanager")
    await running.command("/hook set alerts secret=bearer-token-123")
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bearer-token-123"}
    firing = fixture_json("alertmanager/firing.json")
    again = copy.deepcopy(firing)
    again["alerts"][0]["startsAt"] = "2018-11-05T09:00:00.000000000+01:00"
    for payload in (firing, fixture_json("alertmanager/resolved.json"), again):
        before = len(fake_slack.calls_to("chat.postMessage"))
        status, _ = await running.post(path, json.dumps(payload).encode(), headers)
        assert status == 202
        await fake_slack.wait_for("chat.postMessage", before + 1)
    first, reply, second = (call.args for call in fake_slack.calls_to("chat.postMessage"))
    assert "thread_ts" not in first and "thread_ts" in reply
    assert "thread_ts" not in second, "the new incident must start its own message"
    old_root = fake_slack.message_by_ts("C0002", reply["thread_ts"])
    assert old_root is not None and "RESOLVED" in old_root["text"]
    assert [r["name"] for r in old_root.get("reactions", [])] == ["white_check_mark"]
    assert "FIRING" in second["text"]


def sentry_issue(action: str, **issue: Any) -> dict[str, Any]:
    """A Sentry issue webhook (``Sentry-Hook-Resource: issue``), shaped as Sentry documents it
    (docs.sentry.io/integrations/integration-platform/webhooks/issues/)."""
    return {
        "action": action,
        "actor": {"type": "user", "id": "1", "name": "Ada"},
        "data": {
            "issue": {
                "id": "1170820242",
                "shortId": "FRONT-END-1",
                "title": "ReferenceError: heck is not defined",
                "culprit": "?(<anonymous>)",
                "level": "error",
                "status": "unresolved",
                "substatus": "new",
                "project": {"id": "1", "name": "front-end", "slug": "front-end"},
                "web_url": "https://sentry.io/organizations/test-org/issues/1170820242/",
                **issue,
            }
        },
        "installation": {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de"},
    }


async def test_a_sentry_issue_that_regresses_after_resolving_gets_a_new_message(
    start_bot, fake_slack: FakeSlack
) -> None:
    import hashlib
    import hmac

    running: RunningBot = await start_bot()
    secret = "sentry-client-secret"
    path, _ = await create_hook(running, f"errors <#C0002|ops> preset=sentry secret={secret}")
    lifecycle = [
        sentry_issue("created"),
        sentry_issue("resolved", status="resolved"),
        sentry_issue("unresolved", substatus="regressed"),
    ]
    for number, payload in enumerate(lifecycle):
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "Sentry-Hook-Resource": "issue",
            "Request-ID": f"req-{number}",
            "Sentry-Hook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        }
        before = len(fake_slack.calls_to("chat.postMessage"))
        status, answer = await running.post(path, body, headers)
        assert status == 202, answer
        await fake_slack.wait_for("chat.postMessage", before + 1)
    first, resolved, regressed = (c.args for c in fake_slack.calls_to("chat.postMessage"))
    assert "thread_ts" not in first and resolved.get("thread_ts")
    assert "thread_ts" not in regressed, "a regression is a new incident: its own message"
    assert "Regressed" in regressed["text"] or "regressed" in regressed["text"]
    old_root = fake_slack.message_by_ts("C0002", resolved["thread_ts"])
    assert old_root is not None and "resolved" in old_root["text"].lower()
    assert [r["name"] for r in old_root.get("reactions", [])] == ["white_check_mark"]


# Defect 10: times were shown in mixed zones; each is now in the reader's zone, named.


async def test_every_time_shown_to_a_person_is_in_their_zone_and_says_which(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_user("U0002", tz="America/New_York")
    clock = fake_clock("2031-01-06T17:46:30")  # 18:46 in Berlin (U0001), 12:46 in New York
    running: RunningBot = await start_bot(clock=clock)
    await running.command("/trigger add site every 1m http http://127.0.0.1:1/")
    await run_due(running, clock, "site")  # nothing listens there: failing since 18:46 CET

    listed = await running.command("/trigger list")
    assert "next: Mon 06 Jan 18:47 CET" in listed
    assert "failing since Mon 06 Jan 18:46 CET" in listed and "UTC" not in listed

    muted = await running.command("/trigger mute site until 20:00")  # the person's 20:00
    assert "until Mon 06 Jan 20:00 CET" in muted
    assert (
        (await trigger_named(running, "site")).state["muted_until"].startswith("2031-01-06T19:00")
    )
    shown = await running.command("/trigger show site")
    assert "muted until Mon 06 Jan 20:00 CET" in shown
    assert (
        "*Last change:* muted until 2031-01-06 20:00 CET by <@U0001> at 2031-01-06 18:46 CET"
    ) in shown
    elsewhere = await running.command("/trigger show site", user="U0002")
    assert (
        "at 2031-01-06 12:46 EST" in elsewhere and "failing since Mon 06 Jan 12:46 EST" in elsewhere
    )

    await running.command("/hook create deploys preset=github")
    await running.command("/hook test deploys")
    log = await running.command("/hook log deploys")
    assert " 01-06 18:46:30 CET " in log and "UTC" not in log
    hook_shown = await running.command("/hook show deploys", user="U0002")
    assert "at 2031-01-06 12:46 EST" in hook_shown and " 01-06 12:46:30 EST " in hook_shown
    assert "UTC" not in await running.command("/trigger status")
