"""The slash-command protocol: what a handler receives and returns, independent of Bolt,
and the dispatcher of ``/name VERB …`` subcommands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.audit import Actor
from bot.errors import UsageError
from bot.slack.payloads import team_of
from bot.slack.text import CommandSyntaxError, scan


@dataclass(frozen=True)
class Command:
    """One slash command invocation, as typed by a user in a channel."""

    team_id: str
    user_id: str
    channel_id: str
    text: str
    trigger_id: str | None = None
    response_url: str | None = None

    @property
    def actor(self) -> Actor:
        """Who typed it, in which workspace, from which channel."""
        return Actor(self.team_id, self.user_id, self.channel_id)

    @classmethod
    def from_slack(cls, body: dict[str, Any]) -> Command:
        return cls(
            team_id=team_of(body),
            user_id=str(body.get("user_id", "")),
            channel_id=str(body.get("channel_id", "")),
            text=str(body.get("text", "")).strip(),
            trigger_id=body.get("trigger_id"),
            response_url=body.get("response_url"),
        )


@dataclass(frozen=True)
class Reply:
    """The answer to a command: private (ephemeral) unless ``public``.

    ``ok`` is False when the command was refused (bad input, no permission); a form
    shows such a reply as an error instead of closing.
    """

    text: str
    blocks: list[dict[str, Any]] | None = None
    public: bool = False
    ok: bool = True


Subcommand = Callable[["Command", list[str], str], Awaitable["Reply"]]


async def run_subcommand(
    command: Command, name: str, subcommands: Mapping[str, Subcommand], help_text: str
) -> Reply:
    """Run ``/name VERB …``: the verb's handler gets the words after the verb and the raw
    (still Slack-escaped) text after it. Bad input of any kind becomes a private reply."""
    try:
        tokens = scan(command.text)
        words = [token.text for token in tokens]
        if not words or words[0].lower() in ("help", "-h", "--help"):
            return Reply(help_text)
        handler = subcommands.get(words[0].lower())
        if handler is None:
            return Reply(f"I don't know `{name} {words[0]}`.\n{help_text}", ok=False)
        return await handler(command, words[1:], command.text[tokens[0].end :].strip())
    except UsageError as error:
        return Reply(str(error), ok=False)
    except CommandSyntaxError as error:
        return Reply(
            f'{error} (near `{error.part}`). Close it after the quoted words, e.g. `"two words"`.',
            ok=False,
        )


class CommandHandler(Protocol):
    """A slash command's behaviour: parse, act, answer. Never raises for bad user input."""

    async def __call__(self, command: Command) -> Reply: ...
