"""A plain-language request the rules did not understand, read by the AI step.

The model gets the ``/trigger`` and ``/hook`` grammar and the request, and answers with
the text of one command or a question back. Its command is only text: it goes through
the same parsers as a typed command (`TriggerSlash.parse`, `parse_create`), and becomes
the usual proposal with Create / Edit / Cancel, marked as AI-read, so nothing happens
until the person clicks. A command that does not parse, or that is not one that creates
something, is never run: the person is told what to type instead, or the rules' answer
stands. Everything the model wrote is escaped before Slack shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from bot.ai.notes import plain_text
from bot.ai.results import CommandProposal, Question
from bot.ai.steps import AISteps
from bot.audit import Actor
from bot.conversation.understand import MAX_REQUEST_CHARS, HookProposal, Proposal, TriggerProposal
from bot.errors import SpecError
from bot.slack.blocks import escape_mrkdwn
from bot.slack.text import CommandSyntaxError, scan
from bot.triggers import slash as trigger_slash
from bot.triggers.spec import TriggerSpec
from bot.webhooks import slash as hook_slash

_NOTES: Final = (
    "Notes: a trigger or hook NAME is one word of letters, digits, '-' or '_'. A channel is "
    "written #name. Put text with spaces in double quotes. Propose only commands that create "
    "something (/trigger add, /hook create) when the person asks to set something up."
)
GRAMMAR: Final = f"{trigger_slash.HELP}\n\n{hook_slash.HELP}\n\n{_NOTES}"
_CREATES: Final = {("/trigger", "add"), ("/hook", "create"), ("/hook", "new")}

TriggerParser = Callable[[Actor, str], Awaitable[TriggerSpec]]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AIRead:
    """What the model read the request as: a proposal, and the command it wrote."""

    proposal: Proposal
    command: str

    @property
    def note(self) -> str:
        """The mark on the summary: it was read by AI, from this command (escaped)."""
        return f"\n_(AI-read as `{_shown(self.command)}`: check it before you click Create)_"


@dataclass(frozen=True)
class AIAnswer:
    """A reply instead of a proposal: the model's question, or a command to type."""

    text: str


async def read_by_ai(
    ai: AISteps | None, asker: Actor, request: str, parse_trigger: TriggerParser
) -> AIRead | AIAnswer | None:
    """The AI's reading of ``request`` (Slack-escaped DM text), or None when AI is off,
    the budget is spent, it failed, or its command does not parse (the rules' answer
    stands then)."""
    if ai is None or not ai.enabled or len(request.strip()) > MAX_REQUEST_CHARS:
        return None
    answer = await ai.read_request(asker.team_id, plain_text(request), GRAMMAR)
    if isinstance(answer, Question):
        return AIAnswer(f"{escape_mrkdwn(answer.text)} _(AI-read)_")
    if isinstance(answer, CommandProposal):
        return await _proposal_of(answer.command, asker, parse_trigger)
    return None


async def _proposal_of(
    command: str, asker: Actor, parse_trigger: TriggerParser
) -> AIRead | AIAnswer | None:
    """The command parsed as if typed in Slack (so it is escaped as Slack escapes it)."""
    name, _, rest = command.partition(" ")
    verb, _, arguments = rest.strip().partition(" ")
    if (name, verb.lower()) not in _CREATES:
        return AIAnswer(
            f"I think you want `{_shown(command)}` _(AI-read)_. Type it yourself to run it."
        )
    typed = escape_mrkdwn(arguments.strip())
    try:
        if name == "/trigger":
            return AIRead(TriggerProposal(await parse_trigger(asker, typed)), command)
        words = [token.text for token in scan(typed)]
        return AIRead(HookProposal(hook_slash.parse_create(words)), command)
    except (SpecError, CommandSyntaxError) as error:
        # What the model wrote is not repeated in logs: it may echo the request.
        log.info("an AI-read command did not parse (%s)", type(error).__name__)
        return None


def _shown(command: str) -> str:
    """A command as a code span shows it: escaped, without backticks that would end it."""
    return escape_mrkdwn(command.replace("`", "'"))
