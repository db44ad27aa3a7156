"""What to do on each run of a mailbox watch: pure decisions, no I/O.

A watch remembers a `Position`: the mailbox's UIDVALIDITY and the highest UID already
handled. IMAP assigns UIDs in increasing order and never reuses one while UIDVALIDITY
stays the same, so "new" is exactly "UID above the position".

A run goes in two steps, each a function here:

1. `plan_run(stored, status, latest=N)`, from what EXAMINE reported:
   * `Baseline`  first run: record the position, post nothing (or the newest N once);
   * `Rebaseline` UIDVALIDITY changed (the mailbox was rebuilt): record the new position
     and say so once, rather than posting everything again;
   * `Unchanged` the next UID has not moved: no search needed;
   * `LookForNew` search for UIDs above the stored position.
2. `select_new(found_uids, stored, status)`: which of the UIDs the server returned are
   new (servers answer ``UID n:*`` with the last message even when its UID is below n),
   oldest first, at most `MAX_FETCH` of them (the rest are counted, not fetched), and the
   position to store.

After routing, `group_for_channels` turns (channel, message) pairs into one post per
message, or a `Summary` for a channel that got more than `MAX_POSTS_PER_CHANNEL`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

# A run fetches and parses at most this many new messages; older ones beyond it are
# counted in `NewMail.skipped` (a mailbox that received 5,000 messages while the bot was
# down gets one summary, not 5,000 fetches).
MAX_FETCH = 50
# More new messages than this for one channel in one run become one summary post.
MAX_POSTS_PER_CHANNEL = 10

M = TypeVar("M")


@dataclass(frozen=True)
class Position:
    """Where a watch is: the mailbox's UIDVALIDITY and the highest UID handled."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class MailboxStatus:
    """What EXAMINE reported: UIDVALIDITY, the next UID to be assigned, message count."""

    uidvalidity: int
    uidnext: int
    exists: int

    def position(self) -> Position:
        """The position just past every message the mailbox holds now."""
        return Position(self.uidvalidity, max(self.uidnext - 1, 0))


@dataclass(frozen=True)
class Baseline:
    """First run: store ``position``; post the newest ``post_newest`` messages once."""

    position: Position
    post_newest: int


@dataclass(frozen=True)
class Rebaseline:
    """The mailbox was rebuilt: store ``position`` and tell the channel once."""

    position: Position
    previous_uidvalidity: int
    exists: int


@dataclass(frozen=True)
class Unchanged:
    """Nothing arrived since ``position``."""

    position: Position


@dataclass(frozen=True)
class LookForNew:
    """Search the mailbox for UIDs above the stored ``position``."""

    position: Position

    @property
    def after_uid(self) -> int:
        """The highest UID already handled."""
        return self.position.last_uid


Plan = Baseline | Rebaseline | Unchanged | LookForNew


def plan_run(stored: Position | None, status: MailboxStatus, *, latest: int = 0) -> Plan:
    """Decide the first step of a run from the stored position and EXAMINE's answer."""
    if stored is None:
        return Baseline(status.position(), post_newest=max(latest, 0))
    if stored.uidvalidity != status.uidvalidity:
        return Rebaseline(status.position(), stored.uidvalidity, status.exists)
    if status.uidnext <= stored.last_uid:
        # UIDs only grow under one UIDVALIDITY; a server that went back has been reset
        # without saying so. Start again from where it is rather than wait forever.
        return Rebaseline(status.position(), stored.uidvalidity, status.exists)
    if status.uidnext == stored.last_uid + 1:
        return Unchanged(stored)
    return LookForNew(stored)


def rebaseline_notice(plan: Rebaseline, mailbox: str) -> str:
    """The one line a channel gets when its mailbox was rebuilt."""
    held = f"{plan.exists} message{'s' if plan.exists != 1 else ''}"
    return (
        f"The mail server renumbered the mailbox {mailbox} (its UIDVALIDITY changed), so "
        f"the watch starts again from now: the {held} in it are not posted; new mail will be."
    )


@dataclass(frozen=True)
class NewMail:
    """UIDs to fetch (oldest first), how many newer-than-position UIDs were left out,
    and the position to store once they are handled."""

    fetch: tuple[int, ...]
    skipped: int
    position: Position


def select_new(
    found: Iterable[int], stored: Position, status: MailboxStatus, *, limit: int = MAX_FETCH
) -> NewMail:
    """The new UIDs among ``found`` (the answer to ``UID SEARCH UID n:*``).

    The newest ``limit`` are fetched, so a flood shows its latest messages; the position
    moves past everything found and past UIDNEXT-1 (messages that arrived and were
    deleted between runs are not searched for again).
    """
    new = sorted({uid for uid in found if uid > stored.last_uid})
    chosen = new[-limit:] if limit > 0 else []
    last = max([stored.last_uid, status.uidnext - 1, *new])
    return NewMail(tuple(chosen), len(new) - len(chosen), Position(stored.uidvalidity, last))


def newest_on_baseline(found: Iterable[int], plan: Baseline) -> NewMail:
    """For ``latest=N``: the newest N UIDs found, oldest first; the position covers them."""
    newest = sorted(set(found))[-plan.post_newest :] if plan.post_newest > 0 else []
    last = max([plan.position.last_uid, *newest])
    return NewMail(tuple(newest), 0, Position(plan.position.uidvalidity, last))


@dataclass(frozen=True)
class Post(Generic[M]):
    """One message posted on its own."""

    channel: str
    message: M


@dataclass(frozen=True)
class Summary(Generic[M]):
    """Many messages for one channel in one run, posted as one summary (oldest first)."""

    channel: str
    messages: tuple[M, ...]


def group_for_channels(
    routed: Sequence[tuple[str, M]], *, limit: int = MAX_POSTS_PER_CHANNEL
) -> list[Post[M] | Summary[M]]:
    """Posts in arrival order; a channel with more than ``limit`` gets one `Summary`
    (placed where its first message would have been)."""
    by_channel: dict[str, list[M]] = {}
    for channel, message in routed:
        by_channel.setdefault(channel, []).append(message)
    out: list[Post[M] | Summary[M]] = []
    summarised: set[str] = set()
    for channel, message in routed:
        if len(by_channel[channel]) <= limit:
            out.append(Post(channel, message))
        elif channel not in summarised:
            summarised.add(channel)
            out.append(Summary(channel, tuple(by_channel[channel])))
    return out
