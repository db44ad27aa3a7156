"""Time as a dependency: production reads the system clock, tests move a fake one.

Everything that waits (outbox backoff, Retry-After, pacing) waits through the clock, so
a test can advance thirty seconds of Slack rate limiting without sleeping.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """The current time as an aware UTC datetime, and a way to wait for it to pass."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that moves only when told to. Sleepers wake when it passes their deadline."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + timedelta(seconds=seconds), future))
        await future

    def advance(self, delta: timedelta | float) -> None:
        """Move time forward and wake everyone whose deadline has passed."""
        self.set(self._now + (delta if isinstance(delta, timedelta) else timedelta(seconds=delta)))

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (never backwards) and wake everyone whose deadline has passed."""
        self._now = max(self._now, when)
        due = [(when, fut) for when, fut in self._sleepers if when <= self._now]
        self._sleepers = [(when, fut) for when, fut in self._sleepers if when > self._now]
        for _, future in due:
            if not future.done():
                future.set_result(None)


async def sleep_or_wake(clock: Clock, seconds: float, wake: asyncio.Event) -> None:
    """Wait until ``seconds`` pass on ``clock`` or ``wake`` is set, whichever is first."""
    if wake.is_set():
        return
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiter = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waiter.cancel()
