"""The words of a plain-language request, as the reader sees them.

`words_of` splits a message (Slack-escaped, filler stripped by `strip_filler`) into
`Word`s that know whether they are a link, a channel or quoted; `Ask` is one request being
read, with what the schedule grammar needs and the defaults chosen so far. `Unclear` and
`Asking` are how a reader gives up: a refusal naming the part, or one question back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from bot.conversation.phrasing import Respelled
from bot.conversation.questions import Answers, Question
from bot.slack.text import ChannelRef, CommandSyntaxError, Token, link_target, parse_channel, scan

DEFAULT_TIME: Final = "9:00"  # a day said without a time of day runs at 9:00, said aloud
PUNCTUATION: Final = ",.:!?"  # not ";": it ends Slack's "&amp;"
BOUNDARIES: Final = frozenset(".:!?")
QUOTE_CHARS: Final = frozenset('"“”')
STRAIGHT_QUOTES: Final = str.maketrans({"“": '"', "”": '"'})
_MENTION: Final = re.compile(r"^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>[\s,:]*")
_LEADING_FILLER: Final = re.compile(
    r"^(?:hey|hi|hello|yo|ok|okay|please|pls|kindly|(?:can|could|would|will) you)\b[\s,!.]*",
    re.IGNORECASE,
)
# Trailing filler is stripped without a regular expression: "[\s,!.?]+$" tried at every
# position is quadratic in a run of spaces, and a DM may be 40,000 characters long.
_TRAILING_PUNCTUATION: Final = " \t\n\r\f\v,!.?"
_TRAILING_WORDS: Final = ("thank you", "thanks", "thx", "please", "pls")

REMIND_WORDS: Final = frozenset({"remind", "reminder"})
SAY_WORDS: Final = frozenset({"post", "say", "send", "announce", "tell", "write"})
CONDITION_WORDS: Final = frozenset({"if", "when", "whenever"})
ACTION_WORDS: Final = frozenset(
    {"tell", "alert", "notify", "ping", "post", "send", "message", "let", "warn"}
)
CHECK_WORDS: Final = frozenset({"check", "checking", "watch", "monitor", "poll"})
SCHEDULE_SYNONYMS: Final[Mapping[str, str]] = {
    "each": "every",
    "hourly": "every hour",
    "daily": "every day",
    "weekly": "every week",
    "monthly": "every month",
}


class Asking(Exception):
    """One piece is missing or ambiguous: ask about it rather than refuse or guess."""

    def __init__(self, question: Question) -> None:
        super().__init__(question.text)
        self.question = question


class Unclear(Exception):
    """A request that cannot become a command; ``part`` is the fragment at fault."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(reason)
        self.part = part
        self.reason = reason


@dataclass(frozen=True)
class Word:
    """One word of the message, with trailing punctuation split off.

    ``text`` is unescaped without quotes; ``raw`` is as Slack sent it; ``start``/``end``
    locate ``raw`` in the message; ``stop`` is the punctuation that followed ('' if none).
    """

    text: str
    raw: str
    start: int
    end: int
    quoted: bool
    stop: str

    @property
    def low(self) -> str:
        """The text lower-cased, with a curly apostrophe made straight."""
        return self.text.lower().replace("’", "'")

    @property
    def channel(self) -> ChannelRef | None:
        """The channel this word names (``<#C1|ops>`` or ``#ops``), if it is one."""
        return None if self.quoted else parse_channel(self.text)

    @property
    def link(self) -> str | None:
        """The address this word links to, whatever its scheme, if it is a link."""
        return None if self.quoted else link_target(self.text)

    @property
    def is_reference(self) -> bool:
        """True for links, channels, users and other Slack ``<...>`` references."""
        return not self.quoted and (
            self.raw.startswith("<") or self.link is not None or self.channel is not None
        )


# How many readings of schedule phrases one request may try: every word that can start a
# schedule is tried with every length, so a message of such words ("at at at …") would
# otherwise hold the event loop for minutes. Every request of the understanding table
# needs fewer than 200.
MAX_SCHEDULE_TRIES = 2_000


@dataclass
class Tries:
    """The schedule readings a request has left (`MAX_SCHEDULE_TRIES`)."""

    left: int = MAX_SCHEDULE_TRIES


@dataclass(frozen=True)
class Ask:
    """One request: its words and what the schedule parser needs."""

    message: str
    words: tuple[Word, ...]
    default_tz: ZoneInfo
    now: datetime
    min_interval: timedelta
    user_id: str
    heard: Respelled  # the name and zone taken out, the defaults chosen so far
    answers: Answers
    ask_for_channel: bool
    tries: Tries = field(default_factory=Tries)

    def note(self, text: str) -> None:
        """Say in the summary that a default was chosen."""
        self.heard.notes.append(text)


def strip_filler(message: str) -> str:
    """Drop a leading bot mention, greetings and polite words, and trailing thanks/punctuation."""
    text = _MENTION.sub("", message).strip()
    previous = None
    while previous != text:
        previous = text
        text = _LEADING_FILLER.sub("", text)
        text = _strip_trailing_filler(text).strip()
    return text


def _strip_trailing_filler(text: str) -> str:
    """Drop trailing punctuation and thanks ("…, thanks!"), in linear time."""
    while True:
        text = text.rstrip(_TRAILING_PUNCTUATION)
        lowered = text.lower()
        word = next((w for w in _TRAILING_WORDS if _ends_with_word(lowered, w)), None)
        if word is None:
            return text
        text = text[: -len(word)]


def _ends_with_word(text: str, word: str) -> bool:
    if not text.endswith(word):
        return False
    before = text[-len(word) - 1 : -len(word)]
    return not before or not (before.isalnum() or before in "_'")


def words_of(text: str) -> tuple[Word, ...]:
    try:
        tokens = scan(text)
    except CommandSyntaxError as error:
        raise Unclear(error.part, "a quote is never closed") from None
    return tuple(_word(text, token) for token in tokens)


def _word(text: str, token: Token) -> Word:
    raw = text[token.start : token.end]
    body = raw.rstrip(PUNCTUATION)
    stop = raw[len(body) :]
    word_text = token.text.removesuffix(stop) if stop else token.text
    return Word(word_text, body, token.start, token.start + len(body), token.quoted, stop)


def fully_quoted(word: Word) -> bool:
    raw = word.raw
    inner = raw[1:-1]
    return (
        len(raw) >= 2
        and raw[0] in QUOTE_CHARS
        and raw[-1] in QUOTE_CHARS
        and not any(char in QUOTE_CHARS for char in inner)
    )
