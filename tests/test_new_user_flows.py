"""Issue 12: a new user's stories end to end, over signed HTTP against the fake Slack.

Each test names the defect it covers; each failed before its fix.
"""

from __future__ import annotations

import copy
import json
import re

from bot.devtools.fake_slack import FakeSlack
from tests.conftest import RunningBot, fake_clock, fixture_json, slack_headers

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
