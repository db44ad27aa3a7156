"""Group commit: many concurrent callers, one transaction per round.

Each caller awaits its own result, but everything submitted while one write is running
goes into the next write together. There is no timer: a lone item is written at once,
and under load the batches grow by themselves. This is what keeps a durable write per
webhook or per trigger run from costing a whole transaction each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    done: asyncio.Future[R]


@dataclass
class GroupCommit(Generic[T, R]):
    """Calls ``write(items)`` (which returns one result per item, in order) in rounds."""

    write: Callable[[list[T]], Awaitable[list[R]]]
    max_batch: int = 200
    _queue: list[_Waiting[T, R]] = field(default_factory=list)
    _writing: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Queue ``item``; return its result once the round that wrote it has committed."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(item, done))
        self.kick()
        return await done

    def kick(self) -> None:
        """Start a round if none is running (also for writers with side work to flush)."""
        if self._writing is None:
            self._writing = asyncio.create_task(self._write_rounds())

    async def flush(self) -> None:
        """Wait until everything submitted so far is written."""
        while self._writing is not None:
            await asyncio.shield(self._writing)

    async def _write_rounds(self) -> None:
        try:
            while True:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._write_round(batch)
                if not self._queue:
                    break
        finally:
            self._writing = None

    async def _write_round(self, batch: list[_Waiting[T, R]]) -> None:
        try:
            results = await self.write([waiting.item for waiting in batch])
        except Exception as error:
            log.exception("writing a batch of %d failed", len(batch))
            for waiting in batch:
                if not waiting.done.done():
                    waiting.done.set_exception(error)
            return
        for waiting, result in zip(batch, results, strict=True):
            if not waiting.done.done():
                waiting.done.set_result(result)
