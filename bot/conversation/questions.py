"""One question back, instead of a refusal: which piece is missing and its likely answers.

When a request lacks one piece (no channel, no address, a time of day without a time, an
unknown or ambiguous time zone, two addresses) the reader answers with a `Question`. The
person's answer is kept in `Answers` under the question's slot, and the same message is
read again with it: nothing the person said is re-typed or lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

Slot = Literal["channel", "time", "zone", "url", "list", "when", "day"]
SLOTS: Final[tuple[Slot, ...]] = ("channel", "time", "zone", "url", "list", "when", "day")
Answers = Mapping[str, str]
"""Slot → the answer given (a channel id or ``here``, ``9:00``, ``Europe/London``, a URL,
``every friday`` or ``only on 2026-11-27``)."""

HERE: Final = "here"
"""The channel answer meaning "this conversation"."""


@dataclass(frozen=True)
class Question:
    """What to ask: the slot it fills, the question, and the likely answers (button values).

    A ``channel`` question is answered with a channel picker as well as its options; every
    other question also takes a typed answer ("Other…").
    """

    slot: Slot
    text: str
    options: tuple[str, ...] = ()


def slot_of(text: str) -> Slot | None:
    """The slot named ``text``, or None."""
    return next((slot for slot in SLOTS if slot == text), None)


@dataclass(frozen=True)
class Pending:
    """A request waiting for an answer: the message as sent, the answers so far, and the
    question asked (kept in a draft, so the answer can come by click or typed later).

    ``replaces`` is the proposal a changed default ("morning" read as 9:00 → 8:00) would
    replace: it is closed when the answer comes.
    """

    message: str
    answers: Mapping[str, str]
    question: Question
    replaces: int | None = None

    def answered(self, value: str) -> dict[str, str]:
        """The answers with ``value`` for this question's slot."""
        return {**self.answers, self.question.slot: value}

    def to_dict(self) -> dict[str, object]:
        """A JSON-safe dict for the draft; read back with `pending_from_dict`."""
        return {
            "message": self.message,
            "answers": dict(self.answers),
            "slot": self.question.slot,
            "text": self.question.text,
            "options": list(self.question.options),
            "replaces": self.replaces,
        }


def pending_from_dict(data: Mapping[str, object]) -> Pending | None:
    """Read back `Pending.to_dict`; None for a document of another shape."""
    slot = slot_of(str(data.get("slot", "")))
    answers = data.get("answers")
    options = data.get("options")
    replaces = data.get("replaces")
    if slot is None or not isinstance(answers, Mapping) or not isinstance(options, list):
        return None
    question = Question(slot, str(data.get("text", "")), tuple(str(o) for o in options))
    return Pending(
        message=str(data.get("message", "")),
        answers={str(key): str(value) for key, value in answers.items()},
        question=question,
        replaces=replaces if isinstance(replaces, int) else None,
    )
