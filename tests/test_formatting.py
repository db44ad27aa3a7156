"""Report filters: each one table-driven over the values JSON and CSV give, budgets as
properties, and the issue's example templates rendered in the real sandbox."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.runtime import Undefined

from bot.expressions import GuardedEnvironment
from bot.formatting import (
    change,
    date_text,
    fit_report,
    money,
    number,
    parse_number,
    percent,
    split_report,
    table,
)
from bot.slack.blocks import escape_mrkdwn

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def escaped_len(text: str) -> int:
    return len(escape_mrkdwn(text))


# -- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1234, Decimal(1234)),
        (1234.5, Decimal("1234.5")),
        (0.1, Decimal("0.1")),
        ("1234.5", Decimal("1234.5")),
        ("1,234", Decimal(1234)),
        ("1,234,567.89", Decimal("1234567.89")),
        (" -12 ", Decimal(-12)),
        ("−3", Decimal(-3)),
        ("+7", Decimal(7)),
        (".5", Decimal("0.5")),
        ("1e3", Decimal(1000)),
        (Decimal("2.50"), Decimal("2.50")),
        (True, None),
        (False, None),
        (None, None),
        ("", None),
        ("n/a", None),
        ("1,23", None),  # not a thousands grouping
        ("12,34.5", None),
        ("1.2.3", None),
        (float("nan"), None),
        (float("inf"), None),
        ("Infinity", None),
        ("NaN", None),
        ("1e2000", None),
        ("9" * 100, None),
        ([1], None),
        ({"a": 1}, None),
        (Undefined(), None),
    ],
)
def test_parse_number(value: object, expected: Decimal | None) -> None:
    assert parse_number(value) == expected


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (1234, None, "1,234"),
        (1234.5, None, "1,234.5"),
        ("1234.5", None, "1,234.5"),
        ("1,234", None, "1,234"),
        (1234567.891, None, "1,234,567.89"),
        (0.1 + 0.2, None, "0.3"),
        (2 / 3, None, "0.67"),
        (0.0042, None, "0.0042"),
        (0.000123456, None, "0.00012"),
        (-1234.5, None, "−1,234.5"),
        (0, None, "0"),
        (-0.0, None, "0"),
        (1234.5, 0, "1,235"),
        (1234.5, 2, "1,234.50"),
        (0.125, 2, "0.13"),  # half up, not half to even
        (2.5, 0, "3"),
        (-2.5, 0, "−3"),
        (-0.001, 2, "0.00"),  # no "−0.00"
        (1234, 2, "1,234.00"),
        (5, 99, "5.0000000000"),  # decimals are capped at 10
        (5, -3, "5"),
        (1e21, None, "1e+21"),
        (-1e300, None, "−1e+300"),
        (None, None, "—"),
        (Undefined(), None, "—"),
        ("", None, "—"),
        ("  ", None, "—"),
        (True, None, "—"),
        ([1, 2], None, "—"),
        ("n/a", None, "n/a"),
        (" pending ", 2, "pending"),
        ("x" * 100, None, "x" * 39 + "…"),
    ],
)
def test_number(value: object, decimals: int | None, expected: str) -> None:
    assert number(value, decimals) == expected


@pytest.mark.parametrize("decimals", ["2", 1.5, True])
def test_number_refuses_decimals_that_are_not_whole_numbers(decimals: object) -> None:
    with pytest.raises(TypeError, match="decimals"):
        number(1, decimals)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "currency", "decimals", "expected"),
    [
        (1234.5, "EUR", None, "€1,234.50"),
        ("1234.5", "eur", None, "€1,234.50"),
        (1234.5, "USD", None, "$1,234.50"),
        (1234.5, "GBP", None, "£1,234.50"),
        (1234.5, "JPY", None, "¥1,235"),
        (1234.5, "CHF", None, "CHF 1,234.50"),
        (1234.5, "XYZ", None, "1,234.50 XYZ"),
        (1234.5, " xyz ", None, "1,234.50 XYZ"),
        (-1234.5, "EUR", None, "−€1,234.50"),
        (-1234.5, "CHF", None, "−CHF 1,234.50"),
        (-1234.5, "XYZ", None, "−1,234.50 XYZ"),
        (-0.001, "EUR", None, "€0.00"),
        (1234.5, "EUR", 0, "€1,235"),
        (1234.5, "JPY", 2, "¥1,234.50"),
        (5, "", None, "5.00"),
        (5, "a very long code", None, "5.00 A VERY …"),
        (None, "EUR", None, "—"),
        ("n/a", "EUR", None, "n/a"),
        (False, "EUR", None, "—"),
    ],
)
def test_money(value: object, currency: str, decimals: int | None, expected: str) -> None:
    assert money(value, currency, decimals) == expected


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (0.12, 0, "12%"),
        ("0.12", 0, "12%"),
        (0.125, 0, "13%"),
        (0.1234, 1, "12.3%"),
        (12, 0, "1,200%"),  # fractions: 12 is 1200%
        (1, 0, "100%"),
        (0, 0, "0%"),
        (-0.03, 0, "−3%"),
        (-0.004, 0, "0%"),
        (None, 0, "—"),
        ("n/a", 0, "n/a"),
    ],
)
def test_percent(value: object, decimals: int, expected: str) -> None:
    assert percent(value, decimals) == expected


@pytest.mark.parametrize(
    ("current", "previous", "decimals", "expected"),
    [
        (112, 100, 0, "+12%"),
        (97, 100, 0, "−3%"),
        ("1,120", "1,000", 0, "+12%"),
        (100, 100, 0, "±0%"),
        (100.1, 100, 0, "±0%"),  # rounds to nothing
        (100.1, 100, 1, "+0.1%"),
        (99.9, 100, 1, "−0.1%"),
        (300, 100, 0, "+200%"),
        (0, 100, 0, "−100%"),
        (-50, -100, 0, "+50%"),  # measured against the size of previous
        (-150, -100, 0, "−50%"),
        (5, 0, 0, "new"),
        (5, None, 0, "new"),
        (5, Undefined(), 0, "new"),
        (5, "", 0, "new"),
        (0, 0, 0, "±0%"),
        (None, 100, 0, "—"),
        (Undefined(), 100, 0, "—"),
        ("n/a", 100, 0, "n/a"),
        (1e30, 1e-30, 0, "+1e+62%"),
    ],
)
def test_change(current: object, previous: object, decimals: int, expected: str) -> None:
    assert change(current, previous, decimals) == expected


def test_percent_and_change_use_the_same_scale() -> None:
    assert change(112, 100) == "+" + percent((112 - 100) / 100)


# -- dates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fmt", "tz", "expected"),
    [
        ("2024-05-01T12:00:00Z", "%a %d %b %H:%M %Z", BERLIN, "Wed 01 May 14:00 CEST"),
        ("2024-05-01T12:00:00+00:00", "%H:%M", NEW_YORK, "08:00"),
        ("2024-05-01 14:00+02:00", "%H:%M", UTC, "12:00"),
        ("2024-01-15T12:00:00.123456Z", "%H:%M %Z", BERLIN, "13:00 CET"),
        ("2024-05-01T02:00:00Z", "%A", NEW_YORK, "Tuesday"),  # the day before over there
        ("2024-05-01", "%A", NEW_YORK, "Wednesday"),  # a date stays that date
        ("2024-05-01", None, BERLIN, "Wed 01 May 2024"),
        ("20240501", "%d %b", UTC, "01 May"),
        ("2024-05-01 09:30", "%H:%M %Z", BERLIN, "09:30 CEST"),  # naive: as written
        ("2024-05-01T12:00:00Z", None, BERLIN, "Wed 01 May 2024 14:00"),
        (1714564800, "%Y-%m-%d %H:%M", UTC, "2024-05-01 12:00"),
        (1714564800.5, "%H:%M:%S", BERLIN, "14:00:00"),
        ("1714564800", "%H:%M", UTC, "12:00"),
        (1714564800000, "%H:%M", UTC, "12:00"),  # milliseconds, as JavaScript writes them
        ("1714564800000", "%H:%M", UTC, "12:00"),
        ("Wed, 01 May 2024 12:00:00 GMT", "%H:%M", BERLIN, "14:00"),
        (datetime(2024, 5, 1, 12, tzinfo=UTC), "%H:%M", BERLIN, "14:00"),
        (datetime(2024, 5, 1, 12), "%H:%M %Z", BERLIN, "12:00 CEST"),
        (date(2024, 5, 1), "%d.%m.", BERLIN, "01.05."),
        ("2024", None, UTC, "2024"),  # a year is not an epoch
        ("yesterday", None, UTC, "yesterday"),
        ("", None, UTC, "—"),
        (None, None, UTC, "—"),
        (Undefined(), "%A", UTC, "—"),
        (True, None, UTC, "—"),
        (10**30, None, UTC, "—"),  # out of range
        ("2024-13-45", None, UTC, "2024-13-45"),
    ],
)
def test_date_text(value: object, fmt: str | None, tz: ZoneInfo, expected: str) -> None:
    assert date_text(value, fmt, tz) == expected


# -- tables ----------------------------------------------------------------------------


def test_table_of_dicts_aligns_text_left_and_numbers_right() -> None:
    rows = [
        {"region": "North", "total": 1234.5, "note": "ok"},
        {"region": "South-East", "total": 12, "note": None},
    ]
    assert table(rows) == (
        "```\n"
        "region        total  note\n"
        "----------  -------  ----\n"
        "North       1,234.5  ok\n"
        "South-East       12  —\n"
        "```"
    )


@pytest.mark.parametrize(
    ("rows", "columns", "max_rows", "expected"),
    [
        # columns pick and order the keys of dict rows, as a list or a text
        (
            [{"a": 1, "b": "x", "c": 3}],
            ["c", "a"],
            20,
            "```\nc  a\n-  -\n3  1\n```",
        ),
        (
            [{"a": 1, "b": "x", "c": 3}],
            "b, a",
            20,
            "```\nb  a\n-  -\nx  1\n```",
        ),
        # a missing key is an empty cell; keys first seen in later rows are columns too
        (
            [{"a": "x"}, {"b": 2}],
            None,
            20,
            "```\na  b\n-  -\nx\n   2\n```",
        ),
        # lists without columns: no header
        (
            [["a", 1], ["bb", 22]],
            None,
            20,
            "```\na    1\nbb  22\n```",
        ),
        # lists with columns: a header over the leading positions
        (
            [["a", 1, "dropped"], ["bb", 22]],
            ["name", "n"],
            20,
            "```\nname   n\n----  --\na      1\nbb    22\n```",
        ),
        # cut to max_rows, with the rest counted below the block
        (
            [["a", 1], ["b", 2], ["c", 3]],
            None,
            2,
            "```\na  1\nb  2\n```\nand 1 more row",
        ),
        (
            [{"n": i} for i in range(12)],
            None,
            1,
            "```\nn\n-\n0\n```\nand 11 more rows",
        ),
        # CSV gives strings: numeric strings are right-aligned and shown as they came
        (
            [{"item": "tea", "qty": "1,200"}, {"item": "coffee", "qty": "7"}],
            None,
            20,
            "```\nitem      qty\n------  -----\ntea     1,200\ncoffee      7\n```",
        ),
        # booleans and nested values
        (
            [{"ok": True, "tags": ["a", "b"]}],
            None,
            20,
            '```\nok    tags\n----  ----------\ntrue  ["a", "b"]\n```',
        ),
        # one dict is one row
        ({"a": 1}, None, 20, "```\na\n-\n1\n```"),
        # no rows shown still shows the columns
        ([{"a": 1}, {"a": 2}], None, 0, "```\na\n-\n```\nand 2 more rows"),
        ([[1], [2]], None, 0, "(2 rows not shown)"),
        ([], None, 20, "(no rows)"),
        (None, None, 20, "(no rows)"),
        (Undefined(), None, 20, "(no rows)"),
        ("text", None, 20, "(no rows)"),
        ([{}, {}], None, 20, "(2 rows, no columns)"),
    ],
)
def test_table(rows: object, columns: object, max_rows: int, expected: str) -> None:
    assert table(rows, columns, max_rows) == expected


def test_table_cells_never_break_out_of_the_code_block() -> None:
    text = table([{"name": "```\n<!channel>", "x": "a\tb\rc"}])
    assert text.count("```") == 2
    assert text.startswith("```\n") and text.endswith("\n```")
    assert "ˋˋˋ <!channel>" in text
    assert "a b c" in text
    assert len(text.split("\n")) == 5  # fences, header, rule, one row


def test_table_cuts_long_cells() -> None:
    text = table([{"name": "x" * 100}], max_cell=10)
    assert "xxxxxxxxx…" in text and "x" * 10 not in text


def test_table_aligns_wide_characters_by_their_display_width() -> None:
    text = table([["日本", 1], ["ab", 22]])
    assert text == "```\n日本   1\nab    22\n```"


def test_table_drops_rows_to_stay_within_its_budget() -> None:
    rows = [{"name": f"customer {i}", "total": i * 1000} for i in range(50)]
    text = table(rows, max_rows=50, max_chars=300)
    assert len(text) <= 300
    shown = len(text.split("```")[1].strip("\n").split("\n")) - 2
    assert text.endswith(f"and {50 - shown} more rows")
    assert table(rows, max_rows=50, max_chars=len(text) - 1).count("\n") < text.count("\n")


def test_table_narrows_cells_before_giving_up() -> None:
    rows = [{f"column {i}": "value " * 5 for i in range(8)}]
    text = table(rows, max_chars=300)
    assert len(text) <= 300 and text.startswith("```")
    assert table(rows, max_chars=20) == "(1 row: too wide to…"


def test_table_counts_the_escaped_length_when_told() -> None:
    rows = [{"a": "<&>" * 5} for _ in range(30)]
    plain = table(rows, max_rows=30, max_chars=400)
    escaped = table(rows, max_rows=30, max_chars=400, measure=escaped_len)
    assert len(plain) <= 400 < escaped_len(plain)
    assert escaped_len(escaped) <= 400


_cell = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=60),
    st.lists(st.integers(), max_size=3),
)
_rows = st.one_of(
    st.lists(st.dictionaries(st.text(max_size=12), _cell, max_size=6), max_size=40),
    st.lists(st.lists(_cell, max_size=6), max_size=40),
)


@settings(max_examples=300, deadline=None)
@given(
    rows=_rows,
    max_rows=st.integers(min_value=-1, max_value=60),
    max_chars=st.integers(min_value=0, max_value=3000),
    max_cell=st.integers(min_value=1, max_value=40),
    escaped=st.booleans(),
)
def test_table_never_exceeds_its_budget(
    rows: list[Any], max_rows: int, max_chars: int, max_cell: int, escaped: bool
) -> None:
    measure = escaped_len if escaped else len
    text = table(rows, None, max_rows, max_chars, max_cell=max_cell, measure=measure)
    assert measure(text) <= max_chars
    if text.startswith("```"):
        # the block is closed exactly once, and nothing inside it opens another
        assert text.count("```") == 2
        assert re.fullmatch(r"```\n(?:[^`]*\n)?```(?:\nand [\d,]+ more rows?)?", text, re.S)


# -- fitting a report ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 100, "short"),
        ("a\nb\nc\nd", 7, "a\nb\nc\nd"),
        ("line one\nline two\nline three\nline four", 30, "line one\n(cut: 3 more lines)"),
        ("l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10", 25, "l1\nl2\n(cut: 8 more lines)"),
        ("l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10", 28, "l1\nl2\nl3\n(cut: 7 more lines)"),
        # a code block left open by the cut is closed (within the limit)
        (
            "```\nrow 1\nrow 2\nrow 3\nrow 4\nrow 5\n```\nafter",
            40,
            "```\nrow 1\nrow 2\n```\n(cut: 5 more lines)",
        ),
        # one line too long on its own is cut within the line
        ("x" * 100, 40, "x" * 12 + "…\n(cut: 88 more characters)"),
        ("x" * 100 + "\nnext", 40, "x" * 20 + "…\n(cut: 1 more line)"),
        # nothing but the note fits, or not even that
        ("x" * 100 + "\nnext", 18, "(cut: 1 more line)"),
        ("x" * 100 + "\nnext", 5, "(cut…"),
        ("x" * 100 + "\nnext", 0, ""),
    ],
)
def test_fit_report(text: str, limit: int, expected: str) -> None:
    assert fit_report(text, limit) == expected


def test_fit_report_does_not_leave_half_an_entity() -> None:
    text = escape_mrkdwn("<" * 100)
    cut = fit_report(text, 40)
    assert re.fullmatch(r"(&lt;)+…\n\(cut: \d+ more characters\)", cut)


_report = st.lists(
    st.one_of(st.text(max_size=200), st.just("```"), st.just("<&>" * 20)), max_size=80
).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(text=_report, limit=st.integers(min_value=0, max_value=4000), escaped=st.booleans())
def test_fit_report_never_exceeds_its_limit(text: str, limit: int, escaped: bool) -> None:
    measure = escaped_len if escaped else len
    fitted = fit_report(text, limit, measure=measure)
    assert measure(fitted) <= limit
    if measure(text) <= limit:
        assert fitted == text
    elif limit >= 40:  # room for the longest note: the cut is said
        assert re.search(r"\(cut: [\d,]+ more (lines?|characters?)\)$", fitted)
        assert fitted.count("```") % 2 == 0


def test_split_report_splits_between_lines_and_reopens_code_blocks() -> None:
    lines = ["*Sales*", "```", *(f"row {i:02}" for i in range(10)), "```", "done"]
    sections = split_report("\n".join(lines), section_limit=40)
    assert all(len(section) <= 40 for section in sections)
    assert all(section.count("```") % 2 == 0 for section in sections)
    rows = [line for section in sections for line in section.split("\n") if line.startswith("row")]
    assert rows == [f"row {i:02}" for i in range(10)]
    assert sections[0].startswith("*Sales*\n```\nrow 00")
    assert sections[1].startswith("```\nrow")
    assert sections[-1].endswith("```\ndone")


def test_split_report_cuts_with_a_note_past_the_last_section() -> None:
    text = "\n".join(f"line {i:03}" for i in range(500))
    sections = split_report(text, section_limit=100, max_sections=3)
    assert len(sections) == 3
    assert re.search(r"\(cut: \d+ more lines\)$", sections[-1])
    kept = sum(section.count("line ") for section in sections)
    cut = int(re.findall(r"\d+", sections[-1].split("\n")[-1])[0])
    assert kept + cut == 500


def test_split_report_keeps_a_short_report_whole() -> None:
    assert split_report("one\ntwo") == ["one\ntwo"]


@settings(max_examples=200, deadline=None)
@given(
    text=_report,
    section_limit=st.integers(min_value=30, max_value=500),
    max_sections=st.integers(min_value=1, max_value=8),
    total=st.integers(min_value=30, max_value=3000),
)
def test_split_report_stays_within_every_limit(
    text: str, section_limit: int, max_sections: int, total: int
) -> None:
    sections = split_report(text, section_limit, max_sections, total)
    assert len(sections) <= max_sections
    assert all(len(section) <= section_limit for section in sections)
    assert sum(map(len, sections)) <= total


# -- the issue's example templates, in the real sandbox --------------------------------


def _report_environment(tz: tzinfo) -> GuardedEnvironment:
    environment = GuardedEnvironment()
    environment.filters.update(
        number=number,
        money=money,
        percent=percent,
        change=change,
        date=partial(date_text, tz=tz),
        table=partial(table, measure=escaped_len),
    )
    return environment


def test_the_sales_template_from_the_issue() -> None:
    source = (
        "*Sales {{ json.date|date('%A') }}:* {{ json.total|money('EUR') }} from "
        "{{ json.orders|number }} orders ({{ json.total|change(previous.total) }})"
    )
    template = _report_environment(NEW_YORK).from_string(source)
    today = {"date": "2024-05-01T02:00:00Z", "total": "13440.5", "orders": 1234}
    assert template.render(json=today, previous={"total": 12000}) == (
        "*Sales Tuesday:* €13,440.50 from 1,234 orders (+12%)"
    )
    # the first run has no previous report; a field can go missing
    assert template.render(json={"total": 5}, previous={}) == "*Sales —:* €5.00 from — orders (new)"


def test_a_table_over_csv_rows_with_jinjas_own_filters() -> None:
    data = "region,total\nNorth,1200.5\nSouth,300\n<East & West>,99\n"
    rows = list(csv.DictReader(io.StringIO(data)))
    source = (
        "{{ rows|sort(attribute='region')|list|table(['region', 'total']) }}\n"
        "Total: {{ rows|map(attribute='total')|map('float')|sum|money('USD') }}"
    )
    text = _report_environment(UTC).from_string(source).render(rows=rows)
    assert text == (
        "```\n"
        "region          total\n"
        "-------------  ------\n"
        "&lt;East &amp; West&gt;      99\n"
        "North          1200.5\n"
        "South             300\n"
        "```\n"
        "Total: $1,599.50"
    )
