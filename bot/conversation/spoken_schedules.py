"""Schedules inside a sentence: the longest phrase `parse_schedule` accepts.

* the schedule is the longest phrase starting at ``every``/``each``/``cron`` (or, for
  one-offs, ``at``/``in``/``on``/``today``/``tomorrow``) that `parse_schedule` accepts;
  ``at 9:30 every weekday`` is put back in grammar order as ``every weekday at 9:30``, and
  ``on the first of each month`` as ``every month on the 1st``;
* a day or a month with no time anywhere runs at 9:00, and the summary says so;
* a refusal quotes the person's own words, even where the phrase was respelled or
  reordered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from bot.conversation.reading import (
    ACTION_WORDS,
    BOUNDARIES,
    CONDITION_WORDS,
    DEFAULT_TIME,
    REMIND_WORDS,
    SAY_WORDS,
    SCHEDULE_SYNONYMS,
    Ask,
    Unclear,
    Word,
)
from bot.slack.text import unescape
from bot.triggers.schedule import ScheduleError, ordinal, parse_schedule

_AMBIGUOUS: Final = frozenset(
    {"fortnight", "fortnightly", "biweekly", "bi-weekly", "bimonthly", "bi-monthly"}
)
_SEGMENT_STOPS: Final = (
    REMIND_WORDS
    | SAY_WORDS
    | CONDITION_WORDS
    | ACTION_WORDS
    | {"check", "watch", "monitor", "to", "me", "us", "for", "from"}
)
_ONE_OFF_STARTS: Final = frozenset({"at", "in", "today", "tomorrow"})
_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}")
_DAY_NUMBER: Final = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)$")
_ORDINAL_WORDS: Final[Mapping[str, int]] = {
    word: number
    for number, word in enumerate(
        [
            *("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"),
            *("ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth"),
            *("fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth"),
            *("twentieth", "twenty-first", "twenty-second", "twenty-third", "twenty-fourth"),
            *("twenty-fifth", "twenty-sixth", "twenty-seventh", "twenty-eighth"),
            *("twenty-ninth", "thirtieth", "thirty-first"),
        ],
        start=1,
    )
}
_OF_A_MONTH: Final = frozenset({"each", "every", "the", "a"})


@dataclass(frozen=True)
class Found:
    """A schedule phrase in grammar order, and the indexes of the words it used."""

    text: str
    span: frozenset[int]


def schedule_in(ask: Ask, skip: frozenset[int]) -> str | None:
    found = find_schedule(ask, skip)
    return None if found is None else found.text


def find_schedule(ask: Ask, skip: frozenset[int]) -> Found | None:
    """The schedule in the message, or None when it names none.

    Recurring phrases win over one-offs, so "every blue moon at 9" is refused rather than
    read as "at 9"; a phrase that starts like a schedule but never parses is refused.
    """
    _refuse_ambiguous(ask.words)
    pieces = _schedule_pieces(ask.words, skip)
    recurring = [i for i, piece in enumerate(pieces) if piece and _is_recurring_piece(piece)]
    if recurring:
        return _best(ask, pieces, recurring, with_times=True)
    one_offs = [i for i in range(len(pieces)) if _starts_one_off(pieces, i)]
    return _best(ask, pieces, one_offs, with_times=False) if one_offs else None


def _refuse_ambiguous(words: Sequence[Word]) -> None:
    for word in words:
        if word.low in _AMBIGUOUS:
            raise Unclear(
                word.text,
                f'"{word.text}" is ambiguous: say "every 2 weeks", "every 14 days" or '
                '"every month on the 1st at 9am"',
            )


def _schedule_pieces(words: Sequence[Word], skip: frozenset[int]) -> list[str | None]:
    """Each word as the schedule grammar spells it; None where no schedule can go.

    A day of the month said the English way ("on the first of each month") becomes the
    grammar's "every month on the 1st": its first word carries the whole phrase and the
    others are empty (used, but adding nothing).
    """
    pieces: list[str | None] = []
    for index, word in enumerate(words):
        before = pieces[-1] if pieces else None
        pieces.append(None if index in skip else _schedule_piece(word, before))
    start = 0
    while start < len(words):
        found = _day_of_a_month(words, start)
        if found is None or None in pieces[start : found[0]]:
            start += 1
            continue
        end, day = found
        pieces[start:end] = [f"every month on the {day}", *([""] * (end - start - 1))]
        start = end
    return pieces


def _day_of_a_month(words: Sequence[Word], start: int) -> tuple[int, str] | None:
    """``[on] [the] first|1st|last [day] of each|every|the month`` from ``start``: where
    it ends and the day as the grammar says it ("1st", "last day"); None if it is not one."""
    lows = [None if word.quoted else word.low for word in words]
    at = start + (lows[start] == "on")
    at += at < len(lows) and lows[at] == "the"
    day, at = _day_word(lows, at)
    of_a_month = lows[at : at + 3]
    if day is None or len(of_a_month) < 3:
        return None
    of, which, month = of_a_month
    return (at + 3, day) if of == "of" and which in _OF_A_MONTH and month == "month" else None


def _day_word(lows: list[str | None], at: int) -> tuple[str | None, int]:
    """The day of the month at ``at`` ("1st", "last day") and the index after it."""
    word = lows[at] if at < len(lows) else None
    if word is None:
        return None, at
    if word == "last":
        return "last day", at + 1 + (at + 1 < len(lows) and lows[at + 1] == "day")
    number = _ORDINAL_WORDS.get(word)
    found = _DAY_NUMBER.match(word)
    if number is None and found is not None:
        number = int(found[1])
    if number is None or not 1 <= number <= 31:
        return None, at
    return ordinal(number), at + 1 + (at + 1 < len(lows) and lows[at + 1] == "day")


def _schedule_piece(word: Word, before: str | None) -> str | None:
    if word.quoted:
        return f'"{word.text}"' if before == "cron" and '"' not in word.text else None
    if word.is_reference or not word.text:
        return None
    if before == "tz":
        return word.text
    if before == "in" and word.low in ("a", "an"):
        return "1"
    if before == "every" and word.low == "other":
        return "2"
    return SCHEDULE_SYNONYMS.get(word.low, word.low)


def _is_recurring_piece(piece: str) -> bool:
    return piece.split()[0] in ("every", "cron")


def _starts_one_off(pieces: list[str | None], index: int) -> bool:
    piece = pieces[index]
    following = pieces[index + 1] if index + 1 < len(pieces) else None
    if piece in ("today", "tomorrow"):
        return True
    if piece == "on":
        return following is not None and _ISO_DATE.match(following) is not None
    return piece in _ONE_OFF_STARTS and following is not None


def _best(ask: Ask, pieces: list[str | None], starts: list[int], *, with_times: bool) -> Found:
    candidates = [found for start in starts for found in _candidates(ask, pieces, start)]
    if with_times and (not candidates or _time_said_apart(pieces, candidates)):
        # "remind #team at 12:00 every day": "every day" parses alone, but the time joins it
        joined = [found for start in starts for found in _with_time(ask, pieces, start)]
        candidates = joined or candidates
    if with_times and not candidates:
        candidates = [found for start in starts for found in _at_default_time(ask, pieces, start)]
        if candidates:
            ask.note(f"no time of day given: {DEFAULT_TIME}")
    if not candidates:
        raise _schedule_error(ask, pieces, starts[0])
    best = max(candidates, key=lambda found: (len(found.span), -min(found.span)))
    _refuse_dangling_time(ask, pieces, best)
    if with_times:
        _refuse_second_schedule(ask, pieces, starts, best)
    return best


def _refuse_second_schedule(
    ask: Ask, pieces: list[str | None], starts: list[int], best: Found
) -> None:
    """Refuse "every hour on weekdays" read as "every hour": the weekdays would be lost."""
    others = [start for start in starts if start not in best.span and pieces[start] == "every"]
    # "weekly" and "daily" are also adjectives ("the weekly report"): only "every …" counts
    other = next(
        (o for o in others if _candidates(ask, pieces, o) or _at_default_time(ask, pieces, o)),
        None,
    )
    if other is not None:
        end = _reach(ask.words, pieces, other)
        said = _said(ask, other, max(other, end - 1))
        raise Unclear(
            said,
            f'I can follow one schedule, and "{said}" is a second one: say it in one, e.g. '
            '"every weekday at 9:00 and 17:00" or "every 2 hours"',
        )


def _refuse_dangling_time(ask: Ask, pieces: list[str | None], found: Found) -> None:
    """Refuse "every other day at 8" read as "every 2 days": the "at 8" would be lost."""
    after = max(found.span) + 1
    if after + 1 < len(pieces) and pieces[after] == "at" and pieces[after + 1] is not None:
        raise _schedule_error(ask, pieces, min(found.span))


def _candidates(ask: Ask, pieces: list[str | None], start: int) -> list[Found]:
    """The longest phrase from ``start`` that parses (a list of one, or empty)."""
    for end in range(_reach(ask.words, pieces, start), start, -1):
        text = _phrase(ask.words, pieces, start, end)
        if pieces[end - 1] != "and" and _parses(text, ask):
            return [Found(text, frozenset(range(start, end)))]
    return []


def _time_said_apart(pieces: list[str | None], candidates: list[Found]) -> bool:
    used = frozenset().union(*(found.span for found in candidates))
    return any(
        piece == "at" and index not in used and index + 1 < len(pieces) and pieces[index + 1]
        for index, piece in enumerate(pieces)
    )


def _at_default_time(ask: Ask, pieces: list[str | None], start: int) -> list[Found]:
    """``every friday`` with no time anywhere: at 9:00 (said in the summary)."""
    if any(piece == "at" for piece in pieces):
        return []
    for end in range(_reach(ask.words, pieces, start), start, -1):
        text = f"{_phrase(ask.words, pieces, start, end)} at {DEFAULT_TIME}"
        if pieces[end - 1] != "and" and _parses(text, ask):
            return [Found(text, frozenset(range(start, end)))]
    return []


def _with_time(ask: Ask, pieces: list[str | None], start: int) -> list[Found]:
    """``every weekday`` joined with an ``at 9:30`` said elsewhere, in grammar order."""
    found: list[Found] = []
    for at in (i for i, piece in enumerate(pieces) if piece == "at"):
        for end in range(start + 1, _reach(ask.words, pieces, start) + 1):
            found += _joined(ask, pieces, (start, end), at)
    return found


def _joined(ask: Ask, pieces: list[str | None], days: tuple[int, int], at: int) -> list[Found]:
    """The longest ``at ...`` phrase from ``at`` that completes the ``days`` phrase."""
    start, end = days
    if start <= at < end:
        return []
    head = _phrase(ask.words, pieces, start, end)
    for at_end in range(_reach(ask.words, pieces, at), at + 1, -1):
        if at < start < at_end or pieces[at_end - 1] == "and":
            continue
        text = f"{head} {_phrase(ask.words, pieces, at, at_end)}"
        if _parses(text, ask):
            return [Found(text, frozenset(range(start, end)) | frozenset(range(at, at_end)))]
    return []


# The most words one schedule phrase takes ("every monday, wednesday and friday at 9:00,
# 12:00 and 17:00 tz Europe/Paris" is 14): each reading then stays short.
MAX_SCHEDULE_WORDS: Final = 32


def _reach(words: Sequence[Word], pieces: list[str | None], start: int) -> int:
    """One past the last word a schedule from ``start`` could use."""
    end = start
    while end < min(len(pieces), start + MAX_SCHEDULE_WORDS) and pieces[end] is not None:
        end += 1
        if words[end - 1].stop and words[end - 1].stop[0] in BOUNDARIES:
            break
    return end


def _phrase(words: Sequence[Word], pieces: list[str | None], start: int, end: int) -> str:
    return " ".join(text for _, text in _phrase_parts(words, pieces, start, end))


def _phrase_parts(
    words: Sequence[Word], pieces: list[str | None], start: int, end: int
) -> list[tuple[int, str]]:
    """The phrase's pieces with the index of the word each one stands for."""
    parts: list[tuple[int, str]] = []
    for index in range(start, end):
        comma = "," if words[index].stop.startswith(",") and index < end - 1 else ""
        if pieces[index]:
            parts.append((index, f"{pieces[index]}{comma}"))
    return parts


def _parses(text: str, ask: Ask) -> bool:
    ask.tries.left -= 1
    if ask.tries.left < 0:
        raise Unclear(
            ask.message[:60],
            "that's more schedule words than I can read as one schedule: say it in one, "
            'e.g. "every weekday at 9:00"',
        )
    try:
        parse_schedule(text, default_tz=ask.default_tz, now=ask.now, min_interval=ask.min_interval)
    except ValueError:  # ScheduleError, or a schedule's own check
        return False
    return True


def _schedule_error(ask: Ask, pieces: list[str | None], start: int) -> Unclear:
    """Why the schedule phrase at ``start`` fails, in `parse_schedule`'s own words."""
    end = start + 1
    reach = _reach(ask.words, pieces, start)
    while end < reach and ask.words[end].low not in _SEGMENT_STOPS:
        end += 1
    while end > start + 1 and pieces[end - 1] in ("and", ","):
        end -= 1
    text = _phrase(ask.words, pieces, start, end)
    said = _said(ask, start, end - 1)
    try:
        parse_schedule(text, default_tz=ask.default_tz, now=ask.now, min_interval=ask.min_interval)
    except ScheduleError as error:
        part = _said_for(ask, pieces, (start, end), error.part)
        return Unclear(part, _requoted(str(error), error.part, part))
    except ValueError as error:
        return Unclear(said, str(error))
    return Unclear(said, "I couldn't fit this schedule together with the rest of the message")


def _said(ask: Ask, first: int, last: int) -> str:
    """What the person wrote from word ``first`` to word ``last``, Slack's escaping undone."""
    return unescape(ask.message[ask.words[first].start : ask.words[last].end])


def _said_for(ask: Ask, pieces: list[str | None], words: tuple[int, int], part: str) -> str:
    """The person's own words behind ``part`` of the schedule phrase the bot put together
    (which may have reordered, respelled or dropped some): a refusal quotes what they wrote."""
    parts = _phrase_parts(ask.words, pieces, *words)
    phrase = " ".join(text for _, text in parts)
    found = phrase.find(part) if part else -1
    if found < 0:
        return _said(ask, words[0], words[1] - 1)
    used: list[int] = []
    offset = 0
    # A piece stands for its word and the empty pieces after it (a phrase put in order).
    ends = [index for index, _ in parts[1:]] + [words[1]]
    for (index, text), next_index in zip(parts, ends, strict=True):
        if offset < found + len(part) and found < offset + len(text):
            used += [index, next_index - 1]
        offset += len(text) + 1
    return _said(ask, min(used), max(used))


def _requoted(reason: str, part: str, said: str) -> str:
    """``reason`` quoting ``said`` where the schedule parser quoted its own ``part``."""
    if part == said:
        return reason
    quoted = f"`{said}`" if '"' in said else f'"{said}"'
    for theirs in (f'"{part}"', f"`{part}`"):
        if theirs in reason:
            return reason.replace(theirs, quoted, 1)
    return reason
