"""The redactor: every wire form of every secret, in texts, JSON, headers and log lines."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import random
import string
from collections.abc import AsyncIterator
from urllib.parse import quote, quote_plus

import aiohttp
import pytest
from aiohttp import web

from bot.credentials.redact import (
    MASK,
    MIN_SECRET_LENGTH,
    RedactingFilter,
    Redactor,
    SecretValueError,
    check_secret_value,
    placeholder,
    wire_forms,
)
from bot.credentials.refs import ResolvedSecret, build_headers, parse_options
from bot.logs import JsonFormatter

TOKEN = "tok_9f8e7d6c5b4a"
KEY = 'k3y/with+odd=chars&"more" <x>'
UNICODE = "pässwörd-ünïcode"
PASSWORD = "hunter2-hunter2"


def _redactor() -> Redactor:
    return Redactor({"crm-token": TOKEN, "crm-key": KEY, "mail": PASSWORD}, {"mail": "ops-bot"})


def test_placeholder() -> None:
    assert placeholder("crm-token") == "••••(crm-token)"
    assert MASK == "••••"


@pytest.mark.parametrize(
    "form",
    [
        KEY,
        quote(KEY, safe=""),
        quote(KEY, safe="").lower(),
        quote(KEY),
        quote_plus(KEY, safe=""),
        json.dumps(KEY)[1:-1],
        json.dumps(KEY, ensure_ascii=False)[1:-1],
        json.dumps(KEY)[1:-1].replace("/", "\\/"),
        json.dumps(json.dumps(KEY)[1:-1])[1:-1],
        html.escape(KEY),
        html.escape(KEY, quote=False),
        base64.b64encode(KEY.encode()).decode(),
        base64.b64encode(KEY.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(KEY.encode()).decode(),
    ],
)
def test_every_wire_form_of_a_value_is_redacted(form: str) -> None:
    text = f"before {form} after"
    assert _redactor().redact(text) == "before ••••(crm-key) after"


@pytest.mark.parametrize(
    "form",
    [
        UNICODE,
        json.dumps(UNICODE)[1:-1],
        quote(UNICODE),
        quote(UNICODE).lower(),
        base64.b64encode(UNICODE.encode()).decode(),
    ],
)
def test_non_ascii_values_in_every_form(form: str) -> None:
    assert Redactor({"u": UNICODE}).redact(f"<{form}>") == "<••••(u)>"


@pytest.mark.parametrize(
    "form",
    [
        base64.b64encode(f"ops-bot:{PASSWORD}".encode()).decode(),
        base64.urlsafe_b64encode(f"ops-bot:{PASSWORD}".encode()).decode().rstrip("="),
        PASSWORD,
    ],
)
def test_basic_auth_forms_are_redacted(form: str) -> None:
    assert _redactor().redact(f"Authorization: Basic {form}") == "Authorization: Basic ••••(mail)"


def test_the_user_name_alone_is_not_secret() -> None:
    assert _redactor().redact("user ops-bot logged in") == "user ops-bot logged in"


def test_text_without_secrets_is_unchanged_and_empty_redactor_is_identity() -> None:
    text = "nothing to hide here " * 10
    assert _redactor().redact(text) == text
    assert Redactor({}).redact(TOKEN) == TOKEN


def test_every_occurrence_and_adjacent_ones() -> None:
    text = f"{TOKEN}{TOKEN} x {TOKEN}\n{TOKEN}"
    assert (
        _redactor().redact(text)
        == "••••(crm-token)••••(crm-token) x ••••(crm-token)\n••••(crm-token)"
    )


def test_overlapping_values_the_longer_wins() -> None:
    redactor = Redactor({"short": "abcdefgh", "long": "abcdefgh-ijkl"})
    assert redactor.redact("x abcdefgh-ijkl y abcdefgh z") == "x ••••(long) y ••••(short) z"


def test_overlapping_occurrences_of_two_secrets_are_hidden_whole() -> None:
    redactor = Redactor({"a": "abcdefgh12", "b": "gh12345678"})
    assert redactor.redact("<abcdefgh12345678>") == "<••••(a)>"
    assert redactor.redact("<abcdefgh12 gh12345678>") == "<••••(a) ••••(b)>"


def test_offsets_are_right_after_multibyte_text() -> None:
    redactor = Redactor({"t": TOKEN})
    assert redactor.redact(f"ü€😀 {TOKEN} ✓ {TOKEN}") == "ü€😀 ••••(t) ✓ ••••(t)"


def test_a_value_overlapping_itself_leaves_no_tail() -> None:
    redactor = Redactor({"p": "abcabcab"})
    assert redactor.redact("xabcabcabcabx") == "x••••(p)x"
    # Past the overlap budget the search goes on from each match's end: still no copy.
    periodic = "ab" * 50_000
    assert "abcabcab" not in Redactor({"p": "abcabcab"}).redact("abc" * 50_000)
    assert "abababab" not in Redactor({"p": "abababab"}).redact(periodic)


def test_lone_surrogates_survive() -> None:
    assert Redactor({"t": TOKEN}).redact(f"\ud800{TOKEN}\udfff") == "\ud800••••(t)\udfff"


def test_a_value_containing_another_secret_name_is_not_rescanned() -> None:
    redactor = Redactor({"a": "••••(b)-value", "b": "zzzzzzzz"})
    assert redactor.redact("••••(b)-value zzzzzzzz") == "••••(a) ••••(b)"


def test_regex_metacharacters_in_values_are_literal() -> None:
    redactor = Redactor({"re": "a.b*c+d?(e)[f]|g^$\\h"})
    assert redactor.redact("xa.b*c+d?(e)[f]|g^$\\hx") == "x••••(re)x"
    assert redactor.redact("aXbbbcdde") == "aXbbbcdde"


def test_empty_values_are_ignored_short_ones_still_redacted() -> None:
    redactor = Redactor({"empty": "", "short": "abc"})
    assert redactor.names == frozenset({"short"})
    assert redactor.redact("xabcx") == "x••••(short)x"


def test_repr_shows_no_value() -> None:
    assert TOKEN not in repr(_redactor())
    assert repr(_redactor()) == "Redactor(3 secrets)"


def test_wire_forms_are_distinct_and_never_empty() -> None:
    forms = wire_forms("plainvalue")
    assert "" not in forms
    assert "plainvalue" in forms
    assert base64.b64encode(b"u:plainvalue").decode().rstrip("=") in wire_forms("plainvalue", "u")


def test_redact_json_walks_nested_data_keys_and_numbers() -> None:
    redactor = Redactor({"t": TOKEN, "pin": "12345678"})
    data = {
        "headers": {"Authorization": f"Bearer {TOKEN}", TOKEN: "as a key"},
        "list": [1, True, None, 2.5, f"x{TOKEN}", 12345678, [TOKEN]],
    }
    assert redactor.redact_json(data) == {
        "headers": {"Authorization": "Bearer ••••(t)", "••••(t)": "as a key"},
        "list": [1, True, None, 2.5, "x••••(t)", "••••(pin)", ["••••(t)"]],
    }
    assert data["list"][4] == f"x{TOKEN}"  # the input is not changed


def test_redact_headers_from_a_mapping_or_pairs() -> None:
    redactor = _redactor()
    assert redactor.redact_headers({"X-Api-Key": KEY, "Accept": "*/*"}) == {
        "X-Api-Key": "••••(crm-key)",
        "Accept": "*/*",
    }
    pairs = [("Set-Cookie", f"a={TOKEN}"), ("Set-Cookie", "b=1")]
    assert redactor.redact_headers(pairs) == {"Set-Cookie": "a=••••(crm-token), b=1"}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("a" * (MIN_SECRET_LENGTH - 1), f"at least {MIN_SECRET_LENGTH}"),
        ("", f"at least {MIN_SECRET_LENGTH}"),
        ("a" * 9000, "at most"),
        ("abcdefgh\r\nX-Evil: 1", "control characters"),
        ("abcd\tefgh", "control characters"),
        ("abcdefgh\x00", "control characters"),
        (" abcdefgh", "space"),
        ("abcdefgh ", "space"),
    ],
)
def test_check_secret_value_refuses(value: str, fragment: str) -> None:
    with pytest.raises(SecretValueError) as caught:
        check_secret_value(value)
    assert fragment in str(caught.value)
    if value.strip():
        assert value.strip()[:8] not in str(caught.value)


@pytest.mark.parametrize("value", ["a" * MIN_SECRET_LENGTH, "pässwörd", TOKEN, "with inner space"])
def test_check_secret_value_accepts(value: str) -> None:
    check_secret_value(value)


# A realistic echo: an httpbin-style server on a loopback port returns the request.


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "args": dict(request.query),
            "headers": dict(request.headers),
            "url": str(request.url),
            "data": await request.text(),
        }
    )


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/anything", _echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/anything"
    finally:
        await runner.cleanup()


async def test_an_echo_of_the_request_shows_no_secret(echo_url: str) -> None:
    refs = parse_options([("auth", "basic:mail"), ("header.X-Api-Key", "secret:crm-key")])
    stored = {
        "mail": ResolvedSecret(PASSWORD, "ops-bot"),
        "crm-key": ResolvedSecret(KEY),
    }
    headers = build_headers(refs, stored.__getitem__)
    headers["X-Api-Key"] = quote(KEY, safe="")  # as a client would percent-encode it
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            echo_url,
            params={"token": TOKEN},
            headers=headers,
            data=json.dumps({"key": KEY, "token": TOKEN}),
        ) as response,
    ):
        body = await response.text()
    # The echo really carries the secrets, in several spellings.
    assert base64.b64encode(f"ops-bot:{PASSWORD}".encode()).decode() in body
    assert quote(KEY, safe="") in body
    assert json.dumps(json.dumps(KEY)[1:-1])[1:-1] in body  # the body, escaped twice
    redactor = _redactor()
    redacted = redactor.redact(body)
    for secret in (TOKEN, KEY, PASSWORD, "ops-bot:"):
        assert secret not in redacted
    assert "aHVudGVy" not in redacted  # no base64 of the password either
    echo = json.loads(redacted)
    assert echo["headers"]["Authorization"] == "Basic ••••(mail)"
    assert echo["headers"]["X-Api-Key"] == "••••(crm-key)"
    assert echo["args"]["token"] == "••••(crm-token)"
    assert echo["url"].endswith("/anything?token=••••(crm-token)")
    assert json.loads(echo["data"]) == {"key": "••••(crm-key)", "token": "••••(crm-token)"}
    # The same through the data walker (after JSON decoding, values are raw again).
    walked = redactor.redact_json(json.loads(body))
    assert walked == echo | {"data": redactor.redact(json.loads(body)["data"])}


# Scale: hundreds of secrets, a megabyte of text.


def _random_secret(rng: random.Random) -> str:
    return "".join(
        rng.choices(string.ascii_letters + string.digits + "-_/+=", k=rng.randint(16, 48))
    )


def test_hundreds_of_secrets_in_a_megabyte() -> None:
    rng = random.Random(7)
    values = {f"s{i}": _random_secret(rng) for i in range(500)}
    redactor = Redactor(values, {f"s{i}": f"user{i}" for i in range(0, 500, 5)})
    filler = "".join(rng.choices(string.ascii_lowercase + " \n", k=1 << 20))
    planted = [f"s{i}" for i in range(0, 500, 7)]
    chunks = [filler[i : i + 4000] for i in range(0, len(filler), 4000)]
    text = "".join(
        chunk + (f" {values[planted[n % len(planted)]]} " if n % 3 == 0 else "")
        for n, chunk in enumerate(chunks)
    )
    redacted = redactor.redact(text)
    for name in planted:
        assert values[name] not in redacted
    assert redacted.count("••••(") == len(range(0, len(chunks), 3))


# Log lines


def _logger_with(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_log_filter_redacts_message_arguments_extra_and_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(target)s"))
    handler.addFilter(RedactingFilter(_redactor))
    logger = _logger_with(handler, "test.redact.text")
    try:
        raise RuntimeError(f"server said: bad token {TOKEN}")
    except RuntimeError:
        logger.exception("call with %s failed", KEY, extra={"target": f"https://x/?t={TOKEN}"})
    output = stream.getvalue()
    assert TOKEN not in output and KEY not in output
    assert "call with ••••(crm-key) failed" in output
    assert "bad token ••••(crm-token)" in output
    assert "Traceback" in output
    assert "https://x/?t=••••(crm-token)" in output
    handler.close()


def test_log_filter_with_the_json_format() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(_redactor))
    logger = _logger_with(handler, "test.redact.json")
    try:
        raise ValueError(PASSWORD)
    except ValueError:
        logger.exception("failed", extra={"response": f'{{"key": "{KEY}"}}'})
    output = stream.getvalue()
    assert PASSWORD not in output and KEY not in output
    entry = json.loads(output)
    assert "ValueError: ••••(mail)" in entry["message"]
    assert entry["response"] == '{"key": "••••(crm-key)"}'
    handler.close()


def test_log_filter_follows_the_current_secrets_and_survives_bad_arguments() -> None:
    current = [Redactor({})]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(lambda: current[0]))
    logger = _logger_with(handler, "test.redact.current")
    logger.info("value %s", TOKEN)
    current[0] = _redactor()
    logger.info("value %s", TOKEN)
    logger.info("two %s %s", TOKEN)  # one argument short: must not raise, must redact
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"value {TOKEN}"
    assert lines[1] == "value ••••(crm-token)"
    assert TOKEN not in lines[2] and "••••(crm-token)" in lines[2]
    handler.close()
