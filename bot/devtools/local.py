"""Local mode's two halves: printing what the bot shows, and ``say``, which talks to it.

``chatops-bot run`` without Slack credentials serves the bot against the fake Slack and
prints each message, modal and App Home the bot shows, rendered as a person would see it
(`CallPrinter`). From another terminal, ``chatops-bot say`` acts as a person in the fake
workspace: it types a slash command, DMs or @mentions the bot, clicks a button the bot
showed, or fills in and submits the form it opened. Every request is built the way Slack
builds it (see tests/fixtures/slack/) and signed with the running bot's signing secret.

The running bot leaves a `LocalState` file, in the directory it was started from and in
a per-user directory under its port; ``say`` finds it in either place.

Nothing here reads the environment: `bot.cli` passes paths, ports and settings in.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from bot.devtools.render import Names, render_call

STATE_FILE: Final = Path(".chatops-local.json")
API_APP_ID: Final = "A0LOCAL"
_URL: Final = re.compile(r"(?<![<|])\b(https?://[^\s<>|]+)")
_ESCAPES: Final = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))

EventKind = Literal["dm", "mention"]


class SayError(Exception):
    """``say`` cannot do what was asked; the message says why, and what would work."""


# ----- the state file ----------------------------------------------------------------------


@dataclass(frozen=True)
class LocalState:
    """How to reach a bot running in local mode: its URL, its signing secret, its fake Slack,
    and whether Slack's requests reach it over Socket Mode (through the fake) or HTTP."""

    url: str
    signing_secret: str
    fake_slack_url: str
    port: int
    socket_mode: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "url": self.url,
                "signing_secret": self.signing_secret,
                "fake_slack_url": self.fake_slack_url,
                "port": self.port,
                "socket_mode": self.socket_mode,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LocalState:
        """Read `to_json`; `ValueError` for anything else."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a state object")
        try:
            return cls(
                str(data["url"]),
                str(data["signing_secret"]),
                str(data.get("fake_slack_url", "")),
                int(data.get("port", 0)),
                data.get("socket_mode") is True,
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"incomplete state: {error}") from None


def state_paths(cwd: Path, runtime_dir: Path, port: int) -> tuple[Path, Path]:
    """Where a bot on ``port`` started in ``cwd`` leaves its state: here, and per user."""
    return cwd / STATE_FILE, runtime_dir / f"local-{port}.json"


def write_state(state: LocalState, paths: Sequence[Path]) -> None:
    """Write ``state`` to each path, readable by its owner only (it holds the secret)."""
    for path in paths:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # an older file may be there with other permissions
        with os.fdopen(descriptor, "w") as file:
            file.write(state.to_json())


def forget_state(secret: str, paths: Sequence[Path]) -> None:
    """Remove each state file that is this process's (not another running bot's)."""
    for path in paths:
        state = _read_state(path)
        if state is not None and state.signing_secret == secret:
            path.unlink(missing_ok=True)


def find_state(paths: Sequence[Path], *, why: str) -> LocalState:
    """The first readable state among ``paths``; `SayError` naming each place looked."""
    for path in paths:
        state = _read_state(path)
        if state is not None:
            return state
    looked = " and ".join(str(path) for path in paths)
    raise SayError(
        f"the bot is not running in local mode: I looked for {looked} ({why}). "
        "Start it with `make run`, or set PORT (in the environment or .env) to the port "
        "it listens on."
    )


def _read_state(path: Path) -> LocalState | None:
    try:
        return LocalState.from_json(path.read_text())
    except (OSError, ValueError):
        return None


# ----- what a person types -----------------------------------------------------------------


def as_slack_sends(text: str) -> str:
    """Text as Slack delivers what a person typed: ``&``, ``<``, ``>`` escaped and bare
    links wrapped in ``<…>`` (channels typed as ``#name`` stay as typed)."""
    for char, entity in _ESCAPES:
        text = text.replace(char, entity)
    return _URL.sub(lambda found: f"<{found[1]}>", text)


@dataclass(frozen=True)
class Person:
    """Who ``say`` acts as, and where."""

    user: str
    channel: str
    team: str = "T0001"


def slash_body(command: str, text: str, person: Person, response_url: str) -> bytes:
    """A slash command's form body, every field Slack sends."""
    return urllib.parse.urlencode(
        {
            "token": "local",
            "team_id": person.team,
            "team_domain": "local",
            "channel_id": person.channel,
            "channel_name": "general",
            "user_id": person.user,
            "user_name": "you",
            "command": command,
            "text": as_slack_sends(text),
            "response_url": response_url,
            "trigger_id": _trigger_id(),
            "api_app_id": API_APP_ID,
        }
    ).encode()


def event_body(kind: EventKind, text: str, person: Person, bot_user_id: str) -> bytes:
    """An Events API envelope: a DM to the bot (``message.im``) or an ``app_mention``."""
    ts = f"{time.time():.6f}"
    said = as_slack_sends(text)
    event: dict[str, Any] = {"user": person.user, "ts": ts, "event_ts": ts, "team": person.team}
    if kind == "dm":
        event |= {"type": "message", "channel": _dm_channel(person.user), "text": said}
        event["channel_type"] = "im"
    else:
        event |= {"type": "app_mention", "channel": person.channel}
        event["text"] = f"<@{bot_user_id}> {said}"
    envelope = {
        "token": "local",
        "team_id": person.team,
        "api_app_id": API_APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{secrets.token_hex(5).upper()}",
        "event_time": int(time.time()),
    }
    return json.dumps(envelope).encode()


def _dm_channel(user: str) -> str:
    """The DM between the bot and ``user`` in the fake (Slack's ``D…`` for ``U…``)."""
    return "D" + user[1:]


def _trigger_id() -> str:
    return f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(8)}"


# ----- what the bot showed -----------------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    """What the fake Slack shows: names, the bot's id, and every surface, newest last."""

    team_id: str
    bot_user_id: str
    names: Names
    surfaces: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Workspace:
        """From the fake's ``/devtools/surfaces`` answer."""
        return cls(
            str(data.get("team_id", "T0001")),
            str(data.get("bot_user_id", "")),
            Names(dict(data.get("channels") or {}), dict(data.get("users") or {})),
            list(data.get("surfaces") or []),
        )

    def channel_id(self, ref: str) -> str:
        """``#ops`` → its id; an id stays an id."""
        name = ref.removeprefix("#")
        found = next((cid for cid, known in self.names.channels.items() if known == name), None)
        return found or ref


def render_surface(surface: Mapping[str, Any], names: Names) -> str:
    """One surface as local mode prints it."""
    content = surface.get("content") or {}
    kind = surface.get("kind")
    if kind == "view":
        method = "views.publish" if content.get("type") == "home" else "views.open"
        return render_call(method, {"view": content, "user_id": surface.get("user")}, names) or ""
    args = {**content, "channel": surface.get("channel"), "user": surface.get("user")}
    if kind == "ephemeral":
        return render_call("chat.postEphemeral", args, names) or ""
    if content.get("edited"):
        return render_call("chat.update", args, names) or ""
    return render_call("chat.postMessage", args, names) or ""


@dataclass(frozen=True)
class Button:
    """A button someone could click, and the surface it is on."""

    surface: Mapping[str, Any]
    block_id: str
    element: Mapping[str, Any]

    @property
    def label(self) -> str:
        return str((self.element.get("text") or {}).get("text", ""))


def find_button(workspace: Workspace, label: str, user: str) -> Button:
    """The button labelled ``label`` (any case) on the newest surface ``user`` can see
    that has one; `SayError` listing the buttons there are when none matches."""
    wanted = label.strip().casefold()
    seen: list[str] = []
    for surface in reversed(_visible_to(workspace, user)):
        for button in _buttons(surface):
            if button.label.strip().casefold() == wanted:
                return button
            seen.append(button.label)
    there = ", ".join(f'"{name}"' for name in dict.fromkeys(seen)) or "none yet"
    raise SayError(f'no button "{label}" in what the bot has shown; buttons there: {there}')


def _visible_to(workspace: Workspace, user: str) -> list[dict[str, Any]]:
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for surface in workspace.surfaces:
        if surface.get("kind") == "ephemeral" and surface.get("user") != user:
            continue
        key = (
            surface.get("kind"),
            surface.get("channel"),
            surface.get("ts"),
            surface.get("view_id"),
        )
        latest.pop(key, None)  # an edit replaces the message, and is the newest
        latest[key] = surface
    return list(latest.values())


def _buttons(surface: Mapping[str, Any]) -> Iterator[Button]:
    for block in (surface.get("content") or {}).get("blocks") or []:
        if not isinstance(block, Mapping):
            continue
        elements = [*(block.get("elements") or []), block.get("accessory")]
        for element in elements:
            if isinstance(element, Mapping) and element.get("type") == "button":
                yield Button(surface, str(block.get("block_id", "")), element)


def click_body(button: Button, person: Person, response_url: str) -> bytes:
    """The ``block_actions`` payload Slack sends when ``person`` clicks ``button``."""
    surface, content = button.surface, button.surface.get("content") or {}
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": person.team, "domain": "local"},
        "user": {"id": person.user, "username": "you", "team_id": person.team},
        "api_app_id": API_APP_ID,
        "token": "local",
        "trigger_id": _trigger_id(),
        "response_url": response_url,
        "actions": [
            {
                "action_id": button.element.get("action_id"),
                "block_id": button.block_id,
                "text": button.element.get("text"),
                "value": button.element.get("value", ""),
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    if surface.get("kind") == "view":
        payload |= {"container": {"type": "view", "view_id": surface.get("view_id")}}
        payload["view"] = content
    else:
        channel = str(surface.get("channel"))
        payload["container"] = {
            "type": "message",
            "message_ts": surface.get("ts"),
            "channel_id": channel,
            "is_ephemeral": surface.get("kind") == "ephemeral",
        }
        payload |= {"channel": {"id": channel, "name": "local"}, "message": content}
    return _interactive(payload)


def open_form(workspace: Workspace) -> Mapping[str, Any]:
    """The newest modal the bot opened; `SayError` when it opened none."""
    for surface in reversed(workspace.surfaces):
        content = surface.get("content") or {}
        if surface.get("kind") == "view" and content.get("type") == "modal":
            return content
    raise SayError('the bot has not opened a form; try `say "/trigger"` or `say "/hook"`')


def submit_body(
    form: Mapping[str, Any], answers: Mapping[str, str], person: Person, workspace: Workspace
) -> bytes:
    """The ``view_submission`` payload of ``form`` filled in with ``answers`` (field ids
    or labels → text); fields not answered keep what the form showed."""
    inputs = [
        b for b in form.get("blocks") or [] if isinstance(b, Mapping) and b.get("type") == "input"
    ]
    by_name = {_field_key(block, key): block for block in inputs for key in ("block_id", "label")}
    unknown = [name for name in answers if name.casefold() not in by_name]
    if unknown:
        fields = ", ".join(str(block.get("block_id")) for block in inputs)
        raise SayError(f'the form has no field "{unknown[0]}"; its fields are {fields}')
    given = {id(by_name[name.casefold()]): text for name, text in answers.items()}
    values = {
        str(block.get("block_id")): _state_value(block, given.get(id(block)), person, workspace)
        for block in inputs
    }
    view = {**form, "state": {"values": values}}
    payload = {
        "type": "view_submission",
        "team": {"id": person.team, "domain": "local"},
        "user": {"id": person.user, "username": "you", "name": "you", "team_id": person.team},
        "api_app_id": API_APP_ID,
        "token": "local",
        "trigger_id": _trigger_id(),
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
    }
    return _interactive(payload)


def _field_key(block: Mapping[str, Any], key: str) -> str:
    value = block.get(key)
    text = value.get("text") if isinstance(value, Mapping) else value
    return str(text or "").casefold()


def _state_value(
    block: Mapping[str, Any], text: str | None, person: Person, workspace: Workspace
) -> dict[str, Any]:
    element = block.get("element") or {}
    kind = str(element.get("type"))
    action_id = str(element.get("action_id", block.get("block_id")))
    reader = _FILLERS.get(kind)
    if reader is None:
        raise SayError(f"say cannot fill a {kind} field yet ({block.get('block_id')})")
    return {action_id: {"type": kind, **reader(element, text, person, workspace)}}


def _text_value(
    element: Mapping[str, Any], text: str | None, _person: Person, _workspace: Workspace
) -> dict[str, Any]:
    return {"value": text if text is not None else element.get("initial_value")}


def _option_value(
    element: Mapping[str, Any], text: str | None, _person: Person, _workspace: Workspace
) -> dict[str, Any]:
    if text is None:
        return {"selected_option": element.get("initial_option")}
    options = [o for o in element.get("options") or [] if isinstance(o, Mapping)]
    wanted = text.casefold()
    for option in options:
        label = str((option.get("text") or {}).get("text", ""))
        if wanted in (str(option.get("value")).casefold(), label.casefold()):
            return {"selected_option": option}
    choices = ", ".join(str(o.get("value")) for o in options)
    raise SayError(f'"{text}" is not one of the choices: {choices}')


def _conversation_value(
    element: Mapping[str, Any], text: str | None, person: Person, workspace: Workspace
) -> dict[str, Any]:
    initial = element.get("initial_conversation") or element.get("initial_channel")
    # Unchosen, a picker with default_to_current_conversation holds where it opened.
    chosen = workspace.channel_id(text) if text is not None else str(initial or person.channel)
    key = (
        "selected_channel" if element.get("type") == "channels_select" else "selected_conversation"
    )
    return {key: chosen}


_FILLERS: Final[
    Mapping[str, Callable[[Mapping[str, Any], str | None, Person, Workspace], dict[str, Any]]]
] = {
    "plain_text_input": _text_value,
    "static_select": _option_value,
    "conversations_select": _conversation_value,
    "channels_select": _conversation_value,
}


def _interactive(payload: Mapping[str, Any]) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def parse_answers(words: Sequence[str]) -> dict[str, str]:
    """``name=site "schedule=every 5m"`` → {"name": "site", "schedule": "every 5m"}."""
    answers: dict[str, str] = {}
    for word in words:
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise SayError(f'"{word}" is not FIELD=VALUE; e.g. say --submit name=site')
        answers[name.strip()] = value
    return answers


# ----- printing what the bot shows ---------------------------------------------------------


@dataclass
class CallPrinter:
    """Prints each call the bot makes to the fake Slack as a person would see its result."""

    names: Callable[[], Names] = Names
    write: Callable[[str], None] = print

    def __call__(self, method: str, args: Mapping[str, Any], ok: bool, error: str | None) -> None:
        if not ok:
            self.write(f"── {method} failed: {error or 'HTTP error'} ──")
            return
        shown = render_call(method, args, self.names())
        if shown is not None:
            self.write(shown)
