"""Block Kit builders: escaping, cutting, and every Slack size limit."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.slack import blocks as bk


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("a & b", "a &amp; b"),
        ("<!channel> ping", "&lt;!channel&gt; ping"),
        ("x > y < z", "x &gt; y &lt; z"),
        ("&amp;", "&amp;amp;"),
    ],
)
def test_escape_mrkdwn(raw: str, escaped: str) -> None:
    assert bk.escape_mrkdwn(raw) == escaped


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("hello", 10, "hello"),
        ("hello", 5, "hello"),
        ("hello world", 5, "hell…"),
        ("hello world", 1, "…"),
        ("hello world", 0, ""),
        # a cut through "&amp;" drops the half entity instead of showing "&a" literally
        ("a &amp; b", 5, "a …"),
        ("a &lt;b", 6, "a …"),
        ("ab &gt; c", 9, "ab &gt; c"),
    ],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    assert bk.truncate(text, limit) == expected


@given(st.text(), st.integers(min_value=0, max_value=300))
def test_truncate_never_exceeds_limit_and_keeps_a_prefix(text: str, limit: int) -> None:
    cut = bk.truncate(text, limit)
    assert len(cut) <= limit
    if cut != text and cut:
        assert cut.endswith("…")
        assert text.startswith(cut[:-1])


@pytest.mark.parametrize(
    ("url", "label", "expected"),
    [
        ("https://x.io/a?b=1&c=2", "A & B", "<https://x.io/a?b=1&amp;c=2|A &amp; B>"),
        ("", "no link", "no link"),
        ("https://x.io/", "", "<https://x.io/|https://x.io/>"),
        ("https://x.io/a|b", "pipe", "<https://x.io/a%7Cb|pipe>"),
        ("https://x.io/a b", "space", "<https://x.io/a%20b|space>"),
        ("https://x.io/", "a|b", "<https://x.io/|a¦b>"),
        # not web links: would notify the channel / a user if turned into <...>
        ("!channel", "everyone", "everyone"),
        ("@U123", "<someone>", "&lt;someone&gt;"),
        ("javascript:alert(1)", "x", "x"),
    ],
)
def test_link(url: str, label: str, expected: str) -> None:
    assert bk.link(url, label) == expected


def test_link_with_a_huge_url_shows_only_the_label() -> None:
    assert bk.link("https://x.io/" + "a" * 5000, "label") == "label"


def test_header_is_plain_text_cut_to_150() -> None:
    block = bk.header("T" * 10_000)
    assert block["type"] == "header"
    assert block["text"]["type"] == "plain_text"
    assert len(block["text"]["text"]) == 150
    assert block["text"]["text"].endswith("…")


@pytest.mark.parametrize("builder", [bk.header, bk.section])
def test_empty_text_stays_valid(builder: Any) -> None:
    assert builder("")["text"]["text"] == bk.EMPTY_TEXT


def test_section_cut_to_3000() -> None:
    block = bk.section("s" * 3001)
    assert block == {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 2999 + "…"}}


def test_fields_at_most_ten_each_at_most_2000() -> None:
    block = bk.fields([f"{n}" * 2500 for n in range(12)])
    assert len(block["fields"]) == 10
    assert [len(f["text"]) for f in block["fields"]] == [2000] * 10
    assert block["fields"][3]["text"].startswith("333")


def test_empty_fields_and_context_stay_valid() -> None:
    assert bk.fields([])["fields"] == [{"type": "mrkdwn", "text": bk.EMPTY_TEXT}]
    assert bk.context([])["elements"] == [{"type": "mrkdwn", "text": bk.EMPTY_TEXT}]


def test_context_at_most_ten_elements() -> None:
    block = bk.context([str(n) for n in range(15)])
    assert [e["text"] for e in block["elements"]] == [str(n) for n in range(10)]


def test_divider() -> None:
    assert bk.divider() == {"type": "divider"}


def test_join_within_keeps_whole_lines_and_counts_the_rest() -> None:
    lines = [f"<https://x.io/{n}|commit {n}>" for n in range(500)]
    joined = bk.join_within(lines, 300, noun="commits")
    kept = joined.split("\n")
    assert len(joined) <= 300
    assert kept[:-1] == lines[: len(kept) - 1]
    assert kept[-1] == f"… and {500 - (len(kept) - 1)} more commits"


def test_join_within_everything_fits() -> None:
    assert bk.join_within(["a", "b", "c"], 10) == "a\nb\nc"


def test_join_within_cuts_a_first_line_too_long_on_its_own() -> None:
    joined = bk.join_within(["x" * 500, "second"], 100, noun="lines")
    assert joined == "x" * 80 + "…\n… and 1 more lines"
    assert len(joined) <= 100


@given(st.lists(st.text(max_size=80), max_size=60), st.integers(min_value=30, max_value=600))
def test_join_within_never_exceeds_limit(lines: list[str], limit: int) -> None:
    assert len(bk.join_within(lines, limit, noun="things")) <= limit


def test_fit_message_drops_blocks_beyond_49_and_says_how_many() -> None:
    blocks = [bk.section(f"block {n}") for n in range(60)]
    _, fitted = bk.fit_message("t", blocks)
    assert len(fitted) == 50
    assert fitted[:49] == blocks[:49]
    assert fitted[49] == bk.context(["… 11 more not shown"])


def test_fit_message_keeps_exactly_fifty_blocks() -> None:
    blocks = [bk.divider()] * 50
    assert bk.fit_message("t", blocks)[1] == blocks


def test_fit_message_cuts_text_to_3000() -> None:
    text, _ = bk.fit_message("x" * 40_000, [])
    assert len(text) == 3000
    assert text.endswith("…")


def test_fit_message_reclips_hand_built_blocks() -> None:
    long = "y" * 5000
    blocks: list[bk.Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": long}},
        {"type": "section", "text": {"type": "mrkdwn", "text": long}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": long}] * 12},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": long}] * 12},
        {"type": "image", "image_url": "https://x.io/i.png", "alt_text": "i"},
    ]
    _, fitted = bk.fit_message("t", blocks)
    assert len(fitted[0]["text"]["text"]) == 150
    assert len(fitted[1]["text"]["text"]) == 3000
    assert [len(f["text"]) for f in fitted[2]["fields"]] == [2000] * 10
    assert [len(e["text"]) for e in fitted[3]["elements"]] == [3000] * 10
    assert fitted[4] == blocks[4]


@pytest.mark.parametrize(
    ("channel", "shown"),
    [("C0123ABC", "<#C0123ABC>"), ("#ops", "#ops"), ("#a<b", "#a&lt;b")],
)
def test_channel_mention_links_ids_and_names_typed_by_hand(channel: str, shown: str) -> None:
    assert bk.channel_mention(channel) == shown


def test_plural() -> None:
    assert (bk.plural(1, "run"), bk.plural(0, "run"), bk.plural(3, "run")) == (
        "1 run",
        "0 runs",
        "3 runs",
    )
