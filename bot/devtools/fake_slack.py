"""A local fake of the Slack Web API: a real aiohttp server for tests and local mode.

Point ``AsyncWebClient(token=..., base_url=fake.url)`` at it and slack_sdk's own client code
runs unmodified: JSON, form and query-string arguments, ``ok: false`` errors, 429 with
``Retry-After`` and plain-text 5xx answers all look the way Slack sends them.

Socket Mode (``apps.connections.open`` and its websocket) is ``fake.socket_mode``, a
`bot.devtools.fake_socket_mode.SocketModeServer`.

Run it by hand with ``python -m bot.devtools.fake_slack --port 9999``; it prints every call.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Self, TypedDict
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.devtools.fake_socket_mode import DEFAULT_APP_TOKEN, SocketModeServer

RESPONSE_URL_METHOD: Final = "response_url"
DEFAULT_TOKEN: Final = "xoxb-fake"

# Form-encoded requests carry these as JSON strings; the error is what Slack answers when
# the string does not parse.
_JSON_FORM_FIELDS: Final = {
    "blocks": "invalid_blocks_format",
    "attachments": "invalid_attachments",
    "view": "invalid_arguments",
    "metadata": "invalid_metadata_format",
}
_CONTENT_FIELDS: Final = ("text", "blocks", "attachments", "metadata")
_SURFACES_KEPT: Final = 200
_FIRST_TS_MICROS: Final = 1_700_000_000_000_100
_TS_STEP_MICROS: Final = 100


class FakeSlackError(Exception):
    """A Slack API error inside the fake; answered as ``{"ok": false, "error": error}``."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class ChannelInfo(TypedDict):
    """What the fake knows about a channel. ``members`` None: everyone in the workspace."""

    name: str
    is_private: bool
    is_member: bool
    members: list[str] | None


@dataclass(frozen=True)
class Call:
    """One request the fake received, as recorded (failed ones included).

    ``args`` holds query, form and JSON arguments merged, with ``token`` removed and form
    JSON fields decoded. ``headers`` has the Authorization value redacted. ``error`` is the
    Slack error code answered (None on success and on plain-text HTTP errors).
    """

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int
    error: str | None = None
    path: str = ""

    @property
    def ok(self) -> bool:
        """True when Slack would have answered ``ok: true`` (or ``ok`` for a response_url)."""
        return self.status == HTTPStatus.OK and self.error is None


@dataclass(frozen=True)
class _Parsed:
    args: dict[str, Any]
    token: str | None
    error: str | None
    header_token: str | None = None  # the token if it came in the Authorization header


@dataclass(frozen=True)
class _Outcome:
    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def to_response(self) -> web.Response:
        if isinstance(self.body, str):
            return web.Response(
                status=self.status, text=self.body, content_type="text/plain", headers=self.headers
            )
        return web.json_response(self.body, status=self.status, headers=self.headers)


@dataclass(frozen=True)
class _Failure:
    remaining: int
    status: int
    error: str | None
    retry_after: int | None
    method: str | None

    def matches(self, method: str) -> bool:
        return self.method is None or self.method == method

    def outcome(self) -> _Outcome:
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        if self.error is not None:
            return _Outcome(HTTPStatus.OK, {"ok": False, "error": self.error}, headers, self.error)
        if self.status == HTTPStatus.TOO_MANY_REQUESTS:
            # Slack always tells a rate-limited client how long to back off.
            headers = {"Retry-After": str(self.retry_after or 1)}
            return _Outcome(
                self.status, {"ok": False, "error": "ratelimited"}, headers, "ratelimited"
            )
        return _Outcome(self.status, HTTPStatus(self.status).phrase, headers)


Handler = Callable[[dict[str, Any]], dict[str, Any]]


def tz_offset_seconds(tz: str, now: datetime) -> int:
    """Slack's ``tz_offset``: UTC offset of zone ``tz`` at the aware instant ``now``, in s."""
    offset = now.astimezone(ZoneInfo(tz)).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def format_call(call: Call) -> str:
    """One terminal line describing a call (used by local mode and ``main``)."""
    args = json.dumps(call.args, ensure_ascii=False, sort_keys=True)
    return f"[fake slack] {call.status} {call.method} {args}"


class FakeSlack:
    """A fake Slack Web API server with plausible workspace state and failure injection."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        on_post: Callable[[Call], None] | None = None,
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        *,
        bot_id: str = "B0001",
        latency: float = 0,
        app_token: str = DEFAULT_APP_TOKEN,
    ) -> None:
        self.token = token
        # Socket Mode: apps.connections.open (with the app-level token) and its websocket.
        self.socket_mode = SocketModeServer(app_token)
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.latency = latency
        # Seconds some methods take to answer (``fake.slow["views.publish"] = 2.5``).
        self.slow: dict[str, float] = {}
        self.calls: list[Call] = []
        self.channels: dict[str, ChannelInfo] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        # What people would see, newest last: messages (and each edit), ephemeral
        # messages and views. Local mode's `say --click` and `--submit` read them.
        self.surfaces: list[dict[str, Any]] = []
        self._surface_number = 0
        self._on_post = on_post
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._home_view_ids: dict[str, str] = {}
        self._used_trigger_ids: set[str] = set()
        self._failures: list[_Failure] = []
        self._next_ts_micros = _FIRST_TS_MICROS
        self._next_view_number = 1
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._handlers: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "reactions.add": self._reactions_add,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.list": self._conversations_list,
            "conversations.members": self._conversations_members,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
        }
        self._seed()

    # ----- lifecycle -------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving; ``port=0`` binds a free ephemeral port (see ``url``)."""
        runner = web.AppRunner(self._make_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        self._url = _base_url(runner.addresses[0])

    async def stop(self) -> None:
        """Stop serving and release the port."""
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The ``base_url`` for slack_sdk, e.g. ``http://127.0.0.1:PORT/api/``."""
        return self.base_url + "/api/"

    @property
    def base_url(self) -> str:
        """Where the fake listens, e.g. ``http://127.0.0.1:PORT`` (``/devtools/surfaces``
        is there, besides the Web API under ``/api/``)."""
        if self._url is None:
            raise RuntimeError("FakeSlack is not started")
        return self._url

    def response_url(self, response_id: str) -> str:
        """A ``response_url`` on this fake, as Slack would put in a slash command or action."""
        if self._url is None:
            raise RuntimeError("FakeSlack is not started")
        return f"{self._url}/response/{response_id}"

    # ----- workspace set-up ------------------------------------------------------------

    def add_channel(
        self,
        channel_id: str,
        name: str,
        is_private: bool = False,
        is_member: bool = True,
        *,
        members: Sequence[str] | None = None,
    ) -> None:
        """Make a channel known (replacing any channel with the same id).

        ``members`` are the people in it (``conversations.members``); None means everyone
        the workspace has. A DM (an id starting with D) is with the user named ``name``.
        """
        self.channels[channel_id] = ChannelInfo(
            name=name,
            is_private=is_private,
            is_member=is_member,
            members=None if members is None else list(members),
        )

    def add_user(
        self,
        user_id: str,
        tz: str = "UTC",
        is_admin: bool = False,
        *,
        is_owner: bool = False,
        real_name: str | None = None,
        name: str | None = None,
        is_bot: bool = False,
    ) -> None:
        """Make a user known to ``users.info``; ``tz`` must be an IANA zone name."""
        ZoneInfo(tz)  # fail here, not later inside a request, on a bad zone name
        display = real_name or user_id
        self.users[user_id] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name or user_id.lower(),
            "real_name": display,
            "tz": tz,
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_bot": is_bot,
            "deleted": False,
            "profile": {"real_name": display, "display_name": name or ""},
        }

    def _seed(self) -> None:
        self.add_channel("C0001", "general")
        self.add_channel("C0002", "ops")
        self.add_user("U0001", tz="Europe/Berlin", real_name="Ada Example", name="ada")
        self.add_channel("D0001", "U0001", is_private=True)  # the bot's DM with U0001
        self.add_user(self.bot_user_id, real_name="Chat-ops Bot", name="chatops-bot", is_bot=True)

    # ----- failure injection -----------------------------------------------------------

    def fail_next(
        self,
        n: int,
        *,
        status: int = 500,
        error: str | None = None,
        retry_after: int | None = None,
        method: str | None = None,
    ) -> None:
        """Make the next ``n`` calls (to ``method`` only, if given) fail.

        With ``error``: HTTP 200 ``{"ok": false, "error": error}``. Otherwise ``status=429``
        answers ``ratelimited`` with ``Retry-After`` (default 1 s), and 5xx a plain-text body.
        Failed calls are recorded but change no state.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if error is None and not _is_injectable_status(status):
            raise ValueError(f"status must be 429 or 5xx without an error, got {status}")
        self._failures.append(_Failure(n, status, error, retry_after, method))

    def _take_failure(self, method: str) -> _Failure | None:
        for index, failure in enumerate(self._failures):
            if failure.matches(method):
                self._consume_failure(index, failure)
                return failure
        return None

    def _consume_failure(self, index: int, failure: _Failure) -> None:
        if failure.remaining == 1:
            del self._failures[index]
        else:
            self._failures[index] = replace(failure, remaining=failure.remaining - 1)

    # ----- inspection ------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        """Every recorded call to ``method`` (``"response_url"`` for response_url posts)."""
        return [call for call in self.calls if call.method == method]

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Arguments of successful ``chat.postMessage`` calls, in order (optionally one channel)."""
        return [
            call.args
            for call in self.calls_to("chat.postMessage")
            if call.ok and (channel is None or call.args.get("channel") == channel)
        ]

    def responses(self, response_id: str | None = None) -> list[dict[str, Any]]:
        """Bodies of successful posts to response URLs (optionally one id), in order."""
        path = None if response_id is None else f"/response/{response_id}"
        return [
            call.args
            for call in self.calls_to(RESPONSE_URL_METHOD)
            if call.ok and (path is None or call.path == path)
        ]

    def message_by_ts(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The current (possibly updated) message at ``ts`` in channel id ``channel``."""
        message = self._messages.get((channel, ts))
        return None if message is None else copy.deepcopy(message)

    # The timeout argument is this helper's contract (tests name it), hence the noqa.
    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[Call]:
        """Wait until at least ``count`` calls to ``method`` were recorded; return them all.

        Raises TimeoutError, naming what was seen, if that takes longer than ``timeout``.
        """
        async with self._changed:
            try:
                async with asyncio.timeout(timeout):
                    await self._changed.wait_for(lambda: len(self.calls_to(method)) >= count)
            except TimeoutError:
                raise TimeoutError(self._timeout_report(method, count, timeout)) from None
        return self.calls_to(method)

    def _timeout_report(self, method: str, count: int, timeout: float) -> str:
        seen = ", ".join(f"{call.method}({call.status})" for call in self.calls) or "nothing"
        found = len(self.calls_to(method))
        return f"waited {timeout}s for {count} call(s) to {method}, got {found}; saw: {seen}"

    def reset(self) -> None:
        """Forget recorded calls and pending failures; channels, users and messages stay."""
        self.calls.clear()
        self._failures.clear()

    # ----- HTTP plumbing ---------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application()
        # slack_sdk sends GET for read methods such as users.info and conversations.info.
        app.router.add_route("POST", "/api/{method}", self._handle_api)
        app.router.add_route("GET", "/api/{method}", self._handle_api)
        app.router.add_route("POST", "/response/{response_id:.+}", self._handle_response_url)
        app.router.add_route("GET", "/devtools/surfaces", self._handle_surfaces)
        app.add_routes(self.socket_mode.routes())
        return app

    async def _handle_surfaces(self, _request: web.Request) -> web.Response:
        """What a person would see now, for local mode's ``say`` (not a Slack method)."""
        return web.json_response(self.workspace_view())

    def workspace_view(self) -> dict[str, Any]:
        """The workspace's names and every surface shown so far (see ``surfaces``)."""
        return {
            "team_id": self.team_id,
            "bot_user_id": self.bot_user_id,
            "channels": {channel_id: info["name"] for channel_id, info in self.channels.items()},
            "users": {user_id: user["name"] for user_id, user in self.users.items()},
            "surfaces": copy.deepcopy(self.surfaces),
        }

    def _show(self, kind: str, content: dict[str, Any], **where: str | None) -> None:
        self._surface_number += 1
        surface = {"seq": self._surface_number, "kind": kind, **where}
        self.surfaces.append(surface | {"content": copy.deepcopy(content)})
        del self.surfaces[:-_SURFACES_KEPT]

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        return await self._serve(request, method, lambda parsed: self._api_outcome(method, parsed))

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        return await self._serve(request, RESPONSE_URL_METHOD, _response_url_outcome)

    async def _serve(
        self, request: web.Request, method: str, answer: Callable[[_Parsed], _Outcome]
    ) -> web.Response:
        at = time.monotonic()
        delay = self.slow.get(method, self.latency)
        if delay > 0:
            await asyncio.sleep(delay)
        parsed = await _parse_request(request)
        failure = self._take_failure(method)
        outcome = failure.outcome() if failure is not None else answer(parsed)
        headers = _redacted_headers(request)
        await self._record(
            Call(method, parsed.args, headers, at, int(outcome.status), outcome.error, request.path)
        )
        return outcome.to_response()

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        if self._on_post is not None:
            self._on_post(call)

    def _api_outcome(self, method: str, parsed: _Parsed) -> _Outcome:
        try:
            body = {"ok": True, **self._dispatch(method, parsed)}
        except FakeSlackError as exc:
            return _Outcome(HTTPStatus.OK, {"ok": False, "error": exc.error}, error=exc.error)
        return _Outcome(HTTPStatus.OK, body)

    def _dispatch(self, method: str, parsed: _Parsed) -> dict[str, Any]:
        if method == "apps.connections.open":  # the one method taking the app-level token
            return self._apps_connections_open(parsed)
        handler = self._handlers.get(method)
        if handler is None:
            raise FakeSlackError("unknown_method")
        self._check_token(parsed.token)
        if parsed.error is not None:
            raise FakeSlackError(parsed.error)
        return handler(parsed.args)

    def _apps_connections_open(self, parsed: _Parsed) -> dict[str, Any]:
        error = self.socket_mode.refusal(parsed.header_token)
        if error is not None:
            raise FakeSlackError(error)
        return self.socket_mode.issue_url(self.base_url)

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise FakeSlackError("not_authed")
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            raise FakeSlackError("invalid_auth")

    # ----- state helpers ---------------------------------------------------------------

    def _new_ts(self) -> str:
        micros = self._next_ts_micros
        self._next_ts_micros += _TS_STEP_MICROS
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _new_view_id(self) -> str:
        number = self._next_view_number
        self._next_view_number += 1
        return f"V{number:08d}"

    def _resolve_channel(self, ref: str) -> str:
        if ref in self.channels:
            return ref
        name = ref.removeprefix("#")
        for channel_id, info in self.channels.items():
            if info["name"] == name:
                return channel_id
        raise FakeSlackError("channel_not_found")

    def _postable_channel(self, ref: str) -> str:
        if ref in self.users:
            # As Slack does: a user id as the channel posts in the app's DM with that user.
            channel_id = "D" + ref[1:]
            self.channels.setdefault(
                channel_id, ChannelInfo(name=ref, is_private=True, is_member=True, members=None)
            )
            return channel_id
        channel_id = self._resolve_channel(ref)
        info = self.channels[channel_id]
        if not info["is_member"]:
            # Slack hides private channels the bot is not in.
            raise FakeSlackError("channel_not_found" if info["is_private"] else "not_in_channel")
        return channel_id

    def _visible_channel(self, channel_id: str) -> ChannelInfo:
        info = self.channels.get(channel_id)
        if info is None or (info["is_private"] and not info["is_member"]):
            raise FakeSlackError("channel_not_found")
        return info

    def _channel_object(self, channel_id: str) -> dict[str, Any]:
        info = self.channels[channel_id]
        is_im = channel_id.startswith("D")
        shown: dict[str, Any] = {
            "id": channel_id,
            "name": info["name"],
            "name_normalized": info["name"],
            "is_channel": not info["is_private"],
            "is_group": info["is_private"] and not is_im,
            "is_im": is_im,
            "is_private": info["is_private"],
            "is_member": info["is_member"],
            "is_archived": False,
            "context_team_id": self.team_id,
        }
        if is_im:
            shown["user"] = info["name"]
        return shown

    def members_of(self, channel_id: str) -> list[str]:
        """Who is in a channel: its members, or everyone (but the bot) when not restricted."""
        info = self.channels[channel_id]
        if channel_id.startswith("D"):
            return [info["name"], self.bot_user_id]
        if info["members"] is not None:
            return list(info["members"])
        return [user for user in self.users if user != self.bot_user_id]

    def _stored_message(self, channel_id: str, ts: str) -> dict[str, Any]:
        message = self._messages.get((channel_id, ts))
        if message is None:
            raise FakeSlackError("message_not_found")
        return message

    def _known_user(self, user_id: str) -> dict[str, Any]:
        user = self.users.get(user_id)
        if user is None:
            raise FakeSlackError("user_not_found")
        return user

    def _new_message(self, args: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "team": self.team_id,
            "text": "",
            "ts": self._new_ts(),
            **_message_content(args),
        }
        if args.get("thread_ts"):
            message["thread_ts"] = str(args["thread_ts"])
        return message

    def _new_view(self, view: dict[str, Any], view_id: str) -> dict[str, Any]:
        return {
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "state": {"values": {}},
            "hash": f"{self._new_ts()}.fakehash",
            "root_view_id": view_id,
            "bot_id": self.bot_id,
        }

    def _find_view(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = _text(args, "view_id"), _text(args, "external_id")
        for view in self.views.values():
            if (view_id and view["id"] == view_id) or (
                external_id and view.get("external_id") == external_id
            ):
                return view
        raise FakeSlackError("not_found")

    def _take_trigger_id(self, args: dict[str, Any]) -> None:
        trigger_id = _required(args, "trigger_id")
        if trigger_id in self._used_trigger_ids:
            raise FakeSlackError("exchanged_trigger_id")
        self._used_trigger_ids.add(trigger_id)

    # ----- method handlers (args -> the response fields besides ``ok``) -----------------

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://fake-workspace.slack.com/",
            "team": "Fake Workspace",
            "user": self.users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._postable_channel(_text(args, "channel"))
        _require_content(args)
        message = self._new_message(args)
        self._messages[(channel_id, message["ts"])] = message
        self._show("message", message, channel=channel_id, ts=message["ts"])
        return {"channel": channel_id, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(_text(args, "channel"))
        ts = _text(args, "ts")
        message = self._stored_message(channel_id, ts)
        edited = {"user": self.bot_user_id, "ts": self._new_ts()}
        updated = {**message, **_message_content(args), "edited": edited}
        self._messages[(channel_id, ts)] = updated
        self._show("message", updated, channel=channel_id, ts=ts)
        return {
            "channel": channel_id,
            "ts": ts,
            "text": updated["text"],
            "message": copy.deepcopy(updated),
        }

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._postable_channel(_text(args, "channel"))
        user = self._known_user(_required(args, "user", "user_not_found"))["id"]
        _require_content(args)
        ts = self._new_ts()
        content = {"type": "message", "ts": ts, "text": "", **_message_content(args)}
        self._show("ephemeral", content, channel=channel_id, ts=ts, user=user)
        return {"message_ts": ts}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(_text(args, "channel"))
        ts = _text(args, "ts")
        self._stored_message(channel_id, ts)
        del self._messages[(channel_id, ts)]
        return {"channel": channel_id, "ts": ts}

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(_text(args, "channel"))
        name = _required(args, "name", "invalid_name").strip(":")
        message = self._stored_message(channel_id, _text(args, "timestamp"))
        reactions: list[dict[str, Any]] = message.setdefault("reactions", [])
        if any(reaction["name"] == name for reaction in reactions):
            raise FakeSlackError("already_reacted")
        reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        return {}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._known_user(_required(args, "user", "user_not_found"))
        return {"user": _user_object(user, datetime.now(UTC))}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = _required(args, "channel", "channel_not_found")
        self._visible_channel(channel_id)
        return {"channel": self._channel_object(channel_id)}

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        """One page of a channel's members, as Slack pages them (opaque cursor)."""
        channel_id = _required(args, "channel", "channel_not_found")
        self._visible_channel(channel_id)
        limit = min(max(_int_arg(args, "limit", 100), 1), 1000)
        start = _cursor_offset(_text(args, "cursor"))
        members = self.members_of(channel_id)
        more = start + limit < len(members)
        next_cursor = _cursor_of(start + limit) if more else ""
        return {
            "members": members[start : start + limit],
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """One page of the channels the bot can see, as Slack pages them (opaque cursor)."""
        types = set((_text(args, "types") or "public_channel").split(","))
        if not types <= _CONVERSATION_TYPES:
            raise FakeSlackError("invalid_types")
        limit = min(max(_int_arg(args, "limit", 100), 1), 1000)
        start = _cursor_offset(_text(args, "cursor"))
        listed = [
            self._channel_object(channel_id)
            for channel_id, info in self.channels.items()
            if _conversation_type(channel_id, info) in types
            and (not info["is_private"] or info["is_member"])
        ]
        page = listed[start : start + limit]
        more = start + limit < len(listed)
        next_cursor = _cursor_of(start + limit) if more else ""
        return {"channels": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = _required(args, "channel", "channel_not_found")
        info = self.channels.get(channel_id)
        if info is None:
            raise FakeSlackError("channel_not_found")
        if info["is_private"]:
            raise FakeSlackError("method_not_supported_for_channel_type")
        if info["is_member"]:
            return {"channel": self._channel_object(channel_id), **_warning("already_in_channel")}
        info["is_member"] = True
        return {"channel": self._channel_object(channel_id)}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _view_arg(args)
        self._take_trigger_id(args)
        stored = self._new_view(view, self._new_view_id())
        self.views[stored["id"]] = stored
        self._show("view", stored, view_id=stored["id"])
        return {"view": copy.deepcopy(stored)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _view_arg(args)
        current = self._find_view(args)
        expected_hash = _text(args, "hash")
        if expected_hash and expected_hash != current["hash"]:
            raise FakeSlackError("hash_conflict")
        stored = self._new_view(view, current["id"])
        self.views[stored["id"]] = stored
        self._show("view", stored, view_id=stored["id"])
        return {"view": copy.deepcopy(stored)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _view_arg(args)
        user_id = _required(args, "user_id", "user_not_found")
        self._known_user(user_id)
        view_id = self._home_view_ids.get(user_id) or self._new_view_id()
        stored = self._new_view(view, view_id)
        self._home_view_ids[user_id] = view_id
        self.views[view_id] = stored
        self._show("view", stored, view_id=view_id, user=user_id)
        return {"view": copy.deepcopy(stored)}


# ----- request parsing (pure helpers) ---------------------------------------------------


async def _parse_request(request: web.Request) -> _Parsed:
    """Merge query, form and JSON arguments the way Slack reads them; pull out the token."""
    body, error = _body_args(request.content_type, await request.read())
    args: dict[str, Any] = dict(request.query) | body
    form_token = args.pop("token", None)
    header_token = _bearer_token(request)
    token = header_token or (str(form_token) if form_token else None)
    return _Parsed(args, token, error, header_token)


def _body_args(content_type: str, raw: bytes) -> tuple[dict[str, Any], str | None]:
    """The body's arguments and the Slack error for a malformed body (or None)."""
    if not raw:
        return {}, None
    if content_type == "application/json":
        return _json_body(raw)
    if content_type == "application/x-www-form-urlencoded":
        form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        return _decode_json_form_fields(form)
    return {}, None


def _json_body(raw: bytes) -> tuple[dict[str, Any], str | None]:
    try:
        body = json.loads(raw)
    except ValueError:
        return {}, "invalid_json"
    return (body, None) if isinstance(body, dict) else ({}, "invalid_json")


def _decode_json_form_fields(form: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """Decode the JSON-string fields of a form; an undecodable one stays a string."""
    decoded: dict[str, Any] = dict(form)
    error = None
    for key, code in _JSON_FORM_FIELDS.items():
        if key in form:
            try:
                decoded[key] = json.loads(form[key])
            except ValueError:
                error = error or code
    return decoded, error


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _redacted_headers(request: web.Request) -> dict[str, str]:
    """Request headers to record, without the token (recorded calls get printed and logged)."""
    return {
        name: "Bearer <redacted>" if name.lower() == "authorization" else value
        for name, value in request.headers.items()
    }


def _response_url_outcome(parsed: _Parsed) -> _Outcome:
    # response_url needs no token; Slack answers a plain "ok".
    if parsed.error is not None:
        return _Outcome(HTTPStatus.BAD_REQUEST, "invalid_payload", error="invalid_payload")
    return _Outcome(HTTPStatus.OK, "ok")


def _is_injectable_status(status: int) -> bool:
    return status == HTTPStatus.TOO_MANY_REQUESTS or 500 <= status <= 599


def _base_url(address: Any) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


# ----- argument helpers ----------------------------------------------------------------


def _text(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    return "" if value is None else str(value)


def _required(args: dict[str, Any], key: str, error: str = "invalid_arguments") -> str:
    value = _text(args, key)
    if not value:
        raise FakeSlackError(error)
    return value


def _message_content(args: dict[str, Any]) -> dict[str, Any]:
    return {key: copy.deepcopy(args[key]) for key in _CONTENT_FIELDS if key in args}


def _require_content(args: dict[str, Any]) -> None:
    if not any(args.get(key) for key in ("text", "blocks", "attachments")):
        raise FakeSlackError("no_text")


def _view_arg(args: dict[str, Any]) -> dict[str, Any]:
    view = args.get("view")
    if isinstance(view, str):
        view, _ = _json_body(view.encode())
    if not isinstance(view, dict) or not view.get("type"):
        raise FakeSlackError("invalid_arguments")
    return copy.deepcopy(view)


_CONVERSATION_TYPES: Final = frozenset({"public_channel", "private_channel", "mpim", "im"})


def _conversation_type(channel_id: str, info: ChannelInfo) -> str:
    if channel_id.startswith("D"):
        return "im"
    return "private_channel" if info["is_private"] else "public_channel"


def _int_arg(args: dict[str, Any], key: str, default: int) -> int:
    value = _text(args, key)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise FakeSlackError("invalid_arguments") from None


def _cursor_of(offset: int) -> str:
    """An opaque-looking cursor, like Slack's base64 ones."""
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _cursor_offset(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        kind, _, number = base64.b64decode(cursor, validate=True).decode().partition(":")
        if kind == "offset" and number.isdigit():
            return int(number)
    except ValueError:
        pass
    raise FakeSlackError("invalid_cursor")


def _warning(code: str) -> dict[str, Any]:
    return {"warning": code, "response_metadata": {"warnings": [code]}}


def _user_object(user: dict[str, Any], now: datetime) -> dict[str, Any]:
    zone_now = now.astimezone(ZoneInfo(user["tz"]))
    return {
        **copy.deepcopy(user),
        "tz_label": zone_now.tzname() or user["tz"],
        "tz_offset": tz_offset_seconds(user["tz"], now),
    }


# ----- running by hand -----------------------------------------------------------------


def _print_call(call: Call) -> None:
    print(format_call(call), flush=True)


async def _serve_forever(host: str, port: int, token: str) -> None:
    fake = FakeSlack(token=token, on_post=_print_call)
    await fake.start(host, port)
    print(f"[fake slack] serving base_url={fake.url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake from the command line until interrupted, printing every call."""
    parser = argparse.ArgumentParser(description="A local fake of the Slack Web API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="bearer token to accept")
    options = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(options.host, options.port, options.token))


if __name__ == "__main__":
    main()
