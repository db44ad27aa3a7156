"""`bot.webhooks.delivery.parse_body` and `bot.jsoncodec.dumps`: the fast JSON library
where it can, the standard one where it cannot, with the same values and messages."""

from __future__ import annotations

import json
import math

import pytest

from bot.jsoncodec import dumps
from bot.webhooks.delivery import BadRequest, parse_body


@pytest.mark.parametrize(
    "body",
    [
        b'{"ref": "refs/heads/main", "size": 3, "ok": true, "none": null}',
        b'{"big": 123456789012345678901234567890}',  # beyond 64 bits: orjson refuses
        b'{"text": "caf\\u00e9 \\ud83d\\ude00"}',
        b"[1, 2.5, -0.0]",
    ],
)
def test_json_bodies_parse_as_the_standard_library_reads_them(body: bytes) -> None:
    assert parse_body("application/json; charset=utf-8", body) == json.loads(body)


def test_nan_is_read_as_before() -> None:
    assert math.isnan(parse_body("application/json", b'{"x": NaN}')["x"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": 1,}', "malformed JSON: Expecting property name enclosed in double quotes"),
        (b"\xff\xfe{}", "the body is not valid UTF-8"),
        (b"[" * 100_000, "malformed JSON: nested too deeply"),
    ],
)
def test_bad_bodies_are_refused_with_the_same_reasons(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message.replace("(", r"\(")):
        parse_body("application/json", body)


@pytest.mark.parametrize(
    "value",
    [
        {"headers": {"content-type": "application/json"}, "n": 1.5, "list": [1, None, True]},
        {1: "int keys become strings, as json.dumps writes them"},
        {"big": 2**70},
    ],
)
def test_dumps_writes_what_json_dumps_would_mean(value: object) -> None:
    assert json.loads(dumps(value)) == json.loads(json.dumps(value))


def test_long_digit_strings_are_not_numbers() -> None:
    body = (
        b'{"before": "0000000000000000000000000000000000000000", "n": [1, 123456789012345678901]}'
    )
    assert parse_body("application/json", body) == json.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        b"123456789012345678901",
        b'{"n": -123456789012345678901}',
        b'{"n":\n  123456789012345678901}',
        b"[0, 123456789012345678901]",
        b'{"text": "version 123456789012345678901", "n": 1}',
    ],
)
def test_long_numbers_anywhere_parse_exactly(body: bytes) -> None:
    assert parse_body("application/json", body) == json.loads(body)
