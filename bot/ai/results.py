"""What an AI step gives back: a validated value, or :class:`AIUnavailable` and rules decide.

Every value here is data checked against what was asked for; none of it is an instruction.
A :class:`CommandProposal` still goes through the normal command parser, and a person
still clicks Create.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from bot.ai.labels import Label

AIUse = Literal["categorise", "summarise", "understand"]


class FailureKind(StrEnum):
    """Why the AI step did not give a usable answer (a bounded set, fit for metric labels)."""

    NOT_CONFIGURED = "not_configured"
    BUDGET_SPENT = "budget_spent"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    HTTP_ERROR = "http_error"
    CONNECTION = "connection"
    MALFORMED_RESPONSE = "malformed_response"
    REFUSED = "refused"
    INVALID_OUTPUT = "invalid_output"
    TOO_LONG = "too_long"


@dataclass(frozen=True)
class AIUnavailable:
    """No usable AI answer; the caller falls back to rules. ``detail`` never holds secrets."""

    kind: FailureKind
    detail: str = ""

    @property
    def reason(self) -> str:
        """One line for logs and for a person: the kind, and the detail when there is one."""
        return f"{self.kind.value}: {self.detail}" if self.detail else self.kind.value


@dataclass(frozen=True)
class Category:
    """The label the model chose; always one of the labels it was given."""

    label: Label
    tokens: int


@dataclass(frozen=True)
class Summary:
    """A short plain-text summary, within the length that was asked for."""

    text: str
    tokens: int


@dataclass(frozen=True)
class CommandProposal:
    """The text of one bot command, single-line, starting ``/trigger`` or ``/hook``.

    A proposal only: it goes through the normal parser and a person must confirm it.
    """

    command: str
    tokens: int


@dataclass(frozen=True)
class Question:
    """The model did not understand the request and asks this back (plain text)."""

    text: str
    tokens: int
