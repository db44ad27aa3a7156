"""``POST /hooks/{token}``: verify, parse, record, answer 202. Nothing else.

Rendering and posting happen later, from the stored row (`bot.webhooks.processor`),
so the sender's timeout is never at risk and a crash after the 202 loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from bot.clock import Clock
from bot.db import Database
from bot.models import Hook
from bot.webhooks import presets
from bot.webhooks.delivery import BadRequest, NewDelivery, parse_body
from bot.webhooks.event import Sender
from bot.webhooks.hooks import HookCache, LiveHook
from bot.webhooks.ingest import DeliveryWriter
from bot.webhooks.verify import Verdict, verify

log = logging.getLogger(__name__)

VERDICT_MESSAGES = {
    Verdict.MISSING: "this hook requires a signature or token, and the request had none",
    Verdict.BAD: "the signature or token does not match this hook's secret",
    Verdict.STALE: "the signature's timestamp is too old (more than 5 minutes)",
}


@dataclass
class RateLimiter:
    """Per hook: a fixed one-minute window of requests, and a daily budget of bytes (UTC
    days). Per process: good enough to protect a channel and the disk."""

    clock: Clock
    _windows: dict[int, tuple[int, int]] = field(default_factory=dict)
    _bytes: dict[int, tuple[int, int]] = field(default_factory=dict)

    def retry_after(self, hook_id: int, limit: int) -> int | None:
        """None if this request may pass, else the seconds until the window reopens."""
        now = self.clock.now().timestamp()
        minute = int(now // 60)
        window, count = self._windows.get(hook_id, (minute, 0))
        if window != minute:
            window, count = minute, 0
        if count >= limit:
            return max(1, int(60 - now % 60))
        self._windows[hook_id] = (window, count + 1)
        return None

    def bytes_retry_after(self, hook_id: int, size: int, budget: int) -> int | None:
        """None if ``size`` more bytes fit in today's budget (and counts them), else the
        seconds until the next UTC day."""
        now = self.clock.now().timestamp()
        day = int(now // 86400)
        window, used = self._bytes.get(hook_id, (day, 0))
        if window != day:
            window, used = day, 0
        if used + size > budget:
            return max(1, int(86400 - now % 86400))
        self._bytes[hook_id] = (window, used + size)
        return None


@dataclass
class Receiver:
    """The webhook endpoint's behaviour, wired by the composition root."""

    db: Database
    clock: Clock
    hooks: HookCache
    writer: DeliveryWriter
    limiter: RateLimiter
    max_body: int
    default_rate_limit: int
    max_bytes_per_day: int = 200 << 20
    on_outcome: Callable[[str, str], None] = lambda hook, outcome: None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        live = await self.hooks.by_token(request.match_info["token"])
        if live is None or live.hook.id is None:
            return _error(404, "no hook has this URL; it may have been deleted or rotated")
        if (request.content_length or 0) > self.max_body:
            return _too_large(self.max_body)
        try:
            body = await _read_capped(request, self.max_body)
        except (RequestPayloadError, HttpProcessingError):
            response = _error(400, "the body could not be read (is its Content-Encoding right?)")
            response.force_close()  # the rest of the stream is unreadable: don't reuse it
            return response
        if body is None:
            return _too_large(self.max_body)
        return await self._accept(live, request, body)

    async def _accept(
        self, live: LiveHook, request: web.Request, body: bytes
    ) -> web.StreamResponse:
        hook = live.hook
        assert hook.id is not None
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            payload = parse_body(headers.get("content-type", ""), body)
        except BadRequest as error:
            return _error(400, str(error))
        sender = _sender_of(hook, headers, payload)
        verdict = verify(sender, live.signing_secret, body, headers, self.clock.now().timestamp())
        if verdict is not Verdict.OK:
            self.writer.count_rejection(hook.id, self.clock.now())
            self.on_outcome(hook.name, "rejected")
            return _error(401, VERDICT_MESSAGES[verdict])
        # Counted only once verified, so forged requests cannot use up the sender's budget.
        wait = self.limiter.retry_after(hook.id, hook.rate_limit or self.default_rate_limit)
        if wait is not None:
            self.on_outcome(hook.name, "rate_limited")
            return _error(429, "rate limit for this hook exceeded", {"Retry-After": str(wait)})
        wait = self.limiter.bytes_retry_after(hook.id, len(body), self.max_bytes_per_day)
        if wait is not None:
            self.on_outcome(hook.name, "rate_limited")
            return _error(
                429,
                f"this hook has received more than {self.max_bytes_per_day} bytes today",
                {"Retry-After": str(wait)},
            )
        delivery = NewDelivery.received(hook, sender, headers, payload, body, self.clock.now())
        recorded = await self.writer.record(delivery, hook, payload)
        self.on_outcome(hook.name, "duplicate" if recorded.duplicate else "accepted")
        return web.json_response(
            {"ok": True, "delivery": recorded.id, "duplicate": recorded.duplicate}, status=202
        )


def _sender_of(hook: Hook, headers: Mapping[str, str], payload: Any) -> Sender:
    if hook.preset != "auto":
        return hook.preset  # type: ignore[return-value]  # validated when set
    return presets.detect_sender(headers, payload)


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """Read the body, or None as soon as it is larger than ``limit`` (not reading the rest)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> web.Response:
    return _error(413, f"the body is larger than this bot accepts ({limit} bytes)")


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    response = web.json_response({"ok": False, "error": message}, status=status, headers=headers)
    if status == 413:
        response.force_close()
    return response
