"""Asking back in Slack: a question's buttons and channel picker, and typed answers.

A question is one section and one row of answers: a button per likely answer (its value
is the draft id and the answer's index: buttons carry only ids), a channel picker when
the question is where to post, and **Other…**, after which the next message the person
sends is read as the answer when it is one (a time, a zone, an address, a schedule).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from bot.conversation.questions import HERE, Question, Slot
from bot.conversation.spoken_zones import zone_named
from bot.slack import interactive as ui
from bot.slack.blocks import Block, section
from bot.slack.text import parse_channel, parse_url, unescape

QUESTION_ANSWER: Final = "question_answer"
QUESTION_OTHER: Final = "question_other"
QUESTION_CHANNEL: Final = "question_channel"
CHANNEL_BLOCK_PREFIX: Final = "question-"

_EXAMPLES: Final[dict[Slot, str]] = {
    "channel": "#ops",
    "time": "7:30",
    "zone": "Europe/London",
    "url": "https://example.com",
    "when": "every weekday at 9:00",
    "list": "data.items",
    "day": "every friday",
}
_UTC_ZONE: Final = ZoneInfo("UTC")
# Whether a reply is a schedule does not depend on today: any instant reads it the same.
_ANY_NOW: Final = datetime(2000, 1, 1, tzinfo=UTC)
_PATH: Final = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*$")


def question_blocks(question: Question, draft_id: int) -> list[Block]:
    """The question with its answers as buttons (and a channel picker for a channel)."""
    return [section(question.text), answer_row(question, draft_id)]


def answer_row(question: Question, draft_id: int) -> Block:
    """The row of answers alone (also shown under a proposal whose default may change)."""
    elements: list[dict[str, object]] = []
    if question.slot == "channel":
        picker = ui.channel_select(QUESTION_CHANNEL, None)
        picker.pop("default_to_current_conversation", None)
        elements.append(picker)
    for index, option in enumerate(question.options):
        value = f"{draft_id}:{index}"
        elements.append(ui.button(_label(option), QUESTION_ANSWER, value))
    if question.slot != "channel":
        elements.append(ui.button("Other…", QUESTION_OTHER, str(draft_id)))
    return {
        "type": "actions",
        "block_id": f"{CHANNEL_BLOCK_PREFIX}{draft_id}",
        "elements": elements,
    }


def other_prompt(question: Question) -> str:
    """What to say after **Other…**: type the answer, with an example."""
    return f"Type your answer here, e.g. `{_EXAMPLES[question.slot]}`."


def answered_text(question: Question, value: str) -> str:
    """The question, once answered (replacing the message with its buttons)."""
    return f"{question.text} *{_label(value)}*"


def typed_answer(slot: Slot, text: str) -> str | None:
    """A typed message read as the answer for ``slot``, or None when it is not one."""
    words = text.strip().rstrip(".!").strip()
    if not words or len(words) > 200:
        return None
    return _READERS[slot](words)


def _label(option: str) -> str:
    return "Here" if option == HERE else option


def _channel(text: str) -> str | None:
    if text.lower() in (HERE, "this one", "this channel", "here please"):
        return HERE
    ref = parse_channel(text.split()[0]) if len(text.split()) == 1 else None
    if ref is None:
        return None
    return ref.id or f"#{ref.name}"


def _time(text: str) -> str | None:
    from bot.triggers.schedule import parse_clock  # the grammar's own reading of a time

    at = parse_clock(text.removeprefix("at ").replace(" ", ""))
    return None if at is None else f"{at.hour}:{at.minute:02d}"


def _zone(text: str) -> str | None:
    return zone_named(unescape(text))


def _url(text: str) -> str | None:
    return parse_url(text) if len(text.split()) == 1 else None


def _when(text: str) -> str | None:
    """A schedule alone ("every weekday at 9:00"), not a new request that starts with one
    ("every day at 9am remind me to stretch"): only what the grammar reads whole."""
    from bot.triggers.schedule import parse_schedule

    said = unescape(text)
    try:
        parse_schedule(said, default_tz=_UTC_ZONE, now=_ANY_NOW, min_interval=timedelta(0))
    except ValueError:
        return None
    return said


def _list(text: str) -> str | None:
    return text if _PATH.match(text) else None


def _day(text: str) -> str | None:
    found = _DAY_ANSWER.match(text.lower())
    return None if found is None else found[0]


_DAY_ANSWER: Final = re.compile(
    r"^(?:every (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    r"only on \d{4}-\d{2}-\d{2})$"
)


_READERS: Final = {
    "channel": _channel,
    "time": _time,
    "zone": _zone,
    "url": _url,
    "when": _when,
    "list": _list,
    "day": _day,
}
