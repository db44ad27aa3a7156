"""The host rule on a request: refused before sending, dropped on a cross-origin redirect."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.credentials.hosts import parse_host_patterns
from bot.credentials.refs import parse_options
from bot.credentials.send import (
    SecretNotAllowed,
    StoredSecret,
    headers_after_redirect,
    headers_for,
    refused_secrets,
)

SECRETS = {
    "crm-token": StoredSecret("tok_live_12345678", parse_host_patterns("api.crm.example.com")),
    "crm-key": StoredSecret("key_abcdefgh", parse_host_patterns("*.crm.example.com")),
}


def _lookup(name: str) -> StoredSecret:
    return SECRETS[name]


REFS = parse_options([("auth", "bearer:crm-token"), ("header.X-Api-Key", "secret:crm-key")])


def test_all_bound_builds_the_headers() -> None:
    headers = headers_for(REFS, "https://api.crm.example.com/v1/leads", _lookup)
    assert headers == {"Authorization": "Bearer tok_live_12345678", "X-Api-Key": "key_abcdefgh"}


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://api.crm.example.com/v1", ()),
        ("https://www.crm.example.com/v1", ("crm-token",)),
        ("https://other.example.com/v1", ("crm-key", "crm-token")),
        ("https://api.crm.example.com.evil.com/", ("crm-key", "crm-token")),
        ("https://evil.com#.api.crm.example.com/", ("crm-key", "crm-token")),
        ("http://api.crm.example.com/", ("crm-key", "crm-token")),  # clear text
        ("https://api.crm.example.com:8443/", ("crm-key", "crm-token")),
        ("not a url", ("crm-key", "crm-token")),
    ],
)
def test_refused_secrets(url: str, refused: tuple[str, ...]) -> None:
    assert refused_secrets(REFS, url, _lookup) == refused


def test_an_unbound_target_is_refused_naming_secret_and_host_not_value() -> None:
    with pytest.raises(SecretNotAllowed) as caught:
        headers_for(REFS, "https://evil.example.net/steal", _lookup)
    message = str(caught.value)
    assert caught.value.secrets == ("crm-key", "crm-token")
    assert caught.value.target == "evil.example.net:443"
    assert "evil.example.net:443" in message and "crm-token" in message
    assert "tok_live" not in message and "key_abc" not in message


def test_literal_headers_need_no_binding() -> None:
    refs = parse_options([("header.X-Trace", "chatops")])
    assert headers_for(refs, "https://anywhere.example.org/", _lookup) == {"X-Trace": "chatops"}


@pytest.mark.parametrize(
    ("to_url", "kept"),
    [
        ("https://api.crm.example.com/next", {"Authorization", "X-Api-Key", "X-Trace"}),
        ("https://api.crm.example.com:443/next", {"Authorization", "X-Api-Key", "X-Trace"}),
        ("https://www.crm.example.com/next", {"X-Trace"}),  # bound too, but another origin
        ("http://api.crm.example.com/next", {"X-Trace"}),
        ("https://api.crm.example.com:8443/", {"X-Trace"}),
    ],
)
def test_headers_after_redirect(to_url: str, kept: set[str]) -> None:
    refs = parse_options([*(ref.as_option() for ref in REFS), ("header.X-Trace", "t")])
    headers = headers_for(refs, "https://api.crm.example.com/v1", _lookup)
    after = headers_after_redirect(headers, refs, "https://api.crm.example.com/v1", to_url)
    assert set(after) == kept


# A real server on loopback: what arrives at the redirect target.


@pytest.fixture
async def two_origins() -> AsyncIterator[tuple[str, str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(text="ok")

    runners = []
    urls = []
    for _ in range(2):
        app = web.Application()
        app.router.add_get("/", record)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}/")
    try:
        yield urls[0], urls[1], seen
    finally:
        for runner in runners:
            await runner.cleanup()


async def test_a_cross_origin_redirect_target_receives_no_secret(
    two_origins: tuple[str, str, list[dict[str, str]]],
) -> None:
    first, second, seen = two_origins
    port = int(first.rsplit(":", 1)[1].strip("/"))
    secrets = {"local": StoredSecret("loc_abcdefgh", parse_host_patterns(f"127.0.0.1:{port}"))}
    refs = parse_options([("auth", "bearer:local"), ("header.X-Trace", "t")])
    headers = headers_for(refs, first, secrets.__getitem__)
    async with aiohttp.ClientSession() as session:
        async with session.get(first, headers=headers) as response:
            assert response.status == 200
        # The server on the other port stands for the redirect's Location.
        onward = headers_after_redirect(headers, refs, first, second)
        async with session.get(second, headers=onward) as response:
            assert response.status == 200
    assert seen[0]["Authorization"] == "Bearer loc_abcdefgh"
    assert "Authorization" not in seen[1]
    assert seen[1]["X-Trace"] == "t"
    with pytest.raises(SecretNotAllowed):
        headers_for(refs, second, secrets.__getitem__)
