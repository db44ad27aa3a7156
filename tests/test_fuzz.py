"""Fuzzing the running bot's inputs with hypothesis: slash commands, webhook requests, user code.

Each test starts ONE bot (the real app on a real port, the fake Slack, SQLite) and reuses it
for every example. Hypothesis drives the examples from a worker thread, and each example runs
its requests on the bot's event loop (`_Bridge`), so the test can check afterwards that the
bot is still healthy and still delivering.

What must hold for any input:

* a slash command is answered 200 with non-empty text (or opens a form), never with the
  handler for unexpected exceptions ("something went wrong on my side") or a traceback;
* ``POST /hooks/{token}`` answers one of 202, 400, 401, 413, 429, never 500, and afterwards
  the bot answers ``/healthz`` and still posts a valid delivery;
* a template or filter is either refused with a reason or saved, and the next delivery then
  gets a verdict in ``/hook log`` (posted once, filtered or failed), never a stuck processor.

Each bug the fuzzing found is pinned, as its smallest example, by a regression test at the
end of this file.
"""

from __future__ import annotations

import asyncio
import copy
import gzip
import json
import logging
import re
import urllib.parse
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlmodel import col

from bot.clock import FakeClock
from bot.credentials.keys import hash_token
from bot.devtools.fake_slack import FakeSlack
from bot.models import Hook
from bot.webhooks.verify import sign_github
from tests.conftest import (
    RunningBot,
    fixture_json,
    slack_headers,
    slash_command_body,
    until_bots_idle,
)

T = TypeVar("T")

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
INTERNAL_ERRORS = ("Traceback", "something went wrong on my side")
ALLOWED_HOOK_STATUSES = {202, 400, 401, 413, 429}
MAX_BODY = 40 * 1024  # the real GitHub fixtures (up to 31 KB) fit, bigger bodies get 413
SECRET = "fuzz-secret-0123456789"  # the github hook's signing secret


# -- running coroutines on the bot's loop from hypothesis' thread -----------------------------


@dataclass(frozen=True)
class _Bridge:
    """Runs coroutines on the test's event loop from the thread hypothesis runs in."""

    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


async def fuzz_in_thread(check: Callable[[_Bridge], None]) -> None:
    """Run a hypothesis-decorated ``check`` in a worker thread while this loop serves the bot."""
    await asyncio.to_thread(check, _Bridge(asyncio.get_running_loop()))


def spaced(*groups: str) -> list[str]:
    """The words of ``groups``: a compact way to write long lists of input fragments."""
    return [word for group in groups for word in group.split()]


def new_errors(caplog: pytest.LogCaptureFixture, seen: int) -> list[str]:
    """ERROR records logged since ``seen`` records (an unexpected exception anywhere).

    Left out: aiohttp's own server logs about a body that does not decode as its
    Content-Encoding says (or uses one aiohttp cannot decode, like br without Brotli).
    The bot answers those 400 (or aiohttp does, before the bot sees them); aiohttp logs
    the error again while draining or refusing the connection, which it then closes.
    """
    return [
        f"{record.name}: {record.getMessage()}"
        for record in caplog.records[seen:]
        if record.levelno >= logging.ERROR and not _undecodable_body(record)
    ]


def _undecodable_body(record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return record.name == "aiohttp.server" and isinstance(
        error, RequestPayloadError | HttpProcessingError
    )


# -- talking to the bot ------------------------------------------------------------------------


async def slash(running: RunningBot, command: str, text: str, user: str = "U0001") -> str:
    """Send a signed slash command, check it is answered 200; the reply's text ("" for a form)."""
    body = slash_command_body(command, text, user=user)
    status, answer = await running.post("/slack/events", body, slack_headers(body, form=True))
    assert status == 200, (status, answer)
    if isinstance(answer, dict):
        return str(answer.get("text") or "")
    return str(answer)


def opens_a_form(command: str, text: str) -> bool:
    """Whether the bot answers ``text`` with a modal (an empty reply) rather than text."""
    words = text.split()
    if command == "/hook":
        return words in ([], ["new"])
    return words in ([], ["new"]) or (len(words) == 2 and words[0] == "edit")


def assert_clean_reply(command: str, text: str, reply: str) -> None:
    for marker in INTERNAL_ERRORS:
        assert marker not in reply, f"{command} {text!r} answered {reply!r}"
    if not opens_a_form(command, text):
        assert reply.strip(), f"{command} {text!r} got an empty reply"


async def create_hook(running: RunningBot, args: str) -> str:
    """Create a hook with /hook, allow it many deliveries a minute; return its URL path."""
    reply = await running.command(f"/hook create {args}")
    found = re.search(r"https://bot\.example\.com(/hooks/[\w-]+)", reply)
    assert found, reply
    name = args.split()[0]
    assert "Updated" in await running.command(f"/hook set {name} rate=100000")
    return found.group(1)


async def drop_secret(running: RunningBot, name: str, path: str) -> None:
    """Make the hook unsigned (its URL is the credential); /hook always generates a secret."""
    async with running.bot.db.transaction() as session:
        await session.execute(sa.update(Hook).where(col(Hook.name) == name).values(secret=None))
    running.bot.receiver.hooks.forget(hash_token(path.rsplit("/", 1)[1]))


async def posted_containing(fake_slack: FakeSlack, marker: str) -> None:
    """Wait (up to 10 s) until a message posted to the fake Slack contains ``marker``."""
    for _ in range(1000):
        if any(marker in json.dumps(args) for args in fake_slack.messages()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"nothing containing {marker!r} was posted")


# -- text strategies -----------------------------------------------------------------------------

SLACK_ESCAPES = spaced(
    "<#C0002|ops> <#C0002> <#C0002|> <#C9999|nowhere> #ops # <@U0001> <@U0001|ada>",
    "<!here> <https://a.example|b> <https://127.0.0.1:9/x|x>",
    "<mailto:a@b.example|a@b.example> < > <> <# &lt; &gt; &amp; &amp;lt; & \" “ ” ' `",
    "| = == \\",
)
PRINTABLE = st.characters(blacklist_categories=("Cs", "Cc"))
UNICODE_WORD = st.text(PRINTABLE, min_size=1, max_size=12)
LONG_TEXT = st.tuples(
    st.sampled_from(["a", "é", "{{ ", "<#C0002|ops> ", "x=1 ", '"', "🙂", "&lt;", "9 "]),
    st.integers(min_value=200, max_value=1500),
).map(lambda pair: pair[0] * pair[1])


def mostly(
    common: st.SearchStrategy[str], rare: st.SearchStrategy[str], odds: int = 4
) -> st.SearchStrategy[str]:
    """``common`` ``odds`` times out of ``odds + 1``, else ``rare``."""
    return st.integers(min_value=0, max_value=odds).flatmap(lambda n: rare if n == 0 else common)


# fz and fz-1 exist in every test (fz-1 belongs to another user); the rest mostly do not.
NAMES = mostly(
    st.sampled_from(["fz", "fz", "fz-1", "FZ"]),
    st.one_of(
        st.sampled_from(["a_b", "x" * 40, "x" * 41, "bad!name", "é", "0", "-", "fz\u200b"]),
        st.from_regex(r"[a-z0-9_-]{1,4}", fullmatch=True),
    ),
    odds=2,
)
OPTION_KEYS = st.one_of(
    st.sampled_from(
        spaced(
            "preset secret threads rate channel run Preset x retries recover repeat max",
            "timeout latest tz",
        )
    ),
    st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True),
)
OPTION_VALUES = st.one_of(
    st.sampled_from(
        [
            *spaced(
                "github generic auto stripe sentry bitbucket off thread update update+thread 0 1",
                "3 600 100001 -1 1e3 ٣ 99999999999999999999 <#C0002|ops> #ops short",
                "a-long-enough-secret 30m 5s 0s 61s 1d 500ms = fz FZ",
            ),
            "",
        ]
    ),
    st.text(PRINTABLE, max_size=10),
)
KEY_VALUES = st.tuples(OPTION_KEYS, OPTION_VALUES).map("=".join)
SEPARATORS = st.sampled_from([" ", " ", " ", "", "  ", "\n", "\t"])


def words_of(
    fragments: st.SearchStrategy[str], max_size: int = 8, min_size: int = 0
) -> st.SearchStrategy[str]:
    """Fragments joined by assorted separators (sometimes none, to glue them together)."""
    pairs = st.lists(st.tuples(fragments, SEPARATORS), min_size=min_size, max_size=max_size)
    return pairs.map(lambda pairs: "".join(fragment + sep for fragment, sep in pairs))


def command_text(verbs: list[str], fragments: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A verb (or garbage), then fragments; occasionally one long stretch of text."""
    verb = mostly(st.sampled_from(verbs), st.one_of(UNICODE_WORD, st.just("")))
    return st.one_of(
        st.tuples(verb, SEPARATORS, words_of(fragments)).map("".join),
        st.tuples(verb, st.just(" "), NAMES, st.just(" "), LONG_TEXT).map("".join),
    )


# -- /hook commands ------------------------------------------------------------------------------

HOOK_VERBS = spaced(
    "create new list show set delete pause resume rotate template filter test log",
    "replay help -h --help CREATE Set frobnicate",
)
JINJA_BITS = spaced("{{ }} {% %} {# #} payload.text |upper clear")
HOOK_FRAGMENTS = st.one_of(
    NAMES,
    st.sampled_from(SLACK_ESCAPES),
    KEY_VALUES,
    st.sampled_from(JINJA_BITS),
    st.sampled_from(["0123456789abc0123456789abcdef", "deadbeef"]),  # delivery-id-like
    UNICODE_WORD,
)
HOOK_COMMANDS = command_text(HOOK_VERBS, HOOK_FRAGMENTS)


async def test_hook_command_text_never_crashes(
    start_bot: Callable[..., Awaitable[RunningBot]],
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_slack.add_user("U0002", tz="UTC")
    running = await start_bot()
    await create_hook(running, "fz <#C0002|ops> preset=generic")
    assert "Created" in await running.command("/hook create fz-1 preset=github", user="U0002")

    @settings(FUZZ, max_examples=300)
    @given(text=HOOK_COMMANDS, user=st.sampled_from(["U0001", "U0001", "U0002"]))
    def check(bridge: _Bridge, text: str, user: str) -> None:
        seen = len(caplog.records)
        reply = bridge.run(slash(running, "/hook", text, user=user))
        assert_clean_reply("/hook", text, reply)
        event(reply.split("\n", 1)[0][:40])
        assert new_errors(caplog, seen) == []

    await fuzz_in_thread(check)


# -- /trigger commands ---------------------------------------------------------------------------

TRIGGER_VERBS = spaced(
    "add list show history run pause resume mute unmute delete edit new help ADD", "frobnicate"
)
SCHEDULE_WORDS = st.one_of(
    st.sampled_from(
        [
            *spaced(
                "every 5m 30s 1h 2h 1d 2w day weekday weekend monday mon,wed,fri mon, , at 9:30",
                '9am 12pm 17:30 25:00 24:00 on the 1st 31st 32nd month months cron " in 2 hours',
                "minutes tomorrow today 2026-12-01 2099-02-30 09:00 tz Europe/Berlin Mars/Base",
                "UTC ../../etc/passwd 0 -1 99999999999999999999",
            ),
            '"0 9 * * 1-5"',
            '"* * * * *"',
            '"61 * * * *"',
            '"0 0 31 2 *"',
        ]
    ),
    st.from_regex(r"every [0-9]{1,5} ?(s|m|h|d|w|ms|minutes?)", fullmatch=True),
)
KINDS = st.sampled_from(spaced("http rss json message report HTTP ftp"))
TARGETS = st.sampled_from(
    [
        *spaced(
            "http://127.0.0.1:9/x <http://127.0.0.1:9/feed|feed> https://127.0.0.1:1/",
            "<https://localhost:9/a|a> http://10.0.0.1/ http://169.254.169.254/ ftp://x/",
            "https:// http://[::1]:9/ http://[zz]/ http://[::1 hello http://a:99999/",
            "http://a:x/ <http://127.0.0.1:9/|> HTTP://127.0.0.1:9",
        ),
        '"Standup in 5 minutes"',
    ]
)
CONDITIONS = st.sampled_from(
    spaced(
        'when latency > 500ms status == 200 json.status.indicator != "none" body contains',
        "and or not ( ) {{ }} __class__ json.a.__class__.__mro__ 'a'*99999999",
        "range(10**9)|list &gt; &lt;=",
    )
)
TRIGGER_FRAGMENTS = st.one_of(
    NAMES,
    SCHEDULE_WORDS,
    KINDS,
    TARGETS,
    CONDITIONS,
    KEY_VALUES,
    st.sampled_from(SLACK_ESCAPES),
    UNICODE_WORD,
)
VALID_SCHEDULES = st.sampled_from(
    [
        "every 5m",
        "every day at 9:00",
        "every weekday at 9:30",
        "every mon,wed,fri at 8am",
        "every month on the 1st at 9am",
        'cron "0 9 * * 1-5"',
        "in 2 hours",
        "tomorrow at 9am",
        "every 2h tz Europe/Berlin",
        "at 2099-12-01 09:00",
        "every 30m",
        "every monday at 9am",
    ]
)
VALID_CONDITIONS = st.sampled_from(
    [
        "latency > 500ms",
        'json.status.indicator != "none"',
        "status == 200",
        "json.a.b > 3",
        "json.items|length > 2",
        "not json",
        "json.x in ['a', 'b']",
        "status >= 500 or latency > 1s",
    ]
)
VALID_URLS = st.sampled_from(
    spaced(
        "http://127.0.0.1:9/x <http://127.0.0.1:9/feed|feed> https://127.0.0.1:1/",
        "<https://localhost:9/a|a> HTTP://127.0.0.1:9",
    )
)
VALID_EXTRAS = st.tuples(
    st.sampled_from(["", "<#C0002|ops>", "#ops", "<#C0002>"]),
    st.lists(
        st.sampled_from(spaced("retries=3 recover=2 repeat=30m max=3 timeout=5s")), unique=True
    ),
).map(lambda pair: " ".join([pair[0], *pair[1]]))
EXTRAS = mostly(VALID_EXTRAS, words_of(st.one_of(KEY_VALUES, st.sampled_from(SLACK_ESCAPES)), 3))
CHANNEL_ONLY = mostly(st.sampled_from(["", "<#C0002|ops>", "#ops"]), EXTRAS)
WHEN = mostly(VALID_CONDITIONS.map("when ".__add__), words_of(CONDITIONS, 5).map("when ".__add__))
NEW_NAMES = mostly(st.from_regex(r"t[a-z0-9]{1,3}", fullmatch=True), NAMES)
SCHEDULES = mostly(VALID_SCHEDULES, words_of(SCHEDULE_WORDS, max_size=5, min_size=1))
URLS = mostly(VALID_URLS, st.one_of(TARGETS, words_of(TRIGGER_FRAGMENTS, 3)))
# `/trigger add NAME SCHEDULE KIND TARGET [when CONDITION] [#channel] [key=value]`, per kind,
# each part mostly well-formed and sometimes garbage; and any kind with any tail.
TRIGGER_ADDS = st.one_of(
    st.tuples(
        NEW_NAMES,
        SCHEDULES,
        st.sampled_from(["http", "rss", "HTTP"]),
        URLS,
        mostly(st.just(""), WHEN, odds=1),
        EXTRAS,
    ),
    st.tuples(NEW_NAMES, SCHEDULES, st.just("json"), URLS, WHEN, EXTRAS),
    st.tuples(
        NEW_NAMES,
        SCHEDULES,
        st.just("message"),
        mostly(st.sampled_from(['"Standup in 5 minutes"', "deploy <@U0001> now"]), UNICODE_WORD),
        CHANNEL_ONLY,
    ),
    st.tuples(NEW_NAMES, SCHEDULES, st.just("report"), CHANNEL_ONLY),
    st.tuples(NEW_NAMES, SCHEDULES, KINDS, words_of(TRIGGER_FRAGMENTS, 6)),
).map(lambda parts: "add " + " ".join(parts))


TRIGGER_COMMANDS = st.one_of(TRIGGER_ADDS, command_text(TRIGGER_VERBS, TRIGGER_FRAGMENTS))


async def test_trigger_command_text_never_crashes(
    start_bot: Callable[..., Awaitable[RunningBot]],
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_slack.add_user("U0002", tz="UTC")
    # Far in the future, so no trigger the fuzz creates comes due while the test runs.
    running = await start_bot(clock=FakeClock(datetime(2099, 1, 5, 10, 0, tzinfo=UTC)))
    reply = await running.command('/trigger add fz every day at 9:00 message "hi" <#C0002|ops>')
    assert "Added" in reply, reply
    reply = await running.command(
        "/trigger add fz-1 every 5m http http://127.0.0.1:9/ retries=2", user="U0002"
    )
    assert "Added" in reply, reply

    @settings(FUZZ, max_examples=300)
    @given(text=TRIGGER_COMMANDS, user=st.sampled_from(["U0001", "U0001", "U0002"]))
    def check(bridge: _Bridge, text: str, user: str) -> None:
        seen = len(caplog.records)
        reply = bridge.run(slash(running, "/trigger", text, user=user))
        assert_clean_reply("/trigger", text, reply)
        event(reply.split("\n", 1)[0][:40])
        assert new_errors(caplog, seen) == []

    await fuzz_in_thread(check)


# -- POST /hooks/{token} ---------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(PRINTABLE, max_size=20),
        st.sampled_from(SLACK_ESCAPES),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(spaced("text action event type object id alerts")),
                st.sampled_from(["status", "repository", "sender", "ref", "commits", "title"]),
                st.text(PRINTABLE, max_size=8),
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=20,
)
FIXTURES = spaced(
    "github/push.json github/pull_request.opened.json",
    "github/pull_request.closed.merged.json github/issues.opened.json",
    "github/release.published.json github/workflow_run.completed.json",
    "github/check_run.completed.failure.json",
    "github/workflow_job.completed.failure.json github/ping.json",
    "gitlab/merge_request.json alertmanager/firing.multiple.json",
    "grafana/alert.firing.json stripe/charge.succeeded.json",
    "sentry/event_alert.triggered.json",
)
GITHUB_EVENTS = [
    *spaced(
        "push pull_request issues release workflow_run workflow_job check_run ping",
        "issue_comment PUSH __class__",
    ),
    "",
    "push ",
]


@st.composite
def mutated_fixture(draw: st.DrawFn) -> Any:
    """A real published payload with a few of its values replaced by arbitrary JSON."""
    payload = copy.deepcopy(fixture_json(draw(st.sampled_from(FIXTURES))))
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        payload = _replace_somewhere(draw, payload)
    return payload


def _replace_somewhere(draw: st.DrawFn, root: Any) -> Any:
    """Walk a random path down ``root`` and replace the value found there."""
    if not isinstance(root, dict | list) or not root or draw(st.integers(0, 4)) == 0:
        return draw(JSON_VALUES)
    key: Any = (
        draw(st.sampled_from(sorted(root)))
        if isinstance(root, dict)
        else draw(st.integers(0, len(root) - 1))
    )
    root[key] = _replace_somewhere(draw, root[key])
    return root


BODIES = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    mutated_fixture().map(lambda value: json.dumps(value).encode()),
    st.sampled_from(FIXTURES).map(lambda name: json.dumps(fixture_json(name)).encode()),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.dictionaries(st.sampled_from(["payload", "text", "a"]), st.text(PRINTABLE, max_size=30))
    .map(urllib.parse.urlencode)
    .map(str.encode),
    JSON_VALUES.map(lambda value: urllib.parse.urlencode({"payload": json.dumps(value)}).encode()),
    st.sampled_from([b"{", b'{"a": 1,', b"[", b"\xff\xfe", b"null", b'"x"', b"1e99999", b""]),
    st.integers(min_value=MAX_BODY - 64, max_value=MAX_BODY + 4096).map(lambda n: b"x" * n),
    st.integers(min_value=1, max_value=MAX_BODY // 8).map(
        lambda n: json.dumps({"text": "é" * n, "n": n}).encode()
    ),
)
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            *spaced(
                "application/json APPLICATION/JSON application/x-www-form-urlencoded text/plain",
                "application/vnd.api+json application/json; ;",
            ),
            "application/json; charset=utf-8",
            "",
            "multipart/form-data; boundary=x",
            'text/json; x="y"',
        ]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
)
HEADER_NAMES = st.sampled_from(
    spaced(
        "X-GitHub-Event X-GitHub-Delivery X-Hub-Signature-256 Authorization",
        "X-Signature-256 User-Agent Idempotency-Key X-Gitlab-Event X-Gitlab-Token",
        "X-Gitlab-Event-UUID Stripe-Signature Sentry-Hook-Resource Request-ID",
        "X-Event-Type X-Event Content-Encoding X-Grafana-Alerting-Signature",
    )
)
HEADER_VALUES = st.one_of(
    st.sampled_from(
        [
            "push",
            "pull_request",
            "Merge Request Hook",
            "Bearer x",
            "Bearer ",
            "Basic !!",
            "sha256=",
            "sha256=00",
            "t=1,v1=00",
            "t=x",
            "Alertmanager/0.15.0",
            "gzip",
            "deflate",
            "br",
            "identity",
            "",
            " ",
            "event_alert",
            "a" * 2000,
        ]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    st.text(st.characters(min_codepoint=0xA0, max_codepoint=0xFF), max_size=10),
)
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=6)
TARGET_HOOKS = ("fzgen", "fzproc", "fzgh")
DECODED_ENCODINGS = {"gzip", "deflate", "br", "zstd"}  # what aiohttp decompresses


@dataclass(frozen=True)
class Request:
    """One fuzzed delivery attempt: which hook, what it carries, how it is compressed."""

    hook: str
    body: bytes
    content_type: str | None
    headers: dict[str, str]
    github_event: str | None
    signed: bool
    compression: str | None

    def wire_body(self) -> bytes:
        if self.compression == "gzip":
            return gzip.compress(self.body)
        if self.compression == "deflate":
            return zlib.compress(self.body)
        return self.body

    def all_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        if self.github_event is not None:
            headers["X-GitHub-Event"] = self.github_event
        if self.signed:  # over the body as the bot reads it, after decompression
            headers["X-Hub-Signature-256"] = sign_github(SECRET, self.body)
        if self.compression is not None:
            headers["Content-Encoding"] = self.compression
        return headers


REQUESTS = st.builds(
    Request,
    hook=st.sampled_from(TARGET_HOOKS),
    body=BODIES,
    content_type=st.one_of(st.none(), CONTENT_TYPES),
    headers=HEADERS,
    github_event=st.one_of(st.none(), st.sampled_from(GITHUB_EVENTS)),
    signed=st.booleans(),
    compression=st.sampled_from([None, None, None, "gzip", "deflate"]),
)


async def test_webhook_requests_never_crash(
    start_bot: Callable[..., Awaitable[RunningBot]],
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = await start_bot(webhook_max_body=MAX_BODY, webhook_rate_limit=100_000)
    paths = {
        "fzgen": await create_hook(running, "fzgen preset=generic"),
        "fzproc": await create_hook(running, "fzproc preset=generic"),
        "fzgh": await create_hook(running, f"fzgh preset=github secret={SECRET}"),
    }
    await drop_secret(running, "fzgen", paths["fzgen"])
    await drop_secret(running, "fzproc", paths["fzproc"])
    # A filter that is always true sends this hook's deliveries through the processor.
    assert "now posts only" in await running.command("/hook filter fzproc true")

    @settings(FUZZ, max_examples=300)
    @given(request=REQUESTS)
    def check(bridge: _Bridge, request: Request) -> None:
        seen = len(caplog.records)
        status, answer = bridge.run(
            running.post(paths[request.hook], request.wire_body(), request.all_headers())
        )
        event(f"{request.hook} answered {status}")
        assert status in ALLOWED_HOOK_STATUSES, (status, answer)
        assert new_errors(caplog, seen) == []

    await fuzz_in_thread(check)

    async with running.http.get(f"{running.base_url}/healthz") as response:
        assert response.status == 200
    for name in ("fzgen", "fzproc"):
        body = json.dumps({"text": f"final-probe-{name}"}).encode()
        headers = {"Content-Type": "application/json"}
        assert (await running.post(paths[name], body, headers))[0] == 202
    push = json.dumps(fixture_json("github/push.json") | {"ref": "refs/heads/final-probe"})
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": sign_github(SECRET, push.encode()),
    }
    assert (await running.post(paths["fzgh"], push.encode(), headers))[0] == 202
    for marker in ("final-probe-fzgen", "final-probe-fzproc", "final-probe"):
        await posted_containing(fake_slack, marker)
    assert new_errors(caplog, 0) == []


# -- templates and filters -------------------------------------------------------------------------

ATOMS = st.sampled_from(
    [
        *spaced(
            "payload payload.text payload.n payload['text'] payload.items headers event",
            "sender hook 'ab' \"x\" 0 1 -1 7 99 10**6 2.5 [] none true false range(5)",
            "range(99999999) dict(a=1) namespace(a=1) loop self lipsum cycler joiner nope",
            "payload.missing payload.missing.deeper () '%s%s' '{0.__class__}' caller varargs",
            "kwargs super",
        ),
        "[1, 2, 3]",
        "{'a': 1}",
        "'a' * 1000",
        "9 ** 9",
    ]
)
ATTRS = st.sampled_from(
    spaced(
        "__class__ __mro__ __subclasses__ __globals__ __init__ __dict__ mro __len__",
        "format format_map upper split items keys append update pop real text gi_frame",
        "__builtins__ __getattribute__ __reduce_ex__ n 0 join zfill ljust center",
        "expandtabs",
    )
)
FILTERS = st.sampled_from(
    [
        *spaced(
            "upper length list join join(',') tojson json center(5000) center(10)",
            "indent(2000) indent(4) wordwrap(1) format(1) batch(3) slice(2000) sort unique",
            "reverse first last sum int float string pprint attr('__class__')",
            "map(attribute='x') selectattr('x') dictsort groupby('x') truncate(3) urlize",
            "xmlattr striptags title default('d') d items random filesizeformat round abs",
            "trim escape safe wordcount nosuchfilter min max",
        ),
        "replace('a', 'bb')",
    ]
)
OPERATORS = st.sampled_from(
    [*spaced("* ** + - / // % ~ == != < > in and or is"), "not in", "is not", "is defined", ""]
)


def _expression_steps(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, OPERATORS, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, FILTERS).map(lambda t: f"{t[0]}|{t[1]}"),
        st.tuples(inner, ATTRS).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
        inner.map(lambda e: f"{e}()"),
        inner.map(lambda e: f"not {e}"),
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} if {t[1]} else {t[2]}"),
        st.tuples(inner, inner).map(lambda t: f"{{{t[0]}: {t[1]}}}"),
    )


EXPRESSIONS = st.recursive(ATOMS, _expression_steps, max_leaves=8)
STATEMENTS = st.one_of(
    EXPRESSIONS.map(lambda e: "{{ " + e + " }}"),
    EXPRESSIONS.map(lambda e: "{% for x in " + e + " %}{{ x }}{% endfor %}"),
    EXPRESSIONS.map(lambda e: "{% if " + e + " %}a{% else %}b{% endif %}"),
    EXPRESSIONS.map(lambda e: "{% set v = " + e + " %}{{ v }}"),
    EXPRESSIONS.map(lambda e: "{% set ns = namespace(a=" + e + ") %}{% set ns.a = 1 %}"),
    EXPRESSIONS.map(lambda e: "{% filter upper %}{{ " + e + " }}{% endfilter %}"),
    EXPRESSIONS.map(lambda e: "{% set b %}{{ " + e + " }}{% endset %}{{ b * 3 }}"),
    st.sampled_from(
        [
            "{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}",
            "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
            "{% for x in range(10**6) %}{% endfor %}",
            "{% for x in range(99) %}{% for y in range(99) %}{{ x }}{% endfor %}{% endfor %}",
            "{% raw %}{{{% endraw %}",
            "{% include 'x' %}",
            "{% extends 'x' %}",
            "{% import 'x' as y %}",
            "{% from 'x' import y %}",
            "{% autoescape true %}x{% endautoescape %}",
            "{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}c{% endcall %}",
            "{% block b %}{{ self.b() }}{% endblock %}",
            "{# a comment #}",
            "{% do 1 %}",
            "{% with a = 1 %}{{ a }}{% endwith %}",
            "{%- if true -%} trimmed {%- endif -%}",
            "{{ payload.text|center(999)|center(999)|center(999) }}",
            "{{ ('x' * 999) * 999 }}",
            "{{ '%s' % ('x' * 999,) * 999 }}",
            "{{ (payload|string) * 99 }}",
            "{{ range(10**5)|list|join(',') }}",
            "{{ '{0:>99999}'.format(1) }}",
            "{{ (2 ** 99999) }}",
        ]
    ),
    st.sampled_from(spaced("{{ }} {% %} {# #} { } % endfor endif")),
    st.integers(min_value=1, max_value=400).map(lambda n: "{{ " + "(" * n + "1" + ")" * n + " }}"),
    st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n),
    st.sampled_from(SLACK_ESCAPES),
    st.text(PRINTABLE, max_size=15),
)
TEMPLATES = st.lists(STATEMENTS, min_size=1, max_size=5).map(" ".join)
FILTER_EXPRESSIONS = mostly(
    st.one_of(
        EXPRESSIONS,
        st.tuples(
            EXPRESSIONS, st.sampled_from(["==", "!=", "in", "and", "or", "<"]), EXPRESSIONS
        ).map(" ".join),
        st.lists(STATEMENTS, min_size=1, max_size=3).map(" ".join),
    ),
    st.just("clear"),
    odds=9,
)


def slack_escaped(text: str) -> str:
    """What Slack sends for text a user typed (``should_escape`` escapes &, < and >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class UserCode:
    """One ``/hook template`` or ``/hook filter`` change, and the delivery sent after it."""

    verb: str
    source: str
    escape: bool
    payload: Any

    def command(self) -> str:
        source = slack_escaped(self.source) if self.escape else self.source
        return f"{self.verb} fzt {source}"


USER_CODE = st.one_of(
    st.builds(
        UserCode,
        verb=st.just("template"),
        source=mostly(TEMPLATES, st.just("clear"), odds=9),
        escape=st.booleans(),
        payload=JSON_VALUES,
    ),
    st.builds(
        UserCode,
        verb=st.just("filter"),
        source=FILTER_EXPRESSIONS,
        escape=st.booleans(),
        payload=JSON_VALUES,
    ),
)
DELIVERY_LINE = re.compile(r"• `(?P<id>[0-9a-f]{29})` .*?→ \*(?P<status>\w+)\*(?P<rest>.*)")


async def delivery_verdict(running: RunningBot, delivery_id: str) -> tuple[str, str]:
    """Wait until ``/hook log fzt`` shows a verdict for the delivery (and its message's fate)."""
    async with asyncio.timeout(5):
        while True:
            log = await running.command("/hook log fzt")
            for line in DELIVERY_LINE.finditer(log):
                if line["id"] != delivery_id or line["status"] in ("received", "processing"):
                    continue
                if line["status"] != "posted" or _message_settled(line["rest"]):
                    return line["status"], line["rest"]
            await asyncio.sleep(0.01)


def _message_settled(rest: str) -> bool:
    return "|message>" in rest or " · failed" in rest or " · dead" in rest


async def send_user_code(
    running: RunningBot, fake_slack: FakeSlack, path: str, code: UserCode
) -> str:
    """Change the template or filter, send one delivery, check its fate; return a summary."""
    reply = await slash(running, "/hook", code.command())
    assert_clean_reply("/hook", code.command(), reply)
    before = len(fake_slack.messages("C0002"))
    body = json.dumps(code.payload).encode()
    status, answer = await running.post(path, body, {"Content-Type": "application/json"})
    assert status == 202, (status, answer)
    verdict, rest = await delivery_verdict(running, answer["delivery"])
    assert verdict in ("posted", "filtered", "failed"), (verdict, rest)
    await until_bots_idle(running)  # a second post would be in Slack's record by now
    posted = len(fake_slack.messages("C0002")) - before
    assert posted == (1 if verdict == "posted" and "|message>" in rest else 0), (verdict, rest)
    return f"{code.verb} {'saved' if 'now' in reply else 'refused'}, delivery {verdict}"


async def test_templates_and_filters_never_crash_the_processor(
    start_bot: Callable[..., Awaitable[RunningBot]],
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = await start_bot()
    path = await create_hook(running, "fzt <#C0002|ops> preset=generic")
    await drop_secret(running, "fzt", path)

    @settings(FUZZ, max_examples=100)
    @given(code=USER_CODE)
    def check(bridge: _Bridge, code: UserCode) -> None:
        seen = len(caplog.records)
        event(bridge.run(send_user_code(running, fake_slack, path, code)))
        assert new_errors(caplog, seen) == []

    await fuzz_in_thread(check)


# -- bugs the fuzz found, kept as regression tests (minimal inputs) -------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "add big every 1000000w message hi",
        "add big in 99999999 hours message hi",
        "add big every 5m http http://127.0.0.1:9/ repeat=99999999999999999999d",
        "mute fz 99999999999999999999d",
        "add big at 9999-12-31 23:59 tz Etc/GMT+12 message hi",
    ],
)
async def test_regression_huge_durations(
    start_bot: Callable[..., Awaitable[RunningBot]], text: str
) -> None:
    running = await start_bot()
    assert "Added" in await running.command('/trigger add fz every day at 9:00 message "hi"')
    assert_clean_reply("/trigger", text, await running.command(f"/trigger {text}"))


@pytest.mark.parametrize("url", ["http://[zz]/", "http://[::1"])
async def test_regression_bracketed_host(
    start_bot: Callable[..., Awaitable[RunningBot]], url: str
) -> None:
    running = await start_bot()
    text = f"add site every 5m http {url}"
    assert_clean_reply("/trigger", text, await running.command(f"/trigger {text}"))


@pytest.mark.parametrize("text", ["create fz2 x=1 x=1", "set fz rate=5 rate=6"])
async def test_regression_repeated_option(
    start_bot: Callable[..., Awaitable[RunningBot]], text: str
) -> None:
    running = await start_bot()
    await create_hook(running, "fz preset=generic")
    assert_clean_reply("/hook", text, await running.command(f"/hook {text}"))


@pytest.mark.parametrize(
    "text",
    [
        "/hook template fz {{ not {[]: 1} }}",
        "/hook filter fz {[]: 1} == 1",
        "/trigger add site every 5m http http://127.0.0.1:9/ when not {[]: 1}",
    ],
)
async def test_regression_unhashable_dict_key(
    start_bot: Callable[..., Awaitable[RunningBot]], text: str
) -> None:
    running = await start_bot()
    await create_hook(running, "fz preset=generic")
    command, _, rest = text.partition(" ")
    assert_clean_reply(command, rest, await running.command(text))


async def test_regression_undecodable_content_encoding(
    start_bot: Callable[..., Awaitable[RunningBot]],
) -> None:
    running = await start_bot()
    path = await create_hook(running, "fz preset=generic")
    await drop_secret(running, "fz", path)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, _ = await running.post(path, b"{}", headers)
    assert status == 400


async def test_regression_blank_template_posts_empty_text(
    start_bot: Callable[..., Awaitable[RunningBot]], fake_slack: FakeSlack
) -> None:
    running = await start_bot()
    path = await create_hook(running, "fzt <#C0002|ops> preset=generic")
    await drop_secret(running, "fzt", path)
    assert "now uses your template" in await running.command("/hook template fzt {{ '' }}")
    status, answer = await running.post(
        path, b'{"text": "hi"}', {"Content-Type": "application/json"}
    )
    assert status == 202
    verdict, _ = await delivery_verdict(running, answer["delivery"])
    posted = [args["text"] for args in fake_slack.messages("C0002")]
    assert verdict != "posted" or all(text.strip() for text in posted), posted
