"""Drawings and roll-up math: table-driven cases, properties, and the issue's example of a
check down for 2 of the last 24 hours, driven by a fake clock through stored runs."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.runtime import Undefined

from bot.clock import FakeClock
from bot.glance import (
    BARS,
    HOUR,
    BucketState,
    HourlyRollup,
    LatencyHistogram,
    Tally,
    bucket_state,
    duration_text,
    hour_labels,
    hour_start,
    hourly_buckets,
    hourly_counts,
    latency_line,
    latency_over,
    latency_words,
    merge_rollups,
    percentile,
    roll_up,
    sparkline,
    sparkline_text,
    uptime,
    uptime_bar,
    uptime_bar_text,
    uptime_summary,
    uptime_text,
    uptime_words,
    window_start,
)
from bot.models import TriggerRun

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")


def run(when: datetime, outcome: str = "ok", duration_ms: float = 100.0) -> TriggerRun:
    return TriggerRun(
        trigger_id=1, scheduled_for=when, started_at=when, duration_ms=duration_ms, outcome=outcome
    )


# -- sparklines ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "width", "low", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], None, None, "▁▂▃▄▅▆▇█"),
        ([1, 5, 3, None, 8], None, None, "▁▅▃ █"),
        ([8, 1], None, None, "█▁"),
        ([-5, 0, 5], None, None, "▁▅█"),
        ([-10, -20], None, None, "█▁"),
        ([3, 3, 3], None, None, "▄▄▄"),  # flat: the middle
        ([0, 0, None, 0], None, 0, "▁▁ ▁"),  # flat on the floor: the bottom
        ([5, 5], None, 0, "██"),
        ([80, 82, 81], None, 0, "███"),  # from zero, a small wobble stays flat
        ([80, 82, 81], None, None, "▁█▅"),
        ([None, None], None, None, "  "),
        ([], None, None, ""),
        (["1", "1,000", "n/a", True], None, None, "▁█  "),  # text numbers; the rest gaps
        ([float("nan"), 1, float("inf"), 2], None, None, " ▁ █"),
        # more values than the width are averaged
        ([0, 0, 10, 10], 2, None, "▁█"),
        ([0, 10, 0, 10, 0, 10], 3, None, "▄▄▄"),
        ([1, None, None, None, 3, 5], 3, None, "▁ █"),  # an empty group is a gap
        ([1, 2, 3], 10, None, "▁▅█"),  # never stretched
        (list(range(100)), 10, None, "▁▂▃▃▄▅▆▆▇█"),
        (Undefined(), None, None, ""),
        (5, None, None, "▄"),  # one value
    ],
)
def test_sparkline(values: object, width: int | None, low: float | None, expected: str) -> None:
    assert sparkline(values, width, low=low) == expected


def test_sparkline_with_a_ceiling() -> None:
    assert sparkline([0, 50, 100, 200], low=0, high=100) == "▁▅██"


@pytest.mark.parametrize("width", [0, -1, 1.5, True])
def test_sparkline_refuses_a_width_below_one(width: object) -> None:
    with pytest.raises(ValueError, match="width"):
        sparkline([1, 2], width)  # type: ignore[arg-type]


_points = st.lists(
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers()),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(values=_points, width=st.one_of(st.none(), st.integers(min_value=1, max_value=50)))
def test_sparkline_has_one_bar_per_value_or_width(values: list[object], width: int | None) -> None:
    line = sparkline(values, width)
    assert len(line) == (len(values) if width is None else min(len(values), width))
    assert set(line) <= {*BARS, " "}


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.floats(-1e9, 1e9)), max_size=60))
def test_sparkline_gaps_are_exactly_the_missing_values(values: list[float | None]) -> None:
    line = sparkline(values)
    assert [char == " " for char in line] == [value is None for value in values]
    present = [(value, char) for value, char in zip(values, line, strict=True) if value is not None]
    if len({value for value, _ in present}) > 1:  # the highest is full, the lowest empty
        assert max(present)[1] == "█" and min(present)[1] == "▁"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([12, 340, None, 80], "low 12, high 340, latest 80"),
        ([1234.5], "low 1,234.5, high 1,234.5, latest 1,234.5"),
        ([None], "no data"),
        ([], "no data"),
    ],
)
def test_sparkline_text(values: list[float | None], expected: str) -> None:
    assert sparkline_text(values) == expected


def test_sparkline_text_with_units() -> None:
    assert sparkline_text([80, 1500], duration_text) == "low 80 ms, high 1.5 s, latest 1.5 s"


# -- uptime bars -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("runs", "problems", "state"),
    [
        (0, 0, BucketState.NO_DATA),
        (1, 0, BucketState.OK),
        (12, 0, BucketState.OK),
        (1, 1, BucketState.DOWN),
        (12, 1, BucketState.DEGRADED),
        (2, 1, BucketState.DEGRADED),  # exactly half: amber
        (3, 2, BucketState.DOWN),  # more than half: red
        (12, 12, BucketState.DOWN),
    ],
)
def test_bucket_state(runs: int, problems: int, state: BucketState) -> None:
    assert bucket_state(Tally(runs, problems)) is state


def test_uptime_bar_and_its_text_twin() -> None:
    buckets = [Tally(4, 0), Tally(4, 1), Tally(4, 4), Tally(0, 0)]
    assert uptime_bar(buckets) == "🟩🟨🟥⬜"
    assert uptime_bar_text(buckets) == "█▒░·"


@pytest.mark.parametrize(
    ("buckets", "labels", "expected"),
    [
        ([Tally(1, 0)] * 24, None, "up all of the last 24 hours"),
        ([Tally(1, 0)] * 22 + [Tally(1, 1)] * 2, None, "down 2 of the last 24 hours"),
        (
            [Tally(1, 0), Tally(1, 1), Tally(1, 1)],
            ["10:00", "11:00", "12:00"],
            "down 2 of the last 3 hours (11:00, 12:00)",
        ),
        (
            [Tally(4, 1), Tally(4, 4), Tally(0, 0), Tally(4, 1)],
            None,
            "down 1 and problems in 2 of the last 4 hours, no runs in 1",
        ),
        ([Tally(4, 1)], None, "problems in 1 of the last hour"),
        (
            [Tally(1, 0), Tally(0, 0), Tally(0, 0)],
            None,
            "up in the one hour with runs of the last 3 hours",
        ),
        (
            [Tally(1, 0), Tally(2, 0), Tally(0, 0)],
            None,
            "up in all 2 hours with runs of the last 3 hours",
        ),
        ([Tally(0, 0)] * 24, None, "no runs in the last 24 hours"),
        ([], None, "no runs in the last 0 hours"),
    ],
)
def test_uptime_words(buckets: list[Tally], labels: list[str] | None, expected: str) -> None:
    assert uptime_words(buckets, labels) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "—"),
        (1.0, "100%"),
        (0.0, "0%"),
        (22 / 24, "91.7%"),
        (0.5, "50.0%"),
        (0.99949, "99.9%"),
        (0.99996, "99.996%"),  # never rounded up to 100%
        (0.9999999, "99.999%"),
        (0.0000001, "0.001%"),  # nor down to 0%
        (float("nan"), "—"),
    ],
)
def test_uptime_text(value: float | None, expected: str) -> None:
    assert uptime_text(value) == expected


# -- latency ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        (list(range(1, 11)), 50, 5),
        (list(range(1, 11)), 90, 9),
        (list(range(1, 11)), 95, 10),
        (list(range(1, 11)), 100, 10),
        (list(range(1, 11)), 1, 1),
        ([7], 50, 7),
        ([3, 1, 2], 50, 2),
        ([], 50, None),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    assert percentile(values, p) == expected


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_percentile_refuses_what_is_not_a_percentage(p: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile([1], p)
    with pytest.raises(ValueError, match="percentile"):
        LatencyHistogram.of([1]).percentile(p)


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([85.0], 50, 85.0),  # one value: exact
        ([85.0] * 10, 95, 85.0),
        ([], 50, None),
        ([None, float("nan")], 50, None),
        ([0.2, 0.4, 0.3], 50, 0.4),  # under 1 ms: the middle 0.5, clamped to the largest
        ([-5.0, 10.0], 50, 0.0),  # negatives count as 0
        ([-5.0, 0.0, 10.0], 50, 0.5),  # under 1 ms: within 0.5 ms
        ([200_000.0, 300_000.0], 95, 300_000.0),  # past 131 s: the largest seen
    ],
)
def test_histogram_percentile_edges(
    values: list[float | None], p: float, expected: float | None
) -> None:
    assert LatencyHistogram.of(values).percentile(p) == expected


_latencies = st.lists(st.floats(min_value=1, max_value=130_000), min_size=1, max_size=300)


@settings(max_examples=300, deadline=None)
@given(values=_latencies, p=st.sampled_from([50, 90, 95, 99]))
def test_histogram_percentile_is_within_its_documented_error(values: list[float], p: int) -> None:
    exact = percentile(values, p)
    estimate = LatencyHistogram.of(values).percentile(p)
    assert exact is not None and estimate is not None
    assert abs(estimate - exact) <= exact * (2 ** (1 / 32) - 1) + 1e-9


@settings(max_examples=200, deadline=None)
@given(first=st.lists(st.floats(0, 200_000)), second=st.lists(st.floats(0, 200_000)))
def test_merged_histograms_equal_the_histogram_of_all(
    first: list[float], second: list[float]
) -> None:
    merged = LatencyHistogram.of(first).merge(LatencyHistogram.of(second))
    assert merged == LatencyHistogram.of(first + second)
    assert merged.count == len(first) + len(second)
    assert LatencyHistogram.from_dict(merged.to_dict()) == merged


@pytest.mark.parametrize(
    "data",
    [
        {"counts": "no"},
        {"counts": [[1]]},
        {"counts": [[1, 0]], "min": 1, "max": 2},
        {"counts": [[999, 1]], "min": 1, "max": 2},
        {"counts": [[1, 1]]},  # counts without min and max
        {"counts": [[1, 1]], "min": "1", "max": 2},
        {"counts": [[True, 1]], "min": 1, "max": 2},
    ],
)
def test_histogram_from_malformed_data(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="latenc"):
        LatencyHistogram.from_dict(data)


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (None, "—"),
        (0.4, "0 ms"),
        (85, "85 ms"),
        (999.4, "999 ms"),
        (999.6, "1.0 s"),
        (1234, "1.2 s"),
        (90_000, "1.5 min"),
    ],
)
def test_duration_text(ms: float | None, expected: str) -> None:
    assert duration_text(ms) == expected


# -- roll-ups --------------------------------------------------------------------------


def test_roll_up_counts_finished_runs_per_hour() -> None:
    runs = [
        run(NOW - timedelta(minutes=40), "ok", 100),  # 11:50
        run(NOW - timedelta(minutes=35), "problem", 300),  # 11:55
        run(NOW - timedelta(minutes=30), "error", 10_000),  # 12:00
        run(NOW - timedelta(minutes=25), "running"),  # unfinished: left out
        run(NOW - timedelta(minutes=20), "missed"),  # the bot was down: left out
        run(NOW - timedelta(minutes=10), "ok", 120),  # 12:20
        run(NOW + timedelta(minutes=10), "ok"),  # after now: left out
    ]
    eleven, noon = datetime(2024, 5, 1, 11, tzinfo=UTC), datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert roll_up(runs, NOW) == [
        HourlyRollup(eleven, 2, 1, LatencyHistogram.of([100, 300])),
        HourlyRollup(noon, 2, 1, LatencyHistogram.of([10_000, 120])),
    ]


def test_rollups_merge_and_survive_json() -> None:
    hour = datetime(2024, 5, 1, 11, tzinfo=UTC)
    first = roll_up([run(hour, "ok", 80)], NOW)[0]
    second = roll_up([run(hour + timedelta(minutes=5), "problem", 90)], NOW)[0]
    both = roll_up([run(hour, "ok", 80), run(hour + timedelta(minutes=5), "problem", 90)], NOW)[0]
    assert first.merge(second) == both
    assert merge_rollups([second, first]) == [both]
    assert HourlyRollup.from_dict(both.to_dict()) == both
    assert both.p50_ms == 80 and both.p95_ms == 90


@pytest.mark.parametrize(
    ("hour", "runs", "problems"),
    [
        (datetime(2024, 5, 1, 11, 30, tzinfo=UTC), 1, 0),  # not a whole hour
        (datetime(2024, 5, 1, 11), 1, 0),  # naive
        (datetime(2024, 5, 1, 11, tzinfo=UTC), 1, 2),  # more problems than runs
        (datetime(2024, 5, 1, 11, tzinfo=UTC), -1, 0),
    ],
)
def test_rollup_refuses_impossible_values(hour: datetime, runs: int, problems: int) -> None:
    with pytest.raises(ValueError):
        HourlyRollup(hour, runs, problems)


def test_rollups_of_different_hours_do_not_merge() -> None:
    eleven = datetime(2024, 5, 1, 11, tzinfo=UTC)
    with pytest.raises(ValueError, match="merge"):
        HourlyRollup(eleven).merge(HourlyRollup(eleven + HOUR))


@pytest.mark.parametrize(
    "data",
    [
        {"hour": 1, "runs": 1, "problems": 0, "latency": {}},
        {"hour": "2024-05-01T11:00:00+00:00", "runs": "1", "problems": 0, "latency": {}},
    ],
)
def test_rollup_from_malformed_data(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="malformed"):
        HourlyRollup.from_dict(data)


def test_hourly_buckets_are_exactly_the_hours_ending_now() -> None:
    rollups = roll_up([run(NOW - timedelta(hours=h)) for h in (0, 5, 30)], NOW)
    buckets = hourly_buckets(rollups, NOW)
    assert len(buckets) == 24
    assert buckets[0].hour == datetime(2024, 4, 30, 13, tzinfo=UTC)
    assert buckets[-1].hour == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert [bucket.runs for bucket in buckets] == [0] * 18 + [1] + [0] * 4 + [1]
    assert [b.hour for b in hourly_buckets(rollups, NOW, 3)] == [
        datetime(2024, 5, 1, h, tzinfo=UTC) for h in (10, 11, 12)
    ]
    with pytest.raises(ValueError, match="hours"):
        hourly_buckets(rollups, NOW, 0)


def test_hour_labels_in_the_readers_zone() -> None:
    buckets = hourly_buckets([], NOW, 2)
    assert hour_labels(buckets, BERLIN) == ["13:00", "14:00"]
    assert hour_labels(buckets, KOLKATA) == ["16:30", "17:30"]  # UTC hours, their clock
    assert hour_labels(buckets, UTC, "%a %H") == ["Wed 11", "Wed 12"]


def test_hourly_counts() -> None:
    moments = [
        NOW,
        NOW - timedelta(minutes=20),
        NOW - timedelta(hours=2),
        NOW - timedelta(hours=24),
        NOW + HOUR,
    ]
    assert hourly_counts(moments, NOW, 4) == [0, 1, 0, 2]
    assert sum(hourly_counts(moments, NOW)) == 3  # 24 h before is the hour before the window


def test_uptime_windows_count_whole_hours() -> None:
    eleven_days = [run(NOW - timedelta(days=d), "problem" if d >= 2 else "ok") for d in range(11)]
    rollups = roll_up(eleven_days, NOW)
    assert uptime(rollups, window_start(NOW, 24), NOW) == 1.0
    assert uptime(rollups, window_start(NOW, 24 * 7), NOW) == 2 / 7
    assert uptime([], window_start(NOW, 24), NOW) is None
    assert uptime_summary(rollups, NOW) == "24 h 100% · 7 d 28.6% · 30 d 18.2%"
    assert latency_over(rollups, window_start(NOW, 48), NOW).count == 2


def test_latency_line_and_words() -> None:
    durations = [80, 82, 81, 160, 90]
    rollups = roll_up(
        [run(NOW - h * HOUR, "ok", ms) for h, ms in enumerate(reversed(durations))], NOW
    )
    buckets = hourly_buckets(rollups, NOW, 5)
    # From half the highest median: the doubling fills the height, 80 → 82 barely shows.
    # The exact p50 is 82 ms; the histogram's 81 ms is within its 2.2%. The p95 is the
    # largest latency, which the histogram keeps exactly.
    assert latency_line(buckets) == "▁▁▁█▂ p50 81 ms · p95 160 ms"
    assert latency_words(buckets) == (
        "latency p50 81 ms, p95 160 ms (hourly medians: low 80 ms, high 160 ms, latest 90 ms)"
    )
    empty = hourly_buckets([], NOW, 3)
    assert latency_line(empty) == "    p50 — · p95 —"
    assert latency_words(empty) == "no latencies"


# -- the example, from stored runs on a fake clock -----------------------------


class StoredRuns:
    """What the runner keeps: the last 200 raw runs, and each run added to its hour's
    roll-up once, when it is saved."""

    def __init__(self) -> None:
        self.raw: list[TriggerRun] = []
        self.rollups: dict[datetime, HourlyRollup] = {}

    def save(self, finished: TriggerRun, now: datetime) -> None:
        self.raw = [*self.raw, finished][-200:]
        for rollup in roll_up([finished], now):
            known = self.rollups.get(rollup.hour)
            self.rollups[rollup.hour] = rollup if known is None else known.merge(rollup)


def run_every_five_minutes(
    clock: FakeClock, store: StoredRuns, hours: int, down: set[datetime]
) -> None:
    for _ in range(hours * 12):
        now = clock.now()
        outcome = "problem" if hour_start(now) in down else "ok"
        store.save(run(now, outcome, 10_000 if outcome == "problem" else 120), now)
        clock.advance(timedelta(minutes=5))


def test_a_check_down_for_2_of_the_last_24_hours() -> None:
    clock = FakeClock(datetime(2024, 4, 30, 6, 0, tzinfo=UTC))
    store = StoredRuns()
    down = {datetime(2024, 5, 1, 3, tzinfo=UTC), datetime(2024, 5, 1, 4, tzinfo=UTC)}
    run_every_five_minutes(clock, store, 30, down)  # 06:00 … 11:55 the next day
    now = clock.now() - timedelta(minutes=1)  # 11:59, inside the last hour with runs
    assert len(store.raw) == 200  # raw runs reach back less than 17 hours ...

    buckets = hourly_buckets(store.rollups.values(), now)  # ... the roll-ups all 24
    labels = hour_labels(buckets, BERLIN)
    red = [
        label
        for label, bucket in zip(labels, buckets, strict=True)
        if bucket_state(bucket) is BucketState.DOWN
    ]

    assert uptime_bar(buckets) == "🟩" * 15 + "🟥🟥" + "🟩" * 7
    assert red == ["05:00", "06:00"]  # 03:00 and 04:00 UTC, on a Berlin clock
    assert uptime_bar_text(buckets) == "█" * 15 + "░░" + "█" * 7
    assert uptime_words(buckets, labels) == "down 2 of the last 24 hours (05:00, 06:00)"
    assert uptime(store.rollups.values(), window_start(now, 24), now) == 22 / 24
    assert uptime_text(22 / 24) == "91.7%"
    assert (
        uptime_summary(list(store.rollups.values()), now) == "24 h 91.7% · 7 d 93.3% · 30 d 93.3%"
    )
    assert latency_line(buckets) == "▁" * 15 + "██" + "▁" * 7 + " p50 120 ms · p95 10.0 s"

    # An hour later the red hours have moved one place to the left.
    run_every_five_minutes(clock, store, 1, down)
    later = hourly_buckets(store.rollups.values(), clock.now() - timedelta(minutes=1))
    assert uptime_bar(later) == "🟩" * 14 + "🟥🟥" + "🟩" * 8


def test_the_roll_ups_hold_the_same_figures_as_the_raw_runs() -> None:
    clock = FakeClock(datetime(2024, 5, 1, 0, 0, tzinfo=UTC))
    store = StoredRuns()
    run_every_five_minutes(clock, store, 12, {datetime(2024, 5, 1, 7, tzinfo=UTC)})
    now = clock.now()
    assert merge_rollups(store.rollups.values()) == roll_up(store.raw, now)
    latencies = [r.duration_ms for r in store.raw]
    merged = latency_over(store.rollups.values(), window_start(now, 24), now)
    for p in (50, 95):
        exact, estimate = percentile(latencies, p), merged.percentile(p)
        assert exact is not None and estimate is not None
        assert math.isclose(estimate, exact, rel_tol=0.022)
