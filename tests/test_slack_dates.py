"""Times as people read them: their own zone for replies, Slack's date token in channels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.audit import Actor, change_note, note_in
from bot.slack.dates import slack_date

NOW = datetime(2031, 1, 6, 17, 46, 30, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def test_a_recent_time_is_a_slack_date_token_with_a_utc_fallback() -> None:
    assert slack_date(NOW - timedelta(minutes=5), NOW) == "<!date^1925487690^{time}|17:41 UTC>"


def test_an_older_time_carries_its_date() -> None:
    token = slack_date(NOW - timedelta(days=2), NOW)
    assert token == "<!date^1925315190^{date_short_pretty} {time}|2031-01-04 17:46 UTC>"


def test_a_change_note_is_stored_in_utc_and_read_in_the_readers_zone() -> None:
    note = change_note("paused", Actor("T1", "U1", "C1"), NOW)
    assert note == "paused by <@U1> at 2031-01-06 17:46 UTC"
    assert note_in(note, BERLIN) == "paused by <@U1> at 2031-01-06 18:46 CET"
    summer = change_note("muted until 2031-07-01 08:00 UTC", Actor("T1", "U1", "C1"), NOW)
    assert note_in(summer, BERLIN) == (
        "muted until 2031-07-01 10:00 CEST by <@U1> at 2031-01-06 18:46 CET"
    )
    assert note_in(None, BERLIN) == "—"
