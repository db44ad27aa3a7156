"""Mounting Bolt in our aiohttp server (Bolt does not own the server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest


def bolt_route(bolt: AsyncApp) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler for ``POST /slack/events``: every Slack request goes through Bolt."""

    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        headers = {name: value for name, value in request.headers.items()}
        response = await bolt.async_dispatch(to_bolt_request(raw, request.query_string, headers))
        return await to_aiohttp_response(response)

    return handle


def to_bolt_request(raw: str, query: str, headers: dict[str, str]) -> AsyncBoltRequest:
    """Bolt's request, with its form parsing fixed.

    Bolt (1.30) treats any form body containing the letters "payload" as an interactivity
    payload, so ``/hook template x {{ payload.action }}`` would arrive empty. When that
    happens to a body that has no ``payload`` field, parse the form ourselves.
    """
    request = AsyncBoltRequest(body=raw, query=query, headers=headers)  # type: ignore[arg-type]
    if request.body or "payload" not in raw:
        return request
    fields = dict(parse_qsl(raw, keep_blank_values=True))
    if "payload" not in fields:
        request.body = fields
        request.context = build_async_context(AsyncBoltContext({}), fields)
    return request
