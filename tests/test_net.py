"""SafeFetcher and AddressPolicy against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import ssl
import sysconfig
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from bot.net import (
    USER_AGENT,
    AddressPolicy,
    FetchBlocked,
    FetchError,
    SafeFetcher,
    cert_not_after,
    check_url,
)

LOCAL = AddressPolicy.from_allowlist(["127.0.0.1"])
STRICT = AddressPolicy()
BIG = 5 * (1 << 20)

# CPython's own test certificates: keycert3.pem (CN=localhost) is signed by pycacert.pem.
CERTDATA = Path(sysconfig.get_paths()["stdlib"]) / "test" / "certdata"
needs_certdata = pytest.mark.skipif(
    not (CERTDATA / "keycert3.pem").exists(), reason="CPython test certificates not installed"
)


# --- the address policy -------------------------------------------------------------

POLICY_TABLE = [
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("127.255.255.254", "is a loopback address"),
    ("10.0.0.5", "10.0.0.5 is a private address"),
    ("172.16.0.1", "is a private address"),
    ("172.31.255.255", "is a private address"),
    ("192.168.1.1", "is a private address"),
    ("169.254.169.254", "169.254.169.254 is a link-local address (cloud metadata)"),
    ("169.254.170.2", "link-local address (cloud metadata)"),
    ("169.254.1.1", "169.254.1.1 is a link-local address"),
    ("100.64.0.1", "is a shared address (100.64.0.0/10, carrier-grade NAT)"),
    ("100.127.255.254", "is a shared address"),
    ("100.100.100.200", "(cloud metadata)"),
    ("0.0.0.0", "0.0.0.0 is an unspecified address"),
    ("0.1.2.3", "is a special-purpose address"),
    ("224.0.0.1", "is a multicast address"),
    ("239.255.255.250", "is a multicast address"),
    ("240.0.0.1", "is a reserved address"),
    ("255.255.255.255", "is a reserved address"),
    ("192.0.0.8", "is a special-purpose address"),
    ("192.0.2.1", "is a special-purpose address"),
    ("198.18.0.1", "is a special-purpose address"),
    ("::1", "::1 is a loopback address"),
    ("::", ":: is an unspecified address"),
    ("fe80::1", "fe80::1 is a link-local address"),
    ("fe80::1%eth0", "is a link-local address"),
    ("fc00::1", "fc00::1 is a private address"),
    ("fd12:3456::1", "is a private address"),
    ("fd00:ec2::254", "private address (cloud metadata)"),
    ("fec0::1", "fec0::1 is a site-local address"),
    ("ff02::1", "is a multicast address"),
    ("2001:db8::1", "is a special-purpose address"),
    ("::ffff:127.0.0.1", "maps to 127.0.0.1, a loopback address"),
    ("::ffff:10.1.2.3", "maps to 10.1.2.3, a private address"),
    ("::ffff:169.254.169.254", "maps to 169.254.169.254, a link-local address (cloud metadata)"),
    ("64:ff9b::a00:1", "maps to 10.0.0.1, a private address"),
    ("2002:7f00:1::", "embeds 127.0.0.1, a loopback address"),
    ("2002:a9fe:a9fe::1", "embeds 169.254.169.254"),
    ("::7f00:1", "embeds 127.0.0.1, a loopback address"),
    # Teredo: the client address is stored inverted in the last 32 bits.
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "embeds 127.0.0.1, a loopback address"),
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "is a special-purpose address"),
    ("8.8.8.8", None),
    ("1.1.1.1", None),
    ("93.184.215.14", None),
    ("2606:4700:4700::1111", None),
    ("2001:4860:4860::8888", None),
    ("::ffff:8.8.8.8", None),
    ("64:ff9b::808:808", None),  # NAT64 to a public address
    ("2002:808:808::1", None),  # 6to4 of a public address
]


@pytest.mark.parametrize(("address", "expected"), POLICY_TABLE)
def test_policy_judges_each_address(address: str, expected: str | None) -> None:
    reason = STRICT.check_ip(address)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason


@pytest.mark.parametrize(
    ("entries", "address", "allowed"),
    [
        (["127.0.0.1"], "127.0.0.1", True),
        (["127.0.0.1"], "127.0.0.2", False),
        (["127.0.0.1"], "::ffff:127.0.0.1", True),
        (["10.0.0.0/8"], "10.200.3.4", True),
        (["10.0.0.0/8"], "11.0.0.1", True),  # public anyway
        (["10.0.0.0/8"], "192.168.0.1", False),
        (["::1"], "::1", True),
        (["::1"], "127.0.0.1", False),
        (["fd00::/8"], "fd00:ec2::254", True),
        (["169.254.169.254/32", ""], "169.254.169.254", True),
        ([], "169.254.169.254", False),
    ],
)
def test_allowlist_lets_listed_networks_through(
    entries: list[str], address: str, allowed: bool
) -> None:
    policy = AddressPolicy.from_allowlist(entries)
    assert (policy.check_ip(address) is None) is allowed


def test_allowlist_hosts_are_normalised() -> None:
    policy = AddressPolicy.from_allowlist([" status.internal.example ", "10.0.0.0/8"])
    assert policy.allows_host("Status.Internal.Example.")
    assert not policy.allows_host("internal.example")
    assert policy.hosts == frozenset({"status.internal.example"})


@pytest.mark.parametrize("entry", ["http://status.example/", "not a host", "a/b/c", "10.0.0.0/33"])
def test_allowlist_rejects_garbage_entries(entry: str) -> None:
    with pytest.raises(ValueError, match="CHECK_ALLOWLIST entry"):
        AddressPolicy.from_allowlist([entry])


def test_check_ip_blocks_unparseable_text() -> None:
    assert STRICT.check_ip("not-an-ip") == "'not-an-ip' is not an IP address"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///etc/passwd", "refused: only http and https URLs can be checked (got file)"),
        ("gopher://x", "refused: only http and https URLs can be checked (got gopher)"),
        ("ftp://ftp.example.com/pub", "refused: only http and https URLs can be checked (got ftp)"),
        ("example.com/health", "(got no scheme)"),
        ("http://[::1]/", "refused: ::1 is a loopback address; add it to CHECK_ALLOWLIST"),
        ("http://2130706433/", "2130706433 is 127.0.0.1 written another way"),
        ("http://0x7f.1/", "0x7f.1 is 127.0.0.1 written another way"),
        ("http://0177.0.0.1/", "127.0.0.1 is a loopback address"),
        ("http://127.1/", "127.0.0.1 is a loopback address"),
        ("http://127.0.0.1./", "127.0.0.1 is a loopback address"),
        ("http://0/", "0.0.0.0 is an unspecified address"),
        ("http://[::ffff:127.0.0.1]:8080/", "maps to 127.0.0.1, a loopback address"),
        ("http://[fe80::1%25eth0]/", "is a link-local address"),
        ("http://169.254.169.254/latest/meta-data/", "link-local address (cloud metadata)"),
        ("http://134744072/", "refused: write the address 134744072 as 8.8.8.8"),
    ],
)
def test_check_url_refuses_before_connecting(url: str, expected: str) -> None:
    with pytest.raises(FetchBlocked) as caught:
        check_url(url, STRICT)
    assert expected in caught.value.reason


def test_check_url_passes_names_and_public_literals() -> None:
    assert str(check_url("https://status.example.com/x", STRICT)) == "https://status.example.com/x"
    assert check_url("http://8.8.8.8/", STRICT).host == "8.8.8.8"
    assert check_url("http://127.0.0.1:81/", LOCAL).port == 81


def test_check_url_without_host_is_an_error() -> None:
    with pytest.raises(FetchError, match="no host"):
        check_url("http:///path", STRICT)


@pytest.mark.parametrize(
    ("peercert", "expected"),
    [
        ({"notAfter": "May  9 00:00:00 2007 GMT"}, datetime(2007, 5, 9, tzinfo=UTC)),
        ({"notAfter": "Oct 28 14:23:16 2037 GMT"}, datetime(2037, 10, 28, 14, 23, 16, tzinfo=UTC)),
        ({"notAfter": "tomorrow"}, None),
        ({}, None),  # what getpeercert() returns when verification is off
        (None, None),
    ],
)
def test_cert_not_after_reads_getpeercert(
    peercert: dict[str, Any] | None, expected: datetime | None
) -> None:
    assert cert_not_after(peercert) == expected


def test_fetcher_needs_no_event_loop_to_construct() -> None:
    fetcher = SafeFetcher(STRICT)
    assert fetcher._session is None


# --- live fetching ------------------------------------------------------------------


class FakeResolver(AbstractResolver):
    """Maps host names to fixed addresses; unknown names fail like getaddrinfo does."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [self._result(host, ip, port) for ip in self.table[host]]

    @staticmethod
    def _result(host: str, ip: str, port: int) -> ResolveResult:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        return ResolveResult(
            hostname=host, host=ip, port=port, family=family, proto=0, flags=socket.AI_NUMERICHOST
        )

    async def close(self) -> None:
        pass


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="hello", headers={"X-Seen-UA": request.headers["User-Agent"]})


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * BIG)


async def _sized(request: web.Request) -> web.Response:
    return web.Response(body=b"y" * int(request.match_info["n"]))


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["to"])


async def _loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def _chain(request: web.Request) -> web.Response:
    left = int(request.match_info["n"])
    if left == 0:
        return web.Response(text="done")
    raise web.HTTPMovedPermanently(f"/chain/{left - 1}")


async def _set_cookie(request: web.Request) -> web.Response:
    response = web.Response(text=request.headers.get("Cookie", "no cookie"))
    response.set_cookie("session", "abc")
    return response


def _app() -> web.Application:
    app = web.Application()
    app.router.add_get("/ok", _ok)
    app.router.add_get("/big", _big)
    app.router.add_get("/sized/{n}", _sized)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/loop", _loop)
    app.router.add_get("/chain/{n}", _chain)
    app.router.add_get("/cookie", _set_cookie)
    return app


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    test_server = TestServer(_app(), host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
async def connects(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Any]]:
    """Every address the event loop's sockets connect to during the test."""
    loop = asyncio.get_running_loop()
    seen: list[Any] = []
    real = loop.sock_connect

    async def spy(sock: socket.socket, address: Any) -> None:
        seen.append(address[:2])
        await real(sock, address)

    monkeypatch.setattr(loop, "sock_connect", spy)
    yield seen


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


async def test_local_server_is_refused_without_allowlist(
    server: TestServer, connects: list[Any]
) -> None:
    async with SafeFetcher(STRICT) as fetcher:
        with pytest.raises(FetchBlocked) as caught:
            await fetcher.get(url(server, "/ok"), timeout=5)
    assert caught.value.reason == (
        "refused: 127.0.0.1 is a loopback address; add it to CHECK_ALLOWLIST to allow it"
    )
    assert connects == []


async def test_local_server_is_fetched_with_allowlist(
    server: TestServer, connects: list[Any]
) -> None:
    async with SafeFetcher(LOCAL) as fetcher:
        result = await fetcher.get(url(server, "/ok"), timeout=5)
    assert result.status == 200
    assert result.body == b"hello"
    assert result.truncated is False
    assert result.final_url == url(server, "/ok")
    assert result.headers["content-type"] == "text/plain; charset=utf-8"
    assert result.headers["X-Seen-UA"] == USER_AGENT
    assert result.cert_not_after is None
    assert 0 < result.elapsed_ms < 5000
    assert connects == [("127.0.0.1", server.port)]


async def test_metadata_address_is_refused_without_connecting(connects: list[Any]) -> None:
    async with SafeFetcher(LOCAL) as fetcher:
        with pytest.raises(FetchBlocked) as caught:
            await fetcher.get("http://169.254.169.254/latest/meta-data/", timeout=5)
    assert caught.value.reason == (
        "refused: 169.254.169.254 is a link-local address (cloud metadata); "
        "add it to CHECK_ALLOWLIST to allow it"
    )
    assert connects == []


@pytest.mark.parametrize("target", ["10.0.0.5", "127.0.0.1", "169.254.169.254", "::1"])
async def test_name_resolving_to_blocked_address_is_refused(
    target: str, connects: list[Any]
) -> None:
    resolver = FakeResolver({"evil.example": [target]})
    async with SafeFetcher(STRICT, resolver=resolver) as fetcher:
        with pytest.raises(FetchBlocked) as caught:
            await fetcher.get("http://evil.example/", timeout=5)
    assert caught.value.reason.startswith(
        f"refused: evil.example resolves only to blocked addresses ({target} is a"
    )
    assert "add evil.example or the address to CHECK_ALLOWLIST" in caught.value.reason
    assert resolver.asked == ["evil.example"]
    assert connects == []


async def test_blocked_addresses_are_dropped_and_allowed_one_is_used(
    server: TestServer, connects: list[Any]
) -> None:
    resolver = FakeResolver({"mixed.example": ["169.254.169.254", "10.0.0.5", "127.0.0.1"]})
    async with SafeFetcher(LOCAL, resolver=resolver) as fetcher:
        result = await fetcher.get(f"http://mixed.example:{server.port}/ok", timeout=5)
    assert result.body == b"hello"
    assert connects == [("127.0.0.1", server.port)]


async def test_allowlisted_host_name_may_resolve_to_private_address(server: TestServer) -> None:
    resolver = FakeResolver({"status.internal.example": ["127.0.0.1"]})
    policy = AddressPolicy.from_allowlist(["status.internal.example"])
    async with SafeFetcher(policy, resolver=resolver) as fetcher:
        result = await fetcher.get(f"http://status.internal.example:{server.port}/ok", timeout=5)
    assert result.status == 200


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("http://10.0.0.1/", "refused: 10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "link-local address (cloud metadata)"),
        ("http://[::1]:8080/", "refused: ::1 is a loopback address"),
        ("file:///etc/passwd", "only http and https URLs can be checked (got file)"),
    ],
)
async def test_redirect_to_blocked_target_is_refused_at_the_hop(
    server: TestServer, connects: list[Any], target: str, expected: str
) -> None:
    start = str(server.make_url("/redirect").with_query(to=target))
    async with SafeFetcher(LOCAL) as fetcher:
        with pytest.raises(FetchBlocked) as caught:
            await fetcher.get(start, timeout=5)
    assert expected in caught.value.reason
    assert connects == [("127.0.0.1", server.port)]


async def test_redirect_to_a_name_is_judged_by_its_addresses(server: TestServer) -> None:
    resolver = FakeResolver({"internal.example": ["192.168.1.10"]})
    start = str(server.make_url("/redirect").with_query(to="http://internal.example/admin"))
    async with SafeFetcher(LOCAL, resolver=resolver) as fetcher:
        with pytest.raises(FetchBlocked, match=r"192\.168\.1\.10 is a private address"):
            await fetcher.get(start, timeout=5)
    assert resolver.asked == ["internal.example"]


async def test_five_redirects_are_followed(server: TestServer) -> None:
    async with SafeFetcher(LOCAL) as fetcher:
        result = await fetcher.get(url(server, "/chain/5"), timeout=5)
    assert (result.status, result.body) == (200, b"done")
    assert result.final_url == url(server, "/chain/0")


@pytest.mark.parametrize("path", ["/chain/6", "/loop"])
async def test_too_many_redirects_is_an_error(server: TestServer, path: str) -> None:
    async with SafeFetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.get(url(server, path), timeout=5)
    assert caught.value.reason == "too many redirects (more than 5)"


async def test_big_body_is_cut_at_the_cap(server: TestServer) -> None:
    async with SafeFetcher(LOCAL) as fetcher:
        result = await fetcher.get(url(server, "/big"), timeout=5)
    assert len(result.body) == 1 << 20
    assert result.body == b"x" * (1 << 20)
    assert result.truncated is True


@pytest.mark.parametrize(("size", "truncated"), [(999, False), (1000, False), (1001, True)])
async def test_cap_boundary(server: TestServer, size: int, truncated: bool) -> None:
    async with SafeFetcher(LOCAL) as fetcher:
        result = await fetcher.get(url(server, f"/sized/{size}"), timeout=5, max_bytes=1000)
    assert len(result.body) == min(size, 1000)
    assert result.truncated is truncated


async def test_cookies_do_not_carry_over(server: TestServer) -> None:
    async with SafeFetcher(LOCAL) as fetcher:
        await fetcher.get(url(server, "/cookie"), timeout=5)
        second = await fetcher.get(url(server, "/cookie"), timeout=5)
    assert second.body == b"no cookie"


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never says a word."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield silent.sockets[0].getsockname()[1]
    for writer in writers:
        writer.close()
    silent.close()
    await silent.wait_closed()


async def test_timeout_against_silent_server(silent_port: int) -> None:
    started = asyncio.get_running_loop().time()
    async with SafeFetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.get(f"http://127.0.0.1:{silent_port}/", timeout=0.2)
    assert caught.value.reason == "timed out after 0.2 s"
    assert asyncio.get_running_loop().time() - started < 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_closed_port_is_connection_refused() -> None:
    async with SafeFetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.get(f"http://127.0.0.1:{_closed_port()}/", timeout=5)
    assert caught.value.reason == "connection refused"


async def test_unknown_name_is_a_dns_failure() -> None:
    async with SafeFetcher(STRICT, resolver=FakeResolver({})) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.get("https://nowhere.example/", timeout=5)
    assert caught.value.reason == "DNS lookup failed for nowhere.example"


async def test_fetcher_can_be_reused_after_close(server: TestServer) -> None:
    fetcher = SafeFetcher(LOCAL)
    first = await fetcher.get(url(server, "/ok"), timeout=5)
    await fetcher.close()
    second = await fetcher.get(url(server, "/ok"), timeout=5)
    await fetcher.close()
    assert first.body == second.body == b"hello"


@pytest.fixture
async def tls_server() -> AsyncIterator[TestServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERTDATA / "keycert3.pem")
    test_server = TestServer(_app(), host="127.0.0.1")
    await test_server.start_server(ssl=context)
    yield test_server
    await test_server.close()


@needs_certdata
async def test_https_reports_certificate_expiry(tls_server: TestServer) -> None:
    trusting = ssl.create_default_context(cafile=str(CERTDATA / "pycacert.pem"))
    resolver = FakeResolver({"localhost": ["127.0.0.1"]})
    async with SafeFetcher(LOCAL, resolver=resolver, ssl_context=trusting) as fetcher:
        result = await fetcher.get(f"https://localhost:{tls_server.port}/ok", timeout=5)
    assert result.body == b"hello"
    # keycert3.pem: notAfter=Oct 28 14:23:16 2037 GMT
    assert result.cert_not_after == datetime(2037, 10, 28, 14, 23, 16, tzinfo=UTC)


@needs_certdata
async def test_untrusted_certificate_is_a_tls_error(tls_server: TestServer) -> None:
    resolver = FakeResolver({"localhost": ["127.0.0.1"]})
    async with SafeFetcher(LOCAL, resolver=resolver) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.get(f"https://localhost:{tls_server.port}/ok", timeout=5)
    assert caught.value.reason == "TLS error: unable to get local issuer certificate"
