"""A daily token budget per workspace.

The budget counts the tokens each workspace spent on the current UTC day; once the count
reaches the limit, AI steps fall back to rules until midnight UTC. Days are keys, so the
reset needs no timer: a new day starts a new count. Storage is an interface
(:class:`UsageStore`) so the database can keep the counts across replicas; the check and
the record are separate, so requests already in flight may overshoot by their size.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Protocol

DEFAULT_DAILY_TOKENS: Final = 200_000


class UsageStore(Protocol):
    """Tokens spent per workspace and UTC day."""

    async def used(self, team: str, day: date) -> int:
        """Tokens ``team`` spent on ``day`` (0 when nothing was recorded)."""
        ...

    async def add(self, team: str, day: date, tokens: int) -> None:
        """Add ``tokens`` to what ``team`` spent on ``day`` (atomically, when shared)."""
        ...


class InMemoryUsageStore:
    """A :class:`UsageStore` in a dict: for tests and a single process."""

    def __init__(self) -> None:
        self._tokens: Counter[tuple[str, date]] = Counter()

    async def used(self, team: str, day: date) -> int:
        return self._tokens[(team, day)]

    async def add(self, team: str, day: date, tokens: int) -> None:
        self._tokens[(team, day)] += tokens


def budget_day(now: datetime) -> date:
    """The UTC day whose budget applies at the aware instant ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).date()


def next_reset(now: datetime) -> datetime:
    """The next midnight UTC after ``now``: when a spent budget is available again."""
    return datetime.combine(budget_day(now) + timedelta(days=1), time(), UTC)


def status_text(used: int, limit: int) -> str:
    """The line for ``/trigger status``."""
    if used >= limit:
        return "AI budget spent; rules until 00:00 UTC"
    return f"AI: {used:,} of {limit:,} tokens used today"


@dataclass(frozen=True)
class TokenBudget:
    """``limit`` tokens per workspace per UTC day, counted in ``store``."""

    store: UsageStore
    limit: int = DEFAULT_DAILY_TOKENS

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError(f"the daily token limit must not be negative, got {self.limit}")

    async def may_spend(self, team: str, now: datetime) -> bool:
        """True while ``team`` has tokens left today."""
        return await self.used(team, now) < self.limit

    async def record(self, team: str, tokens: int, now: datetime) -> None:
        """Count ``tokens`` (what a request cost, failed ones included) against today."""
        if tokens < 0:
            raise ValueError(f"tokens must not be negative, got {tokens}")
        if tokens:
            await self.store.add(team, budget_day(now), tokens)

    async def used(self, team: str, now: datetime) -> int:
        """Tokens ``team`` spent today (UTC)."""
        return await self.store.used(team, budget_day(now))

    async def status(self, team: str, now: datetime) -> str:
        """``"AI: 12,340 of 200,000 tokens used today"`` or that the budget is spent."""
        return status_text(await self.used(team, now), self.limit)
