"""The ``/trigger add`` grammar, fed the Slack-escaped text a real slash command carries."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote_plus
from zoneinfo import ZoneInfo

import pytest

from bot.triggers.grammar import (
    KINDS,
    TriggerKind,
    TriggerSpec,
    TriggerSyntaxError,
    example_command,
    parse_duration,
    parse_trigger_add,
)
from bot.triggers.schedule import CronSchedule, IntervalSchedule, OnceSchedule, WeeklySchedule

UTC_ZONE = ZoneInfo("UTC")
NOW = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
SLACK_FIXTURES = Path(__file__).parent / "fixtures" / "slack"


def add(text: str, *, min_interval: timedelta = timedelta(minutes=1)) -> TriggerSpec:
    return parse_trigger_add(text, default_tz=UTC_ZONE, now=NOW, min_interval=min_interval)


def text_after_add(escaped_command_text: str) -> str:
    """Send ``/trigger <text>`` through the real enterprise body's form encoding and back."""
    body = (SLACK_FIXTURES / "slash_command.enterprise.txt").read_text().strip()
    body = body.replace("&text=&", f"&text={quote_plus(escaped_command_text)}&")
    text = parse_qs(body, keep_blank_values=True)["text"][0]
    verb, _, rest = text.partition(" ")
    assert verb == "add"
    return rest


# ---------------------------------------------------------------------------------------------
# Happy paths, one or more per kind


def test_http_with_slack_escaped_url_condition_channel_and_options() -> None:
    spec = add(
        text_after_add(
            "add Site every 5m http <https://example.com/health?a=1&amp;b=2|example.com/health> "
            "when latency &gt; 500ms <#C123ABC|ops> retries=3 recover=2 timeout=5s"
        )
    )
    assert spec == TriggerSpec(
        name="site",
        schedule=IntervalSchedule(tz_name="UTC", every=timedelta(minutes=5)),
        kind="http",
        target="https://example.com/health?a=1&b=2",
        condition="latency > 500ms",
        channel="C123ABC",
        options={"retries": "3", "recover": "2", "timeout": "5s"},
    )


def test_http_plain_url_and_nothing_else() -> None:
    spec = add("site every 5m http https://example.com")
    assert (spec.kind, spec.target, spec.condition, spec.channel, spec.options) == (
        "http",
        "https://example.com",
        None,
        None,
        {},
    )


def test_http_cert_condition_and_typed_channel() -> None:
    spec = add("cert every day at 8am http <https://example.com> when cert expires &lt; 14d #ops")
    assert spec.schedule == WeeklySchedule(
        tz_name="UTC", days=(0, 1, 2, 3, 4, 5, 6), times=(time(8),)
    )
    assert spec.condition == "cert expires < 14d"
    assert spec.channel == "#ops"


def test_http_body_contains_with_curly_quotes_becomes_straight_quotes() -> None:
    spec = add("maint every 10m http https://example.com when body contains “maintenance”")
    assert spec.condition == 'body contains "maintenance"'


def test_channel_and_options_may_also_come_before_when() -> None:
    spec = add("site every 5m http https://example.com #ops max=3 when status != 200 repeat=30m")
    assert spec.channel == "#ops"
    assert spec.options == {"max": "3", "repeat": "30m"}
    assert spec.condition == "status != 200"


def test_rss_with_escaped_feed_url() -> None:
    spec = add("blog every 30m rss <https://x.example/feed> latest=1 <#C0G9QF9GW|news>")
    assert (spec.kind, spec.target, spec.condition) == ("rss", "https://x.example/feed", None)
    assert spec.options == {"latest": "1"}
    assert spec.channel == "C0G9QF9GW"


def test_json_with_condition() -> None:
    spec = add(
        "status every 5 minutes json <https://status.example.com/api/v2/status.json> "
        "when json.status.indicator != “none” #ops"
    )
    assert spec.kind == "json"
    assert spec.target == "https://status.example.com/api/v2/status.json"
    assert spec.condition == 'json.status.indicator != "none"'


def test_json_queue_depth_with_timeout_and_repeat() -> None:
    spec = add("queue every 1m json https://x.example/q when data.queue.depth &gt; 100 repeat=30m")
    assert spec.condition == "data.queue.depth > 100"
    assert spec.options == {"repeat": "30m"}


def test_message_quoted_with_zone_in_the_schedule() -> None:
    spec = add(
        "standup every weekday at 9:30 tz Europe/Berlin message "
        "“Standup in 5 minutes, <!here>” <#C1|team>"
    )
    assert spec.schedule.describe() == "every weekday at 09:30 Europe/Berlin"
    assert spec.kind == "message"
    assert spec.target == "Standup in 5 minutes, <!here>"
    assert spec.channel == "C1"
    assert spec.condition is None


def test_message_unquoted_takes_the_rest_up_to_channel_and_options() -> None:
    spec = add(
        "deploy tomorrow at 9am message Deploy when ready &amp; ping <@U123>  now #team max=3"
    )
    assert isinstance(spec.schedule, OnceSchedule)
    assert spec.target == "Deploy when ready & ping <@U123>  now"
    assert spec.channel == "#team"
    assert spec.options == {"max": "3"}


def test_report_takes_only_channel_and_options() -> None:
    spec = add("weekly every monday at 9am report #ops")
    assert (spec.kind, spec.target, spec.condition) == ("report", None, None)
    assert spec.channel == "#ops"


def test_cron_schedule_quoted_in_the_command() -> None:
    spec = add('nightly cron "0 2 * * *" tz America/New_York http https://example.com')
    assert spec.schedule == CronSchedule(tz_name="America/New_York", expression="0 2 * * *")


def test_kind_keywords_are_case_insensitive_and_names_lower_cased() -> None:
    spec = add("My-Check_2 every 5m HTTP https://example.com")
    assert (spec.name, spec.kind) == ("my-check_2", "http")


@pytest.mark.parametrize("kind", KINDS)
def test_every_example_command_parses(kind: TriggerKind) -> None:
    example = example_command(kind)
    spec = add(example.removeprefix("/trigger add "))
    assert spec.kind == kind


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("text", "part", "message", "example_kind"),
    [
        ("", "", "I need a name first", "http"),
        ("Site! every 5m http https://x.example", "Site!", "can't be a name", "http"),
        ("a" * 41 + " every 5m http https://x.example", "a" * 41, "can't be a name", "http"),
        (
            "site every 5m",
            "every 5m",
            "I couldn't find what to check: expected http, rss, json, csv, message, report or email "
            "after the schedule",
            "http",
        ),
        ("site", "", "I couldn't find what to check", "http"),
        (
            "site http https://x.example",
            "http",
            "I need a schedule between the name and http",
            "http",
        ),
        ("site every 5m http", "http", "http needs a URL to check", "http"),
        ("site every 5m http example.com", "example.com", "starting with https://", "http"),
        (
            "site every 5m http file:///etc/passwd",
            "file:///etc/passwd",
            "only http and https",
            "http",
        ),
        (
            "site every 5m rss <ftp://x.example/feed|x.example/feed>",
            "<ftp://x.example/feed|x.example/feed>",
            "only http and https",
            "rss",
        ),
        (
            "site every 5m csv https://x.example when x > 1",
            "x > 1",
            "csv trigger takes no condition",
            "csv",
        ),
        ("site every 5m http https://x.example when", "when", "when needs a condition", "http"),
        (
            "site every 5m http https://x.example when #ops",
            "when",
            "when needs a condition",
            "http",
        ),
        (
            "site every 5m http https://x.example extra",
            "extra",
            "expected #channel or key=value",
            "http",
        ),
        (
            'site every 5m http https://x.example "retries=3"',
            "retries=3",
            "expected #channel",
            "http",
        ),
        ("site every 5m http https://x.example #a <#C1|b>", "<#C1|b>", "only one channel", "http"),
        (
            "site every 5m http https://x.example foo=bar",
            "foo=bar",
            'I don\'t know the option "foo"',
            "http",
        ),
        (
            "site every 5m http https://x.example retries=0",
            "retries=0",
            "retries must be a whole number",
            "http",
        ),
        (
            "site every 5m http https://x.example recover=two",
            "recover=two",
            "recover must be",
            "http",
        ),
        ("site every 5m http https://x.example max=-1", "max=-1", "max must be", "http"),
        (
            "site every 5m http https://x.example repeat=30s",
            "repeat=30s",
            "at least 1 minute",
            "http",
        ),
        (
            "site every 5m http https://x.example repeat=soon",
            "repeat=soon",
            "at least 1 minute",
            "http",
        ),
        (
            "site every 5m http https://x.example timeout=90s",
            "timeout=90s",
            "between 1s and 60s",
            "http",
        ),
        (
            "site every 5m http https://x.example timeout=500ms",
            "timeout=500ms",
            "between 1s and 60s",
            "http",
        ),
        (
            "site every 5m rss https://x.example latest=2",
            "latest=2",
            "latest must be 0 or 1",
            "rss",
        ),
        (
            "site every 5m http https://x.example retries=2 Retries=3",
            "Retries=3",
            "retries is given twice",
            "http",
        ),
        ("site every 5m message", "message", "message needs the text to post", "message"),
        ("site every 5m message #ops", "message", "message needs the text to post", "message"),
        ('site every 5m message "" #ops', "message", "message needs the text to post", "message"),
        ('site every 5m message "hi" there', "there", "expected #channel", "message"),
        (
            "weekly every monday at 9am report https://x.example",
            "https://x.example",
            "a report takes no target",
            "report",
        ),
        ("weekly every monday at 9am report when x", "when", "a report takes no target", "report"),
        ('site every 5m message "never closed', '"never closed', "is never closed", "http"),
    ],
)
def test_errors_name_the_part(
    text: str, part: str, message: str, example_kind: TriggerKind
) -> None:
    with pytest.raises(TriggerSyntaxError) as caught:
        add(text)
    error = caught.value
    assert error.part == part
    assert message in str(error)
    assert error.example == example_command(example_kind)
    assert str(error).endswith(f". Example: {error.example}")
    add(error.example.removeprefix("/trigger add "))  # the example works


def test_the_missing_kind_message_matches_the_documented_wording() -> None:
    with pytest.raises(TriggerSyntaxError) as caught:
        add("site every 5m")
    assert str(caught.value) == (
        "I couldn't find what to check: expected http, rss, json, csv, message, report or email after the "
        "schedule. Example: /trigger add site every 5m http https://example.com"
    )


@pytest.mark.parametrize(
    ("text", "part", "example"),
    [
        (
            "site every fortnight http https://x.example",
            "every fortnight",
            "/trigger add site every 2 weeks http https://example.com",
        ),
        (
            "site every 10s http https://x.example",
            "every 10s",
            "/trigger add site every 1 minute http https://example.com",
        ),
        (
            "site every day at 9am tz Mars/Olympus rss https://x.example/feed",
            "Mars/Olympus",
            "/trigger add blog every day at 9am tz Europe/Berlin rss https://example.com/feed.xml #news",
        ),
        (
            'nightly cron "0 25 * * *" report #ops',
            "25",
            '/trigger add weekly cron "0 9 * * 1-5" report #ops',
        ),
    ],
)
def test_schedule_errors_keep_the_schedule_part_and_offer_a_whole_command(
    text: str, part: str, example: str
) -> None:
    with pytest.raises(TriggerSyntaxError) as caught:
        add(text)
    assert caught.value.part == part
    assert caught.value.example == example
    add(example.removeprefix("/trigger add "))


def test_the_minimum_interval_comes_from_the_caller() -> None:
    with pytest.raises(TriggerSyntaxError) as caught:
        add("site every 2m http https://x.example", min_interval=timedelta(minutes=5))
    assert "the shortest interval is 5 minutes" in str(caught.value)
    assert add("site every 2m http https://x.example").schedule == IntervalSchedule(
        tz_name="UTC", every=timedelta(minutes=2)
    )


# ---------------------------------------------------------------------------------------------
# parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("500ms", timedelta(milliseconds=500)),
        ("5 minutes", timedelta(minutes=5)),
        ("14d", timedelta(days=14)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "soon", "5 parsecs", "-5m", "1.5h"])
def test_parse_duration_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(TriggerSyntaxError) as caught:
        parse_duration(text)
    assert caught.value.part == text
    assert caught.value.example == "5m"
