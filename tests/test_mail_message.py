"""Reading email: real published messages, every MIME shape built here, and fuzzing."""

from __future__ import annotations

import base64
import encodings.aliases
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.mail.headers import decode_bytes, decode_header, parse_addresses
from bot.mail.message import (
    Attachment,
    MailMessage,
    parse_message,
    routing_context,
    summary_from_headers,
)
from bot.mail.text import html_to_text, shorten, trim_reply, unflow
from bot.triggers.conditions import EMAIL_NAMES

FIXTURES = Path(__file__).parent / "fixtures" / "email"


def fixture(name: str) -> MailMessage:
    return parse_message((FIXTURES / f"{name}.eml").read_bytes())


# --- the real messages ------------------------------------------------------------------------


def test_every_fixture_is_covered_below() -> None:
    names = {path.stem for path in FIXTURES.glob("*.eml")}
    assert names == set(FIXTURE_EXPECTATIONS) | {
        "plain_emails.raw_email_reply",
        "error_emails.missing_body",
        "error_emails.bad_encoded_subject",
    }


FIXTURE_EXPECTATIONS: dict[str, dict[str, object]] = {
    "plain_emails.raw_email_simple": {
        "from_name": "Mikel Lindsaar",
        "from_address": "mikel@nowhere.com",
        "subject": "Testing outlook",
        "text": "Hello Mikel",
        "to": ("mikel@somewhere.com",),
    },
    "mime_emails.raw_email2": {
        "from_address": "xxxxxxxxx.xxxxxxx@gmail.com",
        "from_domain": "gmail.com",
        "subject": "Fwd: Signed email causes file attachments",
        "text_starts": "We should not include these files or vcards as attachments.\n\n"
        "---------- Forwarded message ----------\nFrom: xxxxx xxxxxx",
        "attachments": (),  # the S/MIME signature is not a file anyone sent
    },
    "mime_emails.raw_email7": {
        "from_address": "foo@example.com",
        "subject": "testing",
        "text": "This is the first part.",
        "attachments": (
            Attachment("test.rb", 25, "text/x-ruby-script"),
            Attachment("test.pdf", 14, "application/pdf"),
        ),
    },
    "mime_emails.raw_email_with_illegal_boundary": {
        "from_name": "Mikel Lindsaar",
        "subject": "Testing outlook",
        "text": "Hello\nThis is an outlook test\n\nSo there.\n\nMe.",
        "html_only": False,
    },
    "mime_emails.raw_email_with_nested_attachment": {
        "from_name": "Jamis Buck",
        "from_address": "jamis@37signals.com",
        "subject": "Testing attachments",
        "text": "Here is a test of an attachment via email.\n\n- Jamis",
        "attachments": (Attachment("truncated.png", 1902, "image/png"),),
    },
    "mime_emails.sig_only_email": {
        "from_address": "test@test.lindsaar.net",
        "subject": "Re: Testing multipart/signed",
        "text_starts": "This is random text, not what has been signed below",
        "attachments": (),
    },
    "attachment_emails.attachment_pdf": {
        "from_name": "Test Tester",
        "subject": "Another PDF with 🎉 Unicode chars in it 🍿",
        "text_starts": "Just attaching another PDF, here, to see what the message looks like,",
        "attachments": (Attachment("broken.pdf", 1026, "application/pdf"),),
        "date": datetime(2005, 5, 10, 11, 26, 39, tzinfo=timezone(timedelta(hours=-6))),
    },
    "attachment_emails.attachment_nonascii_filename": {
        "attachments": (Attachment("ciële.txt", 11, "text/plain"),),
        "text": "This is the first part.",
    },
    "attachment_emails.attachment_with_encoded_name": {
        # RFC 2231 name in ISO-2022-JP with a stray 8-bit byte: read, with one replacement
        "attachments": (
            Attachment("01 Quien Te Dij\ufffdat. Pitbull.mp3", 399, "application/octet-stream"),
        ),
    },
    "attachment_emails.attachment_message_rfc822": {
        "text": "This is the first part.",
        "attachments": (Attachment("ForwardedMessage.eml", 3668, "message/rfc822"),),
    },
    "multi_charset.japanese_iso_2022": {
        "subject": "まみむめも",
        "text": "すみません。",
        "from_address": "raasdnil@gmail.com",
    },
    "multi_charset.japanese_shift_jis": {
        "text": "あいうえお\n\nこのメールはテスト用のメールです。\n\n今後ともよろしくお願い申し上げます！",
        "from_domain": "docomo.ne.jp",
    },
    "multi_charset.ks_c_5601-1987": {"text": "스티해", "from_address": "from@example.com"},
    "error_emails.encoding_madness": {
        "from_address": "no-reply@crm.el-example.org",
        "subject": "eBay Bid - 2008 Ford Super Duty F-350 DRW King Ranch Crew Cab 4x4 (156) - Stock# XXXX",
        "text": "Body Text",
        "header:reply-to": '"KLAUS- HÄNSCHEL" <>',
    },
    "error_emails.cant_parse_from": {
        "from_name": "Apple",
        "from_address": "news@insideapple.apple.com",
        "from_domain": "insideapple.apple.com",
        "text": "From one solid piece of aluminum comes a MacBook Pro that's thin and light, "
        "beautifully streamlined, and durable.",
        "html_only": False,
    },
    "error_emails.content_transfer_encoding_text-html": {
        "from_name": "chianfong cuthbert",
        "cc": ("rait@bruce-guenter.dyndns.org",),
        "html_only": True,
        "text_starts": "Hello,\nYou have qualified for the lowest rate in years.\n",
    },
    "error_emails.content_transfer_encoding_x_uuencode": {
        "from_name": "Lon L. Peters",
        "subject": "PGP Comments on RTO West Release of Dec. 14",
        # the "--" signature (name, address, legal notice) is trimmed from the preview
        "text": "Attached are the comments of the Public Generating Pool.",
        "attachments": (Attachment("PGP_Cmts_on_12-14-01_Pkg.doc", 0, "application/msword"),),
    },
}


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_fixture_reads_as_expected(name: str) -> None:
    message = fixture(name)
    for key, expected in FIXTURE_EXPECTATIONS[name].items():
        if key == "text_starts":
            assert isinstance(expected, str)
            assert message.text.startswith(expected), message.text
        elif key.startswith("header:"):
            assert message.headers[key.removeprefix("header:")] == expected
        else:
            assert getattr(message, key) == expected, key
    assert message.size == (FIXTURES / f"{name}.eml").stat().st_size
    assert message.problems == ()


def test_a_reply_shows_the_new_text_and_is_dated() -> None:
    message = fixture("plain_emails.raw_email_reply")
    assert message.subject == "Re: Test reply email"
    assert message.from_name == "Testing"
    assert message.text == "Message body"
    assert message.date == datetime(2007, 11, 18, 8, 56, 7, tzinfo=UTC)
    assert message.message_id == "<473FFE27.20003@xxx.org>"
    assert "in-reply-to" in message.headers


def test_a_multipart_without_its_parts_is_posted_with_its_headers() -> None:
    message = fixture("error_emails.missing_body")
    assert message.from_name == "SCS_2"
    assert message.subject == "REDACTED"
    assert message.text == ""
    assert message.to == ()  # "<Undisclosed-Recipient:@mailman.enron.com;>" names nobody
    assert message.problems == ("the MIME structure is damaged (a part boundary is missing)",)


def test_an_unknown_charset_in_the_subject_is_read_and_reported() -> None:
    message = fixture("error_emails.bad_encoded_subject")
    assert message.subject == "TEST"
    assert message.text == "TEST"
    assert "the subject has unknown charset 'none'" in message.problems
    assert "no From header" in message.problems


# --- every MIME shape, built ------------------------------------------------------------------


def build(subject: str = "Hello", sender: str = "Ada Lovelace <ada@example.org>") -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = "support@example.com, Bob <bob@example.com>"
    message["Cc"] = "carol@example.net"
    message["Subject"] = subject
    message["Date"] = "Tue, 04 Mar 2025 10:15:00 +0100"
    message["Message-ID"] = "<abc@example.org>"
    return message


def test_multipart_alternative_prefers_the_plain_text() -> None:
    message = build()
    message.set_content("Plain version.\n")
    message.add_alternative("<p>HTML <b>version</b>.</p>", subtype="html")
    read = parse_message(message.as_bytes())
    assert read.text == "Plain version."
    assert not read.html_only
    assert read.to == ("support@example.com", "bob@example.com")
    assert read.cc == ("carol@example.net",)
    assert read.date == datetime(2025, 3, 4, 9, 15, tzinfo=UTC)


def test_an_empty_plain_alternative_gives_way_to_the_html() -> None:
    message = build()
    message.set_content("\n")
    message.add_alternative("<p>Only the HTML says something.</p>", subtype="html")
    read = parse_message(message.as_bytes())
    assert read.text == "Only the HTML says something."
    assert read.html_only


HTML_MAIL = """<!DOCTYPE html><html><head><title>Newsletter title</title>
<style>p { color: red } .x:after { content: "STYLE TEXT" }</style>
<script>document.write("SCRIPT TEXT")</script></head>
<body><p>Dear&nbsp;customer, your order &amp; invoice:</p>
<img src="http://tracker.example/pixel.gif" alt="">
<ul><li>One</li><li>Two</li></ul>
<p>See <a href="http://example.com/x">the page</a>.<br>Thanks</p>
<div class="gmail_quote">On Mon, Bob wrote:<blockquote>old text</blockquote></div>
</body></html>"""


def test_html_only_mail_becomes_text_without_style_script_head_or_quotes() -> None:
    message = build()
    message.set_content(HTML_MAIL, subtype="html")
    read = parse_message(message.as_bytes())
    assert read.html_only
    assert read.text == (
        "Dear customer, your order & invoice:\n\n• One\n• Two\n\nSee the page.\nThanks"
    )
    for hidden in ("STYLE TEXT", "SCRIPT TEXT", "Newsletter title", "old text", "Bob wrote"):
        assert hidden not in read.body


@pytest.mark.parametrize("cte", ["base64", "quoted-printable"])
def test_transfer_encodings_are_decoded(cte: str) -> None:
    message = build()
    message.set_content("Grüße aus Köln — 10 € pro Stück\n", charset="utf-8", cte=cte)
    assert cte in message.as_string().lower()
    assert parse_message(message.as_bytes()).text == "Grüße aus Köln — 10 € pro Stück"


def raw_mail(headers: str, body: bytes) -> bytes:
    return headers.replace("\n", "\r\n").encode("ascii") + b"\r\n" + body


def test_windows_1252_is_read_as_declared() -> None:
    raw = raw_mail(
        "From: a@example.com\nSubject: x\nContent-Type: text/plain; charset=windows-1252\n"
        "Content-Transfer-Encoding: 8bit\n",
        b"\x93Quoted\x94 \x80 5 \x96 caf\xe9\r\n",
    )
    assert parse_message(raw).text == "“Quoted” € 5 – café"


def test_latin_1_label_with_windows_1252_bytes_is_read_as_windows_1252() -> None:
    raw = raw_mail(
        "From: a@example.com\nSubject: x\nContent-Type: text/plain; charset=ISO-8859-1\n"
        "Content-Transfer-Encoding: quoted-printable\n",
        b"Caf=E9 =80 =93ok=94\r\n",
    )
    assert parse_message(raw).text == "Café € “ok”"


def test_undeclared_8bit_is_read_as_utf8_then_windows_1252() -> None:
    utf8 = raw_mail("From: a@example.com\nSubject: x\n", "naïve 😀\r\n".encode())
    cp1252 = raw_mail("From: a@example.com\nSubject: x\n", b"na\xefve\r\n")
    assert parse_message(utf8).text == "naïve 😀"
    assert parse_message(cp1252).text == "naïve"


def test_unknown_body_charset_is_reported_and_read_anyway() -> None:
    raw = raw_mail(
        "From: a@example.com\nSubject: x\nContent-Type: text/plain; charset=x-nonsense\n",
        b"plain words\r\n",
    )
    read = parse_message(raw)
    assert read.text == "plain words"
    assert read.problems == ("unknown charset 'x-nonsense'",)


def test_rfc2047_headers_are_decoded() -> None:
    raw = raw_mail(
        "From: =?ISO-8859-1?Q?Andr=E9_Pirard?= <PIRARD@vm1.ulg.ac.be>\n"
        "To: =?utf-8?b?w4lsb2TDrWU=?= <elodie@example.fr>\n"
        # adjacent encoded words: the space between them is not part of the text, and
        # the UTF-8 of "é" is split across the two words
        "Subject: =?utf-8?q?Caf=C3?= =?utf-8?q?=A9_cr=C3=A8me?= and =?windows-1252?q?=93more=94?=\n",
        b"body\r\n",
    )
    read = parse_message(raw)
    assert read.from_name == "André Pirard"
    assert read.from_address == "pirard@vm1.ulg.ac.be"
    assert read.from_domain == "vm1.ulg.ac.be"
    assert read.to == ("elodie@example.fr",)
    assert read.subject == "Café crème and “more”"
    assert read.headers["subject"] == read.subject
    assert read.problems == ()


def test_attachments_are_listed_with_decoded_sizes_and_names() -> None:
    message = build()
    message.set_content("See attached.\n")
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 4
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="résumé.pdf")
    message.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    raw = message.as_bytes()
    assert b"filename*=" in raw  # the non-ASCII name went out RFC 2231-encoded
    read = parse_message(raw)
    assert read.text == "See attached."
    assert read.attachments == (
        Attachment("résumé.pdf", len(pdf), "application/pdf"),
        Attachment("data.csv", 8, "text/csv"),
    )


def test_a_text_attachment_is_not_the_body() -> None:
    message = build()
    message.set_content("The body.\n")
    message.add_attachment("notes inside the file\n", filename="notes.txt")
    read = parse_message(message.as_bytes())
    assert read.text == "The body."
    # 23 bytes: the line end went out as CRLF
    assert read.attachments == (Attachment("notes.txt", 23, "text/plain"),)


def test_inline_images_of_related_html_are_not_attachments() -> None:
    message = build()
    message.set_content("Plain.\n")
    message.add_alternative('<p>Logo: <img src="cid:logo@x"></p>', subtype="html")
    html_part = message.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(b"\x89PNG....", maintype="image", subtype="png", cid="<logo@x>")
    message.add_attachment(b"real file", maintype="application", subtype="zip", filename="a.zip")
    read = parse_message(message.as_bytes())
    assert read.text == "Plain."
    assert read.attachments == (Attachment("a.zip", 9, "application/zip"),)


def test_a_forwarded_message_is_an_attachment_named_after_its_subject() -> None:
    inner = build(subject="The original")
    inner.set_content("Inner body.\n")
    message = build(subject="Fwd: The original")
    message.set_content("FYI\n")
    message.add_attachment(inner)
    read = parse_message(message.as_bytes())
    assert read.text == "FYI"
    assert [(a.name, a.content_type) for a in read.attachments] == [
        ("The original.eml", "message/rfc822")
    ]
    assert read.attachments[0].size > 100


def test_format_flowed_lines_are_joined() -> None:
    raw = raw_mail(
        "From: a@example.com\nSubject: x\nContent-Type: text/plain; charset=utf-8; format=flowed\n",
        b"This paragraph was \r\nwrapped by the \r\nsender.\r\n\r\nNext one.\r\n",
    )
    assert parse_message(raw).text == "This paragraph was wrapped by the sender.\n\nNext one."


def test_long_text_is_cut_with_an_ellipsis() -> None:
    message = build()
    message.set_content("word " * 400)
    read = parse_message(message.as_bytes(), max_text=100)
    assert len(read.text) == 100
    assert read.text.endswith("word…")
    assert len(read.body) > 1900  # routing still sees it all


def test_date_without_a_zone_is_utc_and_a_bad_date_is_none() -> None:
    unknown_zone = raw_mail("From: a@example.com\nDate: Tue, 4 Mar 2025 10:15:00 -0000\n", b"x")
    bad = raw_mail("From: a@example.com\nDate: yesterday-ish\n", b"x")
    assert parse_message(unknown_zone).date == datetime(2025, 3, 4, 10, 15, tzinfo=UTC)
    read = parse_message(bad)
    assert read.date is None
    assert read.problems == ("the date 'yesterday-ish' could not be read",)


# --- malformed messages -----------------------------------------------------------------------


MALFORMED = {
    "empty": b"",
    "no headers": b"just some words\r\n",
    "binary": bytes(range(256)) * 3,
    "unterminated multipart": raw_mail(
        'From: a@example.com\nContent-Type: multipart/mixed; boundary="b"\n',
        b"--b\r\nContent-Type: text/plain\r\n\r\nfirst part, never closed\r\n",
    ),
    "bad base64": raw_mail(
        "From: a@example.com\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n",
        b"SGVsbG8gd29y!!!bGQ\r\n",
    ),
    "header without colon": b"From a@example.com\r\nNot a header line\r\nSubject: ok\r\n\r\nbody",
    "nested too deep": raw_mail(
        'From: a@example.com\nContent-Type: multipart/mixed; boundary="b0"\n',
        b"".join(
            f'--b{i}\r\nContent-Type: multipart/mixed; boundary="b{i + 1}"\r\n\r\n'.encode()
            for i in range(60)
        ),
    ),
    "lone surrogates in headers": b"From: \xff\xfe <\xc3@x>\r\nSubject: \xed\xa0\x80\r\n\r\nx",
    "encoded word with bad base64": raw_mail("Subject: =?utf-8?B?####?=\n", b"x"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_messages_are_read_as_far_as_possible(name: str) -> None:
    raw = MALFORMED[name]
    read = parse_message(raw)
    assert read.size == len(raw)
    assert isinstance(read.text, str)


def test_damaged_parts_keep_what_was_readable() -> None:
    read = parse_message(MALFORMED["unterminated multipart"])
    assert read.text == "first part, never closed"
    assert read.from_address == "a@example.com"
    assert read.problems == ("the MIME structure is damaged (a part boundary is missing)",)
    bad64 = parse_message(MALFORMED["bad base64"])
    assert bad64.text.startswith("Hello wor")
    assert bad64.problems == ("a base64-encoded part is damaged",)
    deep = parse_message(MALFORMED["nested too deep"])
    assert "the message nests parts too deeply; the deepest were not read" in deep.problems


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIXTURE_BYTES = [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))]


@FUZZ
@given(st.binary(max_size=2000))
def test_fuzz_arbitrary_bytes_never_raise(raw: bytes) -> None:
    read = parse_message(raw)
    assert read.size == len(raw)


@FUZZ
@given(
    st.sampled_from(FIXTURE_BYTES),
    st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=0, max_size=8)), max_size=6),
    st.floats(0.05, 1),
)
def test_fuzz_damaged_real_messages_never_raise(
    raw: bytes, edits: list[tuple[float, bytes]], keep: float
) -> None:
    damaged = bytearray(raw[: max(1, int(len(raw) * keep))])
    for where, junk in edits:
        at = int(where * len(damaged))
        damaged[at : at + len(junk)] = junk
    read = parse_message(bytes(damaged))
    assert read.size == len(damaged)


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_header_decoding_never_raises(value: str) -> None:
    assert "\n" not in decode_header(value)
    parse_addresses([value])


# --- trimming and HTML ------------------------------------------------------------------------


TRIM_CASES = {
    "top-posted reply": (
        "Sounds good, ship it.\n\nOn Mon, 3 Mar 2025 at 10:00, Bob <bob@example.com> wrote:\n"
        "> Shall we ship?\n> -- \n> Bob",
        "Sounds good, ship it.",
    ),
    "attribution over two lines": (
        "Yes.\n\nOn Mon, 3 Mar 2025 at 10:00, Bob Example <bob@example.com>\nwrote:\n\n> Ship?",
        "Yes.",
    ),
    "interleaved reply keeps every answer": (
        "On Mon, Bob wrote:\n> First question?\nFirst answer.\n> Second question?\nSecond answer.",
        "First answer.\nSecond answer.",
    ),
    "signature": (
        "The report is attached.\n\n-- \nAda Lovelace\nAnalyst",
        "The report is attached.",
    ),
    "outlook original message": (
        "Approved.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nSubject: Budget",
        "Approved.",
    ),
    "outlook header block": (
        "Approved.\n\n________________________________\nFrom: Bob <bob@example.com>\n"
        "Sent: Monday, March 3, 2025 10:00 AM\nTo: Ada\nSubject: Budget\n\nCan you approve?",
        "Approved.",
    ),
    "mobile footer": ("On my way.\n\nSent from my iPhone", "On my way."),
    "german client": ("Passt.\n\nAm 03.03.2025 um 10:00 schrieb Bob:\n> Ok?", "Passt."),
    "a forwarded message is content": (
        "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\n"
        "Date: Mon, Mar 3, 2025\nSubject: Outage\n\nThe database is down.",
        "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\n"
        "Date: Mon, Mar 3, 2025\nSubject: Outage\n\nThe database is down.",
    ),
    "only a quote is kept rather than nothing": (
        "> quoted line\n> another",
        "> quoted line\n> another",
    ),
    "a sentence starting with On stays": ("On Monday we deploy.", "On Monday we deploy."),
}


@pytest.mark.parametrize("name", sorted(TRIM_CASES))
def test_trim_reply(name: str) -> None:
    text, expected = TRIM_CASES[name]
    assert trim_reply(text) == expected


def test_html_to_text_survives_broken_markup() -> None:
    assert html_to_text("<p>Hello <b>world") == "Hello world"
    assert html_to_text("<head><title>t</title><body>after an unclosed head") == (
        "after an unclosed head"
    )
    assert html_to_text("<![if !supportLists]>x<![endif]> y <!-- comment -->") == "x y"
    assert html_to_text("<div><div class=gmail_quote><div>q</div>q</div>kept</div>") == "kept"


def test_unflow_and_shorten() -> None:
    assert unflow("a \nb\n-- \nsig") == "a b\n-- \nsig"
    assert unflow("a \nb", delsp=True) == "ab"
    assert shorten("abcdef", 4) == "abc…"
    assert shorten("abc", 4) == "abc"


@FUZZ
@given(
    st.sampled_from(sorted({*encodings.aliases.aliases, *encodings.aliases.aliases.values()}))
    | st.text(max_size=20),
    st.binary(max_size=64),
)
def test_fuzz_any_declared_charset_decodes_without_raising(label: str, data: bytes) -> None:
    assert isinstance(decode_bytes(data, label).text, str)
    assert isinstance(decode_header(f"=?{label}?q?{data.hex()}?="), str)


def test_decode_bytes_refuses_codecs_that_are_not_charsets() -> None:
    encoded = base64.b64encode(b"secret")
    decoded = decode_bytes(encoded, "base64")
    assert decoded.text == encoded.decode()
    assert decoded.problem == "unknown charset 'base64'"


# --- over-size summaries and routing ----------------------------------------------------------


def test_summary_from_headers_says_why_there_is_no_text() -> None:
    header_block = (FIXTURES / "attachment_emails.attachment_pdf.eml").read_bytes().split(
        b"\r\n\r\n", 1
    )[0] + b"\r\n\r\n"
    read = summary_from_headers(header_block, size=12_345_678, limit=10_000_000)
    assert read.subject == "Another PDF with 🎉 Unicode chars in it 🍿"
    assert read.from_name == "Test Tester"
    assert read.size == 12_345_678
    assert read.text == ""
    assert read.problems == (
        "the message is 12.3 MB, over the 10.0 MB limit: only its headers were read",
    )


def test_routing_context_exposes_exactly_the_documented_names() -> None:
    message = build(subject="Invoice 42")
    message.set_content("Please pay.\n\n-- \nAccounts")
    message.add_attachment(b"x" * 10, maintype="application", subtype="pdf", filename="inv.pdf")
    message["X-Priority"] = "1"
    read = parse_message(message.as_bytes())
    context = routing_context(read)
    assert context == {
        "category": "",  # an AI step's label, when one is on
        "from": "ada@example.org",
        "from_domain": "example.org",
        "to": ["support@example.com", "bob@example.com"],
        "cc": ["carol@example.net"],
        "subject": "Invoice 42",
        "text": "Please pay.\n\n--\nAccounts",  # whole, signature included; trailing spaces go
        "has_attachment": True,
        "attachments": ["inv.pdf"],
        "headers": context["headers"],
        "size": len(message.as_bytes()),
    }
    assert context["headers"]["x-priority"] == "1"
    assert context["headers"]["subject"] == "Invoice 42"
    assert set(context) == set(EMAIL_NAMES)  # what a routing rule's check lets it read
    assert routing_context(read, category="billing")["category"] == "billing"
