"""HTTP fetching for user-supplied URLs that can never reach the bot's own network.

A check URL comes from a chat user, so it must not be a way to probe the bot's host,
its private network or the cloud metadata service (server-side request forgery).
`SafeFetcher` enforces an `AddressPolicy` at the two places an address is chosen:

* IP-literal hosts (``http://127.0.0.1/``, ``http://[::1]/``, ``http://2130706433/``)
  are judged before any connection, because aiohttp connects to them without resolving.
* Host names go through `_PolicyResolver`, which drops every blocked address. The
  connector connects only to what the resolver returned, so the address judged is the
  address used: there is no window for DNS rebinding between check and connect.

Redirects are followed here (never by aiohttp), and every hop is judged again.

A request may carry `Credentials` (``auth=bearer:NAME``, ``header.X=secret:NAME``): their
headers are built only if every secret named is bound to the target's host (otherwise
`FetchBlocked`, before connecting), dropped when a redirect leaves the origin, and the
secrets' values are hidden (``••••(NAME)``) in the response and in every error text.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bot.credentials.redact import Redactor
from bot.credentials.refs import CredentialRef, HeaderBuildError, secret_names
from bot.credentials.send import (
    SecretNotAllowed,
    StoredSecret,
    headers_after_redirect,
    headers_for,
)

USER_AGENT = "chatops-bot/0.1 (+health check)"
MAX_REDIRECTS = 5
DEFAULT_MAX_BYTES = 1 << 20
ALLOWLIST_SETTING = "CHECK_ALLOWLIST"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SCHEMES = frozenset({"http", "https"})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Redirects after which a request's method becomes GET and its body is dropped
# (RFC 9110 15.4: 303 always; 301 and 302 for POST, as browsers and requests do).
_TO_GET_ALWAYS = frozenset({303})
_TO_GET_FROM_POST = frozenset({301, 302})
_READ_CHUNK = 64 * 1024
# Characters of the legacy IPv4 spellings inet_aton accepts (decimal, octal, hex, short).
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")

_METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    }
)
_SHARED_SPACE = ipaddress.ip_network("100.64.0.0/10")
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
# Python 3.11 calls most of 192.0.0.0/24 global; IANA reserves it for protocol use.
_IETF_PROTOCOL = ipaddress.ip_network("192.0.0.0/24")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class FetchBlocked(Exception):
    """The URL was refused before any connection was made (scheme or address policy)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FetchError(Exception):
    """The fetch was allowed but failed: timeout, refused connection, DNS, TLS, redirects."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _AddressRefused(OSError):
    """Raised inside the resolver; aiohttp passes OSErrors through as the connector's cause."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _is_site_local(ip: IPAddress) -> bool:
    return isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local


def _in_any(ip: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(ip in net for net in networks)


# Order matters: the first matching kind names the reason.
_KINDS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("an unspecified address", lambda ip: ip.is_unspecified),
    ("a loopback address", lambda ip: ip.is_loopback),
    ("a link-local address", lambda ip: ip.is_link_local),
    ("a multicast address", lambda ip: ip.is_multicast),
    (
        "a shared address (100.64.0.0/10, carrier-grade NAT)",
        lambda ip: ip in _SHARED_SPACE,
    ),
    ("a site-local address", _is_site_local),
    ("a private address", lambda ip: _in_any(ip, _PRIVATE_NETWORKS)),
    ("a reserved address", lambda ip: ip.is_reserved),
    ("a special-purpose address", lambda ip: not ip.is_global or ip in _IETF_PROTOCOL),
)


def address_kind(ip: IPAddress) -> str | None:
    """Why this single address is off limits ("a loopback address"), or None if public."""
    for kind, matches in _KINDS:
        if matches(ip):
            suffix = " (cloud metadata)" if ip in _METADATA_ADDRESSES else ""
            return kind + suffix
    return None


def _translated_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, NAT64): judged instead."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _tunnelled_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 endpoint inside a 6to4, Teredo or IPv4-compatible address, if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _parse_ip(ip: str | IPAddress) -> IPAddress | None:
    if not isinstance(ip, str):
        return ip
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


def _judge(ip: IPAddress) -> str | None:
    translated = _translated_ipv4(ip)
    if translated is not None:
        kind = address_kind(translated)
        return f"{ip} maps to {translated}, {kind}" if kind else None
    tunnelled = _tunnelled_ipv4(ip)
    tunnelled_kind = address_kind(tunnelled) if tunnelled is not None else None
    if tunnelled_kind:
        return f"{ip} embeds {tunnelled}, {tunnelled_kind}"
    kind = address_kind(ip)
    return f"{ip} is {kind}" if kind else None


def _normal_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a check may connect to: public ones, plus an explicit allowlist."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_allowlist(cls, entries: Iterable[str]) -> AddressPolicy:
        """Build a policy from allowlist entries: IPs, CIDRs or exact host names.

        Blank entries are skipped; anything else that is not an address, a network or a
        plausible host name raises ValueError naming the entry.
        """
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if entry:
                _add_allowlist_entry(entry, networks, hosts)
        return cls(networks=tuple(networks), hosts=frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        """True when the host name itself is allowlisted (any address it resolves to)."""
        return _normal_host(host) in self.hosts

    def check_ip(self, ip: str | IPAddress) -> str | None:
        """Return why ``ip`` is blocked ("10.0.0.5 is a private address"), or None if allowed."""
        parsed = _parse_ip(ip)
        if parsed is None:
            return f"{ip!r} is not an IP address"
        if self._allowlisted(parsed):
            return None
        return _judge(parsed)

    def _allowlisted(self, ip: IPAddress) -> bool:
        candidates = [ip, _translated_ipv4(ip)]
        return any(c is not None and _in_any(c, self.networks) for c in candidates)


_HOSTNAME = re.compile(r"(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_-]{1,63})*")


def _add_allowlist_entry(entry: str, networks: list[IPNetwork], hosts: set[str]) -> None:
    try:
        networks.append(ipaddress.ip_network(entry, strict=False))
        return
    except ValueError:
        pass
    host = _normal_host(entry)
    if not _HOSTNAME.fullmatch(host):
        raise ValueError(
            f"{ALLOWLIST_SETTING} entry {entry!r} is not an IP address, a CIDR or a host name"
        )
    hosts.add(host)


def _blocked(why: str) -> FetchBlocked:
    return FetchBlocked(f"refused: {why}; add it to {ALLOWLIST_SETTING} to allow it")


def _literal_ip(host: str) -> IPAddress | None:
    """The address an IP-literal host denotes, including legacy forms like ``0x7f.1``."""
    candidate = unquote(host).rstrip(".")
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    if not _NUMERIC_HOST.fullmatch(candidate):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(candidate))
    except OSError:
        return None


def _check_literal_host(host: str, policy: AddressPolicy) -> None:
    ip = _literal_ip(host)
    if ip is None:
        return
    written_plainly = _parse_ip(unquote(host)) is not None
    why = policy.check_ip(ip)
    if why is not None:
        raise _blocked(why if written_plainly else f"{host} is {ip} written another way, and {why}")
    if not written_plainly:
        # aiohttp refuses these spellings too; say how to write the address instead.
        raise FetchBlocked(f"refused: write the address {host} as {ip}")


def check_url(raw: str | URL, policy: AddressPolicy) -> URL:
    """Parse ``raw`` and refuse it unless it is http(s) with a permitted (or named) host.

    Host names are judged later, by the resolver, against the addresses they resolve to.
    """
    try:
        url = raw if isinstance(raw, URL) else URL(raw)
    except (ValueError, TypeError) as exc:
        raise FetchError(f"invalid URL: {exc}") from exc
    scheme = url.scheme.lower()
    if scheme not in _SCHEMES:
        got = scheme or "no scheme"
        raise FetchBlocked(f"refused: only http and https URLs can be checked (got {got})")
    if not url.raw_host:
        raise FetchError(f"invalid URL: no host in {str(url)!r}")
    _check_literal_host(url.raw_host, policy)
    return url


def _host_refusal(host: str, results: list[ResolveResult], policy: AddressPolicy) -> str:
    reasons = [why for r in results if (why := policy.check_ip(r["host"]))]
    detail = "; ".join(dict.fromkeys(reasons)) or "no addresses"
    return (
        f"refused: {host} resolves only to blocked addresses ({detail}); "
        f"add {host} or the address to {ALLOWLIST_SETTING} to allow it"
    )


class _PolicyResolver(AbstractResolver):
    """Resolves through an inner resolver and returns only the addresses the policy allows."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None) -> None:
        self._policy = policy
        self._inner = inner
        self._owns_inner = inner is None

    def _resolver(self) -> AbstractResolver:
        if self._inner is None:
            # getaddrinfo in a thread: honours /etc/hosts and needs no extra dependency.
            self._inner = aiohttp.ThreadedResolver()
        return self._inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host`` and drop blocked addresses; raise if none are left."""
        results = await self._resolver().resolve(host, port, family)
        if not results:
            # aiohttp expects at least one address or an OSError.
            raise socket.gaierror(socket.EAI_NONAME, f"{host} has no addresses")
        if self._policy.allows_host(host):
            return results
        allowed = [r for r in results if self._policy.check_ip(r["host"]) is None]
        if not allowed:
            raise _AddressRefused(_host_refusal(_normal_host(host), results, self._policy))
        return allowed

    async def close(self) -> None:
        """Close the inner resolver if this resolver created it."""
        if self._inner is not None and self._owns_inner:
            await self._inner.close()
            # ThreadedResolver is bound to the loop it was made in; make a fresh one next time.
            self._inner = None


@dataclass(frozen=True)
class FetchResult:
    """What one request returned, after redirects, with the body capped at ``max_bytes``."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool
    elapsed_ms: float
    final_url: str
    cert_not_after: datetime | None = None


def cert_not_after(peercert: Mapping[str, Any] | None) -> datetime | None:
    """The ``notAfter`` of a certificate dict from ``SSLObject.getpeercert()``, in UTC."""
    raw = (peercert or {}).get("notAfter")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromtimestamp(ssl.cert_time_to_seconds(raw), UTC)
    except ValueError:
        return None


def _transport_not_after(transport: asyncio.Transport | None) -> datetime | None:
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    return cert_not_after(ssl_object.getpeercert())


# The certificate must be read at connect time: aiohttp releases the connection as soon as
# a small body has arrived, often before the caller sees the response. The request runs in
# the caller's task, so a context variable carries each request's own record.
_PEER_NOT_AFTER: ContextVar[list[datetime | None] | None] = ContextVar(
    "peer_not_after", default=None
)


class _CertRecordingConnector(aiohttp.TCPConnector):
    """A TCP connector that notes the TLS peer certificate's notAfter for the caller."""

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Connection:
        """Connect (or reuse a pooled connection) and record the peer's notAfter."""
        connection = await super().connect(req, traces, timeout)
        record = _PEER_NOT_AFTER.get()
        if record is not None:
            record.append(_transport_not_after(connection.transport))
        return connection


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int) -> tuple[bytes, bool]:
    """Read at most ``max_bytes`` of the body; True when more was available."""
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        chunk = await resp.content.read(min(_READ_CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    return body[:max_bytes], len(body) > max_bytes


def _redirect_target(resp: aiohttp.ClientResponse) -> URL | None:
    location = resp.headers.get("Location")
    if resp.status not in _REDIRECT_STATUSES or not location:
        return None
    try:
        return resp.url.join(URL(location))
    except ValueError as exc:
        raise FetchError(f"invalid redirect Location {location!r}") from exc


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _os_error_reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return f"connection failed: {error.strerror or error}"


def _ssl_reason(exc: aiohttp.ClientSSLError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        detail = getattr(cert_error, "verify_message", None) or str(cert_error)
        return f"TLS error: {detail}"
    ssl_error = exc.os_error
    return f"TLS error: {getattr(ssl_error, 'reason', None) or ssl_error}"


def _connector_reason(exc: aiohttp.ClientConnectorError) -> str:
    if isinstance(exc, aiohttp.ClientSSLError):
        return _ssl_reason(exc)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"DNS lookup failed for {exc.host}"
    return _os_error_reason(exc.os_error)


def describe_client_error(exc: aiohttp.ClientError) -> str:
    """A short human reason for an aiohttp failure ("connection refused", "TLS error: ...")."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _connector_reason(exc)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection without a response"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "response body was cut off or malformed"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"invalid HTTP response: {exc.message}"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL: {exc}"
    if isinstance(exc, aiohttp.ClientOSError):
        return _os_error_reason(exc)
    return f"request failed: {exc or type(exc).__name__}"


def _refusal_inside(exc: aiohttp.ClientConnectorError) -> FetchBlocked | None:
    error = exc.os_error
    return FetchBlocked(error.reason) if isinstance(error, _AddressRefused) else None


class SafeFetcher:
    """GETs user-supplied URLs under an `AddressPolicy`, with capped bodies and redirects.

    The aiohttp session is created on first use, inside the running event loop. Use as
    ``async with SafeFetcher(policy) as fetcher:`` or call `close` when done.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = _PolicyResolver(policy, resolver)
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session and the resolver; the fetcher may be reused afterwards."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._resolver.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = _CertRecordingConnector(
                resolver=self._resolver,
                # Checks run minutes apart and should follow DNS changes; caching filtered
                # results would be safe but buys nothing.
                use_dns_cache=False,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT},
                # A proxy from the environment would connect on our behalf, unjudged.
                trust_env=False,
                # Checks are stateless: no cookie carries over between runs or URLs.
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def get(
        self,
        url: str,
        *,
        # A per-check setting; applied with asyncio.timeout over all hops and the body.
        timeout: float,  # noqa: ASYNC109
        max_bytes: int = DEFAULT_MAX_BYTES,
        credentials: Credentials | None = None,
    ) -> FetchResult:
        """GET ``url``, following up to 5 redirects, within ``timeout`` seconds in total.

        Raises `FetchBlocked` when the scheme or an address is refused, or a secret in
        ``credentials`` is not bound to the host (before connecting), and `FetchError`
        with a short reason for timeouts and connection, DNS or TLS errors.
        """
        return await self.request(
            "GET", url, timeout=timeout, max_bytes=max_bytes, credentials=credentials
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float,  # noqa: ASYNC109
        max_bytes: int = DEFAULT_MAX_BYTES,
        credentials: Credentials | None = None,
        follow_redirects: bool = True,
    ) -> FetchResult:
        """Send ``method`` to ``url`` with ``headers`` and ``body``, as `get` does.

        A secret header from ``credentials`` replaces a header of the same name in
        ``headers``. After a 303 (and a 301 or 302 answering a POST) the request goes on
        as a GET without its body. Without ``follow_redirects`` a redirect is the answer.
        """
        redactor = credentials.redactor() if credentials is not None else None
        try:
            hop = _first_hop(method, url, headers, body, credentials)
            result = await self._within(timeout, hop, credentials, max_bytes, follow_redirects)
        except (FetchBlocked, FetchError) as error:
            raise _redacted_error(error, redactor) from None
        return _redacted_result(result, redactor) if redactor is not None else result

    async def _within(
        self,
        timeout: float,  # noqa: ASYNC109
        hop: _Hop,
        credentials: Credentials | None,
        max_bytes: int,
        follow: bool = True,
    ) -> FetchResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                return await self._follow(hop, credentials, max_bytes, started, follow)
        except TimeoutError as exc:
            raise FetchError(f"timed out after {_seconds(timeout)}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise (_refusal_inside(exc) or FetchError(describe_client_error(exc))) from exc
        except aiohttp.ClientError as exc:
            raise FetchError(describe_client_error(exc)) from exc

    async def _follow(
        self,
        hop: _Hop,
        credentials: Credentials | None,
        max_bytes: int,
        started: float,
        follow: bool,
    ) -> FetchResult:
        hop = replace(hop, url=check_url(hop.url, self._policy))
        refs = credentials.refs if credentials is not None else ()
        for _hop in range(MAX_REDIRECTS + 1):
            result_or_next = await self._request(hop, max_bytes, started, follow)
            if isinstance(result_or_next, FetchResult):
                return result_or_next
            status, next_url = result_or_next
            hop = hop.redirected(check_url(next_url, self._policy), status, refs)
        raise FetchError(f"too many redirects (more than {MAX_REDIRECTS})")

    async def _request(
        self, hop: _Hop, max_bytes: int, started: float, follow: bool = True
    ) -> FetchResult | tuple[int, URL]:
        session = self._get_session()
        not_after: list[datetime | None] = []
        token = _PEER_NOT_AFTER.set(not_after)
        try:
            async with session.request(
                hop.method, hop.url, headers=hop.headers, data=hop.body, allow_redirects=False
            ) as resp:
                next_url = _redirect_target(resp) if follow else None
                if next_url is not None:
                    return resp.status, next_url
                body, truncated = await _read_capped(resp, max_bytes)
        finally:
            _PEER_NOT_AFTER.reset(token)
        return FetchResult(
            status=resp.status,
            headers=CIMultiDictProxy(CIMultiDict(resp.headers)),
            body=body,
            truncated=truncated,
            elapsed_ms=(time.perf_counter() - started) * 1000,
            final_url=str(resp.url),
            cert_not_after=not_after[-1] if not_after else None,
        )


@dataclass(frozen=True)
class Credentials:
    """The secrets one request sends: the references as written (``auth=bearer:NAME``,
    ``header.X-Api-Key=secret:NAME``) and a lookup of each secret named (its value, the
    hosts it is bound to, its user name). `bot.credentials.service.SecretService`
    makes these for a person allowed to use the secrets."""

    refs: tuple[CredentialRef, ...]
    lookup: Callable[[str], StoredSecret]

    def redactor(self) -> Redactor:
        """Hides the values of the secrets named, in every form they take on the wire."""
        stored = {name: self.lookup(name) for name in secret_names(self.refs)}
        users = {name: s.user for name, s in stored.items() if s.user is not None}
        return Redactor({name: s.value for name, s in stored.items()}, users)


@dataclass(frozen=True)
class _Hop:
    """One request of a chain of redirects."""

    method: str
    url: URL | str
    headers: dict[str, str]
    body: bytes | None

    def redirected(self, to: URL, status: int, refs: tuple[CredentialRef, ...]) -> _Hop:
        """The next request: secret headers dropped if ``to`` is another origin."""
        headers = headers_after_redirect(self.headers, refs, str(self.url), str(to))
        method, body = self.method.upper(), self.body
        if (status in _TO_GET_ALWAYS and method != "HEAD") or (
            status in _TO_GET_FROM_POST and method == "POST"
        ):
            method, body = "GET", None
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        return _Hop(method, to, headers, body)


def _first_hop(
    method: str,
    url: str,
    headers: Mapping[str, str] | None,
    body: bytes | None,
    credentials: Credentials | None,
) -> _Hop:
    """The first request, with the secret headers only if every secret may go to ``url``."""
    given = dict(headers or {})
    if credentials is None:
        return _Hop(method.upper(), url, given, body)
    try:
        secret_headers = headers_for(credentials.refs, url, credentials.lookup)
    except (SecretNotAllowed, HeaderBuildError) as error:
        raise FetchBlocked(str(error)) from None
    overridden = {name.lower() for name in secret_headers}
    kept = {name: value for name, value in given.items() if name.lower() not in overridden}
    return _Hop(method.upper(), url, kept | secret_headers, body)


def _redacted_error(
    error: FetchBlocked | FetchError, redactor: Redactor | None
) -> FetchBlocked | FetchError:
    if redactor is None:
        return error
    return type(error)(redactor.redact(error.reason))


def _redacted_result(result: FetchResult, redactor: Redactor) -> FetchResult:
    """The result with every form of the secrets sent replaced by ``••••(NAME)``: the
    body (any bytes: what is not UTF-8 passes through unchanged), headers and final URL."""
    text = result.body.decode("utf-8", "surrogateescape")
    clean = redactor.redact(text)
    body = result.body if clean == text else clean.encode("utf-8", "surrogateescape")
    headers = CIMultiDict((name, redactor.redact(value)) for name, value in result.headers.items())
    return replace(
        result,
        body=body,
        headers=CIMultiDictProxy(headers),
        final_url=redactor.redact(result.final_url),
    )
