"""Limits on what people may start by hand, so nobody can flood a channel through the bot.

Per process (like the webhook rate limit): a trigger runs by hand once at a time, and a
person may start at most `PER_PERSON_PER_MINUTE` manual runs or hook tests a minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from bot.clock import Clock
from bot.errors import UsageError

PER_PERSON_PER_MINUTE: Final = 6


@dataclass
class ManualLimits:
    """Who started what by hand, and what is still running."""

    clock: Clock
    per_minute: int = PER_PERSON_PER_MINUTE
    _started: dict[str, list[float]] = field(default_factory=dict)
    _running: set[str] = field(default_factory=set)

    def admit(self, user_id: str, thing: str) -> None:
        """Count one start by ``user_id`` of ``thing``; `UsageError` when it must wait."""
        if thing in self._running:
            raise UsageError("That is running already; I'll tell you the result when it ends.")
        now = self.clock.now().timestamp()
        recent = [t for t in self._started.get(user_id, []) if now - t < 60]
        if len(recent) >= self.per_minute:
            wait = int(60 - (now - recent[0])) + 1
            raise UsageError(
                f"You have started {len(recent)} runs and tests in the last minute; "
                f"please wait {wait} s."
            )
        self._started[user_id] = [*recent, now]
        if len(self._started) > 10_000:
            self._started = {user_id: self._started[user_id]}

    def running(self, thing: str) -> None:
        """``thing`` started running (until `finished`)."""
        self._running.add(thing)

    def finished(self, thing: str) -> None:
        self._running.discard(thing)
