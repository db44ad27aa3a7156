"""The watch's decisions: baseline, new mail once, UIDVALIDITY changes, floods."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.mail.watch import (
    Baseline,
    LookForNew,
    MailboxStatus,
    NewMail,
    Plan,
    Position,
    Post,
    Rebaseline,
    Summary,
    Unchanged,
    group_for_channels,
    newest_on_baseline,
    plan_run,
    rebaseline_notice,
    select_new,
)

STORED = Position(uidvalidity=7, last_uid=120)

PLANS: dict[str, tuple[Position | None, MailboxStatus, int, Plan]] = {
    "first run records the position": (
        None,
        MailboxStatus(7, 10_001, 9_900),
        0,
        Baseline(Position(7, 10_000), post_newest=0),
    ),
    "first run with latest=3": (
        None,
        MailboxStatus(7, 10_001, 9_900),
        3,
        Baseline(Position(7, 10_000), post_newest=3),
    ),
    "first run on an empty mailbox": (None, MailboxStatus(7, 1, 0), 0, Baseline(Position(7, 0), 0)),
    "nothing new": (STORED, MailboxStatus(7, 121, 50), 0, Unchanged(STORED)),
    "nothing new, latest is for the first run only": (
        STORED,
        MailboxStatus(7, 121, 50),
        5,
        Unchanged(STORED),
    ),
    "something new": (STORED, MailboxStatus(7, 125, 54), 0, LookForNew(STORED)),
    "uidvalidity changed": (
        STORED,
        MailboxStatus(8, 31, 30),
        0,
        Rebaseline(Position(8, 30), previous_uidvalidity=7, exists=30),
    ),
    "uidnext went back under the same uidvalidity": (
        STORED,
        MailboxStatus(7, 101, 3),
        0,
        Rebaseline(Position(7, 100), previous_uidvalidity=7, exists=3),
    ),
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_plan_run(name: str) -> None:
    stored, status, latest, expected = PLANS[name]
    assert plan_run(stored, status, latest=latest) == expected


def test_select_new_ignores_the_star_quirk_and_sorts_oldest_first() -> None:
    # "UID 121:*" on a mailbox whose last UID is 120 answers 120 (RFC 3501's "*" rule).
    status = MailboxStatus(7, 121, 50)
    assert select_new([120], STORED, status) == NewMail((), 0, STORED)
    found = [124, 121, 123, 120]
    assert select_new(found, STORED, MailboxStatus(7, 125, 54)) == NewMail(
        (121, 123, 124), 0, Position(7, 124)
    )


def test_select_new_moves_past_messages_deleted_between_runs() -> None:
    # Two arrived and were deleted before this run: UIDNEXT says 123, nothing is found.
    assert select_new([], STORED, MailboxStatus(7, 123, 50)) == NewMail((), 0, Position(7, 122))


def test_select_new_counts_what_a_flood_leaves_out() -> None:
    found = range(121, 321)  # 200 new
    new = select_new(found, STORED, MailboxStatus(7, 321, 250), limit=50)
    assert new.fetch == tuple(range(271, 321))
    assert new.skipped == 150
    assert new.position == Position(7, 320)


@given(
    last=st.integers(0, 10_000),
    found=st.lists(st.integers(1, 20_000), max_size=80),
    limit=st.integers(0, 60),
)
def test_select_new_never_repeats_a_message_and_never_goes_back(
    last: int, found: list[int], limit: int
) -> None:
    stored = Position(1, last)
    status = MailboxStatus(1, last + 1, 0)
    new = select_new(found, stored, status, limit=limit)
    assert all(uid > last for uid in new.fetch)
    assert list(new.fetch) == sorted(set(new.fetch))
    assert len(new.fetch) + new.skipped == len({uid for uid in found if uid > last})
    assert new.position.last_uid >= max([last, *found])
    again = select_new(found, new.position, status, limit=limit)
    assert again.fetch == ()


def test_latest_posts_the_newest_once_and_covers_them() -> None:
    plan = Baseline(Position(7, 10_000), post_newest=3)
    assert newest_on_baseline([9_998, 10_000, 9_999], plan) == NewMail(
        (9_998, 9_999, 10_000), 0, Position(7, 10_000)
    )
    # a message that arrived between EXAMINE and FETCH is covered by the position
    assert newest_on_baseline([9_999, 10_000, 10_001], plan).position == Position(7, 10_001)
    assert newest_on_baseline([1, 2], Baseline(Position(7, 2), 0)).fetch == ()


def test_rebaseline_notice_says_what_happened_once() -> None:
    notice = rebaseline_notice(Rebaseline(Position(8, 30), 7, 30), "INBOX")
    assert notice == (
        "The mail server renumbered the mailbox INBOX (its UIDVALIDITY changed), so the watch "
        "starts again from now: the 30 messages in it are not posted; new mail will be."
    )
    assert "1 message in it" in rebaseline_notice(Rebaseline(Position(8, 1), 7, 1), "INBOX")


def test_group_for_channels_summarises_a_busy_channel_only() -> None:
    routed = [("#support", f"s{i}") for i in range(11)] + [("#sales", "a"), ("#sales", "b")]
    routed.insert(3, ("#sales", "early"))
    grouped = group_for_channels(routed, limit=10)
    assert grouped == [
        Summary("#support", tuple(f"s{i}" for i in range(11))),
        Post("#sales", "early"),
        Post("#sales", "a"),
        Post("#sales", "b"),
    ]


def test_group_for_channels_posts_each_up_to_the_limit() -> None:
    routed = [("#c", i) for i in range(10)]
    assert group_for_channels(routed) == [Post("#c", i) for i in range(10)]
    assert group_for_channels([]) == []
