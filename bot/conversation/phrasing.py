"""Everyday phrasing, respelled the way the schedule grammar reads it, before the reader runs.

People say "every morning", "twice a day", "quarterly", "on fridays", "9am London time",
"called deploys" and "the SSL certificate of https://… expires within 14 days". `respell`
rewrites those into the grammar's own phrases ("every day at 9:00", "every friday",
``cron "0 9 1 1,4,7,10 *"``), takes out the name and the time zone (returned apart), and
records every default it chose as a note for the summary, so none is silent:

* morning = 9:00, afternoon = 14:00, evening = 18:00, night = 22:00; twice a day =
  9:00 and 17:00; a quarter starts on the 1st of January, April, July and October, at 9:00;
* "at 5" without am/pm for an hour from 1 to 6 is asked about (5:00 or 17:00?);
* a zone that is not known, or an abbreviation with several meanings (IST), is asked about.

Slack's ``<…>`` references and quoted text are never rewritten: a reminder's words and a
link stay as the person wrote them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Final

from bot.conversation import spoken_zones
from bot.conversation.questions import Answers, Question

_FIRST_PLACEHOLDER: Final = 0xE100
_PROTECTED: Final = re.compile(r'<[^<>\s]*(?:\|[^<>]*)?>|"[^"]*"|“[^”]*”')
_PLACEHOLDER: Final = "[\ue100-\uefff]"

_PART_OF_DAY: Final = {
    "morning": "9:00",
    "afternoon": "14:00",
    "evening": "18:00",
    "night": "22:00",
}
_DAY_NAMES: Final = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_DAYS: Final = rf"(?:{_DAY_NAMES}|weekday|day)"
_PART: Final = r"(morning|afternoon|evening|night)s?"
_CLOCK: Final = (
    r"(?:\d{1,2}(?:[:.]\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)?|noon|midnight|midday)(?![\w/])"
)
_AT_CLOCK: Final = re.compile(rf"\bat\s+{_CLOCK}", re.IGNORECASE)
_QUARTER_TIME: Final = "9:00"
_NUMBERS: Final = {
    word: str(number)
    for number, word in enumerate(
        [
            *("zero", "one", "two", "three", "four", "five", "six"),
            *("seven", "eight", "nine", "ten", "eleven", "twelve"),
        ]
    )
} | {"fifteen": "15", "twenty": "20", "thirty": "30", "forty-five": "45", "sixty": "60"}
# Hours said without am/pm that mean the afternoon when the part of the day says so.
_LATER_HOURS: Final = {
    "afternoon": range(1, 7),
    "evening": range(4, 12),
    "night": range(7, 12),
}
_BARE_CLOCK: Final = re.compile(
    r"\bat\s+(\d{1,2})(?::(\d{2}))?(?![\d:.])(?!\s*(?:am|pm|a\.m|p\.m))", re.IGNORECASE
)
_TWICE: Final = "9:00 and 17:00"
_THRICE: Final = "9:00 and 13:00 and 17:00"


@dataclass
class Respelled:
    """The message respelled, and what was taken out of it or chosen for it."""

    text: str
    zone: str | None = None  # an IANA key the person named
    name: str | None = None  # the name the person gave, as they wrote it
    notes: list[str] = field(default_factory=list)  # each default chosen, in words
    offer: Question | None = None  # a default the person may want to change
    question: Question | None = None  # a piece that must be asked about
    refusal: tuple[str, str] | None = None  # (part, why) for what cannot be expressed
    today: date | None = None  # the person's date, for "on friday" said of one day


def respell(
    message: str, answers: Answers, default_zone: str, today: date | None = None
) -> Respelled:
    """``message`` (Slack-escaped, filler already stripped) in the grammar's words;
    ``today`` (the person's) dates "only this friday"."""
    protected: list[str] = []

    def hide(found: re.Match[str]) -> str:
        protected.append(found[0])
        return chr(_FIRST_PLACEHOLDER + len(protected) - 1)

    masked = _PROTECTED.sub(hide, message) if len(message) < 4000 else message
    result = Respelled(masked, today=today)
    for step in _STEPS:
        step(result, answers, default_zone, protected)
    result.text = _unmask(result.text, protected)
    result.text = " ".join(result.text.split()).lstrip(",;- ")
    return result


def _unmask(text: str, protected: list[str]) -> str:
    return re.sub(_PLACEHOLDER, lambda found: protected[ord(found[0]) - _FIRST_PLACEHOLDER], text)


def _sub(result: Respelled, pattern: str, replace: str | Callable[[re.Match[str]], str]) -> bool:
    new, count = re.subn(pattern, replace, result.text, flags=re.IGNORECASE)
    result.text = new
    return count > 0


# ---------------------------------------------------------------------------------------------
# Names: "called deploys", "named site-check", called "Site check"

_NAME: Final = re.compile(
    rf"(?:[,;]\s*)?\b(?:and\s+)?(?:call\s+it|name\s+it|called|named|titled|with\s+the\s+name)\s+"
    rf"({_PLACEHOLDER}|[A-Za-z0-9][\w.-]*)",
    re.IGNORECASE,
)


def _take_name(result: Respelled, answers: Answers, zone: str, protected: list[str]) -> None:
    found = _NAME.search(result.text)
    if found is None:
        return
    name = _unmask(found[1], protected)
    if len(name) >= 2 and name[0] in '"“' and name[-1] in '"”':
        name = name[1:-1]
    elif name.startswith("<"):
        return  # a link or a channel is no name
    result.name = name.strip().rstrip(".,")
    result.text = result.text[: found.start()] + " " + result.text[found.end() :]


# ---------------------------------------------------------------------------------------------
# Time zones, in any position: "tz Europe/London", "at 9:00 Europe/London", "9am London
# time", "(CET)", "9am PT"

_TZ_WORD: Final = re.compile(
    r"\(?\b(?:in\s+)?(?:the\s+)?(?:tz|time\s?zone)\s*[:=]?\s*([A-Za-z][\w/+-]*)\)?", re.IGNORECASE
)
_NAMED_ZONE_WORD: Final = re.compile(
    r"\(?\b(?:in\s+)?(?:the\s+)?([A-Za-z][\w/]*(?:\s[A-Za-z][\w]*)?)\s+time\s?zone\)?",
    re.IGNORECASE,
)
_IANA: Final = re.compile(r"\(?\b([A-Za-z]+(?:_[A-Za-z]+)*/[A-Za-z]+(?:[_/+-][A-Za-z0-9]+)*)\)?")
_CITY_TIME: Final = re.compile(
    r"\(?\b(?:in\s+)?((?:[A-Za-z]+\s)?[A-Za-z]+)\s+time\b\)?(?!\s*zone)", re.IGNORECASE
)
_AFTER_CLOCK: Final = re.compile(
    r"(?<=\d|m|n|\.)(\s+|\s*\()([A-Za-z]{2,5})\)?(?![\w/])",
)
_NOT_ZONES: Final = frozenset(
    {"any", "what", "the", "response", "load", "loading", "on", "in", "first", "lunch"}
    | {"same", "this", "that", "every", "each", "some", "long", "real", "up", "down", "my"}
    | {"their", "your", "our", "local", "a", "run", "next", "last", "one", "at", "and"}
    | {"minutes", "hours", "days", "to", "it", "of"}
)
_CLOCK_SUFFIXES: Final = frozenset({"am", "pm", "h", "hrs", "and", "or", "to", "in", "on"})


def _take_zone(result: Respelled, answers: Answers, default: str, protected: list[str]) -> None:
    spoken: list[str] = []
    for pattern, strict in ((_NAMED_ZONE_WORD, False), (_TZ_WORD, False), (_IANA, True)):
        result.text = pattern.sub(_zone_taker(spoken, strict=strict), result.text)
    result.text = _CITY_TIME.sub(lambda found: _city_time(found, spoken), result.text)
    if _AT_CLOCK.search(result.text) or spoken:
        result.text = _AFTER_CLOCK.sub(lambda found: _abbreviation(found, spoken), result.text)
    if spoken:
        _choose_zone(result, spoken[0], answers.get("zone"), default)


def _choose_zone(result: Respelled, said: str, answer: str | None, default: str) -> None:
    if answer is not None:
        result.zone = spoken_zones.zone_named(answer)
        return
    if spoken_zones.is_ambiguous(said):
        options = spoken_zones.AMBIGUOUS[said.lower()]
        result.question = Question("zone", f'Which time zone do you mean by "{said}"?', options)
        return
    result.zone = spoken_zones.zone_named(said)
    if result.zone is None:
        options = tuple(dict.fromkeys((default, "UTC", "Europe/London", "America/New_York")))
        text = f'I don\'t know the time zone "{said}": which one do you mean?'
        result.question = Question("zone", text, options)


def _zone_taker(spoken: list[str], *, strict: bool) -> Callable[[re.Match[str]], str]:
    return lambda found: _zone_word(found, spoken, strict)


def _zone_word(found: re.Match[str], spoken: list[str], strict: bool) -> str:
    """A zone named after "tz"/before "timezone" is taken even when unknown (and asked
    about); a bare ``Area/City`` only when it is one ("and/or" is no zone)."""
    said = found[1]
    if said.lower() in _NOT_ZONES or (strict and spoken_zones.zone_named(said) is None):
        return found[0]
    spoken.append(said)
    return " "


def _city_time(found: re.Match[str], spoken: list[str]) -> str:
    said = found[1]
    words = said.split()
    if words[-1].lower() in _NOT_ZONES:
        return found[0]
    if (
        len(words) == 2
        and spoken_zones.zone_named(said) is None
        and (words[0].lower() in _NOT_ZONES or spoken_zones.zone_named(words[1]) is not None)
    ):
        spoken.append(words[1])
        return f"{words[0]} "
    known = spoken_zones.zone_named(said) is not None
    if not known and not said[0].isupper():
        return found[0]  # "lunch time", "dinner time": no zone meant
    spoken.append(said)
    return " "


def _abbreviation(found: re.Match[str], spoken: list[str]) -> str:
    said = found[2]
    low = said.lower()
    if low in _CLOCK_SUFFIXES or low in _NOT_ZONES:
        return found[0]
    known = low in spoken_zones.ABBREVIATIONS or spoken_zones.is_ambiguous(low)
    if not known and not said.isupper():
        return found[0]
    spoken.append(said)
    return " "


# ---------------------------------------------------------------------------------------------
# Times of day and frequency words


def _parts_of_day(result: Respelled, answers: Answers, zone: str, protected: list[str]) -> None:
    patterns = (
        rf"\b(?:every|each)\s+(?:({_DAYS})\s+)?{_PART}",
        rf"\b(?:(?:every|each)\s+day|daily)\s+(?:in\s+the|at)\s+(){_PART}",
        rf"\b(?:on\s+)?({_DAYS})s?\s+{_PART}",
        r"\b(?:in\s+the\s+|at\s+)?()(morning|afternoon|evening|night)s\b",
        r"\b()(night)ly\b",
    )
    parts: list[str] = []
    for pattern in patterns:
        if _sub(result, pattern, lambda found: _part_of_day(result, answers, found, parts)):
            break
    if parts and parts[0] in _LATER_HOURS:
        _later_hour(result, parts[0])


def _later_hour(result: Respelled, part: str) -> None:
    """ "every evening at 7": 19:00, not 7:00 (and said)."""
    found = _BARE_CLOCK.search(result.text)
    if found is None or int(found[1]) not in _LATER_HOURS[part]:
        return
    hour, minute = int(found[1]) + 12, found[2] or "00"
    result.text = result.text[: found.start()] + f"at {hour}:{minute}" + result.text[found.end() :]
    result.notes.append(f'"{part} at {found[1]}" read as {hour}:{minute}')


def _part_of_day(
    result: Respelled, answers: Answers, found: re.Match[str], parts: list[str]
) -> str:
    days = (found[1] or "day").lower()
    part = found[2].lower()
    parts.append(part)
    said = " ".join(found[0].split())
    if _AT_CLOCK.search(result.text):
        return f"every {days}"  # the time said elsewhere joins it
    answer = answers.get("time")
    if answer is not None:
        return f"every {days} at {answer}"
    default = _PART_OF_DAY[part]
    result.notes.append(f'"{said}" read as {default}')
    others = {"morning": ("8:00", "10:00"), "afternoon": ("13:00", "15:00")}.get(
        part, ("17:00", "19:00") if part == "evening" else ("21:00", "23:00")
    )
    result.offer = Question("time", f"What time in the {part}?", (default, *others))
    return f"every {days} at {default}"


def _tomorrow_part(result: Respelled, answers: Answers, zone: str, protected: list[str]) -> None:
    def replace(day: str, part: str, said: str) -> str:
        answer = answers.get("time")
        if answer is None:
            result.notes.append(f'"{said}" read as {_PART_OF_DAY[part]}')
        return f"{day} at {answer or _PART_OF_DAY[part]}"

    if _AT_CLOCK.search(result.text):
        return
    _sub(
        result,
        r"\b(tomorrow|this)\s+(?:in\s+the\s+)?(morning|afternoon|evening|night)\b",
        lambda found: replace(
            "today" if found[1].lower() == "this" else "tomorrow",
            found[2].lower(),
            " ".join(found[0].split()),
        ),
    )
    _sub(result, r"\btonight\b", lambda found: replace("today", "night", found[0]))


def _punctuation(result: Respelled, answers: Answers, zone: str, protected: list[str]) -> None:
    # "every 5 min; alert #ops": a semicolon ends a clause as a comma does ("&amp; " is
    # Slack's escaped "&", whose ";" is no punctuation).
    _sub(result, r"(?<!&amp)(?<!&lt)(?<!&gt);(?=\s)", ",")
    _sub(result, r"\bunless\s+it\s+returns\s+(?:an?\s+)?(\d{3})\b", r"if it does not return \1")
    if _sub(result, r"\bat\s+lunch(?:\s*time)?\b|\bat\s+lunchtime\b", "at 12:00"):
        result.notes.append('"lunch" read as 12:00')


def _frequencies(result: Respelled, answers: Answers, zone: str, protected: list[str]) -> None:
    times = answers.get("time")
    if _sub(result, r"\btwice\s+(?:a|per|each)\s+day\b|\btwice\s+daily\b", "every day"):
        _at_or_default(result, times, _TWICE, "twice a day")
    if _sub(result, r"\b(?:three|3)\s+times\s+(?:a|per|each)\s+day\b", "every day"):
        _at_or_default(result, times, _THRICE, "three times a day")
    _sub(result, r"\bonce\s+(?:an?|per|each)\s+(day|week|month|hour|minute)\b", r"every \1")
    # "monthly" alone: on the 1st (a time of day is added, and said, by the reader)
    if _sub(
        result,
        r"(?<!of\s)\b(?:monthly|(?:every|each)\s+month)\b(?!\s+on\b)",
        "every month on the 1st",
    ):
        result.notes.append('"monthly" read as the 1st of the month')
    _sub(result, r"\bonce\s+every\b", "every")
    _sub(result, r"\bevery\s+half(?:\s+an)?\s+hour\b|\bhalf[-\s]hourly\b", "every 30 minutes")
    _sub(result, r"\bevery\s+quarter(?:\s+of\s+an)?\s+hour\b", "every 15 minutes")
    _sub(result, r"\b(?:every|each)\s+(\d+)\s*mins?\b", r"every \1 minutes")
    _sub(result, r"\bevery\s+(\d+)\s*hrs?\b", r"every \1 hours")
    _sub(result, r"\b(?:every|each)\s+single\s+", "every ")
    _sub(result, r"\b(?:work|business|working)\s?days?\b", "weekday")
    _sub(
        result,
        rf"\b(every|each|in)\s+({'|'.join(_NUMBERS)})\b",
        lambda found: f"{found[1]} {_NUMBERS[found[2].lower()]}",
    )
    # "every 1st of the month": the grammar's "every month on the 1st"
    _sub(
        result,
        r"\b(?:every|each)\s+(?:the\s+)?(\d{1,2}(?:st|nd|rd|th)|last\s+day)\s+(?:day\s+)?"
        r"(?:of|in)\s+(?:the|each|every|a)\s+month\b",
        r"every month on the \1",
    )


def _at_or_default(result: Respelled, answer: str | None, default: str, said: str) -> None:
    if _AT_CLOCK.search(result.text):
        return
    times = answer or default
    result.text = result.text.replace("every day", f"every day at {times}", 1)
    if answer is None:
        result.notes.append(f'"{said}" read as {default}')


_QUARTER: Final = re.compile(
    r"\b(?:(?:every|each|once\s+a|once\s+per|at\s+the\s+start\s+of\s+(?:each|every|the))"
    r"\s+quarter|quarterly|every\s+(?:3|three)\s+months)\b",
    re.IGNORECASE,
)


def _quarters(result: Respelled, answers: Answers, zone: str, protected: list[str]) -> None:
    found = _QUARTER.search(result.text)
    if found is None:
        return
    at = _AT_CLOCK.search(result.text)
    clock = answers.get("time")
    if at is not None:
        clock = at[0].split(None, 1)[1]
        result.text = result.text[: at.start()] + result.text[at.end() :]
        found = _QUARTER.search(result.text)
        assert found is not None
    hour, minute = _hour_minute(clock or _QUARTER_TIME)
    if clock is None:
        result.notes.append(
            f'"{found[0]}" read as the 1st of January, April, July and October at 9:00'
        )
    cron = f'cron "{minute} {hour} 1 1,4,7,10 *"'
    result.text = result.text[: found.start()] + cron + result.text[found.end() :]


def _hour_minute(clock: str) -> tuple[int, int]:
    from bot.triggers.schedule import parse_clock  # a pure function of the grammar

    at = parse_clock(clock.replace(" ", ""))
    return (9, 0) if at is None else (at.hour, at.minute)


_ORDINAL_WEEKDAY: Final = re.compile(
    rf"\b(?:on\s+)?(?:(every|each)\s+)?(?:the\s+)?(first|second|third|fourth|last|1st|2nd|3rd|4th)"
    rf"\s+({_DAY_NAMES})(\s+(?:of|in)\s+(?:the|each|every|a)\s+month)?\b",
    re.IGNORECASE,
)


_EVERY_OTHER_DAY: Final = re.compile(
    rf"\bevery\s+(?:other|\d+|two|three|four)\s+weeks?\s+on\s+({_DAY_NAMES})s?\b|"
    rf"\bevery\s+(?:other|second)\s+({_DAY_NAMES})\b",
    re.IGNORECASE,
)


def _weekdays(result: Respelled, answers: Answers, zone: str, protected: list[str]) -> None:
    found = _EVERY_OTHER_DAY.search(result.text)
    if found is not None:
        result.refusal = (
            " ".join(found[0].split()),
            f"I can't run every few weeks on a given day yet: try \"every "
            f'{(found[1] or found[2]).lower()} at 10:00" or "every 2 weeks"',
        )
        return
    # "the first monday of the month", "every last friday": the grammar's monthly weekday
    found = _ORDINAL_WEEKDAY.search(result.text)
    if found is not None and (found[1] or found[4]):
        nth, day = found[2].lower(), found[3].lower()
        monthly = f"every month on the {nth} {day}"
        result.text = result.text[: found.start()] + monthly + result.text[found.end() :]
    _sub(result, r"\b(?:weekly|every\s+week)\s+on\s+", "every ")
    _sub(
        result,
        r"\b(?:mon(?:day)?)\s*(?:-|to|through|thru|till|until)\s*fri(?:day)?\b",
        "every weekday",
    )
    plural = rf"(?:{_DAY_NAMES}|weekday|weekend)s"
    _sub(
        result,
        rf"\b(?:(?:every|each|on)\s+)?({plural}(?:\s*(?:,|and|&amp;|or)\s*{plural})*)\b",
        lambda found: "every " + re.sub(r"s\b", "", found[1].lower()).replace("&amp;", "and"),
    )
    _sub(result, r"\bevery\s+(?:every|each)\b", "every")


# ---------------------------------------------------------------------------------------------
# Ambiguous hours and conditions written around the address


_BARE_HOUR: Final = re.compile(
    r"\bat\s+([1-6])(?![\d:.])(?!\s*(?:am|pm|a\.m|p\.m|o'?clock|h\b|hours?|minutes?|mins?))",
    re.IGNORECASE,
)


_ONE_DAY: Final = re.compile(
    rf"(?<!every )(?<!each )\b(on|next|this|coming)\s+(?:the\s+)?(?:next\s+|coming\s+)?"
    rf"({_DAY_NAMES})\b(?!s\b)",
    re.IGNORECASE,
)


def _one_day(result: Respelled, answers: Answers, zone: str, protected: list[str]) -> None:
    """ "on friday at 3pm": every friday, or only the coming one? Asked; "next friday" and
    "this friday" are the coming one."""
    found = _ONE_DAY.search(result.text)
    if found is None or result.today is None or _RECURRING.search(result.text):
        return  # "every 2 weeks on monday": part of a schedule, read (or refused) as one
    day = found[2].lower()
    ahead = (_WEEKDAYS.index(day) - result.today.weekday()) % 7
    once = f"on {result.today + timedelta(days=ahead)}"
    answer = answers.get("day")
    if answer is None and found[1].lower() == "on":
        options = (f"every {day}", f"only {once}")
        result.question = Question("day", f"Every {day}, or only the coming one?", options)
        return
    chosen = answer.removeprefix("only ") if answer else once
    result.text = result.text[: found.start()] + chosen + result.text[found.end() :]


_WEEKDAYS: Final = _DAY_NAMES.split("|")
_RECURRING: Final = re.compile(r"\b(?:every|each|cron)\b", re.IGNORECASE)


def _bare_hours(result: Respelled, answers: Answers, zone: str, protected: list[str]) -> None:
    found = _BARE_HOUR.search(result.text)
    if found is None:
        return
    answer = answers.get("time")
    if answer is not None:
        result.text = result.text[: found.start()] + f"at {answer}" + result.text[found.end() :]
        return
    hour = int(found[1])
    result.question = Question(
        "time", f'"at {hour}": in the afternoon or the morning?', (f"{hour + 12}:00", f"{hour}:00")
    )


def _certificates(result: Respelled, answers: Answers, zone: str, protected: list[str]) -> None:
    cert = r"(?:(ssl|tls|https)\s+)?cert(?:ificate)?"
    _sub(
        result, rf"\b(?:the\s+)?{cert}\s+(?:of|for|on)\s+({_PLACEHOLDER})", r"\2 the \1 certificate"
    )
    _sub(result, rf"({_PLACEHOLDER})(?:'s|’s)\s+{cert}", r"\1 the \2 certificate")
    # "when the page https://… no longer says X": the address first, so the condition
    # reads "the page no longer says X".
    page = r"(?:page|site|website|homepage)"
    _sub(result, rf"\b(the\s+{page}(?:\s+(?:at|on))?)\s+({_PLACEHOLDER})", r"\2 \1")
    _sub(result, r"\b(?:each|every|any)\s+new\b", "new")
    # "when the field errors in https://… is above 0": the address first
    field = r"(?:field|value|key|property)"
    _sub(
        result,
        rf"\b((?:the\s+)?(?:json\s+)?{field}\s+[\w.]+)\s+(?:in|of|from|on)\s+({_PLACEHOLDER})",
        r"\2 \1",
    )


_STEPS: Final[tuple[Callable[[Respelled, Answers, str, list[str]], None], ...]] = (
    _take_name,
    _punctuation,
    _take_zone,
    _tomorrow_part,
    _parts_of_day,
    _frequencies,
    _quarters,
    _weekdays,
    _one_day,
    _bare_hours,
    _certificates,
)
