"""Mounting Bolt in our aiohttp server (Bolt does not own the server)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.slack.signing import is_valid_slack_signature

log = logging.getLogger(__name__)


def bolt_route(
    bolt: AsyncApp, signing_secret: str
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler for ``POST /slack/events``: every Slack request goes through Bolt.

    The signature is checked here first, on the raw bytes, because Bolt decodes and
    parses the body before its own check: a forged body it could not parse was a 500.
    (Slack signs with wall-clock time, so the check uses it too, as Bolt's does.)
    """

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()  # over aiohttp's client_max_size (1 MiB) is a 413
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        signed = is_valid_slack_signature(
            signing_secret, timestamp, body, signature, now=time.time()
        )
        if not signed:
            if _is_ssl_check(body):  # Slack's certificate check is unsigned; it wants a 200
                return web.Response(status=200)
            return web.json_response({"error": "invalid or missing Slack signature"}, status=401)
        headers = {name: value for name, value in request.headers.items()}
        try:
            bolt_request = to_bolt_request(body.decode("utf-8"), request.query_string, headers)
        except (ValueError, AttributeError, TypeError):  # not UTF-8, JSON, or a JSON object
            return web.json_response({"error": "the body could not be parsed"}, status=400)
        problem = payload_problem(bolt_request.body)
        if problem is not None:
            return web.json_response({"error": f"malformed payload: {problem}"}, status=400)
        try:
            response = await bolt.async_dispatch(bolt_request)
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            # A signed payload of a shape Slack never sends; our listeners catch their own.
            log.warning("a signed Slack payload could not be dispatched (%r)", error)
            return web.json_response({"error": "malformed payload"}, status=400)
        return await to_aiohttp_response(response)

    return handle


def payload_problem(body: Mapping[str, Any]) -> str | None:
    """What is wrong with the shape of a signed interactivity payload, or None.

    Slack always sends these fields with these types; a payload that does not is answered
    400 here rather than failing somewhere inside Bolt.
    """
    if "type" in body and not isinstance(body["type"], str):
        return "type must be a string"
    checks = (
        ("actions", _is_list_of_objects, "actions must be a list of objects"),
        ("view", _is_view, "view must be an object with a type"),
        ("user", _is_object_or_text, "user must be an object"),
        ("team", _is_object_or_text, "team must be an object"),
        ("container", _is_object, "container must be an object"),
        ("event", _is_object, "event must be an object"),
        ("channel", _is_object_or_text, "channel must be an object"),
    )
    for key, is_ok, problem in checks:
        if key in body and body[key] is not None and not is_ok(body[key]):
            return problem
    return None


def _is_object(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_object_or_text(value: Any) -> bool:
    return isinstance(value, Mapping | str)


def _is_list_of_objects(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, Mapping) and isinstance(item.get("action_id", ""), str) for item in value
    )


def _is_view(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("type"), str)


def _is_ssl_check(body: bytes) -> bool:
    # Answered here rather than passed to Bolt, so no unsigned body ever reaches it.
    return dict(parse_qsl(body.decode("utf-8", "replace"))).get("ssl_check") == "1"


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
