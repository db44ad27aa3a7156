"""Which process runs the scheduler: exactly one at a time.

On PostgreSQL every replica tries to take a session-level advisory lock on a connection
of its own; the holder is the leader. If the leader dies or loses that connection,
PostgreSQL releases the lock and another replica takes it at its next try (every
`TRY_EVERY` seconds). The leader also LISTENs on that connection for trigger changes
made through other replicas. On SQLite there is only ever one process: it leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

LOCK_KEY = 0x63686174  # "chat": one advisory lock per database
# Trigger changes are announced to the leader here (see `bot.triggers.scheduling`).
NOTIFY_CHANNEL = "chatops_triggers"
TRY_EVERY = 2.0
PING_TIMEOUT = 5.0


@dataclass
class Leadership:
    """Holds (or keeps trying to take) the scheduler's lock; calls back on changes."""

    dsn: str | None  # None: SQLite, always the leader
    on_elected: Callable[[], Awaitable[None]]
    on_deposed: Callable[[], Awaitable[None]]
    on_notice: Callable[[str], None] = lambda payload: None
    try_every: float = TRY_EVERY
    is_leader: bool = False
    _conn: Any = None
    _task: asyncio.Task[None] | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        if self.dsn is None:
            self.is_leader = True
            await self.on_elected()
            return
        self._task = asyncio.create_task(self._campaign(), name="leadership")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
        await self._resign()

    async def _campaign(self) -> None:
        while not self._stopping.is_set():
            try:
                if self.is_leader:
                    await self._still_leading()
                else:
                    await self._try_to_lead()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                log.warning("leadership: database connection lost (%s)", type(error).__name__)
                await self._resign()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.try_every)

    async def _try_to_lead(self) -> None:
        if self._conn is None:
            self._conn = await asyncpg.connect(self.dsn, timeout=PING_TIMEOUT)
        if not await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
            return
        await self._conn.add_listener(NOTIFY_CHANNEL, self._heard)
        self.is_leader = True
        log.info("leadership: this process now runs the scheduler")
        await self.on_elected()

    async def _still_leading(self) -> None:
        await asyncio.wait_for(self._conn.fetchval("SELECT 1"), PING_TIMEOUT)

    async def _resign(self) -> None:
        was_leader, self.is_leader = self.is_leader, False
        conn, self._conn = self._conn, None
        if was_leader:
            log.info("leadership: this process no longer runs the scheduler")
            await self.on_deposed()
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), PING_TIMEOUT)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                conn.terminate()

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.on_notice(payload)


def postgres_dsn(async_url: str) -> str | None:
    """The plain ``postgresql://`` DSN asyncpg wants, or None for SQLite."""
    scheme, sep, rest = async_url.partition("://")
    if not scheme.startswith("postgres"):
        return None
    return "postgresql" + sep + rest.replace("ssl=", "sslmode=")
