"""Reading mailboxes from a real IMAP server (pymap, in this process, on a loopback port)."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Secret
from bot.mail.imap import (
    MailAddressError,
    MailBlocked,
    MailboxMissing,
    MailboxURL,
    MailConnectError,
    MailError,
    MailLoginRefused,
    MailTimeout,
    MailTLSError,
    connect,
    parse_mailbox_url,
)
from bot.mail.message import parse_message
from bot.mail.poll import MailSource, poll_mailbox
from bot.mail.watch import Position
from bot.net import AddressPolicy
from tests.imap_server import SEEN, ImapServer, TestTLS

USER = "support@example.com"
PASSWORD = "correct-horse-battery-staple"
FIXTURES = Path(__file__).parent / "fixtures" / "email"
LOOPBACK = AddressPolicy.from_allowlist(["127.0.0.1"])
TIMEOUT = 10.0


def mail(subject: str, body: str = "Hello.", sender: str = "ada@example.org") -> bytes:
    return (
        f"From: Ada <{sender}>\r\nTo: {USER}\r\nSubject: {subject}\r\n"
        f"Date: Tue, 04 Mar 2025 10:15:00 +0000\r\nMessage-ID: <{abs(hash(subject))}@x>\r\n"
        f"\r\n{body}\r\n"
    ).encode()


@pytest.fixture(scope="module")
def tls() -> TestTLS:
    return TestTLS.make()


@pytest.fixture
async def server(tls: TestTLS) -> AsyncIterator[ImapServer]:
    async with ImapServer({USER: PASSWORD}, ("INBOX", "Archive"), tls=tls) as running:
        yield running


def source(server: ImapServer, mailbox: str = "INBOX", **options: object) -> MailSource:
    url = f"imap://support%40example.com@localhost:{server.port}/{mailbox}"
    return MailSource(url, None, Secret(PASSWORD), timeout=TIMEOUT, **options)  # type: ignore[arg-type]


async def poll(
    server: ImapServer,
    tls: TestTLS,
    stored: Position | None,
    mailbox: str = "INBOX",
    **options: object,
) -> tuple[Position, list[str], str | None, int]:
    result = await poll_mailbox(
        source(server, mailbox, **options),
        stored,
        policy=LOOPBACK,
        tls_context=tls.client_context(),
    )
    subjects = [read.message.subject for read in result.messages]
    return result.position, subjects, result.notice, result.skipped


def sent_after_login(server: ImapServer) -> list[str]:
    """The commands a client sent after LOGIN, without their tags."""
    lines = [line.split(" ", 1)[-1] for line in server.commands()]
    return lines[next(i for i, line in enumerate(lines) if line.startswith("LOGIN")) + 1 :]


# --- the watch against the server ------------------------------------------------------------


async def test_first_run_records_the_position_without_reading_any_message(
    server: ImapServer, tls: TestTLS
) -> None:
    for n in range(5):
        await server.append(USER, "INBOX", mail(f"old {n}"))
    server.forget_commands()
    position, subjects, notice, _ = await poll(server, tls, None)
    inbox = await server.mailbox(USER)
    assert position == Position(inbox.uid_validity, 105)
    assert subjects == []
    assert notice is None
    assert sent_after_login(server) == ['EXAMINE "INBOX"', "LOGOUT"]


async def test_each_new_message_is_read_once_oldest_first(server: ImapServer, tls: TestTLS) -> None:
    await server.append(USER, "INBOX", mail("before"))
    position, *_ = await poll(server, tls, None)
    for subject in ("first", "second", "third"):
        await server.append(USER, "INBOX", mail(subject))
    position, subjects, _, _ = await poll(server, tls, position)
    assert subjects == ["first", "second", "third"]
    server.forget_commands()
    again, subjects, _, _ = await poll(server, tls, position)
    assert (again, subjects) == (position, [])
    # UIDNEXT had not moved, so the second run did not even search
    assert sent_after_login(server) == ['EXAMINE "INBOX"', "LOGOUT"]


async def test_reading_marks_nothing_seen(server: ImapServer, tls: TestTLS) -> None:
    position, *_ = await poll(server, tls, None)
    uids = [await server.append(USER, "INBOX", mail(f"m{n}")) for n in range(3)]
    server.forget_commands()
    _, subjects, _, _ = await poll(server, tls, position)
    assert subjects == ["m0", "m1", "m2"]
    assert await server.flags(USER) == {uid: frozenset() for uid in uids}
    sent = sent_after_login(server)
    assert all(not line.startswith(("SELECT", "STORE", "UID STORE")) for line in sent)
    assert sum("BODY.PEEK[]" in line for line in sent) == 3


def _fetch_without_peek(port: int, password: str) -> None:
    client = imaplib.IMAP4("127.0.0.1", port, timeout=TIMEOUT)
    try:
        client.login(USER, password)
        client.select("INBOX")
        client.fetch("1", "(BODY[])")
    finally:
        client.logout()


async def test_the_seen_check_can_fail(server: ImapServer) -> None:
    """Control for the test above: a fetch without PEEK does set \\Seen on this server."""
    uid = await server.append(USER, "INBOX", mail("read me"))
    await asyncio.to_thread(_fetch_without_peek, server.port, PASSWORD)
    assert await server.flags(USER) == {uid: frozenset({SEEN})}


async def test_latest_posts_the_newest_once(server: ImapServer, tls: TestTLS) -> None:
    for n in range(6):
        await server.append(USER, "INBOX", mail(f"m{n}"))
    position, subjects, _, _ = await poll(server, tls, None, latest=2)
    assert subjects == ["m4", "m5"]
    _, subjects, _, _ = await poll(server, tls, position, latest=2)
    assert subjects == []


async def test_a_new_uidvalidity_rebaselines_with_one_notice(
    server: ImapServer, tls: TestTLS
) -> None:
    await server.append(USER, "Archive", mail("kept"))
    position, *_ = await poll(server, tls, None, mailbox="Archive")
    new_validity = await server.reset_uidvalidity(USER, "Archive")
    for n in range(3):
        await server.append(USER, "Archive", mail(f"refilled {n}"))
    rebased, subjects, notice, _ = await poll(server, tls, position, mailbox="Archive")
    assert rebased == Position(new_validity, 103)
    assert subjects == []
    assert notice is not None
    assert "renumbered the mailbox Archive" in notice
    assert "the 3 messages in it are not posted" in notice
    await server.append(USER, "Archive", mail("after"))
    _, subjects, notice, _ = await poll(server, tls, rebased, mailbox="Archive")
    assert (subjects, notice) == (["after"], None)


async def test_a_flood_reads_the_newest_and_counts_the_rest(
    server: ImapServer, tls: TestTLS
) -> None:
    position, *_ = await poll(server, tls, None)
    await server.seed(USER, "INBOX", [mail(f"m{n}") for n in range(30)])
    result = await poll_mailbox(
        source(server), position, policy=LOOPBACK, tls_context=tls.client_context(), fetch_limit=5
    )
    assert [read.message.subject for read in result.messages] == [f"m{n}" for n in range(25, 30)]
    assert result.skipped == 25
    assert result.position.last_uid == 130


async def test_a_message_over_the_size_limit_is_summarised_from_its_headers(
    server: ImapServer, tls: TestTLS
) -> None:
    position, *_ = await poll(server, tls, None)
    await server.append(USER, "INBOX", mail("big", body="x" * 5_000))
    await server.append(USER, "INBOX", mail("small"))
    server.forget_commands()
    result = await poll_mailbox(
        source(server, max_bytes=2_000), position, policy=LOOPBACK, tls_context=tls.client_context()
    )
    big, small = (read.message for read in result.messages)
    assert (big.subject, big.text, big.from_address) == ("big", "", "ada@example.org")
    assert big.size > 5_000
    assert big.problems == (
        "the message is 0.0 MB, over the 0.0 MB limit: only its headers were read",
    )
    assert (small.subject, small.text, small.problems) == ("small", "Hello.", ())
    sent = sent_after_login(server)
    assert any("BODY.PEEK[HEADER]" in line for line in sent)
    assert sum("BODY.PEEK[]" in line for line in sent) == 1


async def test_real_messages_arrive_byte_for_byte(server: ImapServer, tls: TestTLS) -> None:
    files = sorted(FIXTURES.glob("*.eml"))
    uids = [await server.append(USER, "INBOX", path.read_bytes()) for path in files]
    reader = await connect(
        source(server).url, None, PASSWORD, policy=LOOPBACK, timeout=TIMEOUT,
        tls_context=tls.client_context(),
    )  # fmt: skip
    async with reader:
        status = await reader.examine()
        assert status.exists == len(files)
        assert await reader.uids_after(uids[-1]) == []  # the "*" quirk is filtered out
        assert await reader.uids_after(uids[-3]) == uids[-2:]
        assert await reader.newest_uids(2) == uids[-2:]
        sizes = await reader.fetch_sizes(uids)
        for uid, path in zip(uids, files, strict=True):
            fetched = await reader.fetch_message(uid, 10_000_000, sizes[uid])
            assert fetched is not None
            assert fetched.raw == path.read_bytes()
            assert fetched.complete
            last_read = parse_message(fetched.raw)
    assert last_read.text == "Hello Mikel"  # raw_email_simple is the last file


async def test_a_message_deleted_meanwhile_is_skipped(server: ImapServer, tls: TestTLS) -> None:
    reader = await connect(
        source(server).url, None, PASSWORD, policy=LOOPBACK, timeout=TIMEOUT,
        tls_context=tls.client_context(),
    )  # fmt: skip
    async with reader:
        await reader.examine()
        assert await reader.fetch_message(4242, 1_000) is None


async def test_a_mailbox_name_outside_ascii(tls: TestTLS) -> None:
    async with ImapServer({USER: PASSWORD}, ("INBOX", "Café/Équipe"), tls=tls) as server:
        await server.seed(USER, "Café/Équipe", [mail("bonjour")])
        position, *_ = await poll(server, tls, None, mailbox="Caf%C3%A9/%C3%89quipe")
    assert position.last_uid == 101


async def test_user_name_from_the_secret_and_a_non_ascii_password(tls: TestTLS) -> None:
    async with ImapServer({USER: "pässwörd"}, tls=tls) as server:
        reader = await connect(
            f"imap://localhost:{server.port}", USER, "pässwörd", policy=LOOPBACK,
            timeout=TIMEOUT, tls_context=tls.client_context(),
        )  # fmt: skip
        async with reader:
            assert (await reader.examine()).exists == 0
        assert any(line.endswith("AUTHENTICATE PLAIN") for line in server.commands())


# --- TLS --------------------------------------------------------------------------------------


async def test_starttls_is_used_on_imap(server: ImapServer, tls: TestTLS) -> None:
    await poll(server, tls, None)
    sent = [line.split(" ", 1)[-1] for line in server.commands()]
    assert sent.index("STARTTLS") < next(i for i, line in enumerate(sent) if "LOGIN" in line)


async def test_implicit_tls_on_imaps(tls: TestTLS) -> None:
    async with ImapServer({USER: PASSWORD}, tls=tls, implicit_tls=True) as server:
        await server.append(USER, "INBOX", mail("over tls"))
        for host in ("localhost", "127.0.0.1"):  # a name, and an IP in the certificate
            reader = await connect(
                f"imaps://support%40example.com@{host}:{server.port}/INBOX", None, PASSWORD,
                policy=LOOPBACK, timeout=TIMEOUT, tls_context=tls.client_context(),
            )  # fmt: skip
            async with reader:
                assert (await reader.examine()).exists == 1
        assert "STARTTLS" not in " ".join(server.commands())


async def connect_error(url: str, **options: object) -> MailError:
    options.setdefault("policy", LOOPBACK)
    options.setdefault("timeout", TIMEOUT)
    with pytest.raises(MailError) as caught:
        reader = await connect(url, None, PASSWORD, **options)  # type: ignore[arg-type]
        await reader.logout()
    return caught.value


async def test_a_certificate_for_another_host_is_refused(tls: TestTLS) -> None:
    other = TestTLS.make(hosts=("mail.example.net",))
    async with ImapServer({USER: PASSWORD}, tls=other, implicit_tls=True) as server:
        error = await connect_error(
            f"imaps://u@localhost:{server.port}/", tls_context=other.client_context()
        )
    assert isinstance(error, MailTLSError)
    assert error.reason == (
        "the mail server's TLS certificate is not valid for localhost (it names another host)"
    )


async def test_a_certificate_from_an_unknown_authority_is_refused(server: ImapServer) -> None:
    error = await connect_error(f"imap://u@localhost:{server.port}/")  # the system's CAs
    assert isinstance(error, MailTLSError)
    assert error.reason.startswith("the TLS certificate of localhost is not trusted (")
    assert server.accepted == 1
    assert not any("LOGIN" in line for line in server.commands())  # no password was sent


async def test_a_server_without_starttls_is_refused_unless_tls_off(tls: TestTLS) -> None:
    async with ImapServer({USER: PASSWORD}) as server:  # no TLS at all
        url = f"imap://support%40example.com@localhost:{server.port}/"
        error = await connect_error(url, tls_context=tls.client_context())
        assert isinstance(error, MailTLSError)
        assert error.reason.startswith("the mail server localhost does not offer STARTTLS")
        assert not any("LOGIN" in line for line in server.commands())
        reader = await connect(url, None, PASSWORD, policy=LOOPBACK, allow_plain=True)
        await reader.logout()


async def test_plain_imap_needs_the_allowlist(server: ImapServer) -> None:
    url = f"imap://u@localhost:{server.port}/"
    public_only = AddressPolicy.from_allowlist(["192.0.2.0/24"])
    error = await connect_error(url, allow_plain=True, policy=public_only)
    assert isinstance(error, MailBlocked)
    assert error.reason == (
        "plain IMAP (tls=off) sends the password unencrypted, so it is allowed only to hosts "
        "in CHECK_ALLOWLIST, and localhost is not there"
    )
    tls_on_imaps = await connect_error(f"imaps://u@localhost:{server.port}/", allow_plain=True)
    assert isinstance(tls_on_imaps, MailAddressError)
    assert server.accepted == 0


# --- refusals and failures --------------------------------------------------------------------


async def test_a_wrong_password_is_named_and_never_shown(
    server: ImapServer, tls: TestTLS, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    wrong = "Tr0ub4dor&3-wrong"
    with pytest.raises(MailLoginRefused) as caught:
        await connect(
            source(server).url, None, wrong, policy=LOOPBACK, timeout=TIMEOUT,
            tls_context=tls.client_context(),
        )  # fmt: skip
    error = caught.value
    assert error.reason.startswith("the mail server refused the login for support@example.com")
    assert error.__cause__ is None and error.__suppress_context__
    # (the test server's own log shows the LOGIN line, as servers do; ours must not)
    our_log = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot"))
    for text in (error.reason, str(error), repr(error), our_log):
        assert wrong not in text
        assert PASSWORD not in text


async def test_a_missing_mailbox_is_named(server: ImapServer, tls: TestTLS) -> None:
    with pytest.raises(MailboxMissing) as caught:
        await poll(server, tls, None, mailbox="Nope")
    assert caught.value.reason.startswith("the mailbox 'Nope' cannot be opened on localhost")


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("10.1.2.3", "10.1.2.3 is a private address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address (cloud metadata)"),
        ("[::1]", "::1 is a loopback address"),
    ],
)
async def test_private_addresses_are_refused_before_connecting(host: str, why: str) -> None:
    error = await connect_error(f"imaps://u@{host}/", policy=AddressPolicy())
    assert isinstance(error, MailBlocked)
    assert why in error.reason
    assert "CHECK_ALLOWLIST" in error.reason


async def test_a_host_name_that_resolves_to_loopback_is_refused(server: ImapServer) -> None:
    error = await connect_error(f"imap://u@localhost:{server.port}/", policy=AddressPolicy())
    assert isinstance(error, MailBlocked)
    assert error.reason.startswith("refused: localhost resolves only to blocked addresses (")
    assert server.accepted == 0


async def test_a_server_that_says_nothing_times_out() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()  # until the client gives up

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        error = await connect_error(f"imaps://u@127.0.0.1:{port}/", timeout=0.5)
    finally:
        for writer in accepted:
            writer.close()
        listener.close()
        await listener.wait_closed()
    assert isinstance(error, MailTimeout)
    assert error.reason == "the mail server 127.0.0.1 did not answer within 0.5 s (logging in)"


async def test_a_server_that_trickles_is_cut_off_by_the_deadline() -> None:
    """One byte at a time never trips the socket timeout; the step's deadline still holds."""
    writers: list[asyncio.StreamWriter] = []

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while not writer.is_closing() and not reader.at_eof():
                writer.write(b"*")
                await writer.drain()
                await asyncio.sleep(0.05)

    listener = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        error = await connect_error(f"imap://u@127.0.0.1:{port}/", timeout=1.0)
    finally:
        for writer in writers:
            writer.close()
        listener.close()
        await listener.wait_closed()
    assert isinstance(error, MailTimeout)
    assert error.reason == (
        "the mail server 127.0.0.1 did not answer within 1 s (starting TLS and logging in)"
    )


async def test_a_closed_port_is_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await connect_error(f"imap://u@127.0.0.1:{port}/")
    assert isinstance(error, MailConnectError)
    assert (
        error.reason
        == f"could not connect to 127.0.0.1 port {port} (127.0.0.1: connection refused)"
    )


async def test_no_user_name_anywhere() -> None:
    error = await connect_error("imaps://imap.example.com/INBOX")
    assert isinstance(error, MailAddressError)
    assert error.reason.startswith("no user name for imap.example.com")


# --- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "imaps://support%40example.com@imap.example.com/INBOX",
            MailboxURL("imap.example.com", 993, "support@example.com", "INBOX", True),
        ),
        (
            "imap://imap.example.com",
            MailboxURL("imap.example.com", 143, None, "INBOX", False),
        ),
        (
            "IMAPS://bob@[2001:db8::1]:1993/Support/Tickets%20new",
            MailboxURL("2001:db8::1", 1993, "bob", "Support/Tickets new", True),
        ),
    ],
)
def test_parse_mailbox_url(url: str, expected: MailboxURL) -> None:
    assert parse_mailbox_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://example.com/", "a mailbox URL starts with imaps://"),
        ("imaps://bob:hunter2@example.com/", "the mailbox URL must not contain a password"),
        ("imaps://example.com/INBOX?tls=off", "a mailbox URL has no ?query"),
        ("imaps://example.com:99999/", "the port in the mailbox URL is not valid"),
        ("imaps:///INBOX", "the mailbox URL has no host name"),
    ],
)
def test_bad_mailbox_urls(url: str, reason: str) -> None:
    with pytest.raises(MailAddressError) as caught:
        parse_mailbox_url(url)
    assert caught.value.reason.startswith(reason)
    assert "hunter2" not in caught.value.reason
