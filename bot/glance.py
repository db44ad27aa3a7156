"""State at a glance: uptime bars, sparklines and the hourly roll-ups they are drawn from.

Raw runs are kept only for the last 200 per trigger, so each hour of a trigger's history
is also kept as an `HourlyRollup` (runs, problems, a latency histogram) for at least
`ROLLUP_RETENTION`; the 24 h / 7 d / 30 d views are drawn from roll-ups alone. A run is
added to its hour's stored roll-up once, when it is saved (``stored.merge(r)`` for each
``r`` in ``roll_up([run], now)``), so pruning raw runs later loses nothing and no run is
counted twice.

Everything here is pure and takes ``now`` as an argument. Hours are UTC hours (an hour
in a zone with a half-hour offset is still a UTC hour); `hour_labels` names them in the
reader's zone.

Uptime is counted in runs: the share of finished runs in the window that found no
problem. Hours without runs do not count for or against it.

A bar's buckets are coloured as status pages colour them (`bucket_state`): green when
every run was fine, amber when some had problems, red when more than half did, white
when there were no runs. Every drawing has a plain-text twin for the notification text
and screen readers (`uptime_words`, `uptime_bar_text`, `sparkline_text`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import Enum
from typing import NamedTuple, Protocol

from bot.formatting import PLACEHOLDER, number, parse_number

ROLLUP_RETENTION = timedelta(days=90)
HOUR = timedelta(hours=1)
# (label, hours) of the uptime figures shown together
UPTIME_WINDOWS: tuple[tuple[str, int], ...] = (("24 h", 24), ("7 d", 24 * 7), ("30 d", 24 * 30))

BARS = "▁▂▃▄▅▆▇█"
GAP = " "

# What a run's outcome counts as: a problem or not. "running" (unfinished) and "missed"
# (the bot was down, so nothing is known about the target) are not counted at all.
_COUNTED_OUTCOMES: Mapping[str, bool] = {"ok": False, "problem": True, "error": True}


# -- sparklines ------------------------------------------------------------------------


def sparkline(
    values: object,
    width: int | None = None,
    *,
    low: float | None = None,
    high: float | None = None,
) -> str:
    """``[1, 5, 3, None, 8]`` → ``▁▅▃ █``: one bar per value, scaled from the lowest to
    the highest (or from ``low``/``high`` when given; ``low=0`` for counts and latencies,
    so that 80 → 82 ms does not look like a cliff). Missing values are gaps. A constant
    series sits in the middle (``▄``), or at the bottom when it equals ``low``. More values than ``width`` are averaged into
    ``width`` bars (a group without values stays a gap). Values are numbers or text that
    reads as a number (`bot.formatting.parse_number`); anything else is a gap.
    """
    points = [_as_float(value) for value in _as_list(values)]
    if width is not None:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a whole number of at least 1, not {width!r}")
        points = _downsample(points, width)
    present = [point for point in points if point is not None]
    if not present:
        return GAP * len(points)
    bottom = min(present) if low is None else low
    top = max(present) if high is None else high
    scale = max(abs(bottom), abs(top))
    if scale > 1e300:  # top − bottom would overflow to infinity
        points = [None if point is None else point / scale for point in points]
        bottom, top = bottom / scale, top / scale
    if top <= bottom:
        # A flat line: at the bottom when it sits on the given floor (no deliveries at
        # all), otherwise in the middle, since there is nothing to compare it with.
        flat = BARS[0] if low is not None and top <= low else BARS[len(BARS) // 2 - 1]
        return "".join(GAP if point is None else flat for point in points)
    return "".join(_bar(point, bottom, top) for point in points)


def _as_list(values: object) -> list[object]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        return [values]
    return list(values)


def _as_float(value: object) -> float | None:
    parsed = parse_number(value)
    if parsed is None:
        return None
    result = float(parsed)
    return result if math.isfinite(result) else None


def _downsample(points: list[float | None], width: int) -> list[float | None]:
    if len(points) <= width:
        return points
    groups = (
        points[i * len(points) // width : (i + 1) * len(points) // width] for i in range(width)
    )
    return [_mean(group) for group in groups]


def _mean(points: Sequence[float | None]) -> float | None:
    present = [point for point in points if point is not None]
    if not present:
        return None
    # Summing shares rather than values: the sum of a few values near 1e308 overflows.
    return math.fsum(point / len(present) for point in present)


def _bar(point: float | None, bottom: float, top: float) -> str:
    if point is None:
        return GAP
    share = (min(max(point, bottom), top) - bottom) / (top - bottom)
    return BARS[round(share * (len(BARS) - 1))]


def sparkline_text(
    values: object, show: Callable[[float], str] = number, *, empty: str = "no data"
) -> str:
    """The words for a sparkline: ``low 12 ms, high 340 ms, latest 80 ms``."""
    present = [point for point in map(_as_float, _as_list(values)) if point is not None]
    if not present:
        return empty
    return f"low {show(min(present))}, high {show(max(present))}, latest {show(present[-1])}"


# -- uptime bars -----------------------------------------------------------------------


class BucketState(Enum):
    """How one bucket of a bar is coloured."""

    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"
    NO_DATA = "no data"


class Counts(Protocol):
    """A bucket of a bar: runs and how many of them had problems (`HourlyRollup`, `Tally`)."""

    @property
    def runs(self) -> int: ...

    @property
    def problems(self) -> int: ...


class Tally(NamedTuple):
    """Runs and problems, for bars drawn from anything other than roll-ups."""

    runs: int
    problems: int


SQUARES: Mapping[BucketState, str] = {
    BucketState.OK: "🟩",
    BucketState.DEGRADED: "🟨",
    BucketState.DOWN: "🟥",
    BucketState.NO_DATA: "⬜",
}
TEXT_MARKS: Mapping[BucketState, str] = {
    BucketState.OK: "█",
    BucketState.DEGRADED: "▒",
    BucketState.DOWN: "░",
    BucketState.NO_DATA: "·",
}


def bucket_state(bucket: Counts) -> BucketState:
    """No runs: no data; no problems: ok; problems in more than half the runs: down;
    otherwise degraded. With one run an hour, an hour is either ok or down."""
    if bucket.runs <= 0:
        return BucketState.NO_DATA
    if bucket.problems <= 0:
        return BucketState.OK
    return BucketState.DOWN if 2 * bucket.problems > bucket.runs else BucketState.DEGRADED


def uptime_bar(buckets: Iterable[Counts]) -> str:
    """One emoji square per bucket, oldest first: 🟩 ok, 🟨 degraded, 🟥 down, ⬜ no runs."""
    return "".join(SQUARES[bucket_state(bucket)] for bucket in buckets)


def uptime_bar_text(buckets: Iterable[Counts]) -> str:
    """The bar in plain characters: ``█`` ok, ``▒`` degraded, ``░`` down, ``·`` no runs."""
    return "".join(TEXT_MARKS[bucket_state(bucket)] for bucket in buckets)


def uptime_words(
    buckets: Sequence[Counts], labels: Sequence[str] | None = None, unit: str = "hour"
) -> str:
    """The bar in words: ``down 2 of the last 24 hours (13:00, 14:00)``,
    ``up all of the last 24 hours``, ``down 1 and problems in 2 of the last 24 hours,
    no runs in 3``. ``labels`` (one per bucket, see `hour_labels`) name the down buckets.
    """
    states = [bucket_state(bucket) for bucket in buckets]
    span = f"the last {len(states)} {unit}s" if len(states) != 1 else f"the last {unit}"
    empty = states.count(BucketState.NO_DATA)
    if empty == len(states):
        return f"no runs in {span}"
    down, degraded = states.count(BucketState.DOWN), states.count(BucketState.DEGRADED)
    parts = ([f"down {down}"] if down else []) + ([f"problems in {degraded}"] if degraded else [])
    text = " and ".join(parts) + f" of {span}" if parts else f"up all of {span}"
    if down and labels is not None:
        named = [
            label for label, state in zip(labels, states, strict=False) if state is BucketState.DOWN
        ]
        text += f" ({', '.join(named)})"
    if empty and parts:
        text += f", no runs in {empty}"
    elif empty:
        ran = len(states) - empty
        hours = f"all {ran} {unit}s" if ran > 1 else f"the one {unit}"
        text = f"up in {hours} with runs of {span}"
    return text


def uptime_text(value: float | None, decimals: int = 1) -> str:
    """``0.91666…`` → ``91.7%``. Never rounds to 100% or 0% unless it is exactly that:
    more decimals are shown first (``99.996%``), then it stops at ``99.999%``."""
    if value is None or not math.isfinite(value):
        return PLACEHOLDER
    if value >= 1 or value <= 0:
        return f"{max(min(value, 1.0), 0.0) * 100:.0f}%"
    shown = value * 100
    for places in range(decimals, 4):
        text = f"{shown:.{places}f}"
        if float(text) not in (0.0, 100.0):
            return text + "%"
    return f"{min(max(shown, 0.001), 99.999):.3f}%"


# -- latency ---------------------------------------------------------------------------


def percentile(values: Iterable[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile (0 < p ≤ 100): the smallest value with at
    least p% of the values at or below it. None for no values."""
    _check_percent(p)
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]


def _check_percent(p: float) -> None:
    if not 0 < p <= 100:
        raise ValueError(f"a percentile is above 0 and at most 100, not {p!r}")


# Histogram buckets: 0 holds latencies under 1 ms; bucket i ≥ 1 holds [2^((i-1)/16),
# 2^(i/16)) ms, sixteen per doubling (each 4.4% wide); the last holds 2^17 ms (131 s)
# and up. An hour uses a few of the 274 buckets, and only those are stored.
_STEPS_PER_DOUBLING = 16
_TOP_EXPONENT = 17
_LAST_BUCKET = _STEPS_PER_DOUBLING * _TOP_EXPONENT + 1


def _latency_bucket(ms: float) -> int:
    if ms < 1:
        return 0
    return min(int(math.log2(ms) * _STEPS_PER_DOUBLING) + 1, _LAST_BUCKET)


def _bucket_estimate(bucket: int) -> float:
    if bucket == 0:
        return 0.5
    if bucket == _LAST_BUCKET:
        return math.inf  # clamped to the largest value seen
    return float(2 ** ((bucket - 0.5) / _STEPS_PER_DOUBLING))  # the geometric middle


@dataclass(frozen=True)
class LatencyHistogram:
    """Latencies in fixed logarithmic buckets, so that hours merge without raw data.

    ``counts`` holds (bucket, count) pairs for the buckets in use, in bucket order.
    `percentile` finds the bucket holding the exact nearest-rank percentile and returns
    its geometric middle, clamped to the smallest and largest latency seen: between
    1 ms and 131 s it is within 2.2% of the exact figure (half a bucket: 2^(1/32) − 1);
    under 1 ms within 0.5 ms; from 131 s on it is the largest latency seen. The lowest
    and highest ranks are exact (they are the smallest and largest latency seen), so
    the p95 of up to 20 latencies is their maximum, as it should be.
    """

    counts: tuple[tuple[int, int], ...] = ()
    min_ms: float | None = None
    max_ms: float | None = None

    @classmethod
    def of(cls, durations_ms: Iterable[float | None]) -> LatencyHistogram:
        """The histogram of these latencies; None and NaN are skipped, negatives are 0."""
        kept = [max(ms, 0.0) for ms in durations_ms if ms is not None and not math.isnan(ms)]
        tally: dict[int, int] = defaultdict(int)
        for ms in kept:
            tally[_latency_bucket(ms)] += 1
        return cls(tuple(sorted(tally.items())), min(kept, default=None), max(kept, default=None))

    @property
    def count(self) -> int:
        """How many latencies the histogram holds."""
        return sum(count for _, count in self.counts)

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """The histogram of both sets of latencies."""
        tally: dict[int, int] = defaultdict(int)
        for bucket, count in (*self.counts, *other.counts):
            tally[bucket] += count
        lows = [ms for ms in (self.min_ms, other.min_ms) if ms is not None]
        highs = [ms for ms in (self.max_ms, other.max_ms) if ms is not None]
        return LatencyHistogram(
            tuple(sorted(tally.items())), min(lows, default=None), max(highs, default=None)
        )

    def percentile(self, p: float) -> float | None:
        """The ``p``-th percentile, approximately (see the class doc); None when empty."""
        _check_percent(p)
        rank = max(math.ceil(p / 100 * self.count), 1)
        if self.count and rank in (1, self.count):
            return self.min_ms if rank == 1 else self.max_ms
        seen = 0
        for bucket, count in self.counts:
            seen += count
            if seen >= rank:
                return self._clamped(_bucket_estimate(bucket))
        return None

    def _clamped(self, estimate: float) -> float:
        assert self.min_ms is not None and self.max_ms is not None  # counts imply both
        return min(max(estimate, self.min_ms), self.max_ms)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form (`from_dict` reads it back)."""
        return {
            "counts": [list(pair) for pair in self.counts],
            "min": self.min_ms,
            "max": self.max_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> LatencyHistogram:
        """The histogram `to_dict` wrote. Raises ValueError for malformed data."""
        pairs = data.get("counts", [])
        if not isinstance(pairs, list):
            raise ValueError(f"latency counts must be a list, not {pairs!r}")
        counts = tuple(sorted(_pair(pair) for pair in pairs))
        low, high = _optional_ms(data.get("min")), _optional_ms(data.get("max"))
        if counts and (low is None or high is None):
            raise ValueError("a latency histogram with counts needs its min and max")
        return cls(counts, low, high)


def _pair(pair: object) -> tuple[int, int]:
    if (
        isinstance(pair, list | tuple)
        and len(pair) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in pair)
        and 0 <= pair[0] <= _LAST_BUCKET
        and pair[1] > 0
    ):
        return (pair[0], pair[1])
    raise ValueError(f"a latency bucket is [bucket, count], not {pair!r}")


def _optional_ms(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ValueError(f"a latency is a number of milliseconds, not {value!r}")


def duration_text(ms: float | None) -> str:
    """``85`` → ``85 ms``, ``1234`` → ``1.2 s``, ``90000`` → ``1.5 min``; None → ``—``."""
    if ms is None or not math.isfinite(ms):
        return PLACEHOLDER
    if ms < 999.5:
        return f"{ms:.0f} ms"
    if ms < 59_950:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


# -- hourly roll-ups -------------------------------------------------------------------


class Run(Protocol):
    """What a roll-up needs of a run (`bot.models.TriggerRun` has it)."""

    @property
    def scheduled_for(self) -> datetime: ...

    @property
    def duration_ms(self) -> float | None: ...

    @property
    def outcome(self) -> str: ...


@dataclass(frozen=True)
class HourlyRollup:
    """One hour of a trigger's runs: how many finished, how many had problems, and their
    latencies (every finished run's duration, a timed-out check's included)."""

    hour: datetime  # the start of the hour, aware, UTC
    runs: int = 0
    problems: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def __post_init__(self) -> None:
        if self.hour.tzinfo is None or hour_start(self.hour) != self.hour:
            raise ValueError(f"a roll-up starts at a whole UTC hour, not {self.hour!r}")
        if not 0 <= self.problems <= self.runs:
            raise ValueError(f"{self.problems} problems in {self.runs} runs")

    @property
    def p50_ms(self) -> float | None:
        """The median latency of the hour (approximate, see `LatencyHistogram`)."""
        return self.latency.percentile(50)

    @property
    def p95_ms(self) -> float | None:
        """The 95th-percentile latency of the hour (approximate, see `LatencyHistogram`)."""
        return self.latency.percentile(95)

    def merge(self, other: HourlyRollup) -> HourlyRollup:
        """This hour with the runs of another roll-up of the same hour added."""
        if other.hour != self.hour:
            raise ValueError(f"cannot merge the hours {self.hour} and {other.hour}")
        return HourlyRollup(
            self.hour,
            self.runs + other.runs,
            self.problems + other.problems,
            self.latency.merge(other.latency),
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form (`from_dict` reads it back)."""
        return {
            "hour": self.hour.isoformat(),
            "runs": self.runs,
            "problems": self.problems,
            "latency": self.latency.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> HourlyRollup:
        """The roll-up `to_dict` wrote. Raises ValueError for malformed data."""
        hour, runs, problems, latency = (
            data.get(key) for key in ("hour", "runs", "problems", "latency")
        )
        if not isinstance(hour, str) or not isinstance(latency, Mapping):
            raise ValueError(f"malformed roll-up {dict(data)!r}")
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (runs, problems)):
            raise ValueError(f"malformed roll-up {dict(data)!r}")
        assert isinstance(runs, int) and isinstance(problems, int)  # checked just above
        return cls(
            datetime.fromisoformat(hour).astimezone(UTC),
            runs,
            problems,
            LatencyHistogram.from_dict(latency),
        )


def hour_start(moment: datetime) -> datetime:
    """The start of the UTC hour ``moment`` (aware) falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def roll_up(runs: Iterable[Run], now: datetime) -> list[HourlyRollup]:
    """Finished runs scheduled up to ``now``, as one roll-up per hour, oldest first.

    ``ok`` runs count as fine, ``problem`` and ``error`` as problems; ``running`` and
    ``missed`` runs, and runs scheduled after ``now``, are left out.
    """
    tallies: dict[datetime, list[Run]] = defaultdict(list)
    for run in runs:
        if run.outcome in _COUNTED_OUTCOMES and run.scheduled_for <= now:
            tallies[hour_start(run.scheduled_for)].append(run)
    return [_rollup_of(hour, tallies[hour]) for hour in sorted(tallies)]


def _rollup_of(hour: datetime, runs: Sequence[Run]) -> HourlyRollup:
    problems = sum(_COUNTED_OUTCOMES[run.outcome] for run in runs)
    return HourlyRollup(
        hour, len(runs), problems, LatencyHistogram.of(run.duration_ms for run in runs)
    )


def merge_rollups(rollups: Iterable[HourlyRollup]) -> list[HourlyRollup]:
    """One roll-up per hour, oldest first: roll-ups of the same hour are merged (stored
    hours and those rolled up from the newest raw runs, say)."""
    by_hour: dict[datetime, HourlyRollup] = {}
    for rollup in rollups:
        known = by_hour.get(rollup.hour)
        by_hour[rollup.hour] = rollup if known is None else known.merge(rollup)
    return [by_hour[hour] for hour in sorted(by_hour)]


def window_start(now: datetime, hours: int) -> datetime:
    """The start of the ``hours`` hours ending with the current one: what `uptime` is
    given as ``since`` to count the hours `hourly_buckets` draws."""
    return hour_start(now) - (hours - 1) * HOUR


def in_window(
    rollups: Iterable[HourlyRollup], since: datetime, now: datetime
) -> list[HourlyRollup]:
    """The roll-ups of hours that start at or after ``since`` and not after ``now``."""
    return [rollup for rollup in rollups if since <= rollup.hour <= now]


def uptime(rollups: Iterable[HourlyRollup], since: datetime, now: datetime) -> float | None:
    """The share of runs without problems in the hours from ``since`` to ``now`` (see
    `in_window`), from 0 to 1; None when there were no runs. Hours are whole: pass
    `window_start` to count exactly the hours a bar shows."""
    kept = in_window(rollups, since, now)
    runs = sum(rollup.runs for rollup in kept)
    return None if runs == 0 else (runs - sum(rollup.problems for rollup in kept)) / runs


def latency_over(
    rollups: Iterable[HourlyRollup], since: datetime, now: datetime
) -> LatencyHistogram:
    """The latencies of the hours from ``since`` to ``now``, merged."""
    return _merged_latency(in_window(rollups, since, now))


def hourly_buckets(
    rollups: Iterable[HourlyRollup], now: datetime, hours: int = 24
) -> list[HourlyRollup]:
    """Exactly ``hours`` roll-ups, oldest first, the last for the hour ``now`` is in;
    an hour without a roll-up is an empty one (no data)."""
    if hours < 1:
        raise ValueError(f"hours must be at least 1, not {hours!r}")
    first = window_start(now, hours)
    by_hour = {rollup.hour: rollup for rollup in merge_rollups(in_window(rollups, first, now))}
    return [by_hour.get(hour, HourlyRollup(hour)) for hour in _hours_from(first, hours)]


def _hours_from(first: datetime, count: int) -> list[datetime]:
    return [first + index * HOUR for index in range(count)]


def hour_labels(buckets: Iterable[HourlyRollup], tz: tzinfo, fmt: str = "%H:%M") -> list[str]:
    """Each bucket's start as the reader's clock shows it (``14:00``, or ``14:30`` in a
    zone half an hour off UTC)."""
    return [bucket.hour.astimezone(tz).strftime(fmt) for bucket in buckets]


def hourly_counts(moments: Iterable[datetime], now: datetime, hours: int = 24) -> list[int]:
    """How many of ``moments`` (say, hook deliveries) fell in each of the ``hours`` hours
    ending with the current one, oldest first; for ``sparkline(counts, low=0)``."""
    first = window_start(now, hours)
    counts = [0] * hours
    for moment in moments:
        index = (hour_start(moment) - first) // HOUR
        if 0 <= index < hours and moment <= now:
            counts[index] += 1
    return counts


# -- what a status view shows ----------------------------------------------------------


def uptime_summary(rollups: Sequence[HourlyRollup], now: datetime) -> str:
    """``24 h 91.7% · 7 d 98.8% · 30 d 99.7%`` (``—`` for a window without runs)."""
    return " · ".join(
        f"{label} {uptime_text(uptime(rollups, window_start(now, hours), now))}"
        for label, hours in UPTIME_WINDOWS
    )


def latency_line(buckets: Sequence[HourlyRollup]) -> str:
    """A sparkline of each hour's median latency, then the p50 and p95 of all the
    buckets' runs: ``▁▂▃▅▇ p50 85 ms · p95 240 ms``.

    The bars start from half the highest median (or the lowest, if lower), so that a
    doubling fills the height while a 2 ms wobble on 80 ms barely moves a bar.
    """
    merged = _merged_latency(buckets)
    medians = [bucket.p50_ms for bucket in buckets]
    present = [median for median in medians if median is not None]
    bottom = min(min(present), max(present) / 2) if present else None
    drawing = sparkline(medians, low=bottom)
    p50, p95 = merged.percentile(50), merged.percentile(95)
    return f"{drawing} p50 {duration_text(p50)} · p95 {duration_text(p95)}"


def latency_words(buckets: Sequence[HourlyRollup]) -> str:
    """`latency_line` in words: ``latency p50 85 ms, p95 240 ms (hourly medians: low 80 ms,
    high 120 ms, latest 85 ms)``."""
    merged = _merged_latency(buckets)
    if merged.count == 0:
        return "no latencies"
    medians = sparkline_text([bucket.p50_ms for bucket in buckets], duration_text)
    return (
        f"latency p50 {duration_text(merged.percentile(50))}, "
        f"p95 {duration_text(merged.percentile(95))} (hourly medians: {medians})"
    )


def _merged_latency(buckets: Iterable[HourlyRollup]) -> LatencyHistogram:
    merged = LatencyHistogram()
    for bucket in buckets:
        merged = merged.merge(bucket.latency)
    return merged


# -- drawings with their words ---------------------------------------------------------


@dataclass(frozen=True)
class Drawing:
    """Lines to show (mrkdwn: emoji bars, sparklines, each followed by what it says) and
    the same in plain words, for a message's notification text and screen readers."""

    lines: tuple[str, ...]
    words: str


def trigger_drawing(
    rollups: Sequence[HourlyRollup],
    now: datetime,
    tz: tzinfo,
    name_hour: Callable[[datetime], str] | None = None,
) -> Drawing:
    """A trigger's uptime over 24 h / 7 d / 30 d, the last 24 hours as a bar of hourly
    buckets, and a sparkline of the hourly median latency with the p50 and p95. Down
    hours are named on the reader's clock in ``tz``, or by ``name_hour`` (a channel
    message names them with Slack date tokens, which each reader sees in their zone)."""
    buckets = hourly_buckets(rollups, now, 24)
    if not in_window(rollups, window_start(now, UPTIME_WINDOWS[-1][1]), now):
        return Drawing(("*Uptime:* no runs yet",), "Uptime: no runs yet.")
    summary = uptime_summary(rollups, now)
    if name_hour is None:  # a reply names its zone, as every time in a reply does
        labels = hour_labels(buckets, tz, "%H:%M %Z")
    else:
        labels = [name_hour(bucket.hour) for bucket in buckets]
    bar_words = uptime_words(buckets, labels)
    if _merged_latency(buckets).count:
        medians = sparkline_text([bucket.p50_ms for bucket in buckets], duration_text)
        latency = f"*Latency, last 24 h:* {latency_line(buckets)} (hourly medians: {medians})"
        latency_said = latency_words(buckets)
    else:
        latency, latency_said = "*Latency, last 24 h:* no runs", "no latencies"
    return Drawing(
        (f"*Uptime:* {summary}", f"{uptime_bar(buckets)} {bar_words}", latency),
        f"Uptime {summary}; {bar_words}; {latency_said}.",
    )


def traffic_drawing(received: Sequence[int], refused: Sequence[int]) -> Drawing:
    """A hook's deliveries per hour over the last 24 hours as a sparkline, and the share
    of its requests refused for failing verification."""
    delivered, failed = sum(received), sum(refused)
    share = failed / (delivered + failed) if delivered + failed else None
    hourly = sparkline_text(received, number, empty="none")
    refusals = (
        f"{failed} of {delivered + failed} requests ({uptime_text(share)}) failed verification"
        if share is not None
        else "no requests"
    )
    return Drawing(
        (
            f"*Deliveries, last 24 h:* {sparkline(received, low=0)} {delivered} in all"
            f" (hourly: {hourly})",
            f"*Failed verification:* {uptime_text(share) if share is not None else PLACEHOLDER}"
            f" ({failed} refused)",
        ),
        f"{delivered} deliveries in the last 24 hours (hourly: {hourly}); {refusals}.",
    )
