"""A real IMAP server for tests: pymap's in-memory ("dict") backend, in this process.

    async with ImapServer(users={"support@example.com": "s3cret"}) as server:
        uid = await server.append("support@example.com", "INBOX", raw_bytes)
        ...  # connect to server.host, server.port
        assert await server.flags("support@example.com", "INBOX") == {uid: frozenset()}

pymap is embedded rather than run as a subprocess: its `IMAPServer` callable serves one
connection from an asyncio stream pair, so we listen with our own `asyncio.start_server`
on 127.0.0.1 port 0 (pymap's own service cannot report the port it bound, and it has no
implicit TLS). Connection tasks are tracked and cancelled on exit, so nothing leaks.

Messages go in with a real IMAP ``APPEND`` (stdlib imaplib in a thread, a different client
from the one under test); flags are read from the server's own store, so a test sees
exactly what the server recorded. `seed` appends in-process for bulk set-up (benchmarks).

`TestTLS` makes a throw-away CA and a server certificate signed by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import imaplib
import ipaddress
import logging
import ssl
import tempfile
import uuid
from argparse import Namespace
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from proxyprotocol.result import ProxyResultLocal
from proxyprotocol.sock import SocketInfo
from pymap.backend.dict import Config, DictBackend, Login
from pymap.backend.dict.filter import FilterSet
from pymap.backend.dict.mailbox import MailboxData, MailboxSet
from pymap.concurrent import Subsystem
from pymap.imap import IMAPServer
from pymap.parsing.message import AppendMessage
from pymap.parsing.specials.flag import Flag
from pymap.user import Passwords, UserMetadata
from pysasl.hashing import BuiltinHash

LOCALHOST = "127.0.0.1"
_APPEND_TIMEOUT = 30.0


# --- TLS material -------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(
        now + dt.timedelta(days=1)
    )


@dataclass(frozen=True)
class TestTLS:
    """A CA and one server certificate it signed, in PEM."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    __test__ = False  # not a pytest test class

    @classmethod
    def make(cls, hosts: Sequence[str] = ("localhost", LOCALHOST)) -> TestTLS:
        """A fresh CA and a server certificate for ``hosts`` (names or IP addresses)."""
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            _validity(x509.CertificateBuilder())
            .subject_name(_name("chatops-bot test CA"))
            .issuer_name(_name("chatops-bot test CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            _validity(x509.CertificateBuilder())
            .subject_name(_name(hosts[0]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(_san(hosts), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        return cls(ca_cert.public_bytes(pem), cert.public_bytes(pem), _pem_key(key))

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA (and verifies host names)."""
        return ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))

    def server_context(self) -> ssl.SSLContext:
        """A server context presenting the certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # load_cert_chain reads only files; they live just long enough to be read.
        with tempfile.TemporaryDirectory() as folder:
            cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
            cert.write_bytes(self.cert_pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        return context


# --- the server ---------------------------------------------------------------------------


class _QuietConfig(Config):
    """pymap's dict config without a DNS lookup for the greeting."""

    @property
    def greeting(self) -> bytes:
        return b"Server ready (test)"


def _pymap_args() -> Namespace:
    return Namespace(passlib_cfg=None, proxy_protocol=None, inherited_sockets=None)


def _config(tls: TestTLS | None, starttls: bool) -> _QuietConfig:
    return _QuietConfig(
        _pymap_args(),
        host=LOCALHOST,
        port=0,
        demo_data=False,
        demo_user="demouser",
        demo_password="demopass",
        ssl_context=tls.server_context() if tls else None,
        tls_enabled=starttls,
        # One PBKDF2 round: fast, and (unlike pysasl's Cleartext) fine with non-ASCII.
        hash_context=BuiltinHash(rounds=1),
        # CPU work and password checks on the loop: no thread pool to leak.
        cpu_subsystem=Subsystem.for_asyncio(),
        invalid_user_sleep=0.0,
        reject_dnsbl=False,
    )


class _CommandLog(logging.Handler):
    """Every command line pymap receives (pymap logs them at DEBUG as "<id> -->| line")."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "%s -->| %s" and isinstance(record.args, tuple):
            self.lines.append(str(record.args[1]).rstrip("\r\n"))


class ImapServer:
    """pymap (dict backend) on 127.0.0.1, port 0, as an async context manager.

    ``tls`` with ``implicit_tls=True`` serves TLS from the first byte (imaps); with
    ``starttls=True`` (the default) plain connections may upgrade with STARTTLS.
    `commands` lists the command lines clients sent (as the server read them).
    """

    def __init__(
        self,
        users: Mapping[str, str],
        mailboxes: Sequence[str] = ("INBOX",),
        *,
        tls: TestTLS | None = None,
        implicit_tls: bool = False,
        starttls: bool = True,
    ) -> None:
        self._users = dict(users)
        self._mailboxes = tuple(mailboxes)
        self._tls = tls
        self._implicit_tls = implicit_tls
        self._config = _config(tls, starttls and tls is not None)
        self._login = Login(self._config)
        self._imap = IMAPServer(DictBackend(self._login, self._config).login, self._config)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._log = _CommandLog()
        self._pymap_logger = logging.getLogger("pymap.imap")
        self._previous_level = self._pymap_logger.level
        self.host = LOCALHOST
        self.port = 0
        self.accepted = 0  # connections accepted, to prove that none was made

    async def __aenter__(self) -> Self:
        for user, password in self._users.items():
            await self._add_user(user, password)
        self._pymap_logger.addHandler(self._log)
        self._pymap_logger.setLevel(logging.DEBUG)
        ssl_context = self._tls.server_context() if self._tls and self._implicit_tls else None
        self._server = await asyncio.start_server(self._serve, LOCALHOST, 0, ssl=ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        self._pymap_logger.removeHandler(self._log)
        self._pymap_logger.setLevel(self._previous_level)

    async def _add_user(self, user: str, password: str) -> None:
        hashed = await Passwords(self._config).hash_password(password)
        metadata = UserMetadata(self._config, user, password=hashed)
        self._login.users_dict[user] = metadata
        mailbox_set = MailboxSet()
        for name in self._mailboxes:
            if name.upper() != "INBOX":
                await mailbox_set.add_mailbox(name)
        self._config.set_cache[user] = (mailbox_set, FilterSet())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.accepted += 1
        try:
            info = SocketInfo.get(writer, ProxyResultLocal(), unique_id=uuid.uuid4().bytes)
            with contextlib.suppress(ConnectionError):
                await self._imap(reader, writer, info)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    # --- helpers for tests ---------------------------------------------------------------

    def commands(self) -> list[str]:
        """The lines received so far, oldest first (APPENDed message text included)."""
        return list(self._log.lines)

    def forget_commands(self) -> None:
        """Start `commands` afresh (after set-up, to see only what a test's code sent)."""
        self._log.lines.clear()

    def _mailbox_set(self, user: str) -> MailboxSet:
        return self._config.set_cache[user][0]

    async def mailbox(self, user: str, name: str = "INBOX") -> MailboxData:
        """The server's own record of a mailbox."""
        return await self._mailbox_set(user).get_mailbox(name)

    async def append(self, user: str, mailbox: str, raw: bytes, flags: Sequence[str] = ()) -> int:
        """APPEND ``raw`` over IMAP as ``user``; returns the new message's UID."""
        return await asyncio.wait_for(
            asyncio.to_thread(self._append_blocking, user, mailbox, raw, flags), _APPEND_TIMEOUT
        )

    def _client(self) -> imaplib.IMAP4:
        if self._tls and self._implicit_tls:
            return imaplib.IMAP4_SSL(
                "localhost", self.port, ssl_context=self._tls.client_context(), timeout=10
            )
        return imaplib.IMAP4(LOCALHOST, self.port, timeout=10)

    def _append_blocking(self, user: str, mailbox: str, raw: bytes, flags: Sequence[str]) -> int:
        client = self._client()
        try:
            client.login(user, self._users[user])
            flag_list = f"({' '.join(flags)})" if flags else None
            typ, data = client.append(_quoted(mailbox), flag_list, None, raw)
            assert typ == "OK", data
            # UIDPLUS: the tagged OK carries "[APPENDUID <uidvalidity> <uid>]", which
            # imaplib files under the code's name.
            _, codes = client.response("APPENDUID")
            last = codes[-1] if codes else None
            assert isinstance(last, bytes), codes
            return int(last.split()[-1])
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    async def seed(self, user: str, mailbox: str, messages: Iterable[bytes]) -> None:
        """Append many messages in-process (no IMAP round trips), for bulk set-up."""
        target = await self.mailbox(user, mailbox)
        for raw in messages:
            await target.append(AppendMessage(raw))

    async def flags(self, user: str, mailbox: str = "INBOX") -> dict[int, frozenset[str]]:
        """Each message's stored flags, by UID, as the server recorded them."""
        target = await self.mailbox(user, mailbox)
        flags: dict[int, frozenset[str]] = {}
        async for message in target.messages():
            flags[message.uid] = frozenset(str(flag) for flag in message.permanent_flags)
        return flags

    async def reset_uidvalidity(self, user: str, mailbox: str = "INBOX") -> int:
        """Replace the mailbox with a new, empty one (a new UIDVALIDITY); returns it."""
        mailbox_set = self._mailbox_set(user)
        old = (await self.mailbox(user, mailbox)).uid_validity
        while (await self.mailbox(user, mailbox)).uid_validity == old:
            await self._recreate(mailbox_set, mailbox)
        return (await self.mailbox(user, mailbox)).uid_validity

    @staticmethod
    async def _recreate(mailbox_set: MailboxSet, mailbox: str) -> None:
        if mailbox.upper() == "INBOX":
            # Renaming INBOX moves its messages away and leaves a fresh INBOX (RFC 3501).
            await mailbox_set.rename_mailbox("INBOX", f"Old-{uuid.uuid4().hex[:8]}")
        else:
            await mailbox_set.delete_mailbox(mailbox)
            await mailbox_set.add_mailbox(mailbox)


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


SEEN = str(Flag(b"\\Seen"))
