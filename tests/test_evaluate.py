"""The trigger decision core, driven over a fake timeline (one run per minute)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import feedparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.triggers import evaluate
from bot.triggers.evaluate import (
    Announcement,
    EvaluateError,
    Policy,
    TriggerState,
    decide,
    decide_feed,
    format_duration,
    mute,
    state_from_dict,
)
from bot.triggers.observation import FeedItem, Observation

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
START = datetime(2024, 5, 6, 14, 0, tzinfo=UTC)
UP = Observation(ok=True, summary="HTTP 200 in 80 ms", duration_ms=80.0, status=200)
DOWN = Observation(ok=False, summary="HTTP 503 in 120 ms", duration_ms=120.0, status=503)
SEEN = list[tuple[int, Announcement]]


def at(minute: int) -> datetime:
    return START + timedelta(minutes=minute)


def run(
    pattern: str,
    policy: Policy | None = None,
    state: TriggerState | None = None,
    first: int = 0,
) -> tuple[TriggerState, SEEN]:
    """Feed one observation per minute: ``.`` passes, ``x`` fails; from minute ``first``."""
    state = state or TriggerState.initial()
    seen: SEEN = []
    for minute, char in enumerate(pattern, start=first):
        obs = UP if char == "." else DOWN
        state, announcements = decide("site", state, obs, at(minute), policy or Policy())
        seen += [(minute, r) for r in announcements]
    return state, seen


def kinds(seen: SEEN) -> list[tuple[int, str]]:
    return [(minute, r.kind) for minute, r in seen]


# --- up / down ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "policy", "expected"),
    [
        (".", Policy(), []),
        ("x", Policy(), [(0, "down")]),
        (".xxxxx...", Policy(), [(1, "down"), (6, "recovered")]),
        # retries=3: one and two blips say nothing; the third consecutive failure does.
        (".x.x.", Policy(retries=3), []),
        (".xx.xx.", Policy(retries=3), []),
        (".xx.xxx", Policy(retries=3), [(6, "down")]),
        (".xx.xxx.", Policy(retries=3), [(6, "down"), (7, "recovered")]),
        # recover=2: a single pass inside an outage is not a recovery.
        (".xx.x..", Policy(recover=2), [(1, "down"), (6, "recovered")]),
        (".xx.x.x", Policy(recover=2), [(1, "down")]),
        # retries and recover together.
        ("xx.xx..", Policy(retries=2, recover=2), [(1, "down"), (6, "recovered")]),
    ],
)
def test_reports_each_confirmed_change_once(
    pattern: str, policy: Policy, expected: list[tuple[int, str]]
) -> None:
    assert kinds(run(pattern, policy)[1]) == expected


def test_down_and_recovered_texts_and_threading() -> None:
    state, seen = run(".xxxxxxxxxxxx.")
    (_, down), (_, recovered) = seen
    assert down == Announcement("down", ":red_circle: *site* is down: HTTP 503 in 120 ms")
    assert recovered == Announcement(
        "recovered",
        ":large_green_circle: *site* recovered after 12 min (was: HTTP 503 in 120 ms)",
        follows_up=True,
    )
    assert (state.status, state.since, state.incident_started) == ("ok", at(13), None)


def test_downtime_counts_from_the_first_failure_not_the_confirmation() -> None:
    _, seen = run(".xxx.", Policy(retries=3))
    assert kinds(seen) == [(3, "down"), (4, "recovered")]
    assert "recovered after 3 min" in seen[1][1].text


def test_downtime_is_rounded_to_the_nearest_minute_not_down() -> None:
    # Issue 12, defect 7: failed at 18:45:17, recovered at 18:47:17 said "1 min", because
    # the failing run's clock read after its (slower) check and the recovery's did not.
    failed = datetime(2031, 1, 6, 18, 45, 17, 800_000, tzinfo=UTC)
    recovered = datetime(2031, 1, 6, 18, 47, 17, 200_000, tzinfo=UTC)
    state, _ = decide("site", TriggerState.initial(), UP, failed - timedelta(minutes=1), Policy())
    state, _ = decide("site", state, DOWN, failed, Policy())
    _, (announcement,) = decide("site", state, UP, recovered, Policy())
    assert "recovered after 2 min" in announcement.text


def test_a_blip_before_an_incident_does_not_move_its_start() -> None:
    state, _ = run(".x.xxx", Policy(retries=3))
    assert state.incident_started == at(3)


def test_stays_silent_while_down_and_remembers_the_incident() -> None:
    state, seen = run("." + "x" * 180)
    assert kinds(seen) == [(1, "down")]
    assert (state.status, state.incident_started, state.consecutive_failures) == (
        "failing",
        at(1),
        180,
    )


@pytest.mark.parametrize(
    ("max_repeats", "expected_minutes"),
    [(2, [31, 61]), (None, [31, 61, 91, 121, 151]), (0, [])],
)
def test_still_down_every_repeat_at_most_max_repeats(
    max_repeats: int | None, expected_minutes: list[int]
) -> None:
    policy = Policy(repeat=timedelta(minutes=30), max_repeats=max_repeats)
    _, seen = run("." + "x" * 180, policy)
    assert [m for m, r in seen if r.kind == "still_down"] == expected_minutes
    assert kinds(seen)[0] == (1, "down")
    assert all(r.follows_up for _, r in seen if r.kind == "still_down")


def test_still_down_text_and_a_new_incident_gets_a_fresh_budget() -> None:
    policy = Policy(repeat=timedelta(minutes=30), max_repeats=1)
    _, seen = run("." + "x" * 40 + "." + "x" * 40, policy)
    assert kinds(seen) == [
        (1, "down"),
        (31, "still_down"),
        (41, "recovered"),
        (42, "down"),
        (72, "still_down"),
    ]
    assert seen[1][1].text == (":red_circle: *site* is still down after 30 min: HTTP 503 in 120 ms")


def test_still_down_waits_for_a_failing_run() -> None:
    # recover=2: the pass at minute 31 does not end the incident, but "still down" then
    # would contradict the latest check; the reminder comes with the next failure.
    policy = Policy(recover=2, repeat=timedelta(minutes=30))
    _, seen = run("." + "x" * 30 + ".x", policy)
    assert kinds(seen) == [(1, "down"), (32, "still_down")]


def test_summaries_from_the_target_are_escaped_for_mrkdwn() -> None:
    hostile = Observation(ok=False, summary="<!channel> body: a & b")
    _, announcements = decide("site", TriggerState.initial(), hostile, START, Policy())
    assert announcements[0].text == ":red_circle: *site* is down: &lt;!channel&gt; body: a &amp; b"


# --- flapping -----------------------------------------------------------------------


def test_alternating_for_an_hour_flaps_once_then_reports_stable_up() -> None:
    state, seen = run(".x" * 30 + "." * 40)
    assert kinds(seen) == [
        (1, "down"),
        (2, "recovered"),
        (3, "down"),
        (4, "recovered"),
        (5, "flapping"),
        # last change at minute 60; stable once a whole 30 min window has no change
        (90, "stable"),
    ]
    assert seen[4][1] == Announcement(
        "flapping",
        ":warning: *site* is flapping: 5 changes in 30 min; I'll report again once it is stable",
    )
    assert seen[5][1] == Announcement(
        "stable",
        ":large_green_circle: *site* is stable again, and up: HTTP 200 in 80 ms",
        follows_up=True,
    )
    assert (state.status, state.flips) == ("ok", ())


def test_flapping_that_settles_down_reports_stable_down_then_recovery() -> None:
    _, seen = run(".x" * 30 + "x" * 40 + "..")
    assert kinds(seen)[-3:] == [(5, "flapping"), (89, "stable"), (100, "recovered")]
    assert "stable again, and down" in seen[-2][1].text
    assert "recovered after 41 min" in seen[-1][1].text  # incident began at minute 59


def test_not_stable_while_the_latest_run_disagrees() -> None:
    policy = Policy(recover=2, retries=2)
    # Flapping from minute 11; last change at 21, so the window is quiet from 51, but the
    # unconfirmed failure at 51 and the first pass after it do not count as stable yet.
    _, seen = run("..xx" * 5 + "." * 31 + "x" + "...", policy)
    assert kinds(seen)[-2:] == [(11, "flapping"), (53, "stable")]


def test_four_changes_in_the_window_are_not_flapping() -> None:
    _, seen = run(".x.x." + "." * 30 + "x")
    assert [k for _, k in kinds(seen)] == ["down", "recovered", "down", "recovered", "down"]


def test_changes_spread_wider_than_the_window_never_flap() -> None:
    # A change every 10 minutes: at most 3 fall within 30 minutes.
    _, seen = run(("." * 10 + "x" * 10) * 6)
    assert "flapping" not in [k for _, k in kinds(seen)]
    assert len(seen) == 11


# --- mute ---------------------------------------------------------------------------


def test_mute_through_an_outage_posts_nothing_then_one_summary() -> None:
    state, _ = run(".")
    state = mute(state, at(120))
    state, during = run("." * 9 + "x" * 18 + "." * 92, state=state, first=1)
    assert during == []
    state, after = run(".", state=state, first=120)
    assert after == [
        (
            120,
            Announcement(
                "mute_summary",
                # Times in channel messages are Slack date tokens: each reader sees their
                # own zone; the fallback says UTC.
                ":mute: *site* while muted (until <!date^1715011200^{time}|16:00 UTC>):\n"
                "• <!date^1715004600^{time}|14:10 UTC> :red_circle: *site* is down: "
                "HTTP 503 in 120 ms\n"
                "• <!date^1715005680^{time}|14:28 UTC> :large_green_circle: *site* "
                "recovered after 18 min"
                " (was: HTTP 503 in 120 ms)",
            ),
        )
    ]
    assert (state.muted_until, state.muted_changes) == (None, ())


def test_mute_ending_while_still_down_reports_the_current_status() -> None:
    state, _ = run(".")
    state, during = run("x" * 119, state=mute(state, at(120)), first=1)
    assert during == []
    state, after = run("x" * 5 + ".", state=state, first=120)
    assert kinds(after) == [(120, "mute_summary"), (120, "down"), (125, "recovered")]
    assert after[1][1].text == (
        ":red_circle: *site* is down since <!date^1715004060^{time}|14:01 UTC>: HTTP 503 in 120 ms"
    )
    assert "recovered after 2 h 4 min" in after[2][1].text


def test_recovery_during_a_mute_closes_the_thread_of_the_earlier_alert() -> None:
    state, seen = run(".xx")
    assert kinds(seen) == [(1, "down")]
    state, during = run("x" * 7 + "." * 50, state=mute(state, at(60)), first=3)
    state, after = run(".", state=state, first=60)
    assert kinds(during) == []
    assert [(r.kind, r.follows_up) for _, r in after] == [
        ("mute_summary", False),
        ("recovered", True),
    ]


def test_the_run_that_ends_the_mute_is_not_lost() -> None:
    state, _ = run(".")
    state, _ = run("." * 59, state=mute(state, at(60)), first=1)
    state, after = run("x", state=state, first=60)
    assert kinds(after) == [(60, "down")]


def test_muted_runs_evolve_the_state_exactly_like_unmuted_ones() -> None:
    pattern = ".xx..x.x.x.x" + "x" * 50 + "." * 40
    policy = Policy(repeat=timedelta(minutes=20))
    loud, _ = run(pattern, policy)
    quiet, posted = run(pattern, policy, state=mute(TriggerState.initial(), at(1000)))
    assert posted == []
    assert _without_mute(quiet) == _without_mute(loud)
    assert "still down" not in "\n".join(quiet.muted_changes)  # reminders are not changes


def test_nothing_happening_during_a_mute_posts_nothing_after_it() -> None:
    state, _ = run(".")
    state, seen = run("." * 200, state=mute(state, at(120)), first=1)
    assert seen == []
    assert state.muted_until is None


def _without_mute(state: TriggerState) -> TriggerState:
    return replace(state, muted_until=None, muted_changes=(), announced=state.status)


# --- feeds --------------------------------------------------------------------------


@cache
def hn_items() -> tuple[FeedItem, ...]:
    """The 30 entries of the real Hacker News feed, in feed order (newest first)."""
    parsed = feedparser.parse(str(FEEDS / "hackernews.rss.xml"))
    return tuple(
        FeedItem(id=e.get("id") or e.link, title=e.title, link=e.link, published=e.published)
        for e in parsed.entries
    )


def fetched(items: tuple[FeedItem, ...]) -> Observation:
    return Observation(ok=True, summary=f"{len(items)} items", items=items)


FEED_DOWN = Observation(ok=False, summary="timed out after 10 s")


def feed_runs(
    observations: list[Observation],
    policy: Policy | None = None,
    state: TriggerState | None = None,
    first: int = 0,
) -> tuple[TriggerState, list[list[Announcement]]]:
    state = state or TriggerState.initial()
    per_run: list[list[Announcement]] = []
    for minute, obs in enumerate(observations, start=first):
        state, announcements = decide_feed("hn", state, obs, at(minute), policy or Policy())
        per_run.append(announcements)
    return state, per_run


def posted_ids(announcements: list[Announcement]) -> list[str]:
    return [r.item.id for r in announcements if r.item is not None]


def ids(items: tuple[FeedItem, ...]) -> list[str]:
    return [i.id for i in items]


def test_feed_first_run_records_every_id_and_posts_nothing() -> None:
    state, [announcements] = feed_runs([fetched(hn_items())])
    assert announcements == []
    assert state.feed_initialised
    assert list(state.seen_ids) == ids(hn_items())


@pytest.mark.parametrize(
    ("latest", "expected"), [(1, [0]), (3, [2, 1, 0]), (50, list(range(9, -1, -1)))]
)
def test_feed_first_run_posts_the_newest_when_asked(latest: int, expected: list[int]) -> None:
    _, [announcements] = feed_runs([fetched(hn_items())], Policy(feed_latest_on_first_run=latest))
    assert posted_ids(announcements) == [hn_items()[i].id for i in expected]


def test_feed_posts_three_new_items_oldest_first_once() -> None:
    items = hn_items()
    _, runs = feed_runs([fetched(items[3:]), fetched(items), fetched(items)])
    assert runs[0] == runs[2] == []
    assert posted_ids(runs[1]) == ids(items[2::-1])
    first = runs[1][0]
    assert first == Announcement(
        "new_item",
        ":newspaper: *hn*: <https://blueskyweb.xyz/blog/3-6-2022-a-self-authenticating-social-"
        "protocol|Twitter Bluesky: A Self-Authenticating Social Protocol>",
        item=items[2],
    )


def test_feed_with_25_new_items_posts_the_newest_10_and_one_summary() -> None:
    items = hn_items()
    _, runs = feed_runs([fetched(items[25:]), fetched(items), fetched(items)])
    assert posted_ids(runs[1]) == ids(items[9::-1])
    assert runs[1][-1] == Announcement("new_items_summary", "…and 15 more new items in *hn*")
    assert [r.kind for r in runs[1]] == ["new_item"] * 10 + ["new_items_summary"]
    assert runs[2] == []


def test_feed_ids_survive_a_restart_and_nothing_is_reposted() -> None:
    items = hn_items()
    state, _ = feed_runs([fetched(items[3:])])
    state = state_from_dict(json.loads(json.dumps(state.to_dict())))
    state, [announcements] = feed_runs([fetched(items)], state=state, first=1)
    assert posted_ids(announcements) == ids(items[2::-1])
    restored = state_from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    _, [again] = feed_runs([fetched(items)], state=restored, first=2)
    assert again == []


def test_feed_fetch_failure_goes_down_then_recovers_and_posts_what_is_new() -> None:
    items = hn_items()
    _, runs = feed_runs([fetched(items[1:]), FEED_DOWN, FEED_DOWN, fetched(items)])
    assert runs[0] == runs[2] == []
    assert runs[1] == [Announcement("down", ":red_circle: *hn* is down: timed out after 10 s")]
    assert [r.kind for r in runs[3]] == ["recovered", "new_item"]
    assert runs[3][1].item == items[0]


def test_feed_that_fails_on_its_first_run_initialises_silently_on_recovery() -> None:
    state, runs = feed_runs([FEED_DOWN, fetched(hn_items())])
    assert [[r.kind for r in announcements] for announcements in runs] == [["down"], ["recovered"]]
    assert state.feed_initialised


def test_feed_duplicate_ids_in_one_fetch_are_posted_once() -> None:
    items = hn_items()
    _, runs = feed_runs([fetched(items[2:]), fetched((items[0], items[0], *items[1:]))])
    assert posted_ids(runs[1]) == ids(items[1::-1])


def test_feed_seen_ids_are_capped_keeping_the_current_ones() -> None:
    old = tuple(f"gone-{n}" for n in range(evaluate.SEEN_IDS_CAP))
    state = replace(TriggerState.initial(), seen_ids=old, feed_initialised=True)
    state, [announcements] = feed_runs([fetched(hn_items())], state=state)
    assert len(state.seen_ids) == evaluate.SEEN_IDS_CAP
    assert list(state.seen_ids[:30]) == ids(hn_items())
    assert state.seen_ids[30:] == old[:-30]
    assert len(announcements) == 11


def test_feed_never_forgets_an_id_the_feed_still_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluate, "SEEN_IDS_CAP", 10)
    state, runs = feed_runs([fetched(hn_items()), fetched(hn_items())])
    assert len(state.seen_ids) == 30
    assert runs == [[], []]


def test_feed_items_seen_while_muted_are_summarised_not_reposted() -> None:
    items = hn_items()
    state, _ = feed_runs([fetched(items[2:])])
    state = mute(state, at(6))
    state, runs = feed_runs([fetched(items)] * 6, state=state, first=1)
    assert runs[:5] == [[]] * 5
    assert [r.kind for r in runs[5]] == ["mute_summary"]
    assert runs[5][0].text.count(":newspaper:") == 2


# --- state storage, policy, durations -----------------------------------------------


def test_state_round_trips_through_json() -> None:
    policy = Policy(repeat=timedelta(minutes=5))
    state, _ = run(".xx..", policy)
    state, _ = run("xxx", policy, state=mute(state, at(500)), first=5)
    assert state.flips and state.last_reported and state.incident_started
    assert state.muted_changes and state.muted_until
    assert state_from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_an_empty_dict_reads_as_the_initial_state() -> None:
    assert state_from_dict({}) == TriggerState.initial()


@pytest.mark.parametrize(
    "stored",
    [
        {"status": "sideways"},
        {"confirmed": "flapping"},
        {"since": "yesterday"},
        {"since": "2024-05-06T14:00:00"},  # no time zone
        {"since": 1714996800},
        {"consecutive_failures": "3"},
        {"consecutive_failures": True},
        {"seen_ids": "abc"},
        {"seen_ids": [1, 2]},
        {"flips": ["2024-05-06T14:00:00+00:00", None]},
        {"feed_initialised": 1},
        {"last_summary": None},
    ],
)
def test_unreadable_state_raises(stored: dict[str, object]) -> None:
    with pytest.raises(EvaluateError):
        state_from_dict(stored)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"retries": 0},
        {"recover": 0},
        {"flap_threshold": 0},
        {"repeat": timedelta(0)},
        {"flap_window": timedelta(seconds=-1)},
        {"feed_max_posts": -1},
        {"max_repeats": -1},
    ],
)
def test_invalid_policy_raises(kwargs: dict[str, Any]) -> None:
    with pytest.raises(EvaluateError):
        Policy(**kwargs)


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(0), "0 s"),
        (timedelta(seconds=45), "45 s"),
        (timedelta(seconds=59.4), "59 s"),
        (timedelta(seconds=59.6), "1 min"),
        (timedelta(minutes=1), "1 min"),
        # Rounded to the nearest unit, not cut: the 18:45:17 → 18:47:17 outage
        # measured 1 min 59.4 s between the two runs' clocks.
        (timedelta(minutes=1, seconds=59.4), "2 min"),
        (timedelta(minutes=1, seconds=29), "1 min"),
        (timedelta(minutes=12, seconds=30), "13 min"),
        (timedelta(minutes=59, seconds=29), "59 min"),
        (timedelta(minutes=59, seconds=31), "1 h"),
        (timedelta(hours=2), "2 h"),
        (timedelta(hours=2, minutes=5), "2 h 5 min"),
        (timedelta(hours=2, minutes=5, seconds=40), "2 h 6 min"),
        (timedelta(days=1), "1 d"),
        (timedelta(days=1, hours=3, minutes=29), "1 d 3 h"),
        (timedelta(days=1, hours=3, minutes=59), "1 d 4 h"),
        (timedelta(hours=23, minutes=59, seconds=50), "1 d"),
        (timedelta(seconds=-5), "0 s"),
    ],
)
def test_format_duration(delta: timedelta, words: str) -> None:
    assert format_duration(delta) == words


# --- invariants ---------------------------------------------------------------------

PASSES = st.lists(st.booleans(), max_size=150)


def replay(
    passes: list[bool], policy: Policy, state: TriggerState | None = None
) -> tuple[TriggerState, list[Announcement], list[TriggerState]]:
    state = state or TriggerState.initial()
    announcements: list[Announcement] = []
    states: list[TriggerState] = []
    for minute, ok in enumerate(passes):
        state, new = decide("site", state, UP if ok else DOWN, at(minute), policy)
        announcements += new
        states.append(state)
    return state, announcements, states


def told_sequence_is_valid(announcements: list[Announcement]) -> bool:
    """down/recovered alternate; a flapping episode ends with one stable announcement."""
    told = "unknown"
    for announcement in announcements:
        allowed = {
            "down": told in ("unknown", "up"),
            "recovered": told == "down",
            "flapping": told != "flapping",
            "stable": told == "flapping",
        }
        if not allowed[announcement.kind]:
            return False
        told = {"down": "down", "recovered": "up", "flapping": "flapping"}.get(
            announcement.kind, "down" if "and down" in announcement.text else "up"
        )
    return True


@settings(max_examples=300)
@given(PASSES)
def test_reports_strictly_alternate_down_and_recovered(passes: list[bool]) -> None:
    _, announcements, states = replay(passes, Policy())
    assert told_sequence_is_valid(announcements)
    for ok, after in zip(passes, states, strict=True):
        if after.status != "flapping":
            assert after.status == ("ok" if ok else "failing")


@settings(max_examples=300)
@given(
    PASSES,
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 5),
)
def test_any_policy_never_repeats_a_status(
    passes: list[bool], retries: int, recover: int, threshold: int
) -> None:
    policy = Policy(retries=retries, recover=recover, flap_threshold=threshold)
    state, announcements, _ = replay(passes, policy)
    assert told_sequence_is_valid(announcements)
    assert state.status in ("flapping", state.confirmed)


@settings(max_examples=200)
@given(PASSES, st.integers(0, 150), st.integers(0, 150))
def test_a_mute_changes_nothing_but_what_is_posted(
    passes: list[bool], mute_at: int, mute_minutes: int
) -> None:
    loud, _, _ = replay(passes, Policy())
    before, _, _ = replay(passes[:mute_at], Policy())
    muted = mute(before, at(mute_at + mute_minutes))
    quiet: TriggerState = muted
    posted: list[Announcement] = []
    for minute, ok in enumerate(passes[mute_at:], start=mute_at):
        quiet, new = decide("site", quiet, UP if ok else DOWN, at(minute), Policy())
        assert minute >= mute_at + mute_minutes or new == []
        posted += new
    assert _without_mute(quiet) == _without_mute(loud)
    assert [r.kind for r in posted].count("mute_summary") <= 1


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 29), st.integers(1, 30), st.booleans()), max_size=20))
def test_feed_never_posts_an_item_twice(windows: list[tuple[int, int, bool]]) -> None:
    items = hn_items()
    observations = [
        fetched(items[start : start + size]) if ok else FEED_DOWN for start, size, ok in windows
    ]
    _, runs = feed_runs(observations, Policy(feed_max_posts=5))
    posted = [i for announcements in runs for i in posted_ids(announcements)]
    assert len(posted) == len(set(posted))


def test_a_long_mute_keeps_only_the_latest_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluate, "MUTED_CHANGES_CAP", 3)
    items = hn_items()
    state, _ = feed_runs([fetched(items[10:])])
    growing = [fetched(items[n:]) for n in range(9, -1, -1)]  # one new item per run
    state, runs = feed_runs(growing, state=mute(state, at(11)), first=1)
    assert [[r.kind for r in announcements] for announcements in runs] == [[]] * 10
    assert state.muted_changes == tuple(
        f"<!date^{int(at(minute).timestamp())}^{{time}}|14:{minute:02} UTC> "
        f":newspaper: *hn*: <{items[n].link}|{items[n].title}>"
        for minute, n in [(8, 2), (9, 1), (10, 0)]
    )
