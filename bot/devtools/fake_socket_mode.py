"""Slack's Socket Mode, faked: ``apps.connections.open`` and the websocket it hands out.

The protocol, as Slack speaks it and slack_sdk's Socket Mode clients expect it:

1. The app calls ``apps.connections.open`` with its app-level token (``xapp-…``) in the
   ``Authorization`` header and gets a single-use ``wss://`` URL (here ``ws://`` on the fake).
2. On connecting, Slack sends ``{"type": "hello", "num_connections", "debug_info",
   "connection_info"}``.
3. Slack sends each request as an envelope: ``{"envelope_id", "type": "slash_commands" |
   "events_api" | "interactive", "payload", "accepts_response_payload"}`` (events also carry
   ``retry_attempt`` and ``retry_reason``). ``payload`` is what the HTTP request's body
   would have been, as JSON.
4. The app acknowledges each by sending ``{"envelope_id", "payload"?}``. The payload is the
   answer an HTTP request would have got: a slash command's reply, a modal's
   ``response_action``.
5. Slack refreshes connections: it sends ``{"type": "disconnect", "reason":
   "refresh_requested" | "warning" | "link_disabled"}`` and the app opens a new connection
   (slack_sdk closes the old one and connects again at once). Nothing is sent on a
   connection after its ``disconnect``; what arrives meanwhile waits for the new one.
6. Either side pings; the other answers with a pong (aiohttp answers pings here).

Tests drive it through `SocketModeServer.deliver` (send an envelope, await its
acknowledgement) or `send` and `wait_for_ack` apart; `disconnect` and `drop` end
connections the two ways Slack does. Local mode's ``say`` posts what it would have sent
over HTTP to ``POST /devtools/socket-mode``, which delivers it here and answers with the
acknowledgement's payload.
"""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

DEFAULT_APP_TOKEN: Final = "xapp-1-A0001-fake"
LINK_PATH: Final = "/link/"
DELIVER_PATH: Final = "/devtools/socket-mode"
DELIVER_TIMEOUT: Final = 10.0

EnvelopeType = Literal["slash_commands", "events_api", "interactive"]
DisconnectReason = Literal["refresh_requested", "warning", "link_disabled"]
# Interactivity whose answer Slack reads from the acknowledgement, as it reads an HTTP body.
_ANSWERED_IN_ACK: Final = frozenset({"view_submission", "block_suggestion"})


@dataclass(frozen=True)
class Ack:
    """An acknowledgement the app sent: which envelope, the answer in it, which connection."""

    envelope_id: str
    payload: dict[str, Any] | None
    connection: int


@dataclass
class _Envelope:
    message: dict[str, Any]
    sent_on: list[int] = field(default_factory=list)  # connection numbers, one per delivery
    ack: Ack | None = None


@dataclass
class _Connection:
    number: int
    ws: web.WebSocketResponse
    retiring: bool = False  # told to disconnect: nothing more is sent on it


class SocketModeServer:
    """The Socket Mode side of `FakeSlack` (which serves its routes and its Web API method)."""

    def __init__(self, app_token: str = DEFAULT_APP_TOKEN, app_id: str = "A0001") -> None:
        self.app_token = app_token
        self.app_id = app_id
        # Every acknowledgement received, in order, repeats included.
        self.acks: list[Ack] = []
        # Messages from the app that are not acknowledgements of a known envelope.
        self.unexpected: list[str] = []
        self.connections_opened = 0
        self._tickets: set[str] = set()
        self._envelopes: dict[str, _Envelope] = {}
        self._waiting: deque[str] = deque()  # envelope ids with no live connection yet
        self._connections: list[_Connection] = []
        self._changed = asyncio.Condition()

    # ----- apps.connections.open -------------------------------------------------------

    def refusal(self, header_token: str | None) -> str | None:
        """Slack's error for opening a connection with this token (None: accepted).

        Only the ``Authorization`` header counts: Slack refuses the token as a form field.
        """
        if not header_token:
            return "not_authed"
        if not header_token.startswith("xapp-"):
            return "not_allowed_token_type"
        if not secrets.compare_digest(header_token.encode(), self.app_token.encode()):
            return "invalid_auth"
        return None

    def issue_url(self, base_url: str) -> dict[str, Any]:
        """A single-use websocket URL on the fake (the answer of ``apps.connections.open``)."""
        ticket = secrets.token_hex(8)
        self._tickets.add(ticket)
        ws_base = "ws" + base_url.removeprefix("http")
        return {"url": f"{ws_base}{LINK_PATH}?ticket={ticket}&app_id={self.app_id}"}

    # ----- what tests call -------------------------------------------------------------

    async def send(
        self,
        kind: EnvelopeType,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool | None = None,
    ) -> str:
        """Queue an envelope for the app, sent at once on a live connection; its id."""
        envelope_id = f"{len(self._envelopes) + 1:04d}-{secrets.token_hex(6)}"
        if accepts_response_payload is None:
            accepts_response_payload = _accepts_response_payload(kind, payload)
        message: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": copy.deepcopy(payload),
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            message |= {"retry_attempt": 0, "retry_reason": ""}
        self._envelopes[envelope_id] = _Envelope(message)
        self._waiting.append(envelope_id)
        await self._send_waiting()
        return envelope_id

    # The timeout argument is this helper's contract (tests name it), hence the noqa.
    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:  # noqa: ASYNC109
        """Wait for the app to acknowledge the envelope; TimeoutError says where it is."""
        envelope = self._envelopes[envelope_id]
        await self._wait(lambda: envelope.ack is not None, timeout, f"an ack of {envelope_id}")
        return cast(Ack, envelope.ack)

    async def deliver(
        self,
        kind: EnvelopeType,
        payload: dict[str, Any],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Ack:
        """Send an envelope and wait for its acknowledgement."""
        return await self.wait_for_ack(await self.send(kind, payload), timeout)

    async def wait_connected(self, count: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``count`` connections were opened in all, the newest of them live."""

        def connected() -> bool:
            live = self._live()
            return self.connections_opened >= count and live is not None

        await self._wait(connected, timeout, f"{count} connection(s)")

    async def disconnect(self, reason: DisconnectReason = "refresh_requested") -> None:
        """Send ``disconnect`` on every connection, as Slack does before it refreshes one.

        Nothing more is sent on them; what is sent meanwhile waits for the next connection.
        slack_sdk reconnects whatever the reason, so the fake accepts the new connection
        for ``link_disabled`` too (Slack would not, Socket Mode being off).
        """
        for connection in list(self._connections):
            connection.retiring = True
            message = {"type": "disconnect", "reason": reason, "debug_info": _debug_info()}
            await connection.ws.send_json(message)

    async def drop(self) -> None:
        """Close every connection from Slack's side, without a ``disconnect`` first."""
        for connection in list(self._connections):
            connection.retiring = True
            await connection.ws.close()

    def deliveries(self, envelope_id: str) -> list[int]:
        """The connections an envelope was sent on, once per time it was sent."""
        return list(self._envelopes[envelope_id].sent_on)

    @property
    def live_connections(self) -> int:
        """Open connections not told to disconnect."""
        return sum(1 for connection in self._connections if not connection.retiring)

    # ----- the websocket ---------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """The websocket and the devtools delivery route, for `FakeSlack`'s application."""
        return [web.get(LINK_PATH, self._handle_link), web.post(DELIVER_PATH, self._handle_deliver)]

    async def _handle_link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            # A URL is good for one connection; a used or made-up one is refused.
            return web.Response(status=401, text="invalid or used ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections_opened += 1
        connection = _Connection(self.connections_opened, ws)
        await ws.send_json(self._hello())
        async with self._changed:
            self._connections.append(connection)
            self._changed.notify_all()
        await self._send_waiting()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self._receive(connection, message.data)
        finally:
            async with self._changed:
                self._connections.remove(connection)
                self._changed.notify_all()
        return ws

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": len(self._connections) + 1,
            "debug_info": _debug_info() | {"approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }

    async def _receive(self, connection: _Connection, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        envelope = self._envelopes.get(envelope_id) if isinstance(envelope_id, str) else None
        payload = message.get("payload") if isinstance(message, dict) else None
        if envelope is None or not isinstance(payload, dict | None):
            self.unexpected.append(data)
            return
        ack = Ack(cast(str, envelope_id), payload, connection.number)
        async with self._changed:
            self.acks.append(ack)
            envelope.ack = envelope.ack or ack
            self._changed.notify_all()

    def _live(self) -> _Connection | None:
        live = [c for c in self._connections if not c.retiring and not c.ws.closed]
        return live[-1] if live else None

    async def _send_waiting(self) -> None:
        while self._waiting:
            connection = self._live()
            if connection is None:
                return  # sent when the app next connects
            envelope_id = self._waiting.popleft()
            envelope = self._envelopes[envelope_id]
            try:
                await connection.ws.send_str(json.dumps(envelope.message))
            except ConnectionError:
                self._waiting.appendleft(envelope_id)
                connection.retiring = True
                continue
            envelope.sent_on.append(connection.number)

    async def _wait(self, done: Callable[[], bool], within: float, what: str) -> None:
        async with self._changed:
            try:
                async with asyncio.timeout(within):
                    await self._changed.wait_for(done)
            except TimeoutError:
                raise TimeoutError(f"waited {within}s for {what}; {self._state()}") from None

    def _state(self) -> str:
        unacked = [i for i, e in self._envelopes.items() if e.ack is None]
        return (
            f"{self.connections_opened} connection(s) opened, {self.live_connections} live, "
            f"{len(self._waiting)} envelope(s) waiting for a connection, "
            f"not acknowledged: {unacked or 'none'}"
        )

    # ----- local mode: deliver what say would have posted over HTTP -------------------------

    async def _handle_deliver(self, request: web.Request) -> web.Response:
        """Deliver a Slack HTTP request body as an envelope; answer with its ack's payload."""
        envelope = envelope_of(request.content_type, await request.read())
        if envelope is None:
            return web.Response(status=400, text="not a slash command, interaction or event")
        try:
            ack = await self.deliver(*envelope, timeout=DELIVER_TIMEOUT)
        except TimeoutError as error:
            return web.Response(status=504, text=str(error))
        if ack.payload is None:
            return web.Response(status=200)
        return web.json_response(ack.payload)


def envelope_of(content_type: str, raw: bytes) -> tuple[EnvelopeType, dict[str, Any]] | None:
    """What Slack sends over Socket Mode for the body it would have POSTed over HTTP."""
    text = raw.decode("utf-8", "replace")
    try:
        if content_type == "application/json":
            body = json.loads(text)
            return ("events_api", body) if isinstance(body, dict) else None
        form = dict(parse_qsl(text, keep_blank_values=True))
        if "payload" in form:
            payload = json.loads(form["payload"])
            return ("interactive", payload) if isinstance(payload, dict) else None
    except ValueError:
        return None
    return ("slash_commands", form) if "command" in form else None


def _accepts_response_payload(kind: EnvelopeType, payload: dict[str, Any]) -> bool:
    if kind == "slash_commands":
        return True
    return kind == "interactive" and payload.get("type") in _ANSWERED_IN_ACK


def _debug_info() -> dict[str, Any]:
    return {"host": "applink-fake", "build_number": 1}
