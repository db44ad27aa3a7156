"""Work started now and finished later, kept track of so that shutdown can end it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class BackgroundTasks:
    """Tasks that outlive the request that started them (a manual run, a Home refresh)."""

    _tasks: set[asyncio.Future[Any]] = field(default_factory=set)

    def spawn(self, work: Awaitable[Any]) -> None:
        """Run ``work`` in the background; an exception it raises is logged, not lost."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    @property
    def in_flight(self) -> int:
        """How many tasks are still running."""
        return len(self._tasks)

    async def stop(self) -> None:
        """Cancel what is still running and wait for it to end."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
