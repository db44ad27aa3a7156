"""Reading a mailbox over IMAP without changing it.

The bot only looks: the mailbox is opened with EXAMINE (read-only) and bodies are read
with ``BODY.PEEK``, so no message is marked read, moved or deleted.

The protocol is the standard library's `imaplib`, run in one worker thread per
connection, over a socket this module connected itself: the server's host is resolved
here, every address is judged by the same `AddressPolicy` as other user URLs, and the
socket goes to an address that was judged (no window for DNS rebinding). TLS is verified
against the host *name*. Every step is bounded twice: a socket timeout inside the thread,
and an asyncio deadline that shuts the socket down if a server trickles bytes forever.

Failures are `MailError`s whose ``reason`` is a sentence for a chat channel:

    MailError
    ├── MailAddressError   the URL or options cannot work (no user name, tls=off on imaps)
    ├── MailBlocked        the address policy refused the server, or plain IMAP to a host
    │                      that is not in CHECK_ALLOWLIST
    ├── MailConnectError   DNS failed, connection refused or dropped, host unreachable
    ├── MailTimeout        a step took longer than the timeout
    ├── MailTLSError       certificate not trusted or for another host, no STARTTLS, ...
    ├── MailLoginRefused   the server refused the user name and password
    ├── MailboxMissing     the mailbox cannot be opened
    └── MailProtocolError  the server answered something this reader does not understand

The password never appears in a reason, a log line or an exception chain.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import imaplib
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from bot.mail.watch import MailboxStatus
from bot.net import ALLOWLIST_SETTING, AddressPolicy

IMAPS_PORT = 993
IMAP_PORT = 143
DEFAULT_MAILBOX = "INBOX"
DEFAULT_TIMEOUT = 30.0
# A UID set in one command line stays well under common server line limits (8 KB).
_UIDS_PER_COMMAND = 500
_LOGOUT_TIMEOUT = 5.0

_log = logging.getLogger(__name__)
T = TypeVar("T")
_SockAddr = tuple[str, int] | tuple[str, int, int, int]
_AddrInfo = tuple[socket.AddressFamily, _SockAddr]


class MailError(Exception):
    """A mailbox could not be read; ``reason`` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MailAddressError(MailError):
    """The mailbox URL or its options cannot work."""


class MailBlocked(MailError):
    """Refused before connecting: the address policy, or plain IMAP off the allowlist."""


class MailConnectError(MailError):
    """The server could not be found or reached, or it dropped the connection."""


class MailTimeout(MailError):
    """The server took longer than the timeout for one step."""


class MailTLSError(MailError):
    """TLS could not be set up: untrusted or mismatched certificate, no STARTTLS."""


class MailLoginRefused(MailError):
    """The server refused the login."""


class MailboxMissing(MailError):
    """The mailbox does not exist or cannot be opened."""


class MailProtocolError(MailError):
    """The server's answer was not what IMAP promises."""


# --- the mailbox URL ---------------------------------------------------------------------


@dataclass(frozen=True)
class MailboxURL:
    """``imaps://user@host:port/Mailbox`` (TLS) or ``imap://...`` (STARTTLS), parsed."""

    host: str
    port: int
    user: str | None
    mailbox: str
    implicit_tls: bool

    def __str__(self) -> str:
        return f"{self.mailbox} on {self.host}"


def parse_mailbox_url(raw: str) -> MailboxURL:
    """Parse a mailbox URL; the user name is percent-decoded (``support%40example.com``)."""
    parts = urlsplit(raw.strip())
    scheme = parts.scheme.lower()
    if scheme not in {"imap", "imaps"}:
        raise MailAddressError(
            "a mailbox URL starts with imaps:// (TLS, port 993) or imap:// (STARTTLS, port 143)"
        )
    if parts.password is not None:
        raise MailAddressError(
            "the mailbox URL must not contain a password: store it as a secret instead"
        )
    if parts.query or parts.fragment:
        raise MailAddressError("a mailbox URL has no ?query or #fragment; give options separately")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise MailAddressError(f"the port in the mailbox URL is not valid ({exc})") from None
    if not host:
        raise MailAddressError("the mailbox URL has no host name")
    implicit_tls = scheme == "imaps"
    mailbox = unquote(parts.path.lstrip("/")) or DEFAULT_MAILBOX
    user = unquote(parts.username) if parts.username else None
    return MailboxURL(
        host, port or (IMAPS_PORT if implicit_tls else IMAP_PORT), user, mailbox, implicit_tls
    )


# --- what the reader returns -------------------------------------------------------------


@dataclass(frozen=True)
class FetchedMessage:
    """A message's bytes: the whole message, or only its header block when it was
    larger than the limit (``complete`` False). ``size`` is the server's RFC822.SIZE."""

    uid: int
    raw: bytes
    size: int
    complete: bool


# --- words for failures ------------------------------------------------------------------


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _certificate_reason(error: ssl.SSLCertVerificationError, host: str) -> str:
    code = error.verify_code
    detail = error.verify_message or str(error.reason or error)
    if code in {62, 64}:  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
        return f"the mail server's TLS certificate is not valid for {host} (it names another host)"
    if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
        return f"the TLS certificate of {host} has expired"
    if code in {18, 19, 20, 21}:  # self-signed, unknown issuer, unable to verify
        return f"the TLS certificate of {host} is not trusted ({detail})"
    return f"the TLS certificate of {host} was refused ({detail})"


def _os_reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError | BrokenPipeError):
        return "the server closed the connection"
    return error.strerror or str(error) or type(error).__name__


def _describe(error: BaseException, host: str, step: str, seconds: float) -> MailError:
    """The `MailError` for a failure of ``step`` ("logging in") against ``host``."""
    if isinstance(error, MailError):
        return error
    if isinstance(error, TimeoutError):
        return MailTimeout(f"the mail server {host} did not answer within {seconds:g} s ({step})")
    if isinstance(error, ssl.SSLCertVerificationError):
        return MailTLSError(_certificate_reason(error, host))
    if isinstance(error, ssl.SSLError):
        hint = " (is it a TLS port? imaps:// uses 993)" if "WRONG_VERSION" in str(error) else ""
        return MailTLSError(f"the TLS handshake with {host} failed: {error.reason or error}{hint}")
    if isinstance(error, imaplib.IMAP4.abort | EOFError):
        return MailConnectError(f"the mail server {host} closed the connection ({step})")
    if isinstance(error, imaplib.IMAP4.error):
        return MailProtocolError(f"the mail server {host} answered unexpectedly ({step}): {error}")
    if isinstance(error, OSError):
        return MailConnectError(f"lost the connection to {host} ({step}): {_os_reason(error)}")
    return MailProtocolError(f"reading from {host} failed ({step}): {type(error).__name__}")


# --- resolving and connecting to a judged address ----------------------------------------


def _explicitly_allowed(policy: AddressPolicy, host: str, ip: str) -> bool:
    if policy.allows_host(host):
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in policy.networks)


def _judged(
    host: str, infos: Sequence[_AddrInfo], policy: AddressPolicy, plain: bool
) -> list[_AddrInfo]:
    """The addresses this connection may use, or `MailBlocked` saying why none."""
    if plain:
        allowed = [info for info in infos if _explicitly_allowed(policy, host, info[1][0])]
        if not allowed:
            raise MailBlocked(
                f"plain IMAP (tls=off) sends the password unencrypted, so it is allowed only to "
                f"hosts in {ALLOWLIST_SETTING}, and {host} is not there"
            )
        return allowed
    if policy.allows_host(host):
        return list(infos)
    allowed = [info for info in infos if policy.check_ip(info[1][0]) is None]
    if not allowed:
        reasons = dict.fromkeys(why for info in infos if (why := policy.check_ip(info[1][0])))
        raise MailBlocked(
            f"refused: {host} resolves only to blocked addresses ({'; '.join(reasons)}); "
            f"add {host} or the address to {ALLOWLIST_SETTING} to allow it"
        )
    return allowed


async def _resolve(host: str, port: int) -> list[_AddrInfo]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise MailConnectError(f"could not find the mail server {host} ({exc.strerror})") from None
    unique: dict[_AddrInfo, None] = {}
    for family, _type, _proto, _name, sockaddr in infos:
        if family in {socket.AF_INET, socket.AF_INET6} and isinstance(sockaddr[0], str):
            unique[(family, sockaddr)] = None
    return list(unique)


async def _open_socket(family: socket.AddressFamily, sockaddr: _SockAddr) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


async def _connect_first(host: str, port: int, addresses: Sequence[_AddrInfo]) -> socket.socket:
    """A connected socket to the first address that answers."""
    failures: list[str] = []
    for family, sockaddr in addresses:
        try:
            return await _open_socket(family, sockaddr)
        except OSError as exc:
            failures.append(f"{sockaddr[0]}: {_os_reason(exc)}")
    raise MailConnectError(f"could not connect to {host} port {port} ({'; '.join(failures)})")


# --- imaplib over our socket -------------------------------------------------------------


class _Client(imaplib.IMAP4):
    """imaplib speaking over a socket connected elsewhere, TLS verified against ``host``."""

    def __init__(
        self, sock: socket.socket, host: str, port: int, tls: ssl.SSLContext | None
    ) -> None:
        self._given = sock
        self._tls = tls
        super().__init__(host, port, timeout=sock.gettimeout())

    def _create_socket(self, timeout: float | None) -> socket.socket:
        if self._tls is None:
            return self._given
        return self._tls.wrap_socket(self._given, server_hostname=self.host)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _modified_utf7(name: str) -> str:
    """A mailbox name in IMAP's modified UTF-7 (RFC 3501 5.1.3)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = "".join(pending).encode("utf-16-be")
            out.append(
                "&" + base64.b64encode(encoded).decode("ascii").rstrip("=").replace("/", ",") + "-"
            )
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.IGNORECASE)
_BODY = re.compile(rb"\bBODY\[(HEADER)?\]", re.IGNORECASE)


def _uid_set(uids: Sequence[int]) -> str:
    """``101:105,110`` for [101, 102, 103, 104, 105, 110]."""
    ranges: list[str] = []
    ordered = sorted(set(uids))
    start = previous = ordered[0]
    for uid in [*ordered[1:], None]:
        if uid is not None and uid == previous + 1:
            previous = uid
            continue
        ranges.append(str(start) if start == previous else f"{start}:{previous}")
        if uid is not None:
            start = previous = uid
    return ",".join(ranges)


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _fetch_lines(data: Sequence[object]) -> Iterable[bytes]:
    for item in data:
        if isinstance(item, tuple):
            yield item[0]
        elif isinstance(item, bytes):
            yield item


def _literal(data: Sequence[object]) -> bytes | None:
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and _BODY.search(item[0]):
            return bytes(item[1])
    return None


def _number(values: Sequence[object] | None) -> int | None:
    for value in values or ():
        if isinstance(value, bytes) and value.strip().isdigit():
            return int(value)
    return None


@dataclass
class _Session:
    """What the worker thread owns: the imaplib client, and a duplicate of the socket
    that the event loop may shut down to unblock the thread."""

    client: _Client
    kill_switch: socket.socket
    exists: int = field(default=0)


# --- the reader ---------------------------------------------------------------------------


class MailboxReader:
    """An open, logged-in IMAP connection that only reads. Use `connect` to make one,
    ``async with`` (or `logout`) to close it."""

    def __init__(
        self,
        session: _Session,
        executor: ThreadPoolExecutor,
        host: str,
        timeout: float,
        password: str,
    ) -> None:
        self._session = session
        self._executor = executor
        self._host = host
        self._timeout = timeout
        self._password = password
        self._closed = False

    async def __aenter__(self) -> MailboxReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.logout()

    async def examine(self, mailbox: str = DEFAULT_MAILBOX) -> MailboxStatus:
        """Open ``mailbox`` read-only: (UIDVALIDITY, UIDNEXT, number of messages)."""
        return await self._step(f"opening {mailbox}", self._examine, mailbox)

    async def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above ``last_uid`` (``UID SEARCH UID n:*``, without its ``*`` quirk)."""
        return await self._step("looking for new messages", self._uids_after, last_uid)

    async def fetch_sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """RFC822.SIZE of each UID still in the mailbox."""
        return await self._step("reading message sizes", self._sizes, uids)

    async def fetch_message(
        self, uid: int, max_bytes: int, size: int | None = None
    ) -> FetchedMessage | None:
        """The message with ``BODY.PEEK[]``, or only its headers when over ``max_bytes``.

        ``size`` saves a round trip when `fetch_sizes` already gave it. None when the
        message is gone (deleted since it was found).
        """
        return await self._step(f"fetching message {uid}", self._fetch, uid, max_bytes, size)

    async def newest_uids(self, count: int) -> list[int]:
        """The UIDs of the newest ``count`` messages of the examined mailbox, oldest first."""
        return await self._step("finding the newest messages", self._newest, count)

    async def logout(self) -> None:
        """Say goodbye (briefly) and close the connection; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(min(self._timeout, _LOGOUT_TIMEOUT)):
                await loop.run_in_executor(self._executor, self._logout)
        except (TimeoutError, OSError, imaplib.IMAP4.error):
            pass  # leaving anyway
        finally:
            self._kill()
            await asyncio.to_thread(self._executor.shutdown)
            with contextlib.suppress(OSError):
                self._session.client.shutdown()  # closed already after a clean LOGOUT
            self._session.kill_switch.close()

    def _kill(self) -> None:
        with contextlib.suppress(OSError):
            self._session.kill_switch.shutdown(socket.SHUT_RDWR)

    async def _step(self, step: str, work: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise MailConnectError(f"the connection to {self._host} is closed")
        return await _in_thread(
            self._executor, step, self._host, self._timeout, self._password, self._kill, work, *args
        )

    # Below: blocking work, run in the connection's thread.

    def _examine(self, mailbox: str) -> MailboxStatus:
        client = self._session.client
        client.untagged_responses.clear()
        typ, data = client.select(_quote(_modified_utf7(mailbox)), readonly=True)
        if typ != "OK":
            said = _said(data)
            raise MailboxMissing(f"the mailbox {mailbox!r} cannot be opened on {self._host}{said}")
        exists = _number(data) or 0
        uidvalidity = _number(client.untagged_responses.get("UIDVALIDITY"))
        uidnext = _number(client.untagged_responses.get("UIDNEXT"))
        if uidvalidity is None:
            raise MailProtocolError(f"the mail server {self._host} did not report UIDVALIDITY")
        self._session.exists = exists
        if uidnext is None:
            uidnext = self._uidnext_without_status(exists)
        return MailboxStatus(uidvalidity, uidnext, exists)

    def _uidnext_without_status(self, exists: int) -> int:
        # UIDNEXT is optional before IMAP4rev2; the last message's UID + 1 is a safe floor.
        newest = self._newest(1) if exists else []
        return newest[-1] + 1 if newest else 1

    def _uids_after(self, last_uid: int) -> list[int]:
        typ, data = self._session.client.uid("SEARCH", "UID", f"{last_uid + 1}:*")
        _expect_ok(typ, data, "UID SEARCH")
        found = [
            int(token) for line in _fetch_lines(data) for token in line.split() if token.isdigit()
        ]
        # "n:*" always includes the last message, even when its UID is below n.
        return sorted(uid for uid in set(found) if uid > last_uid)

    def _sizes(self, uids: Sequence[int]) -> dict[int, int]:
        sizes: dict[int, int] = {}
        for chunk in _chunks(sorted(set(uids)), _UIDS_PER_COMMAND):
            typ, data = self._session.client.uid("FETCH", _uid_set(chunk), "(RFC822.SIZE)")
            _expect_ok(typ, data, "UID FETCH")
            for line in _fetch_lines(data):
                uid, size = _UID.search(line), _SIZE.search(line)
                if uid and size:
                    sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    def _fetch(self, uid: int, max_bytes: int, size: int | None) -> FetchedMessage | None:
        if size is None:
            size = self._sizes([uid]).get(uid)
            if size is None:
                return None
        complete = size <= max_bytes
        part = "BODY.PEEK[]" if complete else "BODY.PEEK[HEADER]"
        typ, data = self._session.client.uid("FETCH", str(uid), f"({part})")
        _expect_ok(typ, data, "UID FETCH")
        raw = _literal(data)
        return None if raw is None else FetchedMessage(uid, raw, size, complete)

    def _newest(self, count: int) -> list[int]:
        exists = self._session.exists
        if count <= 0 or exists <= 0:
            return []
        typ, data = self._session.client.fetch(f"{max(exists - count + 1, 1)}:{exists}", "(UID)")
        _expect_ok(typ, data, "FETCH")
        uids = {int(match.group(1)) for line in _fetch_lines(data) if (match := _UID.search(line))}
        return sorted(uids)[-count:]

    def _logout(self) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self._session.client.logout()


def _said(data: Sequence[object]) -> str:
    text = b" ".join(item for item in data if isinstance(item, bytes)).decode("utf-8", "replace")
    return f" (the server said: {text})" if text.strip() else ""


def _expect_ok(typ: str, data: Sequence[object], command: str) -> None:
    if typ != "OK":
        raise MailProtocolError(f"the mail server refused {command}{_said(data)}")


async def _in_thread(
    executor: ThreadPoolExecutor,
    step: str,
    host: str,
    seconds: float,
    password: str,
    kill: Callable[[], None],
    work: Callable[..., T],
    *args: object,
) -> T:
    """Run blocking ``work`` in the connection's thread within ``timeout`` seconds.

    On timeout (``seconds``) the socket is shut down so the thread stops waiting too. Failures become
    `MailError`s with the password scrubbed and no chained cause (a cause's text could
    carry what the server echoed).
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(seconds):
            return await loop.run_in_executor(executor, lambda: work(*args))
    except asyncio.CancelledError:
        kill()  # the caller gave up: the thread must not keep the connection busy
        raise
    except TimeoutError:
        kill()
        error: MailError = MailTimeout(
            f"the mail server {host} did not answer within {seconds:g} s ({step})"
        )
    except Exception as exc:  # every failure of the thread is described, none escapes raw
        error = _describe(exc, host, step, seconds)
    raise type(error)(_scrub(error.reason, password)) from None


# --- connecting ---------------------------------------------------------------------------


def _login_user(url: MailboxURL, user: str | None) -> str:
    chosen = url.user or user
    if not chosen:
        raise MailAddressError(
            f"no user name for {url.host}: put it in the URL "
            "(imaps://support%40example.com@host/INBOX) or store it with the secret"
        )
    return chosen


def _open_session(
    sock: socket.socket,
    kill_switch: socket.socket,
    url: MailboxURL,
    tls: ssl.SSLContext,
    plain: bool,
    credentials: tuple[str, str],
) -> _Session:
    """Greeting, TLS (implicit or STARTTLS) and login; runs in the worker thread."""
    client: _Client | None = None
    try:
        client = _Client(sock, url.host, url.port, tls if url.implicit_tls else None)
        if not url.implicit_tls and not plain:
            _start_tls(client, url.host, tls)
        _login(client, *credentials)
    except BaseException:
        if client is not None:
            with contextlib.suppress(OSError):
                client.shutdown()  # the TLS socket, when TLS had started
        sock.close()
        raise
    return _Session(client, kill_switch)


def _start_tls(client: _Client, host: str, tls: ssl.SSLContext) -> None:
    if "STARTTLS" not in client.capabilities:
        raise MailTLSError(
            f"the mail server {host} does not offer STARTTLS: use imaps:// (port 993), or "
            f"tls=off if the server is on a private network listed in {ALLOWLIST_SETTING}"
        )
    client.starttls(tls)


def _server_text(error: imaplib.IMAP4.error) -> str:
    said = error.args[0] if error.args else ""
    return said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)


def _login(client: _Client, user: str, password: str) -> None:
    try:
        if user.isascii() and password.isascii():
            client.login(_quote(user), password)
        else:  # LOGIN is ASCII-only in imaplib; SASL PLAIN carries UTF-8
            client.authenticate("PLAIN", lambda _challenge: f"\0{user}\0{password}".encode())
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        said = _scrub(_server_text(exc), password)
        raise MailLoginRefused(
            f"the mail server refused the login for {user}" + (f" ({said})" if said else "")
        ) from None


async def connect(
    url: str | MailboxURL,
    user: str | None,
    password: str,
    *,
    policy: AddressPolicy,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-step bound, applied inside)
    allow_plain: bool = False,
    tls_context: ssl.SSLContext | None = None,
) -> MailboxReader:
    """Connect, secure and log in to the server of ``url``; every step within ``timeout``.

    ``user`` is used when the URL names none (the secret's stored user name).
    ``allow_plain`` (the ``tls=off`` option) skips STARTTLS; it is honoured only for
    ``imap://`` and only to hosts or addresses listed in CHECK_ALLOWLIST.
    ``tls_context`` replaces the system's trust store (tests use their own CA).
    """
    parsed = url if isinstance(url, MailboxURL) else parse_mailbox_url(url)
    login_user = _login_user(parsed, user)
    if allow_plain and parsed.implicit_tls:
        raise MailAddressError("tls=off goes with imap://, not imaps:// (which is always TLS)")
    tls = tls_context or ssl.create_default_context()
    sock = await _connect_judged(parsed, policy, timeout, allow_plain)
    sock.setblocking(True)
    sock.settimeout(timeout)
    # A second handle on the connection: shutting it down from the event loop wakes the
    # worker thread even after TLS has wrapped (and detached) the original socket object.
    kill_switch = sock.dup()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap")
    step = "logging in" if parsed.implicit_tls or allow_plain else "starting TLS and logging in"

    def kill() -> None:
        with contextlib.suppress(OSError):
            kill_switch.shutdown(socket.SHUT_RDWR)

    try:
        session = await _in_thread(
            executor, step, parsed.host, timeout, password, kill,
            _open_session, sock, kill_switch, parsed, tls, allow_plain, (login_user, password),
        )  # fmt: skip
    except BaseException:
        kill()
        # The thread may still be reading: let it see the shut socket and end first.
        await asyncio.to_thread(executor.shutdown)
        sock.close()
        kill_switch.close()
        raise
    _log.debug("connected to %s:%s as %s", parsed.host, parsed.port, login_user)
    return MailboxReader(session, executor, parsed.host, timeout, password)


async def check_server_address(
    url: MailboxURL,
    policy: AddressPolicy,
    *,
    plain: bool = False,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (bounds the DNS look-up only)
) -> None:
    """Refuse, as `connect` would, a server the policy blocks, before any trigger is saved.

    An IP literal is judged at once. A host name is judged when a run connects (as
    other URLs are), except with ``plain`` (``tls=off``): the password would then cross
    the network in clear, so the host must be in CHECK_ALLOWLIST by name, or resolve
    only to allowlisted addresses. Raises `MailBlocked` or `MailConnectError`.
    """
    if plain and url.implicit_tls:
        raise MailAddressError("tls=off goes with imap://, not imaps:// (which is always TLS)")
    literal = _literal_address(url.host)
    if literal is None and not plain:
        return
    if literal is None and policy.allows_host(url.host):
        return
    if literal is not None:
        family = socket.AF_INET6 if ":" in literal else socket.AF_INET
        infos: list[_AddrInfo] = [(family, (literal, url.port))]
    else:
        try:
            async with asyncio.timeout(timeout):
                infos = await _resolve(url.host, url.port)
        except TimeoutError:
            raise MailConnectError(f"could not find the mail server {url.host} in time") from None
    _judged(url.host, infos, policy, plain)


def _literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def _connect_judged(
    url: MailboxURL, policy: AddressPolicy, seconds: float, plain: bool
) -> socket.socket:
    try:
        async with asyncio.timeout(seconds):
            addresses = _judged(url.host, await _resolve(url.host, url.port), policy, plain)
            return await _connect_first(url.host, url.port, addresses)
    except TimeoutError:
        raise MailTimeout(
            f"could not connect to {url.host} port {url.port} within {seconds:g} s"
        ) from None
