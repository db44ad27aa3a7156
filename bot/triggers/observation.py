"""What one run of a check saw.

A check never raises for an expected failure (timeout, refused connection, bad status,
unparseable feed): it returns an `Observation` with ``ok=False`` and a one-line summary.
The pure decision code in `bot.triggers.evaluate` turns a stream of observations into
the few reports worth posting.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FeedItem:
    """One entry of an RSS or Atom feed, identified by guid/id, falling back to link."""

    id: str
    title: str
    link: str | None = None
    summary: str | None = None
    published: str | None = None


@dataclass(frozen=True)
class Observation:
    """The result of one check run.

    ``ok`` is True when there is no problem (for `json` triggers: the expression is false).
    ``summary`` is one short human line ("HTTP 503 in 120 ms", "timed out after 10 s").
    ``items`` holds every entry a feed currently lists, newest first (rss only); the
    evaluator decides which are new.
    """

    ok: bool
    summary: str
    duration_ms: float = 0.0
    status: int | None = None
    items: tuple[FeedItem, ...] = field(default_factory=tuple)
