"""The email trigger's parts on their own: the ``matches`` test, ``/trigger route`` words,
routing in real user-code workers, the Slack shape of a mail, saving against a position
another run stored, stopping a run's fetches at its deadline, and judging a server's
address before a trigger is saved. End to end: tests/test_email_flow.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from bot.config import Secret
from bot.errors import UsageError
from bot.expressions import (
    MAX_PATTERN_CHARS,
    ExpressionError,
    RenderError,
    compile_expression,
    compile_template,
    evaluate_bool,
    render_template,
)
from bot.mail.imap import MailAddressError, MailBlocked, check_server_address, parse_mailbox_url
from bot.mail.message import MailMessage, parse_message
from bot.mail.poll import MailSource, ReadMessage, poll_mailbox
from bot.mail.watch import Position
from bot.models import Trigger
from bot.net import AddressPolicy
from bot.triggers.conditions import check_condition, names_used
from bot.triggers.email import (
    MailRun,
    MailWatch,
    Route,
    _still_new,
    parse_route,
    position_state,
    stored_position,
)
from bot.triggers.email_posts import Routed, mail_message, posts_for, size_text
from bot.triggers.grammar import TriggerSyntaxError, parse_trigger_add
from bot.triggers.schedule import IntervalSchedule
from bot.usercode import UserCodeRunner
from tests.imap_server import ImapServer, TestTLS

BERLIN = ZoneInfo("Europe/Berlin")
USER = "support@example.com"
PASSWORD = "imap-pass-7Hq2Zx9wK"
LOOPBACK = AddressPolicy.from_allowlist(["127.0.0.1"])


# -- matches ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ('subject matches "(?i)invoice|receipt"', {"subject": "Your INVOICE"}, True),
        ('subject matches "(?i)invoice|receipt"', {"subject": "Hello"}, False),
        ('subject matches "^Re:"', {"subject": "Fwd: Re: x"}, False),  # a search, anchors hold
        ('subject not matches "spam"', {"subject": "ham"}, True),
        ('subject is matches "a+"', {"subject": "caab"}, True),
        ('subject is not matches("a+")', {"subject": "b"}, True),
        ('attachments matches "\\\\.pdf$"', {"attachments": ["a.png", "inv.pdf"]}, True),
        ('attachments matches "\\\\.pdf$"', {"attachments": []}, False),
        ('missing matches "x"', {}, False),  # a missing field matches nothing
        ('size matches "^12"', {"size": 1234}, True),  # numbers are read as text
        (
            'from_domain == "bigcorp.com" and subject matches "order"',
            {"from_domain": "bigcorp.com", "subject": "order 7"},
            True,
        ),
        ('not subject matches "x" or size > 5', {"subject": "x", "size": 9}, True),
    ],
)
def test_matches_in_expressions(source: str, context: dict[str, object], expected: bool) -> None:
    assert evaluate_bool(compile_expression(source), context) is expected


def test_matches_in_templates() -> None:
    template = compile_template(
        '{% if subject is matches "^\\\\[ticket" %}T{% endif %}-{{ subject matches "x" }}'
    )
    assert render_template(template, {"subject": "[ticket 4] x"}) == "T-True"


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ('subject matches "(unclosed"', "missing )"),
        ('subject matches "(?<=a)b"', "invalid perl operator"),  # RE2 has no look-behind
        ('subject matches "(a{1000}){1000}"', "invalid repetition size"),
        (f'subject matches "{"a" * (MAX_PATTERN_CHARS + 1)}"', "longer than"),
    ],
)
def test_a_bad_pattern_is_a_compile_error(source: str, said: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert said in str(caught.value)


def test_a_pattern_from_the_data_fails_at_evaluation() -> None:
    with pytest.raises(RenderError) as caught:
        evaluate_bool(
            compile_expression("subject matches pattern"), {"subject": "x", "pattern": "("}
        )
    assert "not valid" in str(caught.value)
    with pytest.raises(RenderError):
        evaluate_bool(compile_expression("subject matches 5"), {"subject": "x"})


def test_a_pattern_cannot_backtrack_catastrophically() -> None:
    # Python's re takes about 2**n steps here; RE2 is linear in the text.
    expression = compile_expression('text matches "^(a+)+$"')
    started = time.monotonic()
    assert evaluate_bool(expression, {"text": "a" * 50_000 + "!"}) is False
    assert time.monotonic() - started < 5  # a bound on a hang, not a benchmark


def test_rules_read_only_what_a_message_has() -> None:
    assert names_used("has_attachment") == ["has_attachment"]
    check_condition('from_domain == "x" and subject matches "y" and category == "z"', "email")
    with pytest.raises(ValueError, match="`body`"):
        check_condition('body matches "x"', "email")
    with pytest.raises(ValueError, match="nonsense"):
        check_condition("nonsense", "http")  # a bare name is checked too


# -- /trigger route words ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "name", "rule", "channel"),
    [
        (
            'support from_domain == "bigcorp.com" → <#C0100|sales>',
            "support",
            'from_domain == "bigcorp.com"',
            "C0100",
        ),
        ("support size &gt; 1000 -&gt; #big", "support", "size > 1000", "#big"),
        (
            "support subject matches “(?i)a-&gt;b” -&gt; <#C1|x>",
            "support",
            'subject matches "(?i)a->b"',
            "C1",
        ),
        ("support has_attachment->#files", "support", "has_attachment", "#files"),
    ],
)
def test_route_words(typed: str, name: str, rule: str, channel: str) -> None:
    parsed = parse_route(typed)
    assert (parsed.name, parsed.rule, parsed.channel) == (name, rule, channel)


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("support has_attachment #files", "Say where matching mail goes"),
        ("support → #files", "Give the rule"),
        ("support has_attachment → files and more", "give one channel"),
    ],
)
def test_route_words_that_cannot_work(typed: str, said: str) -> None:
    with pytest.raises(UsageError, match=said):
        parse_route(typed)


# -- the grammar ----------------------------------------------------------------------------------


def add(text: str) -> object:
    return parse_trigger_add(
        text,
        default_tz=BERLIN,
        now=datetime(2031, 1, 6, tzinfo=UTC),
        min_interval=timedelta(minutes=1),
    )


def test_the_email_grammar() -> None:
    spec = add(
        "support every 5m email <imap://support%40example.com@10.0.0.5:1143/Support%20Queue> "
        "auth=basic:Support-Mail tls=off latest=5 retries=2 <#C0002|ops>"
    )
    assert spec == add(
        "support every 5m email imap://support%40example.com@10.0.0.5:1143/Support%20Queue "
        "<#C0002|ops> auth=basic:Support-Mail tls=off latest=5 retries=2"
    )
    url = parse_mailbox_url(spec.target)  # type: ignore[attr-defined]
    assert (url.user, url.host, url.port, url.mailbox) == (USER, "10.0.0.5", 1143, "Support Queue")


@pytest.mark.parametrize(
    ("typed", "field", "said"),
    [
        ("s every 5m email", "target", "email needs the mailbox"),
        ("s every 5m email ftp://x/", "target", "imaps://"),
        ("s every 5m email imaps://u:hunter2@h/", "target", "must not contain a password"),
        ("s every 5m email imaps://h/ when subject", "condition", "/trigger route"),
        ("s every 5m email imaps://h/ auth=bearer:x", "options", "basic:SECRET"),
        ("s every 5m email imaps://h/ tls=no", "options", "can only be off"),
        ("s every 5m email imaps://h/ latest=51", "options", "0 to 50"),
        ("s every 5m http https://h/ tls=off", "options", "I don't know the option"),
    ],
)
def test_email_grammar_errors(typed: str, field: str, said: str) -> None:
    with pytest.raises(TriggerSyntaxError) as caught:
        add(typed)
    assert caught.value.field == field and said in str(caught.value)
    assert "hunter2" not in str(caught.value) and "hunter2" not in caught.value.part


# -- the shape of a post -------------------------------------------------------------------------


def trigger(routes: Sequence[Route] = (), channel: str = "C0002") -> Trigger:
    return Trigger(
        id=7,
        team_id="T0001",
        name="support",
        channel_id=channel,
        kind="email",
        target="imaps://imap.example.com/INBOX",
        schedule=IntervalSchedule(tz_name="Europe/Berlin", every=timedelta(minutes=5)).to_dict(),
        options={"auth": "basic:support-mail"},
        state={},
        routes=[route.to_dict() for route in routes],
        created_by="U0001",
        created_at=datetime(2031, 1, 1, tzinfo=UTC),
    )


def mail(subject: str, sender: str = "Ada <ada@example.org>", body: str = "Hello.") -> MailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, USER, subject
    message["Date"] = "Mon, 06 Jan 2031 09:15:00 +0000"
    message.set_content(body)
    return parse_message(message.as_bytes())


def texts(blocks: list[dict[str, object]] | None) -> str:
    found: list[str] = []
    for block in blocks or []:
        text = block.get("text")
        if isinstance(text, dict):
            found.append(str(text["text"]))
        for element in block.get("elements", []) or []:  # type: ignore[union-attr]
            found.append(str(element["text"]))
    return "\n".join(found)


def test_a_post_escapes_what_the_mail_says() -> None:
    hostile = mail("<!channel> pay now", sender='"<@U0001>" <evil@example.com>', body="<!here> hi")
    posted = mail_message(trigger(), Routed(5, hostile, "C0002", "no rule matched"), BERLIN)
    everything = posted.text + texts(posted.blocks)
    assert (
        "<!channel>" not in everything
        and "<!here>" not in everything
        and "<@U0001>" not in everything
    )
    assert "&lt;!channel&gt; pay now" in everything
    assert "Mon 06 Jan 10:15 CET" in everything  # in the trigger's zone, zone named


def test_a_post_names_its_category_and_route() -> None:
    routed = Routed(5, mail("Bill"), "C0101", 'rule 2: subject matches "bill"', category="billing")
    footer = texts(mail_message(trigger(), routed, BERLIN).blocks).splitlines()[-1]
    assert footer == '*support* · categorised as billing · rule 2: subject matches "bill"'


def test_many_mails_for_a_channel_are_one_summary_within_slacks_limits() -> None:
    routed = [Routed(n, mail(f"order {n} " + "x" * 150), "C0100", "rule 1") for n in range(40)]
    routed += [Routed(100, mail("alone"), "C0002", "no rule matched")]
    messages = posts_for(trigger(), routed, tz=BERLIN, skipped=3, notice=None)
    assert [message.channel for message in messages] == ["C0100", "C0002", "C0002"]
    summary, alone, skipped = messages
    assert summary.text.startswith("40 new messages: order 0")
    assert all(
        len(str(block["text"]["text"])) <= 3000 for block in summary.blocks or [] if "text" in block
    )  # type: ignore[index]
    assert texts(summary.blocks).count("• *order") == 40
    assert alone.text.startswith("Email from Ada")
    assert "3 older new messages were not posted" in skipped.text


def test_sizes_in_words() -> None:
    assert [size_text(n) for n in (1, 999, 48_000, 1_234_567)] == [
        "1 byte",
        "999 bytes",
        "48 KB",
        "1.2 MB",
    ]


# -- saving against what another run stored --------------------------------------------------------


def test_only_what_another_run_did_not_cover_is_posted() -> None:
    routed = tuple(Routed(uid, mail(f"m{uid}"), "C0002", "no rule matched") for uid in (11, 12, 13))
    run = MailRun(Position(7, 10), Position(7, 13), routed, notice=None)
    assert _still_new(run, Position(7, 10)) == (list(routed), Position(7, 13), None)
    fresh, position, _ = _still_new(run, Position(7, 12))  # another run posted 11 and 12
    assert [item.uid for item in fresh] == [13] and position == Position(7, 13)
    fresh, position, _ = _still_new(run, Position(7, 20))  # and more since
    assert fresh == [] and position == Position(7, 20)
    rebased = MailRun(Position(7, 10), Position(9, 4), (), notice="renumbered")
    assert _still_new(rebased, Position(9, 4))[2] is None  # the other run said it already
    assert _still_new(rebased, Position(7, 10))[2] == "renumbered"


def test_the_position_round_trips_through_the_state() -> None:
    assert stored_position(position_state(Position(3, 99))) == Position(3, 99)
    assert stored_position({}) is None and position_state(None) == {}
    assert stored_position({"mailbox": {"uidvalidity": "3", "last_uid": 1}}) is None


# -- routing in user-code workers -----------------------------------------------------------------


@pytest.fixture
async def usercode() -> AsyncIterator[UserCodeRunner]:
    runner = UserCodeRunner()
    yield runner
    await runner.close()


async def test_rules_route_first_match_wins_and_a_failing_rule_counts_as_no_match(
    usercode: UserCodeRunner,
) -> None:
    routes = [
        Route("size // 0 > 1", "C0009"),  # fails on every message: a ZeroDivisionError
        Route('from_domain == "bigcorp.com"', "C0100"),
        Route('subject matches "(?i)invoice"', "C0101"),
        Route('category == "billing"', "C0102"),
        Route('text matches "(?i)refund"', "C0103"),
    ]
    messages = [
        mail("Invoice", sender="b@bigcorp.com"),
        mail("INVOICE 7"),
        mail("Hello"),
        mail("Pay me"),
        mail("Question", body="Hi,\n\nI would like a REFUND please."),
    ]
    read = [ReadMessage(uid, message) for uid, message in enumerate(messages, start=1)]

    async def categorise(_trigger: Trigger, found: Sequence[MailMessage]) -> list[str | None]:
        return ["billing" if message.subject == "Pay me" else None for message in found]

    watch = MailWatch(secrets=None, policy=LOOPBACK, usercode=usercode, categorise=categorise)  # type: ignore[arg-type]
    routed = await watch.route(trigger(routes), read)
    assert [item.channel for item in routed] == ["C0100", "C0101", "C0002", "C0102", "C0103"]
    assert routed[0].route == 'rule 2: from_domain == "bigcorp.com"'
    assert routed[2].route.startswith("no rule matched (rule 1 failed: line 1: ZeroDivisionError")
    assert routed[3].category == "billing" and routed[0].category is None


# -- a run's deadline -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls() -> TestTLS:
    return TestTLS.make()


async def test_fetching_stops_at_the_deadline_and_the_next_run_carries_on(tls: TestTLS) -> None:
    async with ImapServer({USER: PASSWORD}, tls=tls) as server:
        source = MailSource(
            f"imap://support%40example.com@localhost:{server.port}/",
            None,
            Secret(PASSWORD),
            timeout=10,
        )

        async def poll(stored: Position | None, **options: object):  # type: ignore[no-untyped-def]
            return await poll_mailbox(
                source, stored, policy=LOOPBACK, tls_context=tls.client_context(), **options
            )  # type: ignore[arg-type]

        baseline = (await poll(None)).position
        for n in range(4):
            await server.append(USER, "INBOX", f"Subject: m{n}\r\n\r\nbody\r\n".encode())
        past = asyncio.get_running_loop().time() - 1
        stopped = await poll(baseline, fetch_until=past)
        assert stopped.unfinished and stopped.messages == () and stopped.position == baseline
        limited = await poll(baseline, fetch_limit=3, fetch_until=past)
        assert limited.skipped == 0  # nothing handled yet: the oldest are still to come
        finished = await poll(stopped.position, fetch_limit=3)
        assert [read.message.subject for read in finished.messages] == ["m1", "m2", "m3"]
        assert finished.skipped == 1 and not finished.unfinished


# -- judging the server before saving ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "plain", "error", "said"),
    [
        ("imaps://10.0.0.5/", False, MailBlocked, "private"),
        ("imap://10.0.0.5/", True, MailBlocked, "plain IMAP (tls=off)"),
        ("imap://[fd00::1]:143/", True, MailBlocked, "plain IMAP"),
        ("imaps://127.0.0.1/", True, MailAddressError, "tls=off goes with imap://"),
    ],
)
async def test_a_server_the_policy_refuses_is_refused_before_saving(
    url: str, plain: bool, error: type[Exception], said: str
) -> None:
    with pytest.raises(error) as caught:
        await check_server_address(parse_mailbox_url(url), LOOPBACK, plain=plain, timeout=1.5)
    assert said in str(caught.value)


@pytest.mark.parametrize(
    ("url", "plain", "allowlist"),
    [
        ("imap://127.0.0.1:1143/", True, ["127.0.0.1"]),
        ("imap://mail.internal/", True, ["mail.internal"]),  # listed by name: no look-up
        ("imaps://imap.example.com/", False, []),  # a name is judged when a run connects
        ("imap://10.1.2.3/", True, ["10.0.0.0/8"]),
    ],
)
async def test_a_server_the_policy_allows_passes(
    url: str, plain: bool, allowlist: list[str]
) -> None:
    policy = AddressPolicy.from_allowlist(allowlist)
    await check_server_address(parse_mailbox_url(url), policy, plain=plain, timeout=1.5)
