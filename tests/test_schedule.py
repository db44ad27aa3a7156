"""Schedules people type: parsing, next runs across DST and month ends, storage, APScheduler."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.triggers.schedule import (
    LAST_DAY,
    CronSchedule,
    IntervalSchedule,
    MonthlySchedule,
    OnceSchedule,
    Schedule,
    ScheduleError,
    WeeklySchedule,
    describe_span,
    ordinal,
    parse_clock,
    parse_duration_or_none,
    parse_schedule,
    schedule_from_dict,
    wall_clock_instant,
)

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
# A Friday; Berlin is still on CET (+1), New York already on EDT (-4).
NOW = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def utc(text: str) -> datetime:
    """``"2026-03-27 12:00"`` as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def parse(
    text: str,
    tz: ZoneInfo = UTC_ZONE,
    *,
    now: datetime = NOW,
    min_interval: timedelta = MINUTE,
) -> Schedule:
    return parse_schedule(text, default_tz=tz, now=now, min_interval=min_interval)


def runs(schedule: Schedule, after: datetime, n: int = 3) -> list[str]:
    return [run.strftime("%Y-%m-%d %H:%M:%S") for run in schedule.next_runs(after, n)]


# ---------------------------------------------------------------------------------------------
# Next runs from a fixed "now" (Friday 2026-03-27 12:00 UTC)

NEXT_RUN_CASES = [
    # intervals: anchored on `after`
    ("every 5m", UTC_ZONE, ["2026-03-27 12:05:00", "2026-03-27 12:10:00", "2026-03-27 12:15:00"]),
    (
        "every 5 minutes",
        UTC_ZONE,
        ["2026-03-27 12:05:00", "2026-03-27 12:10:00", "2026-03-27 12:15:00"],
    ),
    (
        "every minute",
        UTC_ZONE,
        ["2026-03-27 12:01:00", "2026-03-27 12:02:00", "2026-03-27 12:03:00"],
    ),
    ("every hour", UTC_ZONE, ["2026-03-27 13:00:00", "2026-03-27 14:00:00", "2026-03-27 15:00:00"]),
    (
        "every 2 hours",
        UTC_ZONE,
        ["2026-03-27 14:00:00", "2026-03-27 16:00:00", "2026-03-27 18:00:00"],
    ),
    ("every 2h", UTC_ZONE, ["2026-03-27 14:00:00", "2026-03-27 16:00:00", "2026-03-27 18:00:00"]),
    ("every 1d", UTC_ZONE, ["2026-03-28 12:00:00", "2026-03-29 12:00:00", "2026-03-30 12:00:00"]),
    ("every day", BERLIN, ["2026-03-28 12:00:00", "2026-03-29 12:00:00", "2026-03-30 12:00:00"]),
    (
        "every 2 weeks",
        UTC_ZONE,
        ["2026-04-10 12:00:00", "2026-04-24 12:00:00", "2026-05-08 12:00:00"],
    ),
    # every day / weekday / named days
    (
        "every day at 9am",
        UTC_ZONE,
        ["2026-03-28 09:00:00", "2026-03-29 09:00:00", "2026-03-30 09:00:00"],
    ),
    (
        "every day at 17:30",
        UTC_ZONE,
        ["2026-03-27 17:30:00", "2026-03-28 17:30:00", "2026-03-29 17:30:00"],
    ),
    (
        "every day at 12:00",
        UTC_ZONE,
        ["2026-03-28 12:00:00", "2026-03-29 12:00:00", "2026-03-30 12:00:00"],
    ),
    (
        "every day at 12pm",
        UTC_ZONE,
        ["2026-03-28 12:00:00", "2026-03-29 12:00:00", "2026-03-30 12:00:00"],
    ),
    (
        "every day at 12am",
        UTC_ZONE,
        ["2026-03-28 00:00:00", "2026-03-29 00:00:00", "2026-03-30 00:00:00"],
    ),
    (
        "every day at 9.30",
        UTC_ZONE,
        ["2026-03-28 09:30:00", "2026-03-29 09:30:00", "2026-03-30 09:30:00"],
    ),
    (
        "every day at 9:30 pm",
        UTC_ZONE,
        ["2026-03-27 21:30:00", "2026-03-28 21:30:00", "2026-03-29 21:30:00"],
    ),
    (
        "every day at 9am",
        BERLIN,
        ["2026-03-28 08:00:00", "2026-03-29 07:00:00", "2026-03-30 07:00:00"],
    ),
    (
        "every weekday at 9:30",
        UTC_ZONE,
        ["2026-03-30 09:30:00", "2026-03-31 09:30:00", "2026-04-01 09:30:00"],
    ),
    (
        "every weekday at 9:30 tz Europe/Berlin",
        UTC_ZONE,
        ["2026-03-30 07:30:00", "2026-03-31 07:30:00", "2026-04-01 07:30:00"],
    ),
    (
        "every weekend at 10am",
        UTC_ZONE,
        ["2026-03-28 10:00:00", "2026-03-29 10:00:00", "2026-04-04 10:00:00"],
    ),
    (
        "every monday at 10:00",
        UTC_ZONE,
        ["2026-03-30 10:00:00", "2026-04-06 10:00:00", "2026-04-13 10:00:00"],
    ),
    (
        "EVERY MONDAY AT 10AM",
        UTC_ZONE,
        ["2026-03-30 10:00:00", "2026-04-06 10:00:00", "2026-04-13 10:00:00"],
    ),
    (
        "every friday at 13:00",
        UTC_ZONE,
        ["2026-03-27 13:00:00", "2026-04-03 13:00:00", "2026-04-10 13:00:00"],
    ),
    (
        "every mon,wed,fri at 8am",
        UTC_ZONE,
        ["2026-03-30 08:00:00", "2026-04-01 08:00:00", "2026-04-03 08:00:00"],
    ),
    (
        "every mon, wed and fri at 8am",
        UTC_ZONE,
        ["2026-03-30 08:00:00", "2026-04-01 08:00:00", "2026-04-03 08:00:00"],
    ),
    (
        "every tue-thu at 9.30",
        UTC_ZONE,
        ["2026-03-31 09:30:00", "2026-04-01 09:30:00", "2026-04-02 09:30:00"],
    ),
    (
        "every day at 9:00 and 17:00",
        UTC_ZONE,
        ["2026-03-27 17:00:00", "2026-03-28 09:00:00", "2026-03-28 17:00:00"],
    ),
    (
        "every day at 9am, 1pm and 5pm",
        UTC_ZONE,
        ["2026-03-27 13:00:00", "2026-03-27 17:00:00", "2026-03-28 09:00:00"],
    ),
    (
        "every day at noon and midnight",
        UTC_ZONE,
        ["2026-03-28 00:00:00", "2026-03-28 12:00:00", "2026-03-29 00:00:00"],
    ),
    # monthly
    (
        "every month on the 1st at 9am",
        UTC_ZONE,
        ["2026-04-01 09:00:00", "2026-05-01 09:00:00", "2026-06-01 09:00:00"],
    ),
    (
        "every month on the 1st at 9am tz America/New_York",
        UTC_ZONE,
        ["2026-04-01 13:00:00", "2026-05-01 13:00:00", "2026-06-01 13:00:00"],
    ),
    (
        "every month on the 15th at noon",
        UTC_ZONE,
        ["2026-04-15 12:00:00", "2026-05-15 12:00:00", "2026-06-15 12:00:00"],
    ),
    (
        "every month on 15 at noon",
        UTC_ZONE,
        ["2026-04-15 12:00:00", "2026-05-15 12:00:00", "2026-06-15 12:00:00"],
    ),
    (
        "every month on the last day at midnight",
        UTC_ZONE,
        ["2026-03-31 00:00:00", "2026-04-30 00:00:00", "2026-05-31 00:00:00"],
    ),
    (
        "every month on the 31st at 9:00",
        UTC_ZONE,
        ["2026-03-31 09:00:00", "2026-05-31 09:00:00", "2026-07-31 09:00:00"],
    ),
    # cron
    (
        'cron "0 9 * * 1-5"',
        UTC_ZONE,
        ["2026-03-30 09:00:00", "2026-03-31 09:00:00", "2026-04-01 09:00:00"],
    ),
    (
        "cron 0 9 * * mon-fri",
        UTC_ZONE,
        ["2026-03-30 09:00:00", "2026-03-31 09:00:00", "2026-04-01 09:00:00"],
    ),
    (
        "cron “0 9 * * 1-5” tz America/New_York",
        UTC_ZONE,
        # 12:00 UTC is 08:00 in New York, so this Friday still runs.
        ["2026-03-27 13:00:00", "2026-03-30 13:00:00", "2026-03-31 13:00:00"],
    ),
    (
        'cron "*/15 * * * *"',
        UTC_ZONE,
        ["2026-03-27 12:15:00", "2026-03-27 12:30:00", "2026-03-27 12:45:00"],
    ),
    (
        'cron "0 12 * * *"',
        UTC_ZONE,
        ["2026-03-28 12:00:00", "2026-03-29 12:00:00", "2026-03-30 12:00:00"],
    ),
    (
        'cron "0 0 1,15 * *"',
        UTC_ZONE,
        ["2026-04-01 00:00:00", "2026-04-15 00:00:00", "2026-05-01 00:00:00"],
    ),
    # Both day fields restricted: the 13th OR a Friday, as standard cron does.
    (
        'cron "0 9 13 * 5"',
        UTC_ZONE,
        ["2026-04-03 09:00:00", "2026-04-10 09:00:00", "2026-04-13 09:00:00"],
    ),
    (
        'cron "0 9 */10 * *"',
        UTC_ZONE,
        ["2026-03-31 09:00:00", "2026-04-01 09:00:00", "2026-04-11 09:00:00"],
    ),
    # A day-of-month starting with "*" counts as unrestricted: both day fields must match.
    (
        'cron "0 9 */10 * 1"',
        UTC_ZONE,
        ["2026-05-11 09:00:00", "2026-06-01 09:00:00", "2026-08-31 09:00:00"],
    ),
    (
        'cron "0 9 * * 0"',
        UTC_ZONE,
        ["2026-03-29 09:00:00", "2026-04-05 09:00:00", "2026-04-12 09:00:00"],
    ),
    (
        'cron "0 9 * * 7"',
        UTC_ZONE,
        ["2026-03-29 09:00:00", "2026-04-05 09:00:00", "2026-04-12 09:00:00"],
    ),
    (
        'cron "0 9 * * sat-sun"',
        UTC_ZONE,
        ["2026-03-28 09:00:00", "2026-03-29 09:00:00", "2026-04-04 09:00:00"],
    ),
    (
        'cron "30 8 * jan,jul *"',
        UTC_ZONE,
        ["2026-07-01 08:30:00", "2026-07-02 08:30:00", "2026-07-03 08:30:00"],
    ),
    (
        'cron "5/20 10 * * *"',
        UTC_ZONE,
        ["2026-03-28 10:05:00", "2026-03-28 10:25:00", "2026-03-28 10:45:00"],
    ),
    (
        'cron "0 9-17/4 * * *"',
        UTC_ZONE,
        ["2026-03-27 13:00:00", "2026-03-27 17:00:00", "2026-03-28 09:00:00"],
    ),
    (
        'cron "0 9 29 2 *"',
        UTC_ZONE,
        ["2028-02-29 09:00:00", "2032-02-29 09:00:00", "2036-02-29 09:00:00"],
    ),
    # one-offs
    ("at 2026-12-01 09:00", UTC_ZONE, ["2026-12-01 09:00:00"]),
    ("at 2026-12-01 09:00", BERLIN, ["2026-12-01 08:00:00"]),
    ("at 2026-12-01T09:00 tz America/New_York", UTC_ZONE, ["2026-12-01 14:00:00"]),
    ("on 2026-12-01 at 9:30am", UTC_ZONE, ["2026-12-01 09:30:00"]),
    ("at 09:00", UTC_ZONE, ["2026-03-28 09:00:00"]),
    ("at 13:00", UTC_ZONE, ["2026-03-27 13:00:00"]),
    ("at 12:30", BERLIN, ["2026-03-28 11:30:00"]),  # 12:30 Berlin today was 11:30 UTC
    ("in 2 hours", UTC_ZONE, ["2026-03-27 14:00:00"]),
    ("in 30 minutes", BERLIN, ["2026-03-27 12:30:00"]),
    ("in 90s", UTC_ZONE, ["2026-03-27 12:01:30"]),
    ("tomorrow at 9am", UTC_ZONE, ["2026-03-28 09:00:00"]),
    ("tomorrow at 9am", NEW_YORK, ["2026-03-28 13:00:00"]),
    ("today at 6pm", UTC_ZONE, ["2026-03-27 18:00:00"]),
]


@pytest.mark.parametrize(("text", "tz", "expected"), NEXT_RUN_CASES)
def test_next_runs_from_a_fixed_now(text: str, tz: ZoneInfo, expected: list[str]) -> None:
    schedule = parse(text, tz)
    assert runs(schedule, NOW, 3) == expected
    assert all(run.tzinfo is UTC for run in schedule.next_runs(NOW, 3))


def test_short_intervals_are_allowed_down_to_the_minimum() -> None:
    schedule = parse("every 30s", min_interval=timedelta(seconds=10))
    assert runs(schedule, NOW, 2) == ["2026-03-27 12:00:30", "2026-03-27 12:01:00"]


def test_next_run_takes_any_aware_datetime_and_answers_in_utc() -> None:
    schedule = parse("every day at 9am")
    after_in_berlin = datetime(2026, 3, 27, 13, 0, tzinfo=BERLIN)  # 12:00 UTC
    assert schedule.next_run(after_in_berlin) == utc("2026-03-28 09:00")
    with pytest.raises(ValueError, match="aware"):
        schedule.next_run(datetime(2026, 3, 27, 12, 0))


# ---------------------------------------------------------------------------------------------
# Daylight saving time


@pytest.mark.parametrize(
    ("text", "tz", "after", "expected"),
    [
        # Spring forward: 02:30 does not exist on that night; run once at 03:00 local.
        (
            "every day at 2:30",
            BERLIN,
            "2026-03-28 00:00",
            ["2026-03-28 01:30:00", "2026-03-29 01:00:00", "2026-03-30 00:30:00"],
        ),
        (
            "every day at 2:30",
            NEW_YORK,
            "2026-03-07 00:00",
            ["2026-03-07 07:30:00", "2026-03-08 07:00:00", "2026-03-09 06:30:00"],
        ),
        (
            "every sunday at 2:30",
            BERLIN,
            "2026-03-22 12:00",
            ["2026-03-29 01:00:00", "2026-04-05 00:30:00"],
        ),
        # Several skipped times collapse into one run at 03:00 (and the real 03:00 is the same run).
        (
            'cron "*/30 2-3 * * *"',
            BERLIN,
            "2026-03-29 00:00",
            ["2026-03-29 01:00:00", "2026-03-29 01:30:00", "2026-03-30 00:00:00"],
        ),
        # Fall back: 02:30 happens twice; run once, at the first (summer-time) occurrence.
        (
            "every day at 2:30",
            BERLIN,
            "2026-10-24 00:00",
            ["2026-10-24 00:30:00", "2026-10-25 00:30:00", "2026-10-26 01:30:00"],
        ),
        (
            "every day at 1:30",
            NEW_YORK,
            "2026-10-31 00:00",
            ["2026-10-31 05:30:00", "2026-11-01 05:30:00", "2026-11-02 06:30:00"],
        ),
        # Right after the first occurrence, the repeat is not a second run.
        ("every day at 2:30", BERLIN, "2026-10-25 00:30", ["2026-10-26 01:30:00"]),
        ("every day at 1:30", NEW_YORK, "2026-11-01 05:30", ["2026-11-02 06:30:00"]),
        # An hourly cron runs each wall-clock hour once, so the repeated 02:00 hour is skipped.
        (
            'cron "0 * * * *"',
            BERLIN,
            "2026-10-24 23:30",
            ["2026-10-25 00:00:00", "2026-10-25 02:00:00", "2026-10-25 03:00:00"],
        ),
        # Intervals ignore the wall clock entirely.
        (
            "every hour",
            BERLIN,
            "2026-03-29 00:30",
            ["2026-03-29 01:30:00", "2026-03-29 02:30:00", "2026-03-29 03:30:00"],
        ),
    ],
)
def test_daylight_saving_transitions(
    text: str, tz: ZoneInfo, after: str, expected: list[str]
) -> None:
    assert runs(parse(text, tz, now=utc(after)), utc(after), len(expected)) == expected


@pytest.mark.parametrize(
    ("day", "at", "zone", "expected_utc", "expected_local"),
    [
        (date(2026, 3, 29), time(2, 30), BERLIN, "2026-03-29 01:00", "03:00"),
        (date(2026, 3, 29), time(2, 0), BERLIN, "2026-03-29 01:00", "03:00"),
        (date(2026, 3, 29), time(1, 59), BERLIN, "2026-03-29 00:59", "01:59"),
        (date(2026, 3, 29), time(3, 0), BERLIN, "2026-03-29 01:00", "03:00"),
        (date(2026, 3, 8), time(2, 30), NEW_YORK, "2026-03-08 07:00", "03:00"),
        (date(2026, 10, 25), time(2, 30), BERLIN, "2026-10-25 00:30", "02:30"),
        (date(2026, 11, 1), time(1, 30), NEW_YORK, "2026-11-01 05:30", "01:30"),
        (date(2026, 7, 1), time(9, 0), BERLIN, "2026-07-01 07:00", "09:00"),
    ],
)
def test_wall_clock_instant(
    day: date, at: time, zone: ZoneInfo, expected_utc: str, expected_local: str
) -> None:
    instant = wall_clock_instant(day, at, zone)
    assert instant == utc(expected_utc)
    assert f"{instant.astimezone(zone):%H:%M}" == expected_local


def test_a_one_off_inside_the_spring_gap_runs_when_the_clocks_reach_it() -> None:
    schedule = parse("at 2026-03-29 02:30 tz Europe/Berlin")
    assert schedule.next_run(NOW) == utc("2026-03-29 01:00")
    assert schedule.describe() == "once at 2026-03-29 03:00 Europe/Berlin"


@settings(max_examples=150, deadline=None)
@given(
    after=st.datetimes(
        min_value=datetime(2026, 1, 1),
        max_value=datetime(2027, 12, 31),
        timezones=st.just(UTC),
    ),
    text=st.sampled_from(
        [
            "every day at 2:30",
            "every weekday at 1:30 and 2:45",
            'cron "*/20 1-3 * * *"',
            "every month on the last day at 2:30",
        ]
    ),
    zone=st.sampled_from([BERLIN, NEW_YORK]),
)
def test_next_run_is_the_first_run_strictly_after(
    after: datetime, text: str, zone: ZoneInfo
) -> None:
    schedule = parse(text, zone, now=datetime(2026, 1, 1, tzinfo=UTC))
    run = schedule.next_run(after)
    assert run is not None and run > after
    # Nothing runs in between: asking again from just before the run finds the same run.
    assert schedule.next_run(run - timedelta(seconds=1)) == run
    assert schedule.next_run(max(after, run - timedelta(hours=3))) == run


# ---------------------------------------------------------------------------------------------
# Month ends and leap days


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        (
            "every month on the 31st at 9:00",
            "2026-01-31 10:00",
            ["2026-03-31 09:00:00", "2026-05-31 09:00:00", "2026-07-31 09:00:00"],
        ),
        (
            "every month on the 30th at 9:00",
            "2026-01-30 10:00",
            ["2026-03-30 09:00:00", "2026-04-30 09:00:00", "2026-05-30 09:00:00"],
        ),
        (
            "every month on the 29th at 9:00",
            "2026-01-30 10:00",
            ["2026-03-29 09:00:00", "2026-04-29 09:00:00", "2026-05-29 09:00:00"],
        ),
        (
            "every month on the 29th at 9:00",
            "2028-01-30 10:00",
            ["2028-02-29 09:00:00", "2028-03-29 09:00:00", "2028-04-29 09:00:00"],
        ),
        (
            "every month on the last day at 9:00",
            "2026-01-31 10:00",
            ["2026-02-28 09:00:00", "2026-03-31 09:00:00", "2026-04-30 09:00:00"],
        ),
        (
            "every month on the last day at 9:00",
            "2028-01-31 10:00",
            ["2028-02-29 09:00:00", "2028-03-31 09:00:00", "2028-04-30 09:00:00"],
        ),
        (
            'cron "0 9 31 * *"',
            "2026-01-31 10:00",
            ["2026-03-31 09:00:00", "2026-05-31 09:00:00", "2026-07-31 09:00:00"],
        ),
        ('cron "0 9 29 2 *"', "2026-03-27 12:00", ["2028-02-29 09:00:00"]),
        # 2100 is not a leap year: the gap is eight years.
        ('cron "0 9 29 2 *"', "2096-03-01 00:00", ["2104-02-29 09:00:00"]),
    ],
)
def test_month_ends_and_leap_days(text: str, after: str, expected: list[str]) -> None:
    schedule = parse(text, now=utc(after))
    assert runs(schedule, utc(after), len(expected)) == expected


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("text", "part", "example"),
    [
        ("", "", "every 5 minutes"),
        ("whenever", "whenever", "every 5 minutes"),
        ("every", "every", "every 5 minutes"),
        ("every fortnight", "every fortnight", "every 2 weeks"),
        ("every fortnight at 9am", "every fortnight", "every 2 weeks"),
        ("every 30s", "every 30s", "every 1 minute"),
        ("every 0m", "every 0m", "every 1 minute"),
        ("every 2 days at 9am", "at 9am", "every day at 9am"),
        ("every monday", "every monday", "every monday at 9:00"),
        ("every monday 10:00", "10:00", "every monday at 9:00"),
        ("every day at", "every day at", "every day at 9:00"),
        ("every day at 25:00", "25:00", "every day at 9:30"),
        ("every day at 13pm", "13pm", "every day at 9:30"),
        ("every day at 0am", "0am", "every day at 9:30"),
        ("every day at 9:60", "9:60", "every day at 9:30"),
        ("every mon, wed at 9:00 and lunch", "lunch", "every mon, wed at 9:30"),
        ("every day at 9am tz Mars/Olympus", "Mars/Olympus", "every day at 9am tz Europe/Berlin"),
        (
            "every day at 9am tz ../../etc/passwd",
            "../../etc/passwd",
            "every day at 9am tz Europe/Berlin",
        ),
        ("every day at 9am tz", "tz", "every day at 9am tz Europe/Berlin"),
        (
            "tz UTC every day at 9am tz Europe/Berlin",
            "tz Europe/Berlin",
            "every day at 9am tz Europe/Berlin",
        ),
        (
            "every day tz UTC at 9am tz Europe/Berlin daily",
            "tz Europe/Berlin",
            "every day at 9am tz Europe/Berlin",
        ),
        ("tz Europe/Berlin", "tz Europe/Berlin", "every 5 minutes"),
        ("every month", "every month", "every month on the 1st at 9am"),
        ("every month on the 32nd at 9am", "32nd", "every month on the 1st at 9am"),
        ("every month on the first at 9am", "first", "every month on the 1st at 9am"),
        ("every month on the 1st", "every month on the 1st", "every month on the 1st at 9:00"),
        ("cron", "cron", 'cron "0 9 * * 1-5"'),
        ('cron "61 9 * * *"', "61", 'cron "0 9 * * 1-5"'),
        ('cron "0 24 * * *"', "24", 'cron "0 9 * * 1-5"'),
        ('cron "0 9 0 * *"', "0", 'cron "0 9 * * 1-5"'),
        ('cron "0 9 * 13 *"', "13", 'cron "0 9 * * 1-5"'),
        ('cron "0 9 * * 8"', "8", 'cron "0 9 * * 1-5"'),
        ('cron "0 9 * * mon-fry"', "mon-fry", 'cron "0 9 * * 1-5"'),
        ('cron "0 9 * * fri-mon"', "fri-mon", 'cron "0 9 * * 1-5"'),
        ('cron "*/0 * * * *"', "*/0", 'cron "0 9 * * 1-5"'),
        ('cron "1,,2 * * * *"', "1,,2", 'cron "0 9 * * 1-5"'),
        ('cron "0 9 * *"', "0 9 * *", 'cron "0 9 * * 1-5"'),
        ('cron "0 9 * * * *"', "0 9 * * * *", 'cron "0 9 * * 1-5"'),
        ('cron "0 9 * * 1-5', '"0 9 * * 1-5', 'cron "0 9 * * 1-5"'),
        ('cron "0 9 31 2 *"', 'cron "0 9 31 2 *"', 'cron "0 9 * * 1-5"'),
        ("at", "at", "at 2026-12-01 09:00"),
        ("at noonish", "noonish", "at 2026-12-01 09:30"),
        ("at 9:00 and 10:00", "9:00 and 10:00", "at 2026-12-01 09:00"),
        ("at 2026-02-30 09:00", "2026-02-30", "at 2026-12-01 09:00"),
        ("at 2026-12-01", "at 2026-12-01", "at 2026-12-01 09:00"),
        ("at 2020-01-01 09:00", "at 2020-01-01 09:00", "in 2 hours"),
        ("today at 9am", "today at 9am", "in 2 hours"),
        ("on tuesday at 9", "on tuesday", "on 2026-12-01 at 9:00"),
        ("on 2026-12-01", "on 2026-12-01", "on 2026-12-01 at 9:00"),
        ("in", "in", "in 2 hours"),
        ("in a while", "in a while", "in 2 hours"),
        ("in 0 minutes", "in 0 minutes", "in 2 hours"),
        ("tomorrow", "tomorrow", "tomorrow at 9am"),
        ("Tomorrow 9am", "Tomorrow 9am", "tomorrow at 9am"),
    ],
)
def test_errors_name_the_part_and_give_a_working_example(
    text: str, part: str, example: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(text)
    assert caught.value.part == part
    assert caught.value.example == example
    assert part in str(caught.value)
    assert isinstance(caught.value, ValueError)
    parse(example)  # the example itself works


def test_the_not_understood_message_reads_naturally() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse("every fortnight")
    assert str(caught.value) == (
        'I couldn\'t understand "every fortnight": try "every 2 weeks" or "every monday at 10:00"'
    )


@pytest.mark.parametrize(
    ("text", "minimum", "part", "message"),
    [
        ("every 30s", MINUTE, "every 30s", "the shortest interval is 1 minute"),
        (
            "every 2 minutes",
            timedelta(minutes=5),
            "every 2 minutes",
            "the shortest interval is 5 minutes",
        ),
        (
            'cron "* * * * *"',
            timedelta(minutes=5),
            'cron "* * * * *"',
            "the shortest interval is 5 minutes",
        ),
        (
            "every day at 9:00 and 9:01",
            timedelta(minutes=5),
            "every day at 9:00 and 9:01",
            "runs too often",
        ),
        (
            "every day at 23:58 and 0:01",
            timedelta(minutes=5),
            "every day at 23:58 and 0:01",
            "runs too often",
        ),
    ],
)
def test_schedules_shorter_than_the_minimum_are_refused(
    text: str, minimum: timedelta, part: str, message: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(text, min_interval=minimum)
    assert caught.value.part == part
    assert message in str(caught.value)
    assert caught.value.example == f"every {describe_span(minimum)}"


def test_a_cron_refusal_quotes_without_nesting_quotes() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse('cron "0 9 31 2 *"')
    assert str(caught.value) == '`cron "0 9 31 2 *"` never runs: try `cron "0 9 * * 1-5"`'


# ---------------------------------------------------------------------------------------------
# describe()


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("every 5 minutes", UTC_ZONE, "every 5 minutes"),
        ("every minute", UTC_ZONE, "every minute"),
        ("every 60s", UTC_ZONE, "every minute"),
        ("every 90s", UTC_ZONE, "every 90 seconds"),
        ("every 90 minutes", UTC_ZONE, "every 90 minutes"),
        ("every 2h", UTC_ZONE, "every 2 hours"),
        ("every 1d", UTC_ZONE, "every day"),
        ("every 7d", UTC_ZONE, "every week"),
        ("every 2 weeks", UTC_ZONE, "every 2 weeks"),
        ("every weekday at 9:30", BERLIN, "every weekday at 09:30 Europe/Berlin"),
        ("every day at 9:30 tz Europe/Berlin", UTC_ZONE, "every day at 09:30 Europe/Berlin"),
        ("every weekend at 10am", UTC_ZONE, "every weekend at 10:00 UTC"),
        ("every sunday at noon", UTC_ZONE, "every sunday at 12:00 UTC"),
        ("every sat, sun at 10am", UTC_ZONE, "every weekend at 10:00 UTC"),
        ("every mon,wed,fri at 8am", UTC_ZONE, "every mon, wed, fri at 08:00 UTC"),
        ("every fri and mon at 8am", UTC_ZONE, "every mon, fri at 08:00 UTC"),
        ("every mon-fri at 8am", UTC_ZONE, "every weekday at 08:00 UTC"),
        ("every day at 17:00 and 9:00", UTC_ZONE, "every day at 09:00 and 17:00 UTC"),
        ("every day at 9am, 1pm and 5pm", UTC_ZONE, "every day at 09:00, 13:00 and 17:00 UTC"),
        (
            "every month on the 1st at 9am tz America/New_York",
            UTC_ZONE,
            "every month on the 1st at 09:00 America/New_York",
        ),
        ("every month on the 22nd at 9am", UTC_ZONE, "every month on the 22nd at 09:00 UTC"),
        (
            "every month on the last day at 18:00",
            UTC_ZONE,
            "every month on the last day at 18:00 UTC",
        ),
        (
            "every month on the 31st at 9am",
            UTC_ZONE,
            "every month on the 31st at 09:00 UTC, skipping months without a 31st",
        ),
        ('cron "0 9 * * 1-5"', UTC_ZONE, 'cron "0 9 * * 1-5" UTC'),
        ('cron "0  9 * *   1-5"', BERLIN, 'cron "0 9 * * 1-5" Europe/Berlin'),
        (
            "at 2026-12-01 09:00 tz Europe/Berlin",
            UTC_ZONE,
            "once at 2026-12-01 09:00 Europe/Berlin",
        ),
        ("in 2 hours", BERLIN, "once at 2026-03-27 15:00 Europe/Berlin"),
    ],
)
def test_describe(text: str, tz: ZoneInfo, expected: str) -> None:
    assert parse(text, tz).describe() == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (1, "1st"),
        (2, "2nd"),
        (3, "3rd"),
        (4, "4th"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (21, "21st"),
        (22, "22nd"),
        (23, "23rd"),
        (31, "31st"),
    ],
)
def test_ordinal(number: int, expected: str) -> None:
    assert ordinal(number) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9am", time(9)),
        ("9:30am", time(9, 30)),
        ("9.30", time(9, 30)),
        ("17:30", time(17, 30)),
        ("09:05", time(9, 5)),
        ("9", time(9)),
        ("12am", time(0)),
        ("12pm", time(12)),
        ("11:59 p.m.", None),  # the space is joined away by the parser, not here
        ("11:59p.m.", time(23, 59)),
        ("noon", time(12)),
        ("Midnight", time(0)),
        ("24:00", None),
        ("13pm", None),
        ("9:7", None),
        ("nine", None),
    ],
)
def test_parse_clock(text: str, expected: time | None) -> None:
    assert parse_clock(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("2w", timedelta(weeks=2)),
        ("500ms", timedelta(milliseconds=500)),
        ("5 minutes", timedelta(minutes=5)),
        ("1 Hour", timedelta(hours=1)),
        ("5", None),
        ("5 parsecs", None),
        ("m5", None),
        ("1.5h", None),
    ],
)
def test_parse_duration_or_none(text: str, expected: timedelta | None) -> None:
    assert parse_duration_or_none(text) == expected


# ---------------------------------------------------------------------------------------------
# Storage, properties


ROUND_TRIP_TEXTS = [
    "every 5 minutes",
    "every 90s",
    "every weekday at 9:30 tz Europe/Berlin",
    "every mon, wed and fri at 8am and 5pm",
    "every month on the 1st at 9am tz America/New_York",
    "every month on the last day at midnight",
    'cron "0 9 * * 1-5"',
    'cron "*/15 9-17 1,15 jan-jun mon-fri" tz Europe/Berlin',
    "at 2026-12-01 09:00 tz Europe/Berlin",
    "in 2 hours",
]


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_to_dict_round_trips_through_json(text: str) -> None:
    schedule = parse(text)
    stored = json.loads(json.dumps(schedule.to_dict()))
    restored = schedule_from_dict(stored)
    assert restored == schedule
    assert restored.to_dict() == schedule.to_dict()
    assert restored.next_runs(NOW, 5) == schedule.next_runs(NOW, 5)
    assert restored.describe() == schedule.describe()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("every 5 minutes", {"kind": "interval", "tz": "UTC", "seconds": 300}),
        (
            "every weekday at 9:30 tz Europe/Berlin",
            {
                "kind": "weekly",
                "tz": "Europe/Berlin",
                "days": ["mon", "tue", "wed", "thu", "fri"],
                "times": ["09:30"],
            },
        ),
        (
            "every month on the last day at 9am and 6pm",
            {"kind": "monthly", "tz": "UTC", "day": "last", "times": ["09:00", "18:00"]},
        ),
        (
            "every month on the 15th at 9am",
            {"kind": "monthly", "tz": "UTC", "day": 15, "times": ["09:00"]},
        ),
        (
            'cron "0 9 * * 1-5" tz America/New_York',
            {"kind": "cron", "tz": "America/New_York", "expression": "0 9 * * 1-5"},
        ),
        (
            "at 2026-12-01 09:00 tz Europe/Berlin",
            {"kind": "once", "tz": "Europe/Berlin", "at": "2026-12-01T08:00:00+00:00"},
        ),
    ],
)
def test_to_dict_shape(text: str, expected: dict[str, object]) -> None:
    assert parse(text).to_dict() == expected


def test_sub_second_intervals_round_trip_too() -> None:
    schedule = IntervalSchedule(tz_name="UTC", every=timedelta(milliseconds=1500))
    assert schedule.to_dict() == {"kind": "interval", "tz": "UTC", "seconds": 1.5}
    assert schedule_from_dict(schedule.to_dict()) == schedule


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"kind": "hourly", "tz": "UTC"},
        {"kind": "interval"},
        {"kind": "interval", "tz": "Mars/Olympus", "seconds": 60},
        {"kind": "interval", "tz": "UTC", "seconds": "60"},
        {"kind": "interval", "tz": "UTC", "seconds": True},
        {"kind": "interval", "tz": "UTC", "seconds": 0},
        {"kind": "weekly", "tz": "UTC", "days": ["someday"], "times": ["09:00"]},
        {"kind": "weekly", "tz": "UTC", "days": [], "times": ["09:00"]},
        {"kind": "weekly", "tz": "UTC", "days": ["fri", "mon"], "times": ["09:00"]},
        {"kind": "weekly", "tz": "UTC", "days": "mon", "times": ["09:00"]},
        {"kind": "monthly", "tz": "UTC", "day": 32, "times": ["09:00"]},
        {"kind": "monthly", "tz": "UTC", "day": "first", "times": ["09:00"]},
        {"kind": "monthly", "tz": "UTC", "day": 1, "times": ["25:00"]},
        {"kind": "cron", "tz": "UTC", "expression": "61 * * * *"},
        {"kind": "cron", "tz": "UTC", "expression": 5},
        {"kind": "once", "tz": "UTC", "at": "2026-12-01T09:00:00"},
        {"kind": "once", "tz": "UTC", "at": "tomorrow"},
    ],
)
def test_schedule_from_dict_refuses_malformed_data(data: dict[str, object]) -> None:
    with pytest.raises(ScheduleError):
        schedule_from_dict(data)


def test_properties() -> None:
    weekly = parse("every weekday at 9:30 tz Europe/Berlin")
    once = parse("in 2 hours", NEW_YORK)
    assert isinstance(weekly, WeeklySchedule)
    assert weekly.tz == BERLIN
    assert not weekly.is_one_shot
    assert isinstance(once, OnceSchedule)
    assert once.is_one_shot
    assert once.tz == NEW_YORK
    assert once.next_run(once.at) is None
    assert once.next_runs(NOW, 5) == [utc("2026-03-27 14:00")]
    assert isinstance(parse("every 5m"), IntervalSchedule)
    assert isinstance(parse('cron "0 9 * * *"'), CronSchedule)
    monthly = parse("every month on the last day at 9am")
    assert isinstance(monthly, MonthlySchedule)
    assert monthly.day == LAST_DAY


def test_zone_names_are_matched_case_insensitively_and_stored_canonically() -> None:
    assert parse("every day at 9am tz europe/berlin").tz_name == "Europe/Berlin"
    assert parse("every day at 9am TZ utc").tz_name == "UTC"


def test_the_default_zone_must_have_a_name() -> None:
    # The tzdata package (a dependency) ships the zone file, so this works without system data.
    with resources.files("tzdata.zoneinfo").joinpath("UTC").open("rb") as file:
        nameless = ZoneInfo.from_file(file)
    with pytest.raises(ValueError, match="IANA"):
        parse("every day at 9am", nameless)


# ---------------------------------------------------------------------------------------------
# A weekday of the month: "every month on the first monday", "… on the last friday"


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        # March 2026 starts on a Sunday: its first Monday is the 2nd, April's the 6th.
        (
            "every month on the first monday at 9:00",
            "2026-03-01 00:00",
            ["2026-03-02 09:00:00", "2026-04-06 09:00:00", "2026-05-04 09:00:00"],
        ),
        # Exactly at a run: the next one is a month later.
        (
            "every month on the first monday at 9:00",
            "2026-03-02 09:00",
            ["2026-04-06 09:00:00", "2026-05-04 09:00:00", "2026-06-01 09:00:00"],
        ),
        (
            "every month on the 2nd tuesday at 10:00",
            "2026-03-01 00:00",
            ["2026-03-10 10:00:00", "2026-04-14 10:00:00", "2026-05-12 10:00:00"],
        ),
        # The last Friday: the 27th in March 2026, the 24th in April, the 29th in May.
        (
            "every month on the last friday at 17:00",
            "2026-03-01 00:00",
            ["2026-03-27 17:00:00", "2026-04-24 17:00:00", "2026-05-29 17:00:00"],
        ),
        (
            "every month on the fourth sunday at 8:00",
            "2026-02-01 00:00",
            ["2026-02-22 08:00:00", "2026-03-22 08:00:00", "2026-04-26 08:00:00"],
        ),
    ],
)
def test_a_weekday_of_the_month(text: str, after: str, expected: list[str]) -> None:
    schedule = parse(text, now=utc(after))

    assert runs(schedule, utc(after)) == expected
    assert schedule_from_dict(json.loads(json.dumps(schedule.to_dict()))) == schedule


def test_a_weekday_of_the_month_describes_itself_and_keeps_its_shape() -> None:
    schedule = parse("every month on the last friday at 17:00", BERLIN)

    assert schedule.describe() == "every month on the last friday at 17:00 Europe/Berlin"
    assert schedule.to_dict() == {
        "kind": "monthly",
        "tz": "Europe/Berlin",
        "day": "last",
        "times": ["17:00"],
        "weekday": "fri",
    }
    # A day of the month keeps the shape it always had.
    assert "weekday" not in parse("every month on the 1st at 9:00").to_dict()


def test_a_fifth_weekday_is_refused() -> None:
    with pytest.raises(ScheduleError):
        parse("every month on the fifth monday at 9:00")
