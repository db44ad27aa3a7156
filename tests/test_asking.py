"""A typed reply read as the answer to the question asked, or as a new request (pure)."""

from __future__ import annotations

import pytest

from bot.conversation.asking import answer_row, typed_answer
from bot.conversation.questions import Question, Slot


@pytest.mark.parametrize(
    ("slot", "typed", "answer"),
    [
        ("time", "7:30", "7:30"),
        ("time", "at 8am", "8:00"),
        ("time", "noon", "12:00"),
        ("time", "9am remind me to call Bob", None),
        ("zone", "Europe/London", "Europe/London"),
        ("zone", "london", "Europe/London"),
        ("zone", "PT", "America/Los_Angeles"),
        ("zone", "Narnia", None),
        ("channel", "<#C0NEWS|news>", "C0NEWS"),
        ("channel", "#news", "#news"),
        ("channel", "here", "here"),
        ("channel", "post it in #news please", None),
        ("url", "<https://b.example.com>", "https://b.example.com"),
        ("url", "check <https://b.example.com> now", None),
        ("when", "every weekday at 9:00", "every weekday at 9:00"),
        ("when", "in 2 hours", "in 2 hours"),
        ("when", "every day at 9am remind me to stretch", None),
        ("list", "data.items", "data.items"),
        ("list", "the list of leads", None),
    ],
)
def test_a_typed_reply_is_the_answer_only_when_it_is_one(
    slot: Slot, typed: str, answer: str | None
) -> None:
    assert typed_answer(slot, typed) == answer


def test_the_answers_are_buttons_carrying_only_ids_and_a_channel_gets_a_picker() -> None:
    when = answer_row(Question("time", "What time?", ("9:00", "8:00")), 42)
    where = answer_row(Question("channel", "Where?", ("here",)), 43)

    assert [e.get("value") for e in when["elements"]] == ["42:0", "42:1", "42"]
    assert [e["type"] for e in where["elements"]] == ["conversations_select", "button"]
    assert where["block_id"] == "question-43"
