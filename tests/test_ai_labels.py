"""Parsing the ``categorise=`` labels text into typed labels, with clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.ai.labels import (
    MAX_LABELS,
    Label,
    LabelError,
    find_label,
    format_labels,
    parse_labels,
)

ISSUE_EXAMPLE = (
    "sales: questions about buying or prices; support: problems with the product; "
    "billing: invoices and payments; spam"
)


def test_the_issue_example_parses_into_four_labels_in_order() -> None:
    assert parse_labels(ISSUE_EXAMPLE) == (
        Label("sales", "questions about buying or prices"),
        Label("support", "problems with the product"),
        Label("billing", "invoices and payments"),
        Label("spam", ""),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a; b", (Label("a"), Label("b"))),
        ("  new   lead :  someone  new ;b;", (Label("new lead", "someone new"), Label("b"))),
        ("x: time: 10:00; y", (Label("x", "time: 10:00"), Label("y"))),
        ("bug-report: x; feature_request", (Label("bug-report", "x"), Label("feature_request"))),
        ("Ärger: Beschwerden; v1.2", (Label("Ärger", "Beschwerden"), Label("v1.2"))),
    ],
)
def test_names_descriptions_and_spacing(text: str, expected: tuple[Label, ...]) -> None:
    assert parse_labels(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "0 label"),
        (" ; ; ", "0 label"),
        ("sales: only one", "1 label"),
        ("sales; : no name", "label 2 has no name"),
        ("sales, support, billing; spam", "letters, digits"),
        ("-sales; spam", "starts and ends"),
        ("sales; Sales", "given twice"),
        ("a; " + "b" * 41, "over 40 characters"),
        ("a; b: " + "d" * 201, "at most 200"),
        ("; ".join(f"l{i}" for i in range(MAX_LABELS + 1)), f"at most {MAX_LABELS}"),
    ],
)
def test_mistakes_are_named(text: str, message: str) -> None:
    with pytest.raises(LabelError, match=message):
        parse_labels(text)


def test_a_label_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_labels("one")


def test_format_reads_back_to_the_same_labels() -> None:
    labels = parse_labels(ISSUE_EXAMPLE)
    assert format_labels(labels) == ISSUE_EXAMPLE
    assert parse_labels(format_labels(labels)) == labels


# Plain alphabets rather than from_regex: cheap to generate on a busy machine.
letters = st.sampled_from("abcxyz")
names = st.builds("".join, st.tuples(letters, st.text("ab1_-", max_size=8), letters))
descriptions = st.text("ab ,.:", max_size=30)


@settings(deadline=None)
@given(st.lists(st.tuples(names, descriptions), min_size=2, max_size=8, unique_by=lambda p: p[0]))
def test_format_and_parse_round_trip(pairs: list[tuple[str, str]]) -> None:
    labels = tuple(Label(name, " ".join(description.split())) for name, description in pairs)
    assert parse_labels(format_labels(labels)) == labels


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("billing", "billing"), ("BILLING", "billing"), (" Billing ", "billing"), ("bill", None)],
)
def test_find_label_matches_exactly_or_ignoring_case(answer: str, expected: str | None) -> None:
    found = find_label(answer, parse_labels(ISSUE_EXAMPLE))
    assert (found.name if found else None) == expected


def test_find_label_prefers_an_exact_match() -> None:
    # Built by hand: the parser would refuse names that differ only in case.
    labels = (Label("URGENT"), Label("urgent"))
    assert find_label("urgent", labels) == Label("urgent")
