"""Slack-escaped slash-command text: tokens, links, channels, users, key=value options."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, quote_plus

import pytest

from bot.slack.text import (
    ChannelRef,
    CommandSyntaxError,
    Token,
    link_target,
    parse_channel,
    parse_key_values,
    parse_url,
    parse_user,
    scan,
    split_key_value,
    tokenize,
    unescape,
)

SLACK_FIXTURES = Path(__file__).parent / "fixtures" / "slack"


def _form_text(body: str) -> str:
    """The ``text`` field of a form-encoded slash-command body, decoded as Slack's SDKs do."""
    return parse_qs(body, keep_blank_values=True)["text"][0]


def _enterprise_body_with_text(text: str) -> str:
    """The real enterprise slash-command body, with its (empty) text replaced by ``text``."""
    body = (SLACK_FIXTURES / "slash_command.enterprise.txt").read_text().strip()
    assert "&text=&" in body
    return body.replace("&text=&", f"&text={quote_plus(text)}&")


def test_real_bodies_decode_to_the_expected_tokens() -> None:
    enterprise = (SLACK_FIXTURES / "slash_command.enterprise.txt").read_text().strip()
    docs_example = (SLACK_FIXTURES / "slash_command.txt").read_text().strip()
    signed = (SLACK_FIXTURES / "slash_command.signed_example.txt").read_text().strip()

    assert tokenize(_form_text(enterprise)) == []
    assert tokenize(_form_text(signed)) == []
    assert tokenize(_form_text(docs_example)) == ["94070"]


def test_escaped_text_survives_form_encoding_of_a_real_body() -> None:
    escaped = (
        "add site every 5m http <https://x.example/a?b=1&amp;c=2|x.example/a> "
        "when latency &gt; 500ms <#C123ABC|ops> retries=3"
    )
    body = _enterprise_body_with_text(escaped)
    assert "%3Chttps%3A%2F%2Fx.example" in body  # percent-encoded like real bodies

    assert tokenize(_form_text(body)) == [
        "add",
        "site",
        "every",
        "5m",
        "http",
        "<https://x.example/a?b=1&c=2|x.example/a>",
        "when",
        "latency",
        ">",
        "500ms",
        "<#C123ABC|ops>",
        "retries=3",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("   ", []),
        ("one two  three", ["one", "two", "three"]),
        ("\tone\ntwo ", ["one", "two"]),
        ('message "Standup in 5 minutes" #team', ["message", "Standup in 5 minutes", "#team"]),
        ("message “Standup in 5 minutes” #team", ["message", "Standup in 5 minutes", "#team"]),
        ('"mixed quotes”', ["mixed quotes"]),
        ('""', [""]),
        ('say="hello there" x', ["say=hello there", "x"]),
        ("<https://x.example/feed>", ["<https://x.example/feed>"]),
        ("<https://x.example|x.example> rss", ["<https://x.example|x.example>", "rss"]),
        (
            "<https://x.example|a label with spaces> rss",
            ["<https://x.example|a label with spaces>", "rss"],
        ),
        ("<#C123ABC|ops> <#C123ABC> <#C123ABC|>", ["<#C123ABC|ops>", "<#C123ABC>", "<#C123ABC|>"]),
        ("<@U123> <@W111|primary-owner>", ["<@U123>", "<@W111|primary-owner>"]),
        ("<!here> ping", ["<!here>", "ping"]),
        ("latency &gt; 500ms", ["latency", ">", "500ms"]),
        ("a &lt; b &amp;&amp; c", ["a", "<", "b", "&&", "c"]),
        ("&amp;lt;", ["&lt;"]),  # a typed "&lt;" arrives as "&amp;lt;" and stays literal
        ('"quoted &gt; text"', ["quoted > text"]),
        ('"keeps <@U123> inside"', ["keeps <@U123> inside"]),
        ("<unclosed text", ["<unclosed", "text"]),
        ("don't stop", ["don't", "stop"]),
    ],
)
def test_tokenize(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_scan_reports_raw_offsets_and_quoting() -> None:
    raw = 'when a &gt; 1 "x y"'
    assert scan(raw) == [
        Token("when", 0, 4, False),
        Token("a", 5, 6, False),
        Token(">", 7, 11, False),
        Token("1", 12, 13, False),
        Token("x y", 14, 19, True),
    ]


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ('message "never closed', '"never closed'),
        ("message “never closed", "“never closed"),
        ('a "b &gt; c', '"b > c'),
    ],
)
def test_unterminated_quote_names_the_fragment(text: str, part: str) -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        tokenize(text)
    assert caught.value.part == part
    assert isinstance(caught.value, ValueError)
    assert part in str(caught.value)


def test_unescape_decodes_only_slacks_three_entities() -> None:
    assert unescape("&lt;b&gt; &amp; &quot; &#39;") == "<b> & &quot; &#39;"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("<https://a.b/c|a.b/c>", "https://a.b/c"),
        ("<https://a.b/c>", "https://a.b/c"),
        ("<http://a.b:8080/x?y=1&z=2>", "http://a.b:8080/x?y=1&z=2"),
        ("https://a.b/c", "https://a.b/c"),
        ("HTTPS://A.B/C", "HTTPS://A.B/C"),
        ("http://localhost:8000/health", "http://localhost:8000/health"),
        ("a.b/c", None),
        ("https://", None),
        ("<mailto:a@b.example|a@b.example>", None),
        ("file:///etc/passwd", None),
        ("<file:///etc/passwd>", None),
        ("ftp://a.b/c", None),
        ("<#C123|ops>", None),
        ("<@U123>", None),
        ("", None),
    ],
)
def test_parse_url(token: str, expected: str | None) -> None:
    assert parse_url(token) == expected


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("<mailto:a@b.example|a@b.example>", "mailto:a@b.example"),
        ("file:///etc/passwd", "file:///etc/passwd"),
        ("<https://a.b|a.b>", "https://a.b"),
        ("note:x", None),
        ("<#C123|ops>", None),
        ("words", None),
    ],
)
def test_link_target(token: str, expected: str | None) -> None:
    assert link_target(token) == expected


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("<#C123ABC|ops>", ChannelRef(id="C123ABC", name="ops")),
        ("<#C123ABC>", ChannelRef(id="C123ABC", name=None)),
        ("<#C123ABC|>", ChannelRef(id="C123ABC", name=None)),
        ("<#G8PSS9T3V|foobar>", ChannelRef(id="G8PSS9T3V", name="foobar")),
        ("#ops", ChannelRef(id=None, name="ops")),
        ("#Ops-Alerts_2", ChannelRef(id=None, name="ops-alerts_2")),
        ("#", None),
        ("ops", None),
        ("<@U123>", None),
        ("<https://a.b>", None),
        ("#a#b", None),
    ],
)
def test_parse_channel(token: str, expected: ChannelRef | None) -> None:
    assert parse_channel(token) == expected


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("<@U123>", "U123"),
        ("<@U2147483697|Steve>", "U2147483697"),
        ("<@W111>", "W111"),
        ("@steve", None),
        ("<#C123|ops>", None),
        ("<!here>", None),
    ],
)
def test_parse_user(token: str, expected: str | None) -> None:
    assert parse_user(token) == expected


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("retries=3", ("retries", "3")),
        ("Timeout=5s", ("timeout", "5s")),
        ("empty=", ("empty", "")),
        ("say=a=b", ("say", "a=b")),
        ("a==b", None),
        ("!=", None),
        ("=3", None),
        ("https://x/?a=b", None),
        ("<https://x/?a=b>", None),
        ("plain", None),
    ],
)
def test_split_key_value(token: str, expected: tuple[str, str] | None) -> None:
    assert split_key_value(token) == expected


def test_parse_key_values_splits_options_from_the_rest_in_order() -> None:
    options, rest = parse_key_values(["https://x", "retries=3", "#ops", "Repeat=30m", "when"])
    assert options == {"retries": "3", "repeat": "30m"}
    assert rest == ["https://x", "#ops", "when"]


def test_parse_key_values_refuses_a_repeated_key() -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        parse_key_values(["retries=3", "RETRIES=4"])
    assert caught.value.part == "RETRIES=4"
