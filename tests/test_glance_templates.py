"""``|sparkline`` and ``history(path, n)`` in the template language, and what a report
remembers for them between runs."""

from __future__ import annotations

from typing import Any

import pytest

from bot.expressions import (
    HISTORY_KEY,
    MAX_HISTORY,
    MAX_SORTED_ITEMS,
    RenderError,
    compile_template,
    history_paths,
    render_template,
)
from bot.triggers.reporting import ReportMemory, history_context, memory_of, with_history


def render(source: str, context: dict[str, Any] | None = None) -> str:
    return render_template(compile_template(source), context or {})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ [1, 2, 3, 4, 5, 6, 7, 8]|sparkline }}", "▁▂▃▄▅▆▇█"),
        ("{{ [1, 5, none, 8]|sparkline }}", "▁▅ █"),
        ("{{ ['1', '1,000', 'n/a']|sparkline }}", "▁█ "),  # text numbers; the rest gaps
        ("{{ [80, 82, 81]|sparkline(low=0) }}", "███"),
        ("{{ [0, 0, 10, 10]|sparkline(2) }}", "▁█"),  # averaged into 2 bars
        ("{{ [5, 10]|sparkline(high=20, low=0) }}", "▃▅"),  # a quarter and half of 20
        ("{{ rows|map(attribute='n')|list|sparkline }}", "▁█"),
        ("{{ []|sparkline }}", ""),
    ],
)
def test_sparkline_filter(source: str, expected: str) -> None:
    assert render(source, {"rows": [{"n": 1}, {"n": 2}]}) == expected


def test_sparkline_of_many_values_fits_in_100_bars() -> None:
    assert len(render("{{ range(1000)|list|sparkline }}")) == 100


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("{{ [1, 2]|sparkline(0) }}", "width is a whole number from 1 to 100"),
        ("{{ [1, 2]|sparkline(500) }}", "width is a whole number from 1 to 100"),
        ("{{ [1, 2]|sparkline(low='zero') }}", "low and high are numbers"),
        (f"{{{{ range({MAX_SORTED_ITEMS + 1})|list|sparkline }}}}", "at most"),
    ],
)
def test_bad_sparkline_arguments_are_named(source: str, named: str) -> None:
    with pytest.raises(RenderError, match=named):
        render(source)


def test_history_gives_the_last_values_of_a_path() -> None:
    context = {HISTORY_KEY: {"json.total": [10, None, 30, 40]}}
    assert render("{{ history('json.total', 3)|join(',') }}", context) == "None,30,40"
    assert (
        render("{{ history('json.total')|sparkline }}", context) == "▁ ▆█"
    )  # 30 is 2/3 of the way from 10 to 40


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("{{ history('json.total', 3) }}", "works in a report's template"),  # not a report
        ("{% set p = 'json.total' %}{{ history(p, 3) }}", "works in a report's template"),
        ("{{ history('json.total', 0) }}", f"from 1 to {MAX_HISTORY} runs"),
        ("{{ history('json.total', 500) }}", f"from 1 to {MAX_HISTORY} runs"),
    ],
)
def test_history_misuse_names_the_fix(source: str, named: str) -> None:
    with pytest.raises(RenderError, match=named) as raised:
        render(source)
    assert "history('json.total', 14)|sparkline" in str(raised.value)


def test_history_paths_are_the_quoted_ones_each_once() -> None:
    source = (
        "{{ history('json.total', 14)|sparkline }} {{ history('json.orders') }} "
        "{{ history('json.total', 3)|join }} {{ history(name) }} {{ other('json.x') }}"
    )
    assert history_paths(source) == ("json.total", "json.orders")
    assert history_paths("{{ unclosed") == ()


TEMPLATE = "{{ history('json.total', 14)|sparkline }}"


def test_a_report_remembers_one_value_per_run_and_at_most_100() -> None:
    memory = ReportMemory("json https://example.com")
    for total in range(105):
        memory = with_history(memory, TEMPLATE, {"json": {"total": total}})
    assert memory.history["json.total"] == list(range(5, 105))
    stored = memory_of(memory.to_dict(), memory.source)
    assert stored.history == {"json.total": list(range(5, 105))}
    assert history_context(stored) == {HISTORY_KEY: {"json.total": list(range(5, 105))}}


def test_what_a_report_keeps_for_a_chart() -> None:
    memory = ReportMemory("json https://example.com", previous={"total": 7})
    source = TEMPLATE + "{{ history('json.name') }}{{ history('json.items') }}"
    data = {"total": 8, "name": "x" * 500, "items": [1, 2]}
    charted = with_history(memory, source, {"json": data})
    # A path charted for the first time starts from the previous run's data.
    assert charted.history == {
        "json.total": [7, 8],
        "json.name": [None, None],  # long text is not kept
        "json.items": [None, None],  # nor lists and objects
    }
    # A path the template no longer charts is forgotten.
    assert with_history(charted, TEMPLATE, {"json": data}).history == {"json.total": [7, 8, 8]}
