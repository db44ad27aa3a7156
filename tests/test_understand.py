"""Plain-language requests → exactly the spec the equivalent ``/trigger add`` or
``/hook create`` command would give.

Messages are fed as Slack delivers them in ``message.im`` events (the real fixture's event,
with its ``text`` replaced): links as ``<https://...>`` or ``<https://...|label>``,
channels as ``<#C0123|ops>``, and a literal ``&``, ``<`` or ``>`` as ``&amp;``, ``&lt;``,
``&gt;``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.conversation.questions import Question
from bot.conversation.understand import (
    HookProposal,
    NotUnderstood,
    Proposal,
    TriggerProposal,
    understand,
)
from bot.slack.text import ChannelRef, unescape
from bot.triggers.conditions import compile_condition
from bot.triggers.grammar import parse_trigger_add
from bot.triggers.spec import TriggerSpec
from bot.webhooks.spec import PRESETS, HookSpec

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # 11:00 in Berlin
BERLIN = ZoneInfo("Europe/Berlin")
MIN_INTERVAL = timedelta(seconds=60)
SLACK_FIXTURES = Path(__file__).parent / "fixtures" / "slack"
ASKER = "U2147483697"  # the user in the message.im fixture

STRAIGHT = str.maketrans({"“": '"', "”": '"', "’": "'"})
OPS = ChannelRef("C0123", "ops")
TEAM = ChannelRef("C0TEAM", "team")


def im_event(text: str) -> dict[str, Any]:
    """The real ``message.im`` event with the user's words in it."""
    payload = json.loads((SLACK_FIXTURES / "message.im.json").read_text())
    payload["event"]["text"] = text
    event: dict[str, Any] = payload["event"]
    return event


def ask(text: str, *, min_interval: timedelta = MIN_INTERVAL) -> Proposal | NotUnderstood:
    event = im_event(text)
    return understand(
        event["text"], default_tz=BERLIN, now=NOW, min_interval=min_interval, user_id=event["user"]
    )


def parsed(text: str) -> TriggerSpec:
    """What typing ``/trigger {text}`` would give."""
    assert text.startswith("add ")
    return parse_trigger_add(
        text.removeprefix("add "), default_tz=BERLIN, now=NOW, min_interval=MIN_INTERVAL
    )


@dataclass(frozen=True)
class Trigger:
    """An accepted request: the command that means the same, and what it reads as."""

    said: str
    text: str
    kind: str
    target: str | None
    channel: ChannelRef | None
    schedule: str


TRIGGERS = [
    # http checks
    Trigger(
        "check https://status.example.com every 5 minutes and tell #ops if it's down",
        "add status-example-com every 5 minutes http https://status.example.com #ops",
        "http",
        "https://status.example.com",
        ChannelRef(None, "ops"),
        "every 5 minutes",
    ),
    Trigger(
        "<@U0BOT> please check <https://status.example.com|status.example.com> every 5 min "
        "and tell <#C0123|ops> if it’s down, thanks!",
        "add status-example-com every 5 min http https://status.example.com <#C0123|ops>",
        "http",
        "https://status.example.com",
        OPS,
        "every 5 minutes",
    ),
    Trigger(
        "can you check <https://status.example.com> every 10 minutes and alert <#C0123|ops> "
        "if it's slow",
        "add status-example-com every 10 minutes http https://status.example.com "
        "when latency &gt; 2000ms <#C0123|ops>",
        "http",
        "https://status.example.com",
        OPS,
        "every 10 minutes",
    ),
    Trigger(
        "monitor https://shop.example.com every 2 minutes and tell #ops if it takes more than 2s",
        "add shop-example-com every 2 minutes http https://shop.example.com "
        "when latency &gt; 2000ms #ops",
        "http",
        "https://shop.example.com",
        ChannelRef(None, "ops"),
        "every 2 minutes",
    ),
    Trigger(
        "watch https://shop.example.com every 2 minutes and tell #ops if it takes longer than "
        "500ms",
        "add shop-example-com every 2 minutes http https://shop.example.com "
        "when latency &gt; 500ms #ops",
        "http",
        "https://shop.example.com",
        ChannelRef(None, "ops"),
        "every 2 minutes",
    ),
    Trigger(
        "check https://status.example.com every hour and let #ops know if the page says "
        "maintenance",
        'add status-example-com every hour http https://status.example.com when body contains "maintenance" #ops',
        "http",
        "https://status.example.com",
        ChannelRef(None, "ops"),
        "every hour",
    ),
    Trigger(
        "watch https://www.example.com every 30 minutes, tell #web if it contains “out of stock”",
        'add www-example-com every 30 minutes http https://www.example.com when body contains "out of stock" #web',
        "http",
        "https://www.example.com",
        ChannelRef(None, "web"),
        "every 30 minutes",
    ),
    Trigger(
        "check https://status.example.com every 5 minutes and tell #ops if it doesn't say "
        '"All systems operational"',
        "add status-example-com every 5 minutes http https://status.example.com "
        'when body not contains "All systems operational" #ops',
        "http",
        "https://status.example.com",
        ChannelRef(None, "ops"),
        "every 5 minutes",
    ),
    Trigger(
        "check https://example.com every day at 8am and tell #sec if the certificate expires "
        "within 14 days",
        "add example-com every day at 8am http https://example.com when cert expires &lt; 14d #sec",
        "http",
        "https://example.com",
        ChannelRef(None, "sec"),
        "every day at 08:00 Europe/Berlin",
    ),
    Trigger(
        "check https://example.com every day at 8am if the ssl cert expires in 2 weeks tell #sec",
        "add example-com every day at 8am http https://example.com when cert expires &lt; 14d #sec",
        "http",
        "https://example.com",
        ChannelRef(None, "sec"),
        "every day at 08:00 Europe/Berlin",
    ),
    Trigger(
        "hey, could you ping https://api.example.com/health each minute into #ops",
        "add api-example-com every minute http https://api.example.com/health #ops",
        "http",
        "https://api.example.com/health",
        ChannelRef(None, "ops"),
        "every minute",
    ),
    Trigger(
        "at 9:30 every weekday check https://status.example.com and tell #ops if it's down",
        "add status-example-com every weekday at 9:30 http https://status.example.com #ops",
        "http",
        "https://status.example.com",
        ChannelRef(None, "ops"),
        "every weekday at 09:30 Europe/Berlin",
    ),
    Trigger(
        "check https://status.example.com hourly and tell #ops if it's down.",
        "add status-example-com every hour http https://status.example.com #ops",
        "http",
        "https://status.example.com",
        ChannelRef(None, "ops"),
        "every hour",
    ),
    Trigger(
        "check <http://status.example.com|status.example.com> every 5 minutes",
        "add status-example-com every 5 minutes http http://status.example.com",
        "http",
        "http://status.example.com",
        None,
        "every 5 minutes",
    ),
    Trigger(
        "check <https://api.example.com/a?x=1&amp;y=2> every 5 minutes",
        "add api-example-com every 5 minutes http https://api.example.com/a?x=1&amp;y=2",
        "http",
        "https://api.example.com/a?x=1&y=2",
        None,
        "every 5 minutes",
    ),
    Trigger(
        "check https://example.com/feedback every 5 minutes",
        "add example-com every 5 minutes http https://example.com/feedback",
        "http",
        "https://example.com/feedback",
        None,
        "every 5 minutes",
    ),
    Trigger(
        "check https://status.example.com every 5 minutes and tell #ops when status != 200",
        "add status-example-com every 5 minutes http https://status.example.com "
        "when status != 200 #ops",
        "http",
        "https://status.example.com",
        ChannelRef(None, "ops"),
        "every 5 minutes",
    ),
    Trigger(
        "watch https://status.example.com every 5 minutes and post to <#C0123|ops> if it is "
        "down or slow",
        "add status-example-com every 5 minutes http https://status.example.com "
        "when latency &gt; 2000ms <#C0123|ops>",
        "http",
        "https://status.example.com",
        OPS,
        "every 5 minutes",
    ),
    # json checks
    Trigger(
        "watch https://api.example.com/queue.json every 5 minutes and alert #ops when "
        "data.queue.depth &gt; 100",
        "add api-example-com every 5 minutes json https://api.example.com/queue.json "
        "when data.queue.depth &gt; 100 #ops",
        "json",
        "https://api.example.com/queue.json",
        ChannelRef(None, "ops"),
        "every 5 minutes",
    ),
    Trigger(
        "check <https://status.example.com/api/v2/status.json> every 5m and tell <#C0123|ops> "
        "when json.status.indicator != “none”",
        "add status-example-com every 5m json https://status.example.com/api/v2/status.json "
        'when json.status.indicator != "none" <#C0123|ops>',
        "json",
        "https://status.example.com/api/v2/status.json",
        OPS,
        "every 5 minutes",
    ),
    # feeds
    Trigger(
        "post new items from https://blog.example.com/feed to #marketing",
        "add blog-example-com every 15 minutes rss https://blog.example.com/feed #marketing",
        "rss",
        "https://blog.example.com/feed",
        ChannelRef(None, "marketing"),
        "every 15 minutes",
    ),
    Trigger(
        "watch the feed https://news.example.org/rss every hour",
        "add news-example-org every hour rss https://news.example.org/rss",
        "rss",
        "https://news.example.org/rss",
        None,
        "every hour",
    ),
    Trigger(
        "follow the RSS feed <https://blog.example.com/feed.xml|blog.example.com/feed.xml> "
        "in <#C0MKT|marketing>",
        "add blog-example-com every 15 minutes rss https://blog.example.com/feed.xml "
        "<#C0MKT|marketing>",
        "rss",
        "https://blog.example.com/feed.xml",
        ChannelRef("C0MKT", "marketing"),
        "every 15 minutes",
    ),
    # reminders and messages
    Trigger(
        "every weekday at 9:30 remind #team: standup",
        'add standup every weekday at 9:30 message "standup" #team',
        "message",
        "standup",
        ChannelRef(None, "team"),
        "every weekday at 09:30 Europe/Berlin",
    ),
    Trigger(
        "remind <#C0TEAM|team> every weekday at 9:30 to do standup",
        'add standup every weekday at 9:30 message "do standup" <#C0TEAM|team>',
        "message",
        "do standup",
        TEAM,
        "every weekday at 09:30 Europe/Berlin",
    ),
    Trigger(
        "each weekday at 9:30 remind <#C0TEAM|team>: standup",
        'add standup every weekday at 9:30 message "standup" <#C0TEAM|team>',
        "message",
        "standup",
        TEAM,
        "every weekday at 09:30 Europe/Berlin",
    ),
    Trigger(
        "at 9:30 every weekday remind #team: standup",
        'add standup every weekday at 9:30 message "standup" #team',
        "message",
        "standup",
        ChannelRef(None, "team"),
        "every weekday at 09:30 Europe/Berlin",
    ),
    Trigger(
        "remind #team every weekday at 9:30: standup",
        'add standup every weekday at 9:30 message "standup" #team',
        "message",
        "standup",
        ChannelRef(None, "team"),
        "every weekday at 09:30 Europe/Berlin",
    ),
    Trigger(
        "at 9:30 and 17:00 every weekday remind #team: stretch",
        'add stretch every weekday at 9:30 and 17:00 message "stretch" #team',
        "message",
        "stretch",
        ChannelRef(None, "team"),
        "every weekday at 09:30 and 17:00 Europe/Berlin",
    ),
    Trigger(
        "every mon, wed and fri at 9:00, 17:00 remind #team: stretch",
        'add stretch every mon, wed and fri at 9:00, 17:00 message "stretch" #team',
        "message",
        "stretch",
        ChannelRef(None, "team"),
        "every mon, wed, fri at 09:00 and 17:00 Europe/Berlin",
    ),
    Trigger(
        "in 2 hours remind me to call Bob",
        f'add call-bob in 2 hours message "<@{ASKER}> call Bob"',
        "message",
        f"<@{ASKER}> call Bob",
        None,
        "once at 2026-11-27 13:00 Europe/Berlin",
    ),
    Trigger(
        "remind me to call Bob in 30 minutes",
        f'add call-bob in 30 minutes message "<@{ASKER}> call Bob"',
        "message",
        f"<@{ASKER}> call Bob",
        None,
        "once at 2026-11-27 11:30 Europe/Berlin",
    ),
    Trigger(
        "remind me to call Bob at 5pm",
        f'add call-bob at 5pm message "<@{ASKER}> call Bob"',
        "message",
        f"<@{ASKER}> call Bob",
        None,
        "once at 2026-11-27 17:00 Europe/Berlin",
    ),
    Trigger(
        "in an hour remind me to stretch",
        f'add stretch in 1 hour message "<@{ASKER}> stretch"',
        "message",
        f"<@{ASKER}> stretch",
        None,
        "once at 2026-11-27 12:00 Europe/Berlin",
    ),
    Trigger(
        "tomorrow at 9am remind #team: release day",
        'add release-day tomorrow at 9am message "release day" #team',
        "message",
        "release day",
        ChannelRef(None, "team"),
        "once at 2026-11-28 09:00 Europe/Berlin",
    ),
    Trigger(
        "remind <@U0BOB> tomorrow at 10:00 to send the slides",
        'add send-slides tomorrow at 10:00 message "<@U0BOB> send the slides"',
        "message",
        "<@U0BOB> send the slides",
        None,
        "once at 2026-11-28 10:00 Europe/Berlin",
    ),
    Trigger(
        "remind us every weekday at 17:30 to log hours",
        'add log-hours every weekday at 17:30 message "log hours"',
        "message",
        "log hours",
        None,
        "every weekday at 17:30 Europe/Berlin",
    ),
    Trigger(
        "every friday at 4pm remind #general: timesheets &amp; expenses <@U0ALICE>",
        'add timesheets-expenses every friday at 4pm message "timesheets &amp; expenses '
        '<@U0ALICE>" #general',
        "message",
        "timesheets & expenses <@U0ALICE>",
        ChannelRef(None, "general"),
        "every friday at 16:00 Europe/Berlin",
    ),
    Trigger(
        "every monday at 9 remind <#C0TEAM|team> to review <https://example.com/board|the board>",
        'add review-board every monday at 9 message "review <https://example.com/board|the '
        'board>" <#C0TEAM|team>',
        "message",
        "review <https://example.com/board|the board>",
        TEAM,
        "every monday at 09:00 Europe/Berlin",
    ),
    Trigger(
        "every monday at 9 remind #team: standup at 9:30 in room 4",
        'add standup-at-9-30 every monday at 9 message "standup at 9:30 in room 4" #team',
        "message",
        "standup at 9:30 in room 4",
        ChannelRef(None, "team"),
        "every monday at 09:00 Europe/Berlin",
    ),
    Trigger(
        'cron "0 9 * * 1-5" remind #team: standup',
        'add standup cron "0 9 * * 1-5" message "standup" #team',
        "message",
        "standup",
        ChannelRef(None, "team"),
        'cron "0 9 * * 1-5" Europe/Berlin',
    ),
    Trigger(
        "every month on the 1st at 9am remind #finance: invoices",
        'add invoices every month on the 1st at 9am message "invoices" #finance',
        "message",
        "invoices",
        ChannelRef(None, "finance"),
        "every month on the 1st at 09:00 Europe/Berlin",
    ),
    Trigger(
        "every weekday at 9:30 tz America/New_York remind #team: standup",
        'add standup every weekday at 9:30 tz America/New_York message "standup" #team',
        "message",
        "standup",
        ChannelRef(None, "team"),
        "every weekday at 09:30 America/New_York",
    ),
    Trigger(
        "every friday at 4pm post “Timesheets due” in #general",
        'add timesheets-due every friday at 4pm message "Timesheets due" #general',
        "message",
        "Timesheets due",
        ChannelRef(None, "general"),
        "every friday at 16:00 Europe/Berlin",
    ),
    Trigger(
        "tell #ops that the freeze starts tomorrow at 9am",
        'add freeze-starts tomorrow at 9am message "the freeze starts" #ops',
        "message",
        "the freeze starts",
        ChannelRef(None, "ops"),
        "once at 2026-11-28 09:00 Europe/Berlin",
    ),
    Trigger(
        'remind me to "quote" things tomorrow at 9am',
        f'add quote-things tomorrow at 9am message <@{ASKER}> "quote" things',
        "message",
        f'<@{ASKER}> "quote" things',
        None,
        "once at 2026-11-28 09:00 Europe/Berlin",
    ),
    # reports
    Trigger(
        "set a reminder for <#C0TEAM|team> every monday at 9: standup",
        'add standup every monday at 9 message "standup" <#C0TEAM|team>',
        "message",
        "standup",
        TEAM,
        "every monday at 09:00 Europe/Berlin",
    ),
    Trigger(
        "send me a report every monday at 9",
        "add report every monday at 9 report",
        "report",
        None,
        None,
        "every monday at 09:00 Europe/Berlin",
    ),
    Trigger(
        "every monday at 9 send a report to <#C0123|ops>",
        "add report every monday at 9 report <#C0123|ops>",
        "report",
        None,
        OPS,
        "every monday at 09:00 Europe/Berlin",
    ),
]


# Issue 12: conditions whose subject is the address itself (defect 4), and days of the
# month said the English way (defect 5).
TRIGGERS += [
    Trigger(
        "tell #ops if https://example.com is slower than 500ms, check every 2 minutes",
        "add example-com every 2 minutes http https://example.com when latency &gt; 500ms #ops",
        "http",
        "https://example.com",
        ChannelRef(None, "ops"),
        "every 2 minutes",
    ),
    Trigger(
        'alert #ops when <https://example.com> contains "maintenance", check every 10 minutes',
        'add example-com every 10 minutes http https://example.com when body contains "maintenance" #ops',
        "http",
        "https://example.com",
        ChannelRef(None, "ops"),
        "every 10 minutes",
    ),
    Trigger(
        "tell #ops if https://example.com is slower than 2s and check it every 5 minutes",
        "add example-com every 5 minutes http https://example.com when latency &gt; 2000ms #ops",
        "http",
        "https://example.com",
        ChannelRef(None, "ops"),
        "every 5 minutes",
    ),
    Trigger(
        "on the first of each month at 9am remind #finance to send invoices",
        'add send-invoices every month on the 1st at 9am message "send invoices" #finance',
        "message",
        "send invoices",
        ChannelRef(None, "finance"),
        "every month on the 1st at 09:00 Europe/Berlin",
    ),
    Trigger(
        "remind #finance on the last day of the month at 5pm: close the books",
        'add close-books every month on the last day at 5pm message "close the books" #finance',
        "message",
        "close the books",
        ChannelRef(None, "finance"),
        "every month on the last day at 17:00 Europe/Berlin",
    ),
    Trigger(
        "the 15th of every month at 9am remind #finance: pay the rent",
        'add pay-rent every month on the 15th at 9am message "pay the rent" #finance',
        "message",
        "pay the rent",
        ChannelRef(None, "finance"),
        "every month on the 15th at 09:00 Europe/Berlin",
    ),
    Trigger(
        "monthly on the 1st at 9am remind #team: review the budget",
        'add review-budget every month on the 1st at 9am message "review the budget" #team',
        "message",
        "review the budget",
        ChannelRef(None, "team"),
        "every month on the 1st at 09:00 Europe/Berlin",
    ),
]


@pytest.mark.parametrize("case", TRIGGERS, ids=[case.said[:60] for case in TRIGGERS])
def test_trigger_requests_become_what_the_typed_command_means(case: Trigger) -> None:
    proposal = ask(case.said)

    assert proposal == TriggerProposal(parsed(case.text))
    spec = proposal.spec
    channel = case.channel.target if case.channel else None
    assert (spec.kind, spec.target, spec.channel) == (case.kind, case.target, channel)
    assert spec.schedule.describe() == case.schedule


HOOKS = [
    ("create a github webhook for #deploys", HookSpec("github-deploys", "#deploys", "github")),
    (
        "I want a webhook for alertmanager in <#C0ALERTS|alerts>",
        HookSpec("alertmanager-alerts", "C0ALERTS", "alertmanager"),
    ),
    ("give me a hook for stripe", HookSpec("stripe", None, "stripe")),
    (
        "<@U0BOT> set up a Sentry webhook in #errors please",
        HookSpec("sentry-errors", "#errors", "sentry"),
    ),
    ("make a webhook for #builds", HookSpec("hook-builds", "#builds", "auto")),
    ("new gitlab hook into <#C0CI>", HookSpec("gitlab", "C0CI", "gitlab")),
    ("a prometheus webhook to #alerts", HookSpec("alertmanager-alerts", "#alerts", "alertmanager")),
]


def assert_valid_hook(spec: HookSpec) -> None:
    """What ``/hook create`` accepts: a name, a known preset, no secret from a message."""
    assert re.fullmatch(r"[a-z0-9-]{1,40}", spec.name)
    assert spec.preset in PRESETS
    assert spec.secret is None


@pytest.mark.parametrize(("said", "spec"), HOOKS)
def test_hook_requests_become_the_hook_asked_for(said: str, spec: HookSpec) -> None:
    proposal = ask(said)

    assert proposal == HookProposal(spec)
    assert_valid_hook(proposal.spec)


REFUSALS = [
    ("check ftp://files.example.com every 5 minutes", "ftp://files.example.com"),
    ("watch <file:///etc/passwd> every hour", "file:///etc/passwd"),
    ("what's the weather", ""),
    ("delete everything", "delete"),
    ("hello", ""),
    ("hey!", ""),
    ("every 5 minutes", ""),
    ("remind #team every fortnight at 9: standup", "fortnight"),
    ("check https://status.example.com biweekly", "biweekly"),
    ("check https://status.example.com every 10 seconds", "every 10 seconds"),
    ("check https://status.example.com every 30s and tell #ops", "every 30s"),
    ("every blue moon check https://x.example.com", "every blue"),
    ("tomorrow remind me to call Bob", "tomorrow"),
    ("remind me at 2026-01-01 09:00 to celebrate", "at 2026-01-01 09:00"),
    ("every other day at 8 remind me: water the plants", "at 8"),
    (
        "check https://status.example.com every 5 minutes and tell #ops if the moon is full",
        "the moon is full",
    ),
    ("check https://status.example.com every 5 minutes and tell #ops and #dev", "#dev"),
    ("every weekday at 9:30 remind #team", "remind"),
    ('remind me tomorrow at 9am to say "hi', '"hi'),
    ("a webhook for github and gitlab", "gitlab"),
    ("post new items from https://blog.example.com/feed if it's slow", "it's slow"),
]


@pytest.mark.parametrize(("said", "part"), REFUSALS)
def test_requests_that_are_refused_name_the_part(said: str, part: str) -> None:
    answer = ask(said)

    assert isinstance(answer, NotUnderstood)
    assert answer.part == part
    assert answer.reason


# Issue 12, defect 5: a refusal quotes what the person wrote, not the bot's rewrite of it.
IN_THEIR_WORDS = [
    ("each blue moon at 9am remind #team: dance", "each blue", "couldn't understand"),
    ("check https://status.example.com each 10 seconds", "each 10 seconds", "too often"),
    ("hourly-ish check https://status.example.com", "", "how often"),
    # Defect 4: "if" with no condition after it is asked about, not dropped.
    ("check https://status.example.com every 5 minutes and tell #ops if", "if", "condition"),
    (
        "tell #ops if https://example.com, check every 2 minutes",
        "if https://example.com",
        "condition",
    ),
]


@pytest.mark.parametrize(("said", "part", "why"), IN_THEIR_WORDS)
def test_a_refusal_quotes_the_persons_own_words(said: str, part: str, why: str) -> None:
    answer = ask(said)

    assert isinstance(answer, NotUnderstood)
    assert answer.part == part
    assert why in answer.reason
    if part:
        assert f'"{part}"' in answer.reason
    assert "every" not in answer.reason.split(":")[0] or "every" in said


def test_a_too_short_interval_names_the_minimum() -> None:
    answer = ask(
        "check https://status.example.com every 2 minutes", min_interval=timedelta(minutes=5)
    )

    assert isinstance(answer, NotUnderstood)
    assert answer.part == "every 2 minutes"
    assert "5 minutes" in answer.reason


def test_the_default_feed_schedule_still_respects_the_minimum() -> None:
    answer = ask(
        "post new items from https://blog.example.com/feed", min_interval=timedelta(hours=1)
    )

    assert isinstance(answer, NotUnderstood)
    assert "1 hour" in answer.reason


def test_an_app_mention_greeting_is_not_a_request() -> None:
    event = json.loads((SLACK_FIXTURES / "app_mention.json").read_text())["event"]

    answer = understand(
        event["text"], default_tz=BERLIN, now=NOW, min_interval=MIN_INTERVAL, user_id=event["user"]
    )

    assert isinstance(answer, NotUnderstood)
    assert answer.part == ""
    assert "remind" in answer.reason


def test_a_refused_request_explains_itself() -> None:
    answer = ask("remind #team every blue moon at 9am: dance")

    assert answer == NotUnderstood(
        part="every blue",
        reason='I couldn\'t understand "every blue": try "every 2 weeks" or "every monday at 10:00"',
    )


# A piece that is missing gets a stated default or one question, never a refusal.
DEFAULTED = [
    (
        "check https://status.example.com and tell #ops if it's down",
        "add status-example-com every 5 minutes http https://status.example.com #ops",
        "no schedule given: every 5 minutes",
    ),
    (
        "every weekday remind #team: standup",
        'add standup every weekday at 9:00 message "standup" #team',
        "no time of day given: 9:00",
    ),
    (
        "on the first of each month remind #finance to send invoices",
        'add send-invoices every month on the 1st at 9:00 message "send invoices" #finance',
        "no time of day given: 9:00",
    ),
]


@pytest.mark.parametrize(("said", "text", "note"), DEFAULTED)
def test_a_default_is_chosen_and_said(said: str, text: str, note: str) -> None:
    answer = ask(said)

    assert answer == TriggerProposal(parsed(text))
    assert note in answer.notes


ASKED = [
    ("send me a report", "when"),
    ("remind #team: standup", "when"),
    ("check https://a.example.com and https://b.example.com every 5 minutes", "url"),
    ("tell #ops whenever it returns 500", "url"),
    ("every day at 5 remind #team: go home", "time"),
    ("every day at 9am IST remind #team: standup", "zone"),
]


@pytest.mark.parametrize(("said", "slot"), ASKED)
def test_a_missing_or_ambiguous_piece_is_asked_about(said: str, slot: str) -> None:
    answer = ask(said)

    assert isinstance(answer, Question)
    assert answer.slot == slot


def test_the_answer_completes_the_request() -> None:
    two = "check https://a.example.com and https://b.example.com every 5 minutes in #ops"
    event = im_event(two)
    answer = understand(
        event["text"],
        default_tz=BERLIN,
        now=NOW,
        min_interval=MIN_INTERVAL,
        user_id=ASKER,
        answers={"url": "https://b.example.com"},
    )

    assert answer == TriggerProposal(
        parsed("add b-example-com every 5 minutes http https://b.example.com #ops")
    )


_VOCABULARY = [
    "check", "watch", "remind", "me", "#ops", "<#C0123|ops>", "<@U0BOB>", "every", "each",
    "5", "minutes", "hour", "weekday", "monday", "at", "9:30", "9am", "in", "2", "hours",
    "tomorrow", "today", "and", "tell", "if", "when", "it's", "down", "slow", "says", "to",
    ":", "standup", "webhook", "github", "report", "feed", "https://status.example.com",
    "<https://api.example.com/q.json|q>", "ftp://x.example.com", "data.depth", "&gt;", "100",
    '"quoted"', "“curly”", "cron", '"0 9 * * 1-5"', "tz", "Europe/London", "other", "on",
    "2026-12-01", "thanks", "!", "&amp;", "post", "send", "the", "certificate", "expires",
    "within", "14", "days", "takes", "more", "than", "2s", ",", "please", "first", "of",
    "month", "hourly", "monthly", "last", "day", "15th", "is", "slower", "500ms",
    "morning", "evening", "nightly", "twice", "a", "quarterly", "London", "time", "CET", "PT",
    "IST", "called", "named", '"Site Check"', "returns", "500", "5xx", "field", "above",
    "<mailto:support@example.com|support@example.com>", "new", "orders", "friday", "fridays",
    "unless", "lunch", "5", "monday", "next", "sales", "<https://x.example.com/e.csv>",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_VOCABULARY), max_size=14))
def test_any_message_gets_an_answer_and_every_proposal_is_valid(words: list[str]) -> None:
    answer = ask(" ".join(words))

    if isinstance(answer, TriggerProposal) and answer.spec.condition is not None:
        compile_condition(answer.spec.condition)
    if isinstance(answer, HookProposal):
        assert_valid_hook(answer.spec)
    if isinstance(answer, NotUnderstood):
        assert_quotes_what_was_said(" ".join(words), answer)
    assert isinstance(answer, TriggerProposal | HookProposal | Question | NotUnderstood)


def assert_quotes_what_was_said(said: str, answer: NotUnderstood) -> None:
    """A refusal names a part of the message as the person wrote it, never the bot's rewrite."""
    as_written = unescape(said).translate(STRAIGHT).lower()
    assert answer.part.translate(STRAIGHT).lower() in as_written, (said, answer)
