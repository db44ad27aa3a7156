"""Reading Slack's payloads: which workspace, who, where, and what was clicked.

Slack puts the workspace in different fields on different paths (slash commands:
``team_id``; interactivity: ``team.id``, with ``user.team_id`` as the user's own; events:
the envelope's ``team_id``). `team_of` decides once, for every payload, so a thing created
from a form is stored under the same workspace as one created by a slash command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.audit import Actor


def team_of(body: Mapping[str, Any]) -> str:
    """The workspace a payload comes from: ``team.id``, else ``team_id``, else the user's."""
    team = body.get("team")
    if isinstance(team, Mapping) and team.get("id"):
        return str(team["id"])
    if isinstance(team, str) and team:
        return team
    if body.get("team_id"):
        return str(body["team_id"])
    user = body.get("user")
    if isinstance(user, Mapping) and user.get("team_id"):
        return str(user["team_id"])
    return ""


def user_of(body: Mapping[str, Any]) -> str:
    """The acting user's id: ``user.id`` (interactivity) or ``user`` / ``user_id``."""
    user = body.get("user")
    if isinstance(user, Mapping):
        return str(user.get("id") or "")
    return str(user or body.get("user_id") or "")


@dataclass(frozen=True)
class Click:
    """Who clicked what, where (a message in a channel, or the App Home tab)."""

    team_id: str
    user_id: str
    value: str
    trigger_id: str | None
    channel_id: str | None
    message_ts: str | None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Click:
        """Read a ``block_actions`` payload (its first action)."""
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions else {}
        action = action if isinstance(action, Mapping) else {}
        container = body.get("container")
        container = container if isinstance(container, Mapping) else {}
        channel = body.get("channel")
        channel = channel if isinstance(channel, Mapping) else {}
        return cls(
            team_id=team_of(body),
            user_id=user_of(body),
            value=str(action.get("value", "")),
            trigger_id=_text(body.get("trigger_id")),
            channel_id=_text(container.get("channel_id") or channel.get("id")),
            message_ts=_text(container.get("message_ts")),
        )

    @property
    def actor(self) -> Actor:
        """The person clicking, acting from the channel of the message (if any)."""
        return Actor(self.team_id, self.user_id, self.channel_id or "")

    @property
    def number(self) -> int | None:
        """The button's value as a row id (buttons carry only ids), or None."""
        return row_id(self.value)


# The largest id a database column holds (a signed 64-bit integer).
_MAX_ROW_ID = 2**63 - 1


def row_id(text: str) -> int | None:
    """``text`` as a row id, or None: ASCII digits only (``²`` is a digit to
    `str.isdigit` but not to `int`), and small enough for the database to look up."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if number <= _MAX_ROW_ID else None


def _text(value: Any) -> str | None:
    return str(value) if value else None
