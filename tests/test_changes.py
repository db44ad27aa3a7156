"""Reading what is asked of an existing thing, and which thing the words name (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.conversation.changes import (
    IT,
    VERBS,
    Candidate,
    ChangeRequest,
    described,
    match,
    mute_until,
    read_change,
)

READ = [
    ("pause the standup reminder", "pause", "standup"),
    ("stop the deploys hook", "pause", "deploys"),
    ("resume it", "resume", IT),
    ("turn the site check back on", None, None),
    ("start standup again", "resume", "standup"),
    ("make the site check every 10 minutes", "reschedule", "site"),
    ("change standup to every weekday at 10:00", "reschedule", "standup"),
    ("move the blog feed to #news", "move", "blog"),
    ("move it to <#C0NEWS|news>", "move", IT),
    ("delete the old feed", "delete", ""),
    ("get rid of the sales report", "delete", "sales"),
    ("mute site for 2 hours", "mute", "site"),
    ("snooze it until 18:00", "mute", IT),
    ("run the site check now", "run", "site"),
    ("what triggers do I have?", "list", ""),
    ("list my checks", "list", ""),
    ("what's failing?", "failing", ""),
    ("is anything down", "failing", ""),
    ("show me the sales report", "show", "sales"),
    ("how is the site check doing?", "show", "site"),
    # Setting something new up is no change.
    ("check <https://example.com> every 5 minutes", None, None),
    ('post "Lunch!" in #general', None, None),
    ("post new items from <https://blog.example.com/feed> to #news", None, None),
    ("remind me to pause the build", None, None),
    ("every weekday at 9:30 remind #team: standup", None, None),
]


@pytest.mark.parametrize(("said", "verb", "subject"), READ)
def test_what_is_asked_of_an_existing_thing(said: str, verb: str | None, subject: str) -> None:
    request = read_change(said)

    if verb is None:
        assert request is None
    else:
        assert request is not None
        assert (request.verb, request.subject) == (verb, subject)


THINGS = [
    Candidate("trigger", 1, "standup", "message", described("Standup!", "message")),
    Candidate("trigger", 2, "site", "http", described("https://www.site.example.com/", "http")),
    Candidate("trigger", 3, "blog", "rss", described("https://blog.example.com/feed", "rss")),
    Candidate("trigger", 4, "sales", "json", described("https://shop.example.com/s", "json")),
    Candidate("hook", 5, "deploys", "hook", "github hook"),
    Candidate("trigger", 6, "shop-check", "http", described("https://shop.example.com", "http")),
]


@pytest.mark.parametrize(
    ("said", "names"),
    [
        ("pause the standup reminder", ["standup"]),
        ("make the site check every 10 minutes", ["site"]),
        ("delete the old feed", ["blog"]),
        ("stop the github hook", ["deploys"]),
        ("show me the sales report", ["sales"]),
        ("pause the shop check", ["sales", "shop-check"]),  # both watch the shop
        ("pause the shop", ["sales", "shop-check"]),  # two: asked which, by name
        ("pause the payroll reminder", []),
        ("pause the site reminder", []),  # a reminder named site there is not
    ],
)
def test_the_words_name_a_thing_by_name_or_what_it_watches(said: str, names: list[str]) -> None:
    request = read_change(said)
    assert isinstance(request, ChangeRequest)

    assert [c.name for c in match(request, THINGS)] == names


def test_a_mute_lasts_what_was_said_or_an_hour() -> None:
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    berlin = ZoneInfo("Europe/Berlin")

    assert mute_until("2 hours", now, berlin) == now + timedelta(hours=2)
    assert mute_until("an hour", now, berlin) == now + timedelta(hours=1)
    assert mute_until("until 18:00", now, berlin) == datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    assert mute_until("until 9am", now, berlin) == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    assert mute_until(None, now, berlin) == now + timedelta(hours=1)
    assert mute_until("a while", now, berlin) is None


_WORDS = [
    "pause", "resume", "it", "the", "standup", "reminder", "make", "site", "check", "every",
    "10", "minutes", "move", "blog", "feed", "to", "#news", "<#C0NEWS|news>", "delete", "old",
    "mute", "for", "2", "hours", "until", "18:00", "what", "triggers", "do", "I", "have?",
    "what's", "failing?", "show", "me", "sales", "report", "run", "now", "<https://x.example>",
    '"quoted"', "and", "hook", "a", "while",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=12))
def test_any_message_reads_as_a_change_or_not_and_matches_safely(words: list[str]) -> None:
    request = read_change(" ".join(words))

    if request is not None:
        assert request.verb in VERBS
        assert all(c in THINGS for c in match(request, THINGS))
        if request.verb == "mute":
            now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
            until = mute_until(request.span, now, ZoneInfo("Europe/Berlin"))
            assert until is None or until > now
