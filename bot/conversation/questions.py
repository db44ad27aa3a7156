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

Slot = Literal["channel", "time", "zone", "url", "list", "when"]
SLOTS: Final[tuple[Slot, ...]] = ("channel", "time", "zone", "url", "list", "when")
Answers = Mapping[str, str]
"""Slot → the answer given (a channel id or ``here``, ``9:00``, ``Europe/London``, a URL)."""

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
