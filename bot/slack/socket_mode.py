"""Socket Mode: Slack's requests over a websocket the bot opens, for setups without a
public URL. Each envelope goes through Bolt as ``POST /slack/events`` would send it, and
its acknowledgement carries the answer an HTTP response would have.

slack_sdk's aiohttp client does the protocol: ``apps.connections.open`` with the app-level
token (through the bot's Web API client, so at ``SLACK_API_URL``), the websocket, pings,
and a new connection when Slack sends ``disconnect``. What arrives while it reconnects
waits at Slack; events Slack retries are answered once (`listeners` skips repeats).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

import aiohttp
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.adapter.socket_mode.internals import build_headers
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError
from bot.slack.http import payload_problem

log = logging.getLogger(__name__)

PING_SECONDS: Final = 10.0
# How long stopping waits for envelopes being handled, so that their answers still go out.
DRAIN_SECONDS: Final = 10.0
# Slack's answers to apps.connections.open that no retry can fix.
_TOKEN_REFUSED: Final = frozenset(
    {"not_authed", "invalid_auth", "not_allowed_token_type", "token_revoked", "account_inactive"}
)


class SocketMode:
    """The bot's Socket Mode connection: `start` opens it, `stop` closes it."""

    def __init__(self, bolt: AsyncApp, app_token: str, web: AsyncWebClient) -> None:
        self._bolt = bolt
        self._app_token = app_token
        self._web = web
        self._client: SocketModeClient | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Ask Slack for a connection and open it in the background.

        A token Slack refuses stops start-up (`ConfigError`); an unreachable Slack does
        not: the client keeps trying, as it does after losing a connection.
        """
        client = SocketModeClient(
            app_token=self._app_token,
            logger=logging.getLogger("slack_sdk.socket_mode"),
            web_client=self._web,
            ping_interval=PING_SECONDS,
        )
        client.socket_mode_request_listeners.append(self._handle)
        client.message_listeners.append(_log_connection_news)
        try:
            await _ask_for_url(client)
        except ConfigError:
            await client.close()  # type: ignore[no-untyped-call]
            raise
        self._client = client
        connecting = client.connect()  # type: ignore[no-untyped-call]
        self._connecting = asyncio.create_task(connecting, name="socket-mode-connect")

    @property
    def in_hand(self) -> int:
        """Envelopes being handled now (their acknowledgements not sent yet)."""
        return len(self._handling)

    async def stop(self) -> None:
        """Finish the envelopes being handled (their answers go out), then disconnect."""
        if self._handling:
            await asyncio.wait(set(self._handling), timeout=DRAIN_SECONDS)
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)

    async def _handle(self, client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handling.add(task)
        try:
            await _dispatch(self._bolt, client, request)
        finally:
            self._handling.discard(task)


async def _ask_for_url(client: SocketModeClient) -> None:
    """Call ``apps.connections.open`` once now, so that a refused token stops start-up
    (`ConfigError`) instead of being retried for ever; other failures are left to the
    client's own retries."""
    try:
        opened = await client.web_client.apps_connections_open(app_token=client.app_token)
        client.wss_uri = str(opened["url"])
    except SlackApiError as error:
        # (slack_sdk's own issue_new_wss_url fails on a 5xx's plain-text body.)
        data = error.response.data
        code = (
            str(data.get("error"))
            if isinstance(data, dict)
            else f"HTTP {error.response.status_code}"
        )
        if code in _TOKEN_REFUSED:
            raise ConfigError(
                f"Slack refused SLACK_APP_TOKEN for Socket Mode ({code}); it must be an "
                "app-level token (xapp-…) with the connections:write scope"
            ) from None
        log.warning("Socket Mode: Slack answered %s; retrying", code)
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        log.warning("Socket Mode: Slack unreachable (%s); retrying", type(error).__name__)


async def _dispatch(
    bolt: AsyncApp, client: AsyncBaseSocketModeClient, request: SocketModeRequest
) -> None:
    """One envelope through Bolt, as `bot.slack.http.bolt_route` handles one request."""
    problem = payload_problem(request.payload)
    if problem is not None:
        log.warning("Socket Mode %s envelope refused: %s", request.type, problem)
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id))
        return
    bolt_request = AsyncBoltRequest(
        mode="socket_mode",
        body=request.payload,
        headers=build_headers(request),
    )
    try:
        response = await bolt.async_dispatch(bolt_request)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        # A payload of a shape Slack never sends; our listeners catch their own errors.
        log.warning("a Socket Mode %s envelope could not be dispatched (%r)", request.type, error)
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id))
        return
    if response.status != 200:
        # Bolt's helper acknowledges only a 200: an envelope no listener takes (404) would
        # be sent again and again. Over HTTP the status answers; here the ack must.
        log.info("a Socket Mode %s envelope was not handled (%s)", request.type, response.status)
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id))
        return
    await send_async_response(client, request, response, 0.0)


async def _log_connection_news(
    _client: AsyncBaseSocketModeClient, message: dict[str, Any], _raw: str | None
) -> None:
    """Say when Slack greets a new connection or asks for another (the SDK's own lines are
    at INFO on a logger kept at WARNING, because at DEBUG it logs every payload)."""
    if message.get("type") == "hello":
        log.info("connected to Slack over Socket Mode")
    elif message.get("type") == "disconnect":
        log.info("Slack asked for a new Socket Mode connection (%s)", message.get("reason"))
