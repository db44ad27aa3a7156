"""A small HTTP server standing in for another system (a CRM, an inventory) in tests
of actions: it records every request and answers as told."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Target:
    """A small HTTP server standing in for another system: it records every request and
    answers with the statuses queued in ``answers`` (then ``default``)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    default: tuple[int, dict[str, str], str] = (201, {}, '{"id": "lead-1"}')
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    hang: int = 0  # how many requests (the first ones) get no answer until `release`
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(
            Received(request.method, request.path_qs, dict(request.headers), await request.read())
        )
        self.arrived.set()
        if len(self.received) <= self.hang:
            await self.release.wait()
        status, headers, text = self.answers.pop(0) if self.answers else self.default
        return web.Response(status=status, headers=headers, text=text)

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@asynccontextmanager
async def serving_target() -> AsyncIterator[Target]:
    """A `Target` listening on an ephemeral loopback port until the block ends."""
    found = Target()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield found
    finally:
        found.release.set()
        await runner.cleanup()
