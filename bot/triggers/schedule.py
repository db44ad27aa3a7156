"""Schedules people type, and when they next run.

`parse_schedule` turns text such as ``every weekday at 9:30``, ``cron "0 9 * * 1-5"`` or
``in 2 hours`` into a `Schedule`. A schedule answers one question: the first run strictly
after a given instant. Instants go in and come out as aware UTC datetimes.

Rules every schedule follows:

* Calendar schedules (weekly, monthly, cron, one-off dates) are computed on the wall clock of
  their IANA zone. A wall-clock time that does not exist that day (clocks spring forward) runs
  once, at the first valid instant after the gap: 02:30 on a 02:00→03:00 night runs at 03:00.
  A wall-clock time that happens twice (clocks fall back) runs once, at its first occurrence.
  So each listed wall-clock time runs at most once a day; a cron such as ``*/30 * * * *``
  does not repeat the hour that falls back.
* ``on the 29th``/``30th``/``31st`` runs only in months that have that day, and `describe()`
  says so; ``on the last day`` runs in every month.
* Intervals are anchored on the previous run: ``next_run(after)`` is ``after + every``. The
  runner passes the previous scheduled time (see `bot.triggers.runner`); the zone only labels them.
* Cron follows the standard (Vixie) five fields: minute, hour, day of month, month, day of
  week, with lists, ranges, steps, ``*``, names (``mon-fri``, ``jan``), and 0 or 7 for Sunday.
  When both day fields are restricted (neither starts with ``*``), a day matching either runs.
"""

from __future__ import annotations

import bisect
import calendar
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import ClassVar, Final, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

ScheduleKind = Literal["interval", "weekly", "monthly", "cron", "once"]
_Sortable = TypeVar("_Sortable", int, time)

LAST_DAY: Final = -1
MAX_SPAN: Final = timedelta(days=3660)
"""The longest interval or duration accepted (ten years)."""
"""`MonthlySchedule.day` for "the last day of the month"."""

# Feb 29th can be 8 years from the next one (2096 → 2104), so a search covers 9 years.
_SEARCH_DAYS: Final = 366 * 9
_MINUTES_PER_DAY: Final = 24 * 60
_WEEKDAY_NAMES: Final = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
_EVERY_DAY: Final = (0, 1, 2, 3, 4, 5, 6)
_WEEKDAYS: Final = (0, 1, 2, 3, 4)
_WEEKEND: Final = (5, 6)


class ScheduleError(ValueError):
    """A schedule that cannot be understood or breaks a rule.

    ``part`` is the exact fragment at fault; ``example`` is a schedule that works.
    """

    def __init__(self, message: str, *, part: str, example: str) -> None:
        super().__init__(message)
        self.part = part
        self.example = example


def _not_understood(part: str, example: str, alternative: str | None = None) -> ScheduleError:
    also = f" or {_quote(alternative)}" if alternative else ""
    message = f"I couldn't understand {_quote(part)}: try {_quote(example)}{also}"
    return ScheduleError(message, part=part, example=example)


def _broken_rule(part: str, reason: str, example: str) -> ScheduleError:
    message = f"{_quote(part)} {reason}: try {_quote(example)}"
    return ScheduleError(message, part=part, example=example)


def _quote(text: str) -> str:
    """``"text"`` for a message, or ```text``` (Slack code) when the text has quotes itself."""
    return f"`{text}`" if '"' in text else f'"{text}"'


# ---------------------------------------------------------------------------------------------
# Schedules


@dataclass(frozen=True, kw_only=True)
class Schedule(ABC):
    """When something runs. ``tz_name`` is an IANA zone name such as ``Europe/Berlin``."""

    tz_name: str
    kind: ClassVar[ScheduleKind]

    def __post_init__(self) -> None:
        _zone_named(self.tz_name)

    @property
    def tz(self) -> ZoneInfo:
        """The zone the schedule's wall-clock times are in."""
        return ZoneInfo(self.tz_name)

    @property
    def is_one_shot(self) -> bool:
        """True when the schedule runs only once."""
        return False

    @abstractmethod
    def next_run(self, after: datetime) -> datetime | None:
        """The first run strictly after ``after`` (aware), in UTC; None when there is none."""

    def next_runs(self, after: datetime, n: int) -> list[datetime]:
        """The next ``n`` runs after ``after`` (fewer when the schedule ends), in UTC."""
        runs: list[datetime] = []
        while len(runs) < n:
            run = self.next_run(runs[-1] if runs else after)
            if run is None:
                break
            runs.append(run)
        return runs

    @abstractmethod
    def describe(self) -> str:
        """The schedule in words, e.g. ``every weekday at 09:30 Europe/Berlin``."""

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict that `schedule_from_dict` turns back into an equal schedule."""
        return {"kind": self.kind, "tz": self.tz_name, **self._fields_to_dict()}

    @abstractmethod
    def _fields_to_dict(self) -> dict[str, object]: ...


@dataclass(frozen=True, kw_only=True)
class IntervalSchedule(Schedule):
    """Every fixed span of time, anchored on the previous run (the zone only labels it)."""

    every: timedelta
    kind: ClassVar[ScheduleKind] = "interval"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.every <= timedelta(0):
            raise ValueError(f"an interval must be positive, not {self.every}")

    def next_run(self, after: datetime) -> datetime | None:
        """``after + every``: the caller passes the previous run to keep the rhythm."""
        return as_utc(after) + self.every

    def describe(self) -> str:
        """E.g. ``every 5 minutes``, ``every hour``, ``every day``."""
        amount = describe_span(self.every)
        return "every " + amount.removeprefix("1 ")

    def _fields_to_dict(self) -> dict[str, object]:
        seconds = self.every.total_seconds()
        return {"seconds": int(seconds) if seconds.is_integer() else seconds}


@dataclass(frozen=True, kw_only=True)
class _WallClockSchedule(Schedule):
    """Runs at listed wall-clock times on the days it matches, in its own zone."""

    def next_run(self, after: datetime) -> datetime | None:
        """The first listed wall-clock time after ``after``, following the DST rules above."""
        return _next_wall_clock_run(as_utc(after), self.tz, self._runs_on, self._times_of_day())

    @abstractmethod
    def _runs_on(self, day: date) -> bool: ...

    @abstractmethod
    def _times_of_day(self) -> tuple[time, ...]: ...


@dataclass(frozen=True, kw_only=True)
class WeeklySchedule(_WallClockSchedule):
    """On some days of the week at some times. ``days`` counts from 0 = Monday to 6 = Sunday."""

    days: tuple[int, ...]
    times: tuple[time, ...]
    kind: ClassVar[ScheduleKind] = "weekly"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_sorted_unique(self.days, "days", lambda day: 0 <= day <= 6)
        _check_sorted_unique(self.times, "times", lambda _: True)

    def describe(self) -> str:
        """E.g. ``every weekday at 09:30 Europe/Berlin``, ``every mon, fri at 08:00 UTC``."""
        return f"every {_describe_days(self.days)} at {_describe_times(self.times)} {self.tz_name}"

    def _runs_on(self, day: date) -> bool:
        return day.weekday() in self.days

    def _times_of_day(self) -> tuple[time, ...]:
        return self.times

    def _fields_to_dict(self) -> dict[str, object]:
        return {
            "days": [_WEEKDAY_NAMES[day][:3] for day in self.days],
            "times": [_clock(at) for at in self.times],
        }


@dataclass(frozen=True, kw_only=True)
class MonthlySchedule(_WallClockSchedule):
    """On one day of each month (1-31, or `LAST_DAY`) at some times.

    Days 29-31 are skipped in months that lack them; `describe` says so.
    """

    day: int
    times: tuple[time, ...]
    # With a weekday (0 = Monday), ``day`` counts that weekday: 1-4 ("the first monday"),
    # or `LAST_DAY` ("the last friday").
    weekday: int | None = None
    kind: ClassVar[ScheduleKind] = "monthly"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weekday is not None:
            if not (0 <= self.weekday <= 6 and (self.day == LAST_DAY or 1 <= self.day <= 4)):
                raise ValueError("a weekday of the month is the 1st-4th or the last one")
        elif not (self.day == LAST_DAY or 1 <= self.day <= 31):
            raise ValueError(f"a day of the month must be 1-31 or LAST_DAY, not {self.day}")
        _check_sorted_unique(self.times, "times", lambda _: True)

    def describe(self) -> str:
        """E.g. ``every month on the 1st at 09:00 America/New_York``, ``every month on the
        first monday at 09:00 UTC``."""
        text = f"every month on {self._on_the()} at {_describe_times(self.times)} {self.tz_name}"
        if self.weekday is None and self.day > 28:
            text += f", skipping months without a {ordinal(self.day)}"
        return text

    def _on_the(self) -> str:
        if self.weekday is not None:
            nth = "last" if self.day == LAST_DAY else _NTH_WORDS[self.day - 1]
            return f"the {nth} {_WEEKDAY_NAMES[self.weekday]}"
        return "the last day" if self.day == LAST_DAY else f"the {ordinal(self.day)}"

    def _runs_on(self, day: date) -> bool:
        length = calendar.monthrange(day.year, day.month)[1]
        if self.weekday is not None:
            if day.weekday() != self.weekday:
                return False
            return (
                day.day + 7 > length if self.day == LAST_DAY else (day.day - 1) // 7 + 1 == self.day
            )
        if self.day == LAST_DAY:
            return day.day == length
        return day.day == self.day

    def _times_of_day(self) -> tuple[time, ...]:
        return self.times

    def _fields_to_dict(self) -> dict[str, object]:
        day: object = "last" if self.day == LAST_DAY else self.day
        fields: dict[str, object] = {"day": day, "times": [_clock(at) for at in self.times]}
        if self.weekday is not None:
            fields["weekday"] = _WEEKDAY_NAMES[self.weekday][:3]
        return fields


@dataclass(frozen=True)
class _CronFields:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday, as in `date.weekday`
    days_of_month_restricted: bool
    weekdays_restricted: bool
    times: tuple[time, ...]


@dataclass(frozen=True, kw_only=True)
class CronSchedule(_WallClockSchedule):
    """A standard five-field cron expression, on the wall clock of ``tz_name``.

    Raises `ScheduleError` for an expression it cannot read.
    """

    expression: str
    kind: ClassVar[ScheduleKind] = "cron"
    _fields: _CronFields = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "_fields", parse_cron(self.expression))

    def describe(self) -> str:
        """E.g. ``cron "0 9 * * 1-5" UTC``."""
        return f'cron "{self.expression}" {self.tz_name}'

    def _runs_on(self, day: date) -> bool:
        fields = self._fields
        if day.month not in fields.months:
            return False
        by_date = day.day in fields.days_of_month
        by_weekday = day.weekday() in fields.weekdays
        if fields.days_of_month_restricted and fields.weekdays_restricted:
            return by_date or by_weekday
        return by_date and by_weekday

    def _times_of_day(self) -> tuple[time, ...]:
        return self._fields.times

    def _fields_to_dict(self) -> dict[str, object]:
        return {"expression": self.expression}


@dataclass(frozen=True, kw_only=True)
class OnceSchedule(Schedule):
    """A single run at ``at`` (stored in UTC; ``tz_name`` is how people see it)."""

    at: datetime
    kind: ClassVar[ScheduleKind] = "once"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "at", as_utc(self.at))

    @property
    def is_one_shot(self) -> bool:
        """Always true: a one-off runs once."""
        return True

    def next_run(self, after: datetime) -> datetime | None:
        """``at`` while it is still after ``after``, then None."""
        return self.at if self.at > as_utc(after) else None

    def describe(self) -> str:
        """E.g. ``once at 2026-12-01 09:00 Europe/Berlin``."""
        local = self.at.astimezone(self.tz)
        return f"once at {local:%Y-%m-%d %H:%M} {self.tz_name}"

    def _fields_to_dict(self) -> dict[str, object]:
        return {"at": self.at.isoformat()}


def _check_sorted_unique(
    values: tuple[_Sortable, ...], name: str, valid: Callable[[_Sortable], bool]
) -> None:
    if not values or list(values) != sorted(set(values)) or not all(map(valid, values)):
        raise ValueError(f"{name} must be a non-empty, sorted list without repeats: {values}")


# ---------------------------------------------------------------------------------------------
# Time helpers


def as_utc(when: datetime) -> datetime:
    """``when`` (which must be aware) in UTC. Raises ValueError for a naive datetime."""
    if when.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {when}")
    return when.astimezone(UTC)


def wall_clock_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant the clocks in ``zone`` read ``at`` on ``day``.

    A time skipped by a spring-forward jump gives the first instant after the jump; a time
    repeated by a fall-back gives its first occurrence.
    """
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return first.astimezone(UTC)
    return _end_of_gap(naive, zone)


def _end_of_gap(naive: datetime, zone: ZoneInfo) -> datetime:
    """The instant the clocks jumped over ``naive``, found by bisecting whole seconds."""
    # Inside a gap, fold=1 reads with the later offset and lands before the jump; fold=0 after.
    before = int(naive.replace(tzinfo=zone, fold=1).timestamp())
    after = int(naive.replace(tzinfo=zone, fold=0).timestamp())
    offset_after = datetime.fromtimestamp(after, zone).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def _next_wall_clock_run(
    after: datetime,
    zone: ZoneInfo,
    runs_on: Callable[[date], bool],
    times: tuple[time, ...],
) -> datetime | None:
    # Start a day early: a DST shift can move a time from the day before past ``after``.
    first_day = after.astimezone(zone).date() - timedelta(days=1)
    for offset in range(_SEARCH_DAYS):
        day = first_day + timedelta(days=offset)
        run = _first_time_after(day, times, zone, after) if runs_on(day) else None
        if run is not None:
            return run
    return None


def _first_time_after(
    day: date, times: tuple[time, ...], zone: ZoneInfo, after: datetime
) -> datetime | None:
    # Within a day the resolved instants never go backwards, so a binary search is safe.
    index = bisect.bisect_right(times, after, key=lambda at: wall_clock_instant(day, at, zone))
    return wall_clock_instant(day, times[index], zone) if index < len(times) else None


def describe_span(span: timedelta) -> str:
    """``timedelta(minutes=5)`` → ``5 minutes``, using the largest unit that fits exactly."""
    seconds = span.total_seconds()
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}" + ("" if count == 1 else "s")
    count_text = f"{seconds:g}"
    return f"{count_text} second" + ("" if count_text == "1" else "s")


def ordinal(number: int) -> str:
    """1 → ``1st``, 2 → ``2nd``, 11 → ``11th``, 23 → ``23rd``."""
    suffix = "th" if 11 <= number % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10)
    return f"{number}{suffix or 'th'}"


def _clock(at: time) -> str:
    return f"{at:%H:%M}"


def _describe_times(times: Sequence[time]) -> str:
    return _join_and([_clock(at) for at in times])


def _join_and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _describe_days(days: tuple[int, ...]) -> str:
    named = {_EVERY_DAY: "day", _WEEKDAYS: "weekday", _WEEKEND: "weekend"}.get(days)
    if named:
        return named
    if len(days) == 1:
        return _WEEKDAY_NAMES[days[0]]
    return ", ".join(_WEEKDAY_NAMES[day][:3] for day in days)


def _zone_named(name: str) -> ZoneInfo:
    """The zone with this IANA name; raises ZoneInfoNotFoundError (a KeyError) when unknown."""
    try:
        return ZoneInfo(name)
    except ValueError as error:  # a malformed key such as an absolute path
        raise ZoneInfoNotFoundError(name) from error


# ---------------------------------------------------------------------------------------------
# Cron


@dataclass(frozen=True)
class _CronFieldSpec:
    name: str
    low: int
    high: int
    names: Mapping[str, int]


# Spelled out rather than taken from `calendar.month_abbr`, which follows the locale.
_MONTH_NUMBERS: Final = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_CRON_DAY_NUMBERS: Final = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_CRON_SPECS: Final = (
    _CronFieldSpec("minute", 0, 59, {}),
    _CronFieldSpec("hour", 0, 23, {}),
    _CronFieldSpec("day of month", 1, 31, {}),
    _CronFieldSpec("month", 1, 12, _MONTH_NUMBERS),
    _CronFieldSpec("day of week", 0, 7, _CRON_DAY_NUMBERS),
)
_CRON_EXAMPLE: Final = 'cron "0 9 * * 1-5"'


def parse_cron(expression: str) -> _CronFields:
    """Read a five-field cron expression; raises `ScheduleError` naming the bad field."""
    texts = expression.split()
    if len(texts) != len(_CRON_SPECS):
        raise _broken_rule(
            expression, "needs 5 fields: minute hour day-of-month month day-of-week", _CRON_EXAMPLE
        )
    minutes, hours, dom, months, dow = (
        _cron_field(text, spec, expression) for text, spec in zip(texts, _CRON_SPECS, strict=True)
    )
    return _CronFields(
        minutes=minutes,
        hours=hours,
        days_of_month=dom,
        months=months,
        weekdays=frozenset((number + 6) % 7 for number in dow),  # cron 0 and 7 are Sunday
        days_of_month_restricted=not texts[2].startswith("*"),
        weekdays_restricted=not texts[4].startswith("*"),
        times=tuple(time(hour, minute) for hour in sorted(hours) for minute in sorted(minutes)),
    )


def _cron_field(text: str, spec: _CronFieldSpec, expression: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.lower().split(","):
        found = _cron_item(item, spec)
        if found is None:
            whole = _quote('cron "' + expression + '"')
            raise ScheduleError(
                f"I couldn't understand the {spec.name} {_quote(text)} in {whole}: "
                f"try {_quote(_CRON_EXAMPLE)} (minute hour day-of-month month day-of-week)",
                part=text,
                example=_CRON_EXAMPLE,
            )
        values |= found
    return frozenset(values)


def _cron_item(item: str, spec: _CronFieldSpec) -> frozenset[int] | None:
    """One comma-separated item (``*``, ``5``, ``1-5``, ``*/15``, ``mon-fri/2``); None if bad."""
    span, has_step, step_text = item.partition("/")
    step = _cron_number(step_text, {}, range_end=False) if has_step else 1
    bounds = _cron_bounds(span, spec, open_ended=bool(has_step))
    if step is None or step < 1 or bounds is None:
        return None
    low, high = bounds
    if not spec.low <= low <= high <= spec.high:
        return None
    return frozenset(range(low, high + 1, step))


def _cron_bounds(span: str, spec: _CronFieldSpec, *, open_ended: bool) -> tuple[int, int] | None:
    if span == "*":
        return spec.low, spec.high
    first, has_dash, last = span.partition("-")
    low = _cron_number(first, spec.names, range_end=False)
    if low is None:
        return None
    if not has_dash:
        return low, spec.high if open_ended else low  # "5/15" means 5-59/15, as in cronie
    high = _cron_number(last, spec.names, range_end=True)
    return None if high is None else (low, high)


def _cron_number(text: str, names: Mapping[str, int], *, range_end: bool) -> int | None:
    if text.isascii() and text.isdigit():
        return int(text)
    number = names.get(text)
    # "sun" closing a range means 7, so "sat-sun" works as people expect.
    return 7 if range_end and number == 0 and names is _CRON_DAY_NUMBERS else number


# ---------------------------------------------------------------------------------------------
# Storage


def local_time(when: datetime, tz: ZoneInfo) -> str:
    """``when`` as people read it in ``tz``, zone included: "Mon 30 Nov 09:30 CET"."""
    return f"{when.astimezone(tz):%a %d %b %H:%M %Z}"


def schedule_from_dict(data: Mapping[str, object]) -> Schedule:
    """The schedule `Schedule.to_dict` wrote. Raises `ScheduleError` for malformed data."""
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _FROM_DICT:
        raise ScheduleError(f"unknown schedule kind {kind!r}", part=str(kind), example="interval")
    try:
        return _FROM_DICT[kind](data, _text(data["tz"]))
    except ScheduleError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise ScheduleError(
            f"malformed {kind} schedule {dict(data)!r}: {error!r}", part=str(data), example=kind
        ) from error


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def _texts(value: object) -> list[str]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {value!r}")
    return [_text(item) for item in value]


def _times_from(value: object) -> tuple[time, ...]:
    return tuple(time.fromisoformat(text) for text in _texts(value))


def _interval_from(data: Mapping[str, object], tz_name: str) -> Schedule:
    seconds = data["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"seconds must be a number, got {seconds!r}")
    return IntervalSchedule(tz_name=tz_name, every=timedelta(seconds=seconds))


def _weekly_from(data: Mapping[str, object], tz_name: str) -> Schedule:
    days = tuple(_DAY_WORDS[day] for day in _texts(data["days"]))
    return WeeklySchedule(tz_name=tz_name, days=days, times=_times_from(data["times"]))


def _monthly_from(data: Mapping[str, object], tz_name: str) -> Schedule:
    day = data["day"]
    if not (day == "last" or (isinstance(day, int) and not isinstance(day, bool))):
        raise TypeError(f"day must be a number or 'last', got {day!r}")
    number = LAST_DAY if day == "last" else int(day)
    named = data.get("weekday")
    weekday = None if named is None else _DAY_WORDS[str(named)]
    return MonthlySchedule(
        tz_name=tz_name, day=number, times=_times_from(data["times"]), weekday=weekday
    )


def _cron_from(data: Mapping[str, object], tz_name: str) -> Schedule:
    return CronSchedule(tz_name=tz_name, expression=_text(data["expression"]))


def _once_from(data: Mapping[str, object], tz_name: str) -> Schedule:
    return OnceSchedule(tz_name=tz_name, at=datetime.fromisoformat(_text(data["at"])))


_FROM_DICT: Final[Mapping[str, Callable[[Mapping[str, object], str], Schedule]]] = {
    "interval": _interval_from,
    "weekly": _weekly_from,
    "monthly": _monthly_from,
    "cron": _cron_from,
    "once": _once_from,
}


# ---------------------------------------------------------------------------------------------
# Reading what people type

_DAY_WORDS: Final[Mapping[str, int]] = {
    **{name: day for day, name in enumerate(_WEEKDAY_NAMES)},
    **{name[:3]: day for day, name in enumerate(_WEEKDAY_NAMES)},
    **{name + "s": day for day, name in enumerate(_WEEKDAY_NAMES)},
    "tues": 1,
    "thur": 3,
    "thurs": 3,
}
_DAY_GROUPS: Final[Mapping[str, tuple[int, ...]]] = {
    "day": _EVERY_DAY,
    "weekday": _WEEKDAYS,
    "weekdays": _WEEKDAYS,
    "weekend": _WEEKEND,
    "weekends": _WEEKEND,
}
_SEPARATORS: Final = frozenset({",", "and"})
_SINGLE_UNITS: Final[Mapping[str, timedelta]] = {
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
_DURATION_UNITS: Final[Mapping[str, timedelta]] = {
    **{name: timedelta(milliseconds=1) for name in ("ms", "millisecond", "milliseconds")},
    **{name: timedelta(seconds=1) for name in ("s", "sec", "secs", "second", "seconds")},
    **{name: timedelta(minutes=1) for name in ("m", "min", "mins", "minute", "minutes")},
    **{name: timedelta(hours=1) for name in ("h", "hr", "hrs", "hour", "hours")},
    **{name: timedelta(days=1) for name in ("d", "day", "days")},
    **{name: timedelta(weeks=1) for name in ("w", "wk", "wks", "week", "weeks")},
}
_DURATION: Final = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$", re.IGNORECASE)
_CLOCK: Final = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?(am|pm|a\.m\.|p\.m\.)?$")
_ORDINAL: Final = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?$")
_NTH_WORDS: Final = ("first", "second", "third", "fourth")
_NTH: Final[Mapping[str, int]] = {
    **{word: count for count, word in enumerate(_NTH_WORDS, start=1)},
    **{ordinal(count): count for count in range(1, 5)},
}
_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATE_TIME: Final = re.compile(r"^(\d{4}-\d{2}-\d{2})t(.+)$", re.IGNORECASE)
_WORDS: Final = re.compile(r'["“”]([^"“”]*)["“”]|(["“”].*)|([^\s,]+)|(,)', re.DOTALL)


def parse_duration_or_none(text: str) -> timedelta | None:
    """``30s``, ``5m``, ``2h``, ``1d``, ``2w``, ``500ms``, ``5 minutes`` → a timedelta; else None."""
    found = _DURATION.match(text)
    unit = _DURATION_UNITS.get(found[2].lower()) if found else None
    if not (found and unit):
        return None
    try:
        span = int(found[1]) * unit
    except OverflowError:
        return None
    return span if span <= MAX_SPAN else None


@dataclass(frozen=True)
class _Word:
    """A word of schedule text; ``start``/``end`` locate it in the text for error messages."""

    text: str
    start: int
    end: int
    quoted: bool = False

    @property
    def low(self) -> str:
        return self.text.lower()


@dataclass(frozen=True)
class _Context:
    text: str
    tz_name: str
    zone: ZoneInfo
    now: datetime
    min_interval: timedelta

    def part(self, words: Sequence[_Word]) -> str:
        """The exact text the words came from, spacing and case included."""
        return self.text[words[0].start : words[-1].end] if words else self.text.strip()


def parse_schedule(
    text: str, *, default_tz: ZoneInfo, now: datetime, min_interval: timedelta
) -> Schedule:
    """Read a schedule people typed (see the module docstring for the forms).

    ``tz Europe/Berlin`` anywhere in the text overrides ``default_tz``. Raises
    `ScheduleError` naming the part it could not understand or that breaks a rule: an
    interval shorter than ``min_interval``, a one-off in the past, a schedule that never runs.
    """
    words = _split_words(text)
    words, tz_name = _take_zone(words, text, default_tz)
    context = _Context(text, tz_name, ZoneInfo(tz_name), as_utc(now), min_interval)
    if not words:
        raise _not_understood(text.strip(), "every 5 minutes", "every monday at 10:00")
    try:
        schedule = _parse_clause(words, context)
        _check_runs(schedule, words, context)
        schedule.next_runs(as_utc(now), 3)  # computable well ahead (no calendar overflow)
    except OverflowError:
        raise _broken_rule(text.strip(), "reaches past the year 9999", "every 5 minutes") from None
    return schedule


def _split_words(text: str) -> list[_Word]:
    words: list[_Word] = []
    for found in _WORDS.finditer(text):
        quoted, unclosed, plain, comma = found.groups()
        if unclosed is not None:
            raise _broken_rule(unclosed, "has a quote that is never closed", _CRON_EXAMPLE)
        word_text = quoted if quoted is not None else plain or comma
        words.append(_Word(word_text, found.start(), found.end(), quoted is not None))
    return words


def _take_zone(words: list[_Word], text: str, default_tz: ZoneInfo) -> tuple[list[_Word], str]:
    """Remove ``tz NAME`` from the words; the zone named there, else the default."""
    indexes = [i for i, word in enumerate(words) if word.low == "tz"]
    if not indexes:
        return words, _key_of(default_tz)
    at = indexes[-1]
    if len(indexes) > 1 or at + 1 >= len(words):
        part = text[words[at].start : words[min(at + 1, len(words) - 1)].end]
        raise _not_understood(part, "every day at 9am tz Europe/Berlin")
    return words[:at] + words[at + 2 :], _zone_key(words[at + 1].text)


def _key_of(zone: ZoneInfo) -> str:
    if zone.key is None:
        raise ValueError("the default zone must be an IANA zone with a name, not a file")
    return zone.key


def _zone_key(name: str) -> str:
    """The canonical IANA name for ``name``, matched case-insensitively when needed."""
    try:
        return _key_of(_zone_named(name))
    except ZoneInfoNotFoundError:
        matches = [key for key in available_timezones() if key.lower() == name.lower()]
        if matches:
            return matches[0]
    raise ScheduleError(
        f'I don\'t know the time zone "{name}": use an IANA name such as "Europe/Berlin"',
        part=name,
        example="every day at 9am tz Europe/Berlin",
    )


def _parse_clause(words: list[_Word], context: _Context) -> Schedule:
    head = words[0].low
    parser = _CLAUSES.get(head)
    if parser is None:
        raise _not_understood(context.part(words[:1]), "every 5 minutes", "every monday at 10:00")
    return parser(words, context)


def _check_runs(schedule: Schedule, words: list[_Word], context: _Context) -> None:
    """Refuse schedules that run too often or never."""
    if isinstance(schedule, _WallClockSchedule):
        gap = _shortest_gap(schedule._times_of_day())
        if gap < context.min_interval:
            shortest = describe_span(context.min_interval)
            reason = f"runs too often: the shortest interval is {shortest}"
            raise _broken_rule(context.part(words), reason, f"every {shortest}")
    if schedule.next_run(context.now) is None:
        raise _broken_rule(context.part(words), "never runs", _CRON_EXAMPLE)


def _shortest_gap(times: tuple[time, ...]) -> timedelta:
    minutes = [at.hour * 60 + at.minute for at in times]
    wrap_around = _MINUTES_PER_DAY - minutes[-1] + minutes[0]
    gaps = [later - earlier for earlier, later in pairwise(minutes)]
    return timedelta(minutes=min([wrap_around, *gaps]))


# every ...


def _parse_every(words: list[_Word], context: _Context) -> Schedule:
    rest = words[1:]
    if not rest:
        raise _not_understood(context.part(words), "every 5 minutes", "every monday at 10:00")
    if rest[0].low == "month":
        return _parse_monthly(words, context)
    if rest[0].low == "day" and len(rest) > 1 and rest[1].low == "at":
        return _parse_weekly(words, context)
    interval = _interval_words(rest)
    if interval is not None:
        return _parse_interval(words, interval, context)
    if rest[0].low in _DAY_GROUPS or _named_days(rest[0].low):
        return _parse_weekly(words, context)
    raise _not_understood(context.part(words[:2]), "every 2 weeks", "every monday at 10:00")


def _interval_words(rest: list[_Word]) -> tuple[timedelta, int] | None:
    """The span after ``every`` and how many words it took: ``5m``, ``5 minutes``, ``hour``."""
    first = rest[0].low
    if first in _SINGLE_UNITS:
        return _SINGLE_UNITS[first], 1
    compact = parse_duration_or_none(first)
    if compact is not None:
        return compact, 1
    spaced = parse_duration_or_none(first + rest[1].low) if len(rest) > 1 else None
    return (spaced, 2) if spaced is not None and first.isdigit() else None


def _parse_interval(
    words: list[_Word], interval: tuple[timedelta, int], context: _Context
) -> Schedule:
    every, used = interval
    if len(words) > used + 1:
        raise _not_understood(context.part(words[used + 1 :]), "every day at 9am", "every 2 hours")
    if every <= timedelta(0) or every < context.min_interval:
        shortest = describe_span(max(context.min_interval, timedelta(seconds=1)))
        reason = f"is too often: the shortest interval is {shortest}"
        raise _broken_rule(context.part(words), reason, f"every {shortest}")
    return IntervalSchedule(tz_name=context.tz_name, every=every)


def _parse_weekly(words: list[_Word], context: _Context) -> Schedule:
    days, used = _day_list(words[1:])
    times = _times_after_at(words[1 + used :], context, before=words[: 1 + used])
    return WeeklySchedule(tz_name=context.tz_name, days=days, times=times)


def _day_list(words: list[_Word]) -> tuple[tuple[int, ...], int]:
    """Days named at the start of ``words`` (``weekday``, ``mon, wed and fri``); words used."""
    if words[0].low in _DAY_GROUPS:
        return _DAY_GROUPS[words[0].low], 1
    days: set[int] = set()
    used = 0
    for word in words:
        named = _named_days(word.low)
        if named:
            days |= named
        elif word.low not in _SEPARATORS:
            break
        used += 1
    return tuple(sorted(days)), used


def _named_days(text: str) -> set[int]:
    """``mon`` → {0}; ``mon-fri`` → {0..4}; ``fri-mon`` wraps → {4, 5, 6, 0}; else empty."""
    first, has_dash, last = text.partition("-")
    if not has_dash:
        return {_DAY_WORDS[text]} if text in _DAY_WORDS else set()
    if first not in _DAY_WORDS or last not in _DAY_WORDS:
        return set()
    start, stop = _DAY_WORDS[first], _DAY_WORDS[last]
    return {(start + offset) % 7 for offset in range((stop - start) % 7 + 1)}


def _parse_monthly(words: list[_Word], context: _Context) -> Schedule:
    example = "every month on the 1st at 9am"
    rest = words[2:]
    if not rest or rest[0].low != "on":
        raise _not_understood(context.part(words), example, "every month on the last day at 9am")
    nth_weekday = _nth_weekday(rest[1:])
    if nth_weekday is not None:
        day, weekday, used = nth_weekday
    else:
        (day, used), weekday = _day_of_month(rest[1:], context, example), None
    times = _times_after_at(rest[1 + used :], context, before=words[: 3 + used])
    return MonthlySchedule(tz_name=context.tz_name, day=day, times=times, weekday=weekday)


def _nth_weekday(words: list[_Word]) -> tuple[int, int, int] | None:
    """``the first monday``, ``the last friday``: (the count, the weekday, words used)."""
    used = 1 if words and words[0].low == "the" else 0
    if used + 1 >= len(words):
        return None
    nth, day = words[used].low, words[used + 1].low
    count = LAST_DAY if nth == "last" else _NTH.get(nth)
    if count is None or day not in _DAY_WORDS or "-" in day:
        return None
    return count, _DAY_WORDS[day], used + 2


def _day_of_month(words: list[_Word], context: _Context, example: str) -> tuple[int, int]:
    """The day after ``on``: ``the 1st``, ``15th``, ``the last day``; and the words used."""
    used = 1 if words and words[0].low == "the" else 0
    if used < len(words) and words[used].low == "last":
        has_day = used + 1 < len(words) and words[used + 1].low == "day"
        return LAST_DAY, used + 1 + has_day
    found = _ORDINAL.match(words[used].low) if used < len(words) else None
    if found is None or not 1 <= int(found[1]) <= 31:
        raise _not_understood(context.part(words[used : used + 1] or words), example)
    has_day = used + 1 < len(words) and words[used + 1].low == "day"
    return int(found[1]), used + 1 + has_day


# times: "at 9am", "at 9:00 and 17:00", "at noon"


def _times_after_at(
    words: list[_Word], context: _Context, *, before: list[_Word]
) -> tuple[time, ...]:
    """The times in ``at 9:00 and 17:00``; ``before`` is the clause so far, for messages."""
    if not words or words[0].low != "at":
        example = f"{context.part(before)} at 9:00"
        if words:
            raise _not_understood(context.part(words), example)
        raise _missing_time(context.part(before), example)
    groups = _split_on_separators(words[1:])
    if not groups:
        raise _missing_time(context.part(before + words), f"{context.part(before)} at 9:00")
    example = f"{context.part(before)} at 9:30"
    return tuple(sorted({_time_of(group, context, example) for group in groups}))


def _missing_time(part: str, example: str) -> ScheduleError:
    return _broken_rule(part, "needs a time of day", example)


def _split_on_separators(words: list[_Word]) -> list[list[_Word]]:
    groups: list[list[_Word]] = [[]]
    for word in words:
        if word.low in _SEPARATORS:
            groups.append([])
        else:
            groups[-1].append(word)
    return [group for group in groups if group]


def _time_of(group: list[_Word], context: _Context, example: str) -> time:
    at = parse_clock("".join(word.low for word in group))
    if at is None:
        raise _not_understood(context.part(group), example)
    return at


def parse_clock(text: str) -> time | None:
    """``9am``, ``9:30am``, ``9.30``, ``17:30``, ``9``, ``noon``, ``midnight`` → a time; else None."""
    text = text.strip().lower()
    named = {"noon": time(12), "midday": time(12), "midnight": time(0)}.get(text)
    found = _CLOCK.match(text) if named is None else None
    if found is None:
        return named
    hour, minute = int(found[1]), int(found[2] or 0)
    if found[3]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if found[3].startswith("p") else 0)
    return time(hour, minute) if hour <= 23 and minute <= 59 else None


# one-offs: "at 2026-12-01 09:00", "at 09:00", "in 2 hours", "tomorrow at 9am"


def _parse_at(words: list[_Word], context: _Context) -> Schedule:
    rest = _split_iso_date_time(words[1:])
    if rest and _ISO_DATE.match(rest[0].low):
        day = _calendar_date(rest[0], context)
        return _once_on(day, _one_time(rest[1:], words, context), words, context)
    at = _one_time(rest, words, context)
    today = context.now.astimezone(context.zone).date()
    if wall_clock_instant(today, at, context.zone) > context.now:
        return _once_on(today, at, words, context)
    return _once_on(today + timedelta(days=1), at, words, context)


def _split_iso_date_time(words: list[_Word]) -> list[_Word]:
    """``2026-12-01T09:00`` → the words ``2026-12-01`` and ``09:00``."""
    found = _ISO_DATE_TIME.match(words[0].text) if words else None
    if found is None:
        return words
    first = words[0]
    cut = first.start + len(found[1])
    return [_Word(found[1], first.start, cut), _Word(found[2], cut + 1, first.end), *words[1:]]


def _parse_on(words: list[_Word], context: _Context) -> Schedule:
    example = "on 2026-12-01 at 9:00"
    if len(words) < 2 or not _ISO_DATE.match(words[1].low):
        raise _not_understood(context.part(words[:2]), example, "at 2026-12-01 09:00")
    day = _calendar_date(words[1], context)
    if len(words) < 3 or words[2].low != "at":
        raise _missing_time(context.part(words), example)
    return _once_on(day, _one_time(words[3:], words, context), words, context)


def _parse_in(words: list[_Word], context: _Context) -> Schedule:
    span = parse_duration_or_none("".join(word.low for word in words[1:]))
    if span is None or span <= timedelta(0):
        raise _not_understood(context.part(words), "in 2 hours", "in 30 minutes")
    return OnceSchedule(tz_name=context.tz_name, at=context.now + span)


def _parse_tomorrow(words: list[_Word], context: _Context) -> Schedule:
    return _parse_relative_day(words, context, days_ahead=1)


def _parse_today(words: list[_Word], context: _Context) -> Schedule:
    return _parse_relative_day(words, context, days_ahead=0)


def _parse_relative_day(words: list[_Word], context: _Context, *, days_ahead: int) -> Schedule:
    if len(words) < 2 or words[1].low != "at":
        raise _missing_time(context.part(words), f"{words[0].low} at 9am")
    day = context.now.astimezone(context.zone).date() + timedelta(days=days_ahead)
    return _once_on(day, _one_time(words[2:], words, context), words, context)


def _one_time(words: list[_Word], clause: list[_Word], context: _Context) -> time:
    groups = _split_on_separators(words)
    if not groups:
        raise _missing_time(context.part(clause), "at 2026-12-01 09:00")
    if len(groups) > 1:
        reason = "needs exactly one time for a one-off"
        raise _broken_rule(context.part(words), reason, "at 2026-12-01 09:00")
    return _time_of(groups[0], context, "at 2026-12-01 09:30")


def _calendar_date(word: _Word, context: _Context) -> date:
    try:
        return date.fromisoformat(word.text)
    except ValueError:
        raise _not_understood(context.part([word]), "at 2026-12-01 09:00") from None


def _once_on(day: date, at: time, words: list[_Word], context: _Context) -> Schedule:
    instant = wall_clock_instant(day, at, context.zone)
    if instant <= context.now:
        raise _broken_rule(context.part(words), "has already passed", "in 2 hours")
    return OnceSchedule(tz_name=context.tz_name, at=instant)


def _parse_cron(words: list[_Word], context: _Context) -> Schedule:
    if len(words) < 2:
        raise _not_understood(context.part(words), _CRON_EXAMPLE)
    if len(words) == 2 and words[1].quoted:
        expression = words[1].text
    else:
        expression = context.text[words[1].start : words[-1].end]
    normalized = " ".join(expression.split())
    return CronSchedule(tz_name=context.tz_name, expression=normalized)


_CLAUSES: Final[Mapping[str, Callable[[list[_Word], _Context], Schedule]]] = {
    "every": _parse_every,
    "cron": _parse_cron,
    "at": _parse_at,
    "on": _parse_on,
    "in": _parse_in,
    "tomorrow": _parse_tomorrow,
    "today": _parse_today,
}
