"""Email triggers end to end: a real IMAP server (pymap, on a loopback port, STARTTLS or
implicit TLS with a certificate made for the test), the bot on a real port driven by
signed slash commands and form submissions, and the fake Slack recording every post.

Mail goes in with IMAP APPEND: the published sample emails of tests/fixtures/email (see
its README for their provenance) and messages built here with `email.message` for each
MIME shape the issue names. Runs are driven by calling the runner at the trigger's next
run time while a fake clock stands still, so nothing waits for a real schedule.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.devtools.fake_slack import FakeSlack
from bot.models import AuditEntry, Trigger
from bot.triggers.email import stored_position
from tests.conftest import RunningBot, fake_clock, until_bots_idle
from tests.imap_server import ImapServer, TestTLS
from tests.test_conversation import submission, trigger_values
from tests.test_triggers_flow import run_due, trigger_named

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
USER = "support@example.com"
PASSWORD = "imap-pass-7Hq2Zx9wK"
WRONG = "not-the-pass-3Rt8Lm"
SECRET = "support-mail"
FIXTURES = Path(__file__).parent / "fixtures" / "email"
SALES, FINANCE, FILES, OPS = "C0100", "C0101", "C0102", "C0002"


# -- the mail server and the bot ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tls() -> TestTLS:
    return TestTLS.make()


@pytest.fixture
async def server(tls: TestTLS) -> AsyncIterator[ImapServer]:
    async with ImapServer({USER: PASSWORD}, ("INBOX", "Archive"), tls=tls) as running:
        yield running


async def start(
    start_bot: Any, fake_slack: FakeSlack, tls: TestTLS | None, clock: FakeClock, **settings: Any
) -> RunningBot:
    """A bot that trusts the test CA (as a bot would trust a mail server's real one)."""
    running: RunningBot = await start_bot(clock=clock, **settings)
    assert running.bot.triggers.mail is not None
    running.bot.triggers.mail.tls_context = tls.client_context() if tls else None
    for channel, name in ((SALES, "sales"), (FINANCE, "finance"), (FILES, "files")):
        fake_slack.add_channel(channel, name)
    return running


def mailbox_url(server: ImapServer, mailbox: str = "INBOX", scheme: str = "imap") -> str:
    return f"{scheme}://localhost:{server.port}/{mailbox}"


async def store_secret(
    running: RunningBot, server: ImapServer, password: str = PASSWORD, user: str = "U0001"
) -> None:
    reply = await running.command(
        f"/secret set {SECRET} for localhost:{server.port} user={USER} {password}", user=user
    )
    assert f"Stored the secret *{SECRET}*" in reply, reply


async def add_watch(
    running: RunningBot, server: ImapServer, options: str = "", name: str = "support"
) -> str:
    return await running.command(
        f"/trigger add {name} every 5m email {mailbox_url(server)} auth=basic:{SECRET} "
        f"<#{OPS}|ops> {options}"
    )


async def watching(
    running: RunningBot, server: ImapServer, options: str = "", name: str = "support"
) -> None:
    await store_secret(running, server)
    reply = await add_watch(running, server, options, name)
    assert f"Added *{name}*" in reply, reply


async def run_once(running: RunningBot, clock: FakeClock, name: str = "support") -> None:
    await run_due(running, clock, name)
    await until_bots_idle(running)


# -- mail -------------------------------------------------------------------------------------------


def built(
    subject: str, body: str = "Hello.", sender: str = "Ada Lovelace <ada@example.org>"
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = USER
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2031, 1, 6, 9, 15, tzinfo=UTC))
    message["Message-ID"] = f"<{abs(hash((subject, body, sender)))}@example.org>"
    message.set_content(body)
    return message


def raw(message: EmailMessage) -> bytes:
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def deliver(server: ImapServer, *messages: bytes, mailbox: str = "INBOX") -> list[int]:
    return [await server.append(USER, mailbox, message) for message in messages]


def fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("*.eml"))


# -- what Slack saw ---------------------------------------------------------------------------------


def shown(args: dict[str, Any]) -> str:
    """A post's text and every text in its blocks."""
    texts = [str(args.get("text", ""))]
    blocks = args.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            texts.append(str(text.get("text", "")))
        for element in block.get("elements") or []:
            if isinstance(element, dict) and "text" in element:
                texts.append(str(element["text"]))
    return "\n".join(texts)


def posts(fake: FakeSlack, channel: str | None = None) -> list[str]:
    return [
        shown(call.args)
        for call in fake.calls_to("chat.postMessage")
        if channel is None or call.args.get("channel") == channel
    ]


def mail_posts(fake: FakeSlack, channel: str | None = None) -> list[str]:
    return [text for text in posts(fake, channel) if text.startswith("Email from")]


async def unchanged(server: ImapServer, before: dict[int, frozenset[str]]) -> None:
    """The mailbox is as it was (no flag added to any message, none moved or deleted; mail
    that arrived since has no flags), and the bot's commands were read-only: EXAMINE and
    BODY.PEEK, never SELECT, STORE, COPY, MOVE or EXPUNGE."""
    now = await server.flags(USER)
    assert {uid: now.get(uid) for uid in before} == before
    assert all(flags == frozenset() for uid, flags in now.items() if uid not in before)
    sent = [line.upper() for line in server.commands()]
    assert not any(
        word in line for line in sent for word in (" STORE ", " COPY ", " MOVE ", " EXPUNGE")
    )
    assert not any(" SELECT " in line for line in sent), "the mailbox must be opened read-only"
    fetches = [line for line in sent if " FETCH " in line]
    assert fetches and all("BODY[" not in line.replace("BODY.PEEK[", "") for line in fetches)
    assert not any("RFC822)" in line or "RFC822 " in line for line in fetches)


# -- the tests --------------------------------------------------------------------------------------


@BOTH
async def test_baseline_then_each_new_message_once_across_a_restart(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS
) -> None:
    old = await deliver(server, *(raw(built(f"old {n}")) for n in range(12)))
    await server.append(USER, "INBOX", raw(built("already read")), flags=("\\Seen",))
    before_flags = await server.flags(USER)
    clock = fake_clock()
    running = await start(start_bot, fake_slack, tls, clock)
    await watching(running, server)
    server.forget_commands()

    await run_once(running, clock)  # the baseline: the position, nothing posted
    assert posts(fake_slack) == []
    trigger = await trigger_named(running, "support")
    position = stored_position(trigger.state)
    assert position is not None and position.last_uid == max(old) + 1
    assert not any(
        " FETCH " in line.upper() and "BODY" in line.upper() for line in server.commands()
    )

    await deliver(server, (FIXTURES / "plain_emails.raw_email_simple.eml").read_bytes())
    await deliver(server, raw(built("Quarterly numbers", "See the attached.")))
    await run_once(running, clock)
    shown_now = mail_posts(fake_slack, OPS)
    assert len(shown_now) == 2
    assert "Testing outlook" in shown_now[0] and "mikel@nowhere.com" in shown_now[0]
    assert (
        "Quarterly numbers" in shown_now[1]
        and "Ada Lovelace &lt;ada@example.org&gt;" in shown_now[1]
    )
    assert "Mon 06 Jan 10:15 CET" in shown_now[1]  # the trigger's zone: the user's, Berlin
    assert "See the attached." in shown_now[1] and "no rule matched" in shown_now[1]

    await run_once(running, clock)  # nothing new: nothing posted
    await running.stop()
    running = await start(start_bot, fake_slack, tls, clock)
    await run_once(running, clock)  # after a restart: still nothing posted twice
    assert len(mail_posts(fake_slack)) == 2
    await deliver(server, raw(built("After the restart")))
    await run_once(running, clock)
    assert len(mail_posts(fake_slack)) == 3 and "After the restart" in mail_posts(fake_slack)[-1]
    await unchanged(server, before_flags)


async def test_latest_posts_the_newest_once(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS
) -> None:
    await deliver(server, *(raw(built(f"message {n}")) for n in range(6)))
    clock = fake_clock()
    running = await start(start_bot, fake_slack, tls, clock)
    await watching(running, server, "latest=2")
    await run_once(running, clock)
    shown_now = mail_posts(fake_slack)
    assert len(shown_now) == 2
    assert "message 4" in shown_now[0] and "message 5" in shown_now[1]
    await run_once(running, clock)
    assert len(mail_posts(fake_slack)) == 2


async def test_routing_rules_by_sender_subject_and_attachment(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS
) -> None:
    clock = fake_clock()
    running = await start(start_bot, fake_slack, tls, clock)
    await watching(running, server)
    # Slack sends "->" as "-&gt;"; the arrow may also be typed as →.
    added = await running.command(
        '/trigger route support from_domain == "bigcorp.com" -&gt; <#C0100|sales>'
    )
    assert "Added rule 1" in added, added
    await running.command(
        "/trigger route support subject matches “(?i)invoice|receipt” → <#C0101|finance>"
    )
    await running.command("/trigger route support has_attachment → <#C0102|files>")
    listed = await running.command("/trigger route support")
    assert listed.index('1. `from_domain == "bigcorp.com"`') < listed.index("2. `subject matches")
    assert "<#C0102>" in listed and "otherwise <#C0002>" in listed

    bad = await running.command(
        '/trigger route support subject matches "(unclosed" → <#C0100|sales>'
    )
    assert "not valid" in bad and "missing )" in bad
    unknown = await running.command('/trigger route support body == "x" → <#C0100|sales>')
    assert "`body`" in unknown and "`from_domain`" in unknown
    other = await running.command(
        '/trigger route support from == "x@y.z" → <#C0100|sales>', user="U0002"
    )
    assert "support" in other and "Added" not in other
    fake_slack.add_channel("G0200", "board", is_private=True, members=["U0009"])
    private = await running.command("/trigger route support size > 1 → <#G0200|board>")
    assert "private conversation you are not in" in private
    assert len((await running.command("/trigger route support")).splitlines()) == 4
    in_use = await running.command(f"/secret delete {SECRET}")
    assert "is used by trigger support" in in_use, in_use

    await run_once(running, clock)  # baseline
    invoice = built("Your invoice 2031-001", sender="Billing <billing@vendor.example>")
    big = built("Renewal (and an invoice)", sender="Buyer <buyer@bigcorp.com>")
    attached = built("Photos", sender="Friend <friend@example.net>")
    attached.add_attachment(
        b"\x89PNG" + b"x" * 2000, maintype="image", subtype="png", filename="beach.png"
    )
    plain = built("Hello there")
    await deliver(server, raw(invoice), raw(big), raw(attached), raw(plain))
    await run_once(running, clock)
    assert len(mail_posts(fake_slack, SALES)) == 1 and "Renewal" in mail_posts(fake_slack, SALES)[0]
    assert "rule 1: from_domain == &quot;bigcorp.com&quot;" in mail_posts(fake_slack, SALES)[0] or (
        'rule 1: from_domain == "bigcorp.com"' in mail_posts(fake_slack, SALES)[0]
    )
    (finance,) = mail_posts(fake_slack, FINANCE)
    assert "Your invoice 2031-001" in finance and "rule 2" in finance
    (files,) = mail_posts(fake_slack, FILES)
    assert "beach.png (2 KB)" in files and "rule 3" in files
    (rest,) = mail_posts(fake_slack, OPS)
    assert "Hello there" in rest and "no rule matched" in rest

    removed = await running.command("/trigger unroute support 1")
    assert "Removed rule 1" in removed and "1. `subject matches" in removed
    assert "no rule 9" in await running.command("/trigger unroute support 9")
    async with running.bot.db.sessions() as session:
        actions = (
            (
                await session.execute(
                    select(AuditEntry.action).where(col(AuditEntry.subject) == "trigger:support")
                )
            )
            .scalars()
            .all()
        )
    assert sum(action.startswith("added routing rule") for action in actions) == 3
    assert any(action.startswith("removed routing rule 1") for action in actions)


async def test_every_mime_shape_is_posted_with_what_could_be_read(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS
) -> None:
    hits: list[str] = []

    async def remote(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"GIF89a")

    app = web.Application()
    app.router.add_get("/{tail:.*}", remote)
    site_runner = web.AppRunner(app)
    await site_runner.setup()
    site = web.TCPSite(site_runner, "127.0.0.1", 0)
    await site.start()
    tracker = f"http://127.0.0.1:{site_runner.addresses[0][1]}"
    try:
        clock = fake_clock()
        running = await start(start_bot, fake_slack, tls, clock)
        await watching(running, server)
        await run_once(running, clock)
        shapes = built_shapes(tracker)
        samples = [path.read_bytes() for path in fixtures()]
        everything = [*shapes.values(), *samples]
        for start_at in range(0, len(everything), 10):  # at most 10 per run: one post each
            await deliver(server, *everything[start_at : start_at + 10])
            await run_once(running, clock)
        shown_all = mail_posts(fake_slack)
        assert len(shown_all) == len(everything)
        text = "\n".join(shown_all)
        assert "Plain text wins" in text and "<b>" not in text  # alternative: the text part
        assert "Straße – naïve café" in text  # quoted-printable UTF-8
        assert "Grüße aus München" in text  # RFC 2047 subject (ISO-8859-1, Q)
        assert "Zoë Ångström" in text  # RFC 2047 name (UTF-8, B)
        assert "Ça coûte 5 €" in text  # ISO-8859-1 body (declared), windows-1252 euro
        assert "“quoted” – it’s" in text  # windows-1252 smart quotes
        assert "Only HTML here" in text and "converted from HTML" in text
        assert "The new answer." in text and "the old question" not in text
        assert "-- \nAda" not in text and "Sent from my phone" not in text
        assert "report.pdf (5 KB)" in text  # base64 attachment, its decoded size
        assert "damaged" in text  # a broken message is posted with a note, not dropped
        assert "まみむめも" in text and "Another PDF with 🎉 Unicode chars in it 🍿" in text
        assert "the MIME structure is damaged" in text  # error_emails.missing_body.eml
        await asyncio.sleep(0)  # nothing was scheduled to fetch the images, but let it try
        assert hits == []  # remote images and links in HTML are never fetched
    finally:
        await site_runner.cleanup()


def built_shapes(tracker: str) -> dict[str, bytes]:
    alternative = built("Alternative", "Plain text wins")
    alternative.add_alternative("<p><b>HTML loses</b></p>", subtype="html")
    qp = EmailMessage()
    qp["From"], qp["To"], qp["Subject"] = "qp@example.org", USER, "Quoted-printable"
    qp.set_content("Straße – naïve café " * 3, cte="quoted-printable")
    encoded = built(
        "=?iso-8859-1?q?Gr=FC=DFe_aus_M=FCnchen?=",
        sender="=?utf-8?b?Wm/DqyDDhW5nc3Ryw7Zt?= <zoe@example.se>",
    )
    latin = (
        b"From: shop@example.fr\r\nTo: support@example.com\r\nSubject: Prix\r\n"
        b"Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "Ça coûte 5 ".encode("latin-1")
        + b"\x80\r\n"
    )
    cp1252 = (
        b"From: office@example.com\r\nTo: support@example.com\r\nSubject: Smart quotes\r\n"
        b"Content-Type: text/plain; charset=windows-1252\r\n\r\n"
        + "“quoted” – it’s".encode("cp1252")
        + b"\r\n"
    )
    html_only = EmailMessage()
    html_only["From"], html_only["To"], html_only["Subject"] = (
        "news@example.com",
        USER,
        "Newsletter",
    )
    html_only.set_content(
        f'<html><body><p>Only HTML here</p><img src="{tracker}/pixel.gif">'
        f'<a href="{tracker}/click">a link</a></body></html>',
        subtype="html",
    )
    reply = built(
        "Re: question",
        "The new answer.\n\nOn Mon, 5 Jan 2031 at 10:00, Bob wrote:\n> the old question\n\n-- \nAda\nSent from my phone",
    )
    attachment = built("With a PDF", "Report attached.")
    attachment.add_attachment(
        b"%PDF-1.4 " + b"0" * 5000, maintype="application", subtype="pdf", filename="report.pdf"
    )
    broken = (
        b"From: broken@example.com\r\nTo: support@example.com\r\nSubject: Broken\r\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n--XYZ\r\n'
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8g*d29y\r\n"
    )
    return {
        "alternative": raw(alternative),
        "quoted-printable": raw(qp),
        "rfc2047": raw(encoded),
        "iso-8859-1": latin,
        "windows-1252": cp1252,
        "html-only": raw(html_only),
        "reply": raw(reply),
        "attachment": raw(attachment),
        "malformed": broken,
    }


async def test_a_wrong_password_is_reported_once_then_recovers_once(
    start_bot,
    fake_slack: FakeSlack,
    server: ImapServer,
    tls: TestTLS,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = fake_clock()
    running = await start(start_bot, fake_slack, tls, clock)
    await store_secret(running, server, password=WRONG)
    assert "Added *support*" in await add_watch(running, server)
    for _ in range(3):
        await run_once(running, clock)
    (down,) = posts(fake_slack)
    assert "the mail server refused the login for support@example.com" in down
    await deliver(server, raw(built("Sent while the password was wrong")))
    await store_secret(running, server, password=PASSWORD)
    await run_once(running, clock)  # the first good run is the baseline: recovered, no mail
    await run_once(running, clock)
    said = posts(fake_slack)
    assert len(said) == 2 and "recovered" in said[1] and "refused the login" in said[1]
    await deliver(server, raw(built("Now it works")))
    await run_once(running, clock)
    assert "Now it works" in posts(fake_slack)[-1]
    methods = ("chat.postMessage", "chat.update", "chat.postEphemeral")
    everything = json.dumps([call.args for m in methods for call in fake_slack.calls_to(m)])
    history = await running.command("/trigger history support")
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("pymap"))
    for text in (everything, history, logged):
        assert PASSWORD not in text and WRONG not in text


async def test_a_renumbered_mailbox_is_rebaselined_with_a_notice(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS
) -> None:
    clock = fake_clock()
    running = await start(start_bot, fake_slack, tls, clock)
    await watching(running, server)
    await run_once(running, clock)
    await deliver(server, raw(built("before")))
    await run_once(running, clock)
    assert len(mail_posts(fake_slack)) == 1
    await server.reset_uidvalidity(USER)
    await deliver(server, *(raw(built(f"in the new mailbox {n}")) for n in range(5)))
    await run_once(running, clock)
    said = posts(fake_slack)
    assert len(said) == 2 and "UIDVALIDITY changed" in said[1] and "5 messages" in said[1]
    assert len(mail_posts(fake_slack)) == 1  # the rebuilt mailbox's mail is not a flood
    await deliver(server, raw(built("after the renumbering")))
    await run_once(running, clock)
    assert "after the renumbering" in mail_posts(fake_slack)[-1] and len(posts(fake_slack)) == 3


async def test_forty_new_messages_become_one_summary_per_channel(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS
) -> None:
    clock = fake_clock()
    running = await start(start_bot, fake_slack, tls, clock)
    await watching(running, server)
    await running.command('/trigger route support from_domain == "bigcorp.com" → <#C0100|sales>')
    await run_once(running, clock)
    before = await server.flags(USER)
    server.forget_commands()
    bigcorp = [raw(built(f"order {n}", sender=f"Buyer {n} <b{n}@bigcorp.com>")) for n in range(25)]
    others = [raw(built(f"question {n}")) for n in range(15)]
    mixed = [message for pair in zip(bigcorp[:15], others, strict=True) for message in pair]
    await deliver(server, *mixed, *bigcorp[15:])
    await run_once(running, clock)
    (sales,) = posts(fake_slack, SALES)
    (ops,) = posts(fake_slack, OPS)
    assert sales.startswith("25 new messages: order 0; order 1") and "b24@bigcorp.com" in sales
    assert ops.startswith("15 new messages: question 0") and "question 14" in ops
    assert mail_posts(fake_slack) == []
    await unchanged(server, before)


async def test_problems_are_reported_in_words(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS
) -> None:
    clock = fake_clock()
    running = await start(start_bot, fake_slack, None, clock)  # trusts only the system CAs
    await watching(running, server)
    await run_once(running, clock)
    assert "TLS certificate of localhost is not trusted" in posts(fake_slack)[-1]
    running.bot.triggers.mail.tls_context = tls.client_context()  # type: ignore[union-attr]

    await running.command(
        f"/trigger add missing every 5m email {mailbox_url(server, 'Nope')} auth=basic:{SECRET}"
    )
    await run_once(running, clock, "missing")
    assert "the mailbox 'Nope' cannot be opened" in posts(fake_slack)[-1]

    closed = await free_port()
    await running.command(f"/secret set closed for localhost:{closed} user={USER} {PASSWORD}")
    await running.command(
        f"/trigger add gone every 5m email imap://localhost:{closed}/ auth=basic:closed"
    )
    await run_once(running, clock, "gone")
    assert (
        "could not connect to localhost" in posts(fake_slack)[-1]
        and "refused" in posts(fake_slack)[-1]
    )

    async with ImapServer({USER: PASSWORD}, tls=tls, implicit_tls=True) as imaps:
        await running.command(f"/secret set tls for localhost:{imaps.port} user={USER} {PASSWORD}")
        reply = await running.command(
            f"/trigger add secure every 5m email imaps://localhost:{imaps.port}/ auth=basic:tls"
        )
        assert "Added *secure*" in reply, reply
        await run_once(running, clock, "secure")
        await deliver(imaps, raw(built("over implicit TLS")))
        await run_once(running, clock, "secure")
        assert "over implicit TLS" in mail_posts(fake_slack)[-1]


async def free_port() -> int:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    return port


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("imap://10.1.2.3/ auth=basic:support-mail tls=off", "plain IMAP (tls=off)"),
        ("imaps://localhost/ auth=basic:support-mail tls=off", "tls=off goes with imap://"),
        ("imaps://169.254.169.254/ auth=basic:support-mail", "link-local"),
        ("imaps://imap.example.com/INBOX", "auth=basic:NAME"),
        ("imaps://imap.example.com/INBOX auth=basic:nope", "no secret named `nope`"),
        (
            "imaps://imap.example.com/INBOX auth=basic:support-mail",
            "may not be sent to imap.example.com:993",
        ),
        ("imaps://imap.example.com/INBOX auth=bearer:support-mail", "must be basic:SECRET"),
        ("https://imap.example.com/", "imaps://"),
        ("imaps://u:hunter2-typed@imap.example.com/", "must not contain a password"),
    ],
)
async def test_adding_refuses_what_cannot_work(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS, typed: str, said: str
) -> None:
    running = await start(start_bot, fake_slack, tls, fake_clock())
    await store_secret(running, server)
    reply = await running.command(f"/trigger add mail every 5m email {typed}")
    assert said in reply and "Added" not in reply and "hunter2-typed" not in reply, reply


async def test_a_secret_without_a_user_name_needs_one_in_the_url(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS
) -> None:
    clock = fake_clock()
    running = await start(start_bot, fake_slack, tls, clock)
    await running.command(f"/secret set bare for localhost:{server.port} {PASSWORD}")
    refused = await running.command(
        f"/trigger add bare every 5m email imap://localhost:{server.port}/ auth=basic:bare"
    )
    assert "No user name" in refused
    reply = await running.command(
        f"/trigger add bare every 5m email imap://support%40example.com@localhost:{server.port}/INBOX auth=basic:bare"
    )
    assert "Added *bare*" in reply and "as support@example.com" in reply, reply
    assert "seems to carry a credential" not in reply  # a user name is no password
    await run_once(running, clock, "bare")
    await deliver(server, raw(built("to the user in the URL")))
    await run_once(running, clock, "bare")
    assert "to the user in the URL" in mail_posts(fake_slack)[-1]


async def test_someone_else_cannot_use_your_mailbox_secret(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS
) -> None:
    running = await start(start_bot, fake_slack, tls, fake_clock())
    await store_secret(running, server)
    fake_slack.add_user("U0002")
    reply = await running.command(
        f"/trigger add theirs every 5m email {mailbox_url(server)} auth=basic:{SECRET}",
        user="U0002",
    )
    assert "You may not use the secret `support-mail`" in reply
    listed = await running.command("/secret show support-mail")
    assert "theirs" not in listed


async def test_a_large_message_is_summarised_from_its_headers(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS
) -> None:
    clock = fake_clock()
    running = await start(start_bot, fake_slack, tls, clock, email_max_bytes=20_000)
    await watching(running, server)
    await run_once(running, clock)
    big = built("Huge scan", "see attachment")
    big.add_attachment(
        b"y" * 60_000, maintype="application", subtype="octet-stream", filename="scan.bin"
    )
    await deliver(server, raw(big))
    await run_once(running, clock)
    (post,) = mail_posts(fake_slack)
    assert "Huge scan" in post and "only its headers were read" in post and "scan.bin" not in post
    fetched = [
        line for line in server.commands() if "FETCH" in line.upper() and "BODY" in line.upper()
    ]
    assert any("BODY.PEEK[HEADER]" in line.upper() for line in fetched)
    assert not any("BODY.PEEK[]" in line.upper() for line in fetched)


async def test_mail_waits_while_muted_and_is_posted_after(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS
) -> None:
    clock = fake_clock()
    running = await start(start_bot, fake_slack, tls, clock)
    await watching(running, server)
    await run_once(running, clock)
    assert "Muted *support*" in await running.command("/trigger mute support 2h")
    await deliver(server, raw(built("during the mute")))
    await run_once(running, clock)
    assert posts(fake_slack) == []
    await running.command("/trigger unmute support")
    await run_once(running, clock)
    assert "during the mute" in mail_posts(fake_slack)[0] and len(posts(fake_slack)) == 1


@BOTH
async def test_overlapping_runs_on_two_replicas_post_each_message_once(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS, database_url: str
) -> None:
    clock = fake_clock()
    first = await start(start_bot, fake_slack, tls, clock)
    await watching(first, server)
    await run_once(first, clock)
    second = (
        await start(start_bot, fake_slack, tls, clock)
        if database_url.startswith("postgres")
        else first
    )
    await deliver(server, *(raw(built(f"race {n}")) for n in range(4)))
    trigger = await trigger_named(first, "support")
    assert trigger.id is not None and trigger.next_run_at is not None
    clock.set(trigger.next_run_at)
    # A scheduled run on one replica and a manual one on the other, at the same moment.
    await asyncio.gather(
        first.bot.triggers.run(trigger.id, trigger.next_run_at),
        second.bot.triggers.run(
            trigger.id, trigger.next_run_at + timedelta(seconds=1), manual=True
        ),
    )
    await until_bots_idle(first, second)
    subjects = [text.split(": ", 1)[1].split("\n", 1)[0] for text in mail_posts(fake_slack)]
    assert sorted(subjects) == [f"race {n}" for n in range(4)]


async def test_the_form_creates_an_email_trigger(
    start_bot, fake_slack: FakeSlack, server: ImapServer, tls: TestTLS
) -> None:
    running = await start(start_bot, fake_slack, tls, fake_clock())
    await store_secret(running, server)
    assert await running.command_raw("/trigger") == ""
    (opened,) = await fake_slack.wait_for("views.open")
    view = opened.args["view"]
    kinds = next(block for block in view["blocks"] if block.get("block_id") == "kind")
    assert "email" in [option["value"] for option in kinds["element"]["options"]]
    values = dict(kind="email", name="inbox", schedule="every 5m", target=mailbox_url(server))
    answer = await running.interact(submission(view, trigger_values(**values)))
    assert "auth=basic:NAME" in answer["errors"]["options"]
    answer = await running.interact(
        submission(
            view,
            trigger_values(**values, condition='subject == "x"', options=f"auth=basic:{SECRET}"),
        )
    )
    assert "no condition" in answer["errors"]["condition"]
    good = submission(view, trigger_values(**values, options=f"auth=basic:{SECRET} latest=3"))
    assert await running.interact(good) in ("", None, {})
    async with running.bot.db.sessions() as session:
        trigger = (
            (await session.execute(select(Trigger).where(col(Trigger.name) == "inbox")))
            .scalars()
            .one()
        )
    assert trigger.kind == "email" and trigger.options == {"auth": f"basic:{SECRET}", "latest": "3"}
    assert "watches INBOX on localhost" in await running.command("/trigger show inbox")
