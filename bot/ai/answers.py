"""Checking what a model answered against what was asked for; pure functions.

A model's answer is data. It becomes a value only when it has exactly the expected shape:
a label from the list, a summary within its length, one single-line command that starts
with ``/trigger`` or ``/hook``, or one short question. Anything else is
:class:`AIUnavailable` and rules decide. Failure details never quote the answer, since
they end up in logs and status lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.ai.labels import Label, find_label
from bot.ai.prompts import ASK_TOOL, PROPOSE_TOOL
from bot.ai.results import (
    AIUnavailable,
    Category,
    CommandProposal,
    FailureKind,
    Question,
    Summary,
)

MAX_COMMAND_CHARS: Final = 1_000
MAX_QUESTION_CHARS: Final = 300
MAX_SUMMARY_LINES: Final = 12
_CHARS_PER_WORD: Final = 12
_COMMAND: Final = re.compile(r"/(?:trigger|hook)\s+\S.*")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ToolCallAnswer:
    """One function call in an answer; ``arguments`` is the raw JSON text the model wrote."""

    name: str
    arguments: str


@dataclass(frozen=True)
class Answer:
    """The parts of a chat completion that matter, taken out of the library's types."""

    content: str | None
    refusal: str | None
    tool_calls: tuple[ToolCallAnswer, ...]
    finish_reason: str
    tokens: int


def word_allowance(words: int) -> int:
    """How many words a summary asked to have ``words`` may have: models overshoot a bit."""
    return words + max(10, words // 2)


def read_category(answer: Answer, labels: Sequence[Label]) -> Category | AIUnavailable:
    """The label a JSON answer ``{"label": name}`` names, if it is one of ``labels``."""
    problem = _common_problem(answer)
    if problem is not None:
        return problem
    value = _json_object(answer.content or "")
    if value is None or set(value) != {"label"} or not isinstance(value["label"], str):
        return _invalid('the answer is not JSON of the form {"label": name}')
    label = find_label(value["label"], labels)
    if label is None:
        return _invalid(f"the label is not one of the {len(labels)} listed")
    return Category(label, answer.tokens)


def summary_char_limit(words: int) -> int:
    """How many characters a summary of ``words`` words may have (long words included)."""
    return words * _CHARS_PER_WORD + 100


def read_summary(answer: Answer, words: int, *, keep_lines: bool) -> Summary | AIUnavailable:
    """The summary text, tidied; too many words, lines or characters is a failure.

    ``keep_lines`` keeps line breaks (an instruction may ask for lines); otherwise the
    summary becomes one paragraph.
    """
    problem = _common_problem(answer)
    if problem is not None:
        return problem
    text = (
        _tidy_lines(answer.content or "")
        if keep_lines
        else " ".join((answer.content or "").split())
    )
    if not text:
        return _invalid("the answer is empty")
    count = len(text.split())
    if count > word_allowance(words):
        return AIUnavailable(FailureKind.TOO_LONG, f"{count} words; asked for at most {words}")
    if len(text) > summary_char_limit(words) or text.count("\n") >= MAX_SUMMARY_LINES:
        return AIUnavailable(FailureKind.TOO_LONG, f"{len(text)} characters")
    return Summary(text, answer.tokens)


def read_proposal(answer: Answer) -> CommandProposal | Question | AIUnavailable:
    """One ``propose_command`` or ``ask_question`` call, checked; or a bare command text."""
    problem = _common_problem(answer, allow_empty=True)
    if problem is not None:
        return problem
    if not answer.tool_calls:
        return _bare_command(answer)
    if len(answer.tool_calls) != 1:
        return _invalid(f"{len(answer.tool_calls)} tool calls; expected one")
    call = answer.tool_calls[0]
    if call.name == PROPOSE_TOOL:
        return _proposal(_argument(call, "command"), answer.tokens)
    if call.name == ASK_TOOL:
        return _question(_argument(call, "question"), answer.tokens)
    return _invalid("a call of an unknown tool")


def _common_problem(answer: Answer, *, allow_empty: bool = False) -> AIUnavailable | None:
    if answer.refusal:
        return AIUnavailable(FailureKind.REFUSED, "the model declined")
    if answer.finish_reason == "length":
        return AIUnavailable(FailureKind.TOO_LONG, "the answer hit the token limit")
    if answer.finish_reason == "content_filter":
        return AIUnavailable(FailureKind.REFUSED, "the endpoint's content filter")
    if not allow_empty and not (answer.content or "").strip():
        return _invalid("the answer is empty")
    return None


def _bare_command(answer: Answer) -> CommandProposal | AIUnavailable:
    # Some endpoints ignore tool_choice and answer in text; a command alone is still fine.
    text = (answer.content or "").strip()
    if not text.startswith(("/trigger", "/hook")):
        return _invalid("neither a tool call nor a command")
    return _proposal(text, answer.tokens)


def _proposal(command: str | None, tokens: int) -> CommandProposal | AIUnavailable:
    if command is None:
        return _invalid("propose_command without a command text")
    text = command.strip()
    if _CONTROL.search(text):
        return _invalid("the command is not a single line")
    if len(text) > MAX_COMMAND_CHARS:
        return AIUnavailable(FailureKind.TOO_LONG, f"a command of {len(text)} characters")
    if not _COMMAND.fullmatch(text):
        return _invalid("the command does not start with /trigger or /hook")
    return CommandProposal(text, tokens)


def _question(question: str | None, tokens: int) -> Question | AIUnavailable:
    if question is None:
        return _invalid("ask_question without a question")
    text = " ".join(question.split())
    if not text:
        return _invalid("an empty question")
    if len(text) > MAX_QUESTION_CHARS:
        return AIUnavailable(FailureKind.TOO_LONG, f"a question of {len(text)} characters")
    return Question(text, tokens)


def _argument(call: ToolCallAnswer, name: str) -> str | None:
    arguments = _json_object(call.arguments)
    if arguments is None or set(arguments) != {name}:
        return None
    value = arguments[name]
    return value if isinstance(value, str) else None


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _tidy_lines(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    return "\n".join(line for line in lines if line)


def _invalid(detail: str) -> AIUnavailable:
    return AIUnavailable(FailureKind.INVALID_OUTPUT, detail)
