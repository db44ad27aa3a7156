"""Credentials end to end: /secret and its form over signed Slack requests, secrets sent by
the real fetcher to loopback echo servers, redaction, the database's contents, keys.

The echo servers answer every request with the headers it carried, so a secret that
reaches a host is visible there (``seen``) and would be visible in what the bot shows,
were it not redacted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import shutil
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from aiohttp import web
from alembic import command
from sqlmodel import col, select

from bot.audit import Actor
from bot.config import Secret, sqlite_path
from bot.credentials.keys import Keyring, MissingKey, WrongKey, hash_token
from bot.credentials.refs import parse_options
from bot.credentials.store import open_with_key, rekey_all
from bot.db import Database, alembic_config, current_revision_matches_head
from bot.devtools.fake_slack import FakeSlack
from bot.errors import UsageError
from bot.models import AuditEntry, Hook, OutboxMessage, SecretRecord, Trigger
from bot.net import FetchBlocked
from bot.webhooks.verify import sign_generic
from tests.conftest import SECRETS_KEY, RunningBot, eventually, fixture_bytes
from tests.test_app import free_port, run_cli
from tests.test_conversation import click, dm, submission, text_value
from tests.test_webhooks_flow import create_hook, github_headers

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
VALUE = "crm-token-7f3a9c1e5b2d"
OTHER_VALUE = "pa55-w0rd-for-imap-9q"
ACTOR = Actor("T0001", "U0001", "C0001")
PLACEHOLDER = "••••(crm)"
OTHER_KEY = "yOr2JmWbXVfUc5rWm8m2Yq3U2m2q5iQ0cYQ0oWcJk2E="


# -- echo servers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request an echo server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class EchoServer:
    """Answers /echo with the request's headers as JSON; /to?url=U redirects (302) to U."""

    seen: list[Seen] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/echo", self._echo)
        app.router.add_route("*", "/to", self._redirect)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/echo") -> str:
        return f"http://{self.host}{path}"

    def redirect_to(self, target: str, status: int = 302) -> str:
        return self.url(f"/to?status={status}&url={quote(target, safe='')}")

    async def _record(self, request: web.Request) -> None:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path, dict(request.headers), body))

    async def _echo(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"headers": dict(request.headers), "method": request.method})

    async def _redirect(self, request: web.Request) -> web.Response:
        await self._record(request)
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"Location": request.query["url"]})


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


@pytest.fixture
async def elsewhere() -> AsyncIterator[EchoServer]:
    """A second echo server: another origin (same address, another port)."""
    server = EchoServer()
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


# -- helpers -----------------------------------------------------------------------------------


async def set_in_form(
    running: RunningBot,
    fake_slack: FakeSlack,
    typed: str,
    value: str,
    *,
    user: str = "U0001",
    basic_user: str | None = None,
) -> Any:
    """``/secret set {typed}``, then submit the form it opens with ``value``; the answer."""
    opened_before = len(fake_slack.calls_to("views.open"))
    assert await running.command_raw(f"/secret set {typed}", user=user) == ""
    opened = (await fake_slack.wait_for("views.open", count=opened_before + 1))[-1]
    values: dict[str, Any] = {"value": {"value": text_value(value)}}
    if basic_user is not None:
        values["user"] = {"user": text_value(basic_user)}
    return await running.interact(submission(opened.args["view"], values, user=user))


async def told(fake_slack: FakeSlack, count: int) -> str:
    """The text of the ``count``-th private message the bot sent."""
    calls = await fake_slack.wait_for("chat.postEphemeral", count=count)
    return str(calls[count - 1].args["text"])


async def database_bytes(database_url: str) -> bytes:
    """Everything the database holds, as the issue's grep sees it: the SQLite file and its
    write-ahead log, or a pg_dump (every text, JSON and bytea column without pg_dump)."""
    path = sqlite_path(database_url)
    if path is not None:
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    if shutil.which("pg_dump"):
        process = await asyncio.create_subprocess_exec(
            "pg_dump", "--no-owner", database_url, stdout=asyncio.subprocess.PIPE
        )
        dump, _ = await process.communicate()
        assert process.returncode == 0
        return dump
    return await _every_text_column(database_url)


async def _every_text_column(database_url: str) -> bytes:
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            columns = (
                await conn.execute(
                    sa.text(
                        "SELECT table_name, column_name FROM information_schema.columns "
                        "WHERE table_schema = 'public' AND data_type IN "
                        "('text', 'character varying', 'bytea', 'json', 'jsonb')"
                    )
                )
            ).all()
            chunks = []
            for table, column in columns:
                rows = await conn.execute(sa.text(f'SELECT "{column}"::text FROM "{table}"'))
                chunks += [str(value).encode() for (value,) in rows.all()]
    finally:
        await db.close()
    return b"\n".join(chunks)


def refs(*pairs: tuple[str, str]) -> Any:
    return parse_options(pairs)


# -- setting and sending -----------------------------------------------------------------------


@BOTH
async def test_a_secret_set_in_the_form_reaches_its_host_with_its_header(
    start_bot, fake_slack: FakeSlack, echo: EchoServer
) -> None:
    running: RunningBot = await start_bot()
    assert await set_in_form(running, fake_slack, f"crm for {echo.host}", VALUE) in ("", None, {})
    stored = await told(fake_slack, 1)
    assert "Stored the secret *crm*" in stored and echo.host in stored and VALUE not in stored

    reply = await running.command(f"/secret test {echo.url()} auth=bearer:crm")
    assert f"Authorization: Bearer {PLACEHOLDER}" in reply
    answer = await told(fake_slack, 2)
    assert "→ *200*" in answer and PLACEHOLDER in answer and VALUE not in answer
    assert echo.seen[-1].headers["Authorization"] == f"Bearer {VALUE}"

    credentials = await running.bot.secrets.credentials_for(
        ACTOR, refs(("header.X-Api-Key", "secret:crm"), ("header.X-Trace", "t-1"))
    )
    fetched = await running.bot.fetcher.get(echo.url(), timeout=5, credentials=credentials)
    assert echo.seen[-1].headers["X-Api-Key"] == VALUE
    assert echo.seen[-1].headers["X-Trace"] == "t-1"
    assert VALUE.encode() not in fetched.body
    assert json.loads(fetched.body)["headers"]["X-Api-Key"] == PLACEHOLDER


async def test_basic_auth_sends_the_user_name_stored_with_the_secret(
    start_bot, fake_slack: FakeSlack, echo: EchoServer
) -> None:
    running: RunningBot = await start_bot()
    answer = await set_in_form(
        running, fake_slack, f"login for {echo.host} basic", OTHER_VALUE, basic_user="ops-bot"
    )
    assert answer in ("", None, {})
    assert "with the user name `ops-bot`" in await told(fake_slack, 1)
    await running.command(f"/secret test {echo.url()} auth=basic:login")
    answer_text = await told(fake_slack, 2)
    pair = base64.b64encode(f"ops-bot:{OTHER_VALUE}".encode()).decode()
    assert echo.seen[-1].headers["Authorization"] == f"Basic {pair}"
    assert pair not in answer_text and "Basic ••••(login)" in answer_text


@BOTH
async def test_a_secret_named_in_a_request_to_another_host_is_refused_before_sending(
    start_bot, fake_slack: FakeSlack, echo: EchoServer, elsewhere: EchoServer
) -> None:
    running: RunningBot = await start_bot()
    await set_in_form(running, fake_slack, f"crm for {echo.host}", VALUE)
    reply = await running.command(f"/secret test {elsewhere.url()} auth=bearer:crm")
    assert "Not sent" in reply and elsewhere.host in reply and echo.host in reply
    assert "/secret set crm for HOST" in reply
    credentials = await running.bot.secrets.credentials_for(ACTOR, refs(("auth", "bearer:crm")))
    for url in (elsewhere.url(), f"http://localhost:{echo.port}/echo", "https://127.0.0.1/"):
        with pytest.raises(FetchBlocked, match="not bound to"):
            await running.bot.fetcher.get(url, timeout=5, credentials=credentials)
    assert elsewhere.seen == [] and echo.seen == []
    with pytest.raises(UsageError, match="Not sent"):
        await running.bot.secrets.resolve(ACTOR, "crm", elsewhere.url())
    assert (await running.bot.secrets.resolve(ACTOR, "crm", echo.url())).value == VALUE


async def test_a_redirect_to_another_origin_drops_the_secret(
    start_bot, fake_slack: FakeSlack, echo: EchoServer, elsewhere: EchoServer
) -> None:
    running: RunningBot = await start_bot()
    await set_in_form(running, fake_slack, f"crm for {echo.host},{elsewhere.host}", VALUE)
    credentials = await running.bot.secrets.credentials_for(ACTOR, refs(("auth", "bearer:crm")))
    fetcher = running.bot.fetcher

    result = await fetcher.get(
        echo.redirect_to(elsewhere.url()), timeout=5, credentials=credentials
    )
    assert result.status == 200 and result.final_url == elsewhere.url()
    assert echo.seen[-1].headers["Authorization"] == f"Bearer {VALUE}"  # the first hop
    assert "Authorization" not in elsewhere.seen[-1].headers  # though bound there too

    await fetcher.get(echo.redirect_to(echo.url()), timeout=5, credentials=credentials)
    assert echo.seen[-1].path == "/echo"
    assert echo.seen[-1].headers["Authorization"] == f"Bearer {VALUE}"  # same origin: kept

    await running.command(f"/secret test {echo.redirect_to(elsewhere.url())} auth=bearer:crm")
    assert "redirected to another origin" in await told(fake_slack, 2)


async def test_a_request_follows_303_as_get_and_307_with_its_body(
    start_bot, fake_slack: FakeSlack, echo: EchoServer
) -> None:
    running: RunningBot = await start_bot()
    await set_in_form(running, fake_slack, f"crm for {echo.host}", VALUE)
    credentials = await running.bot.secrets.credentials_for(ACTOR, refs(("auth", "bearer:crm")))
    fetch = running.bot.fetcher.request
    headers = {"Content-Type": "application/json", "Authorization": "Bearer typed-over"}
    body = b'{"lead": 1}'
    await fetch(
        "POST",
        echo.redirect_to(echo.url(), 303),
        headers=headers,
        body=body,
        timeout=5,
        credentials=credentials,
    )
    first, then = echo.seen[-2:]
    assert (first.method, first.body, first.headers["Authorization"]) == (
        "POST",
        body,
        f"Bearer {VALUE}",  # the secret's header wins over one given with the same name
    )
    assert (then.method, then.body) == ("GET", b"") and "Content-Type" not in then.headers
    await fetch("POST", echo.redirect_to(echo.url(), 307), headers=headers, body=body, timeout=5)
    assert (echo.seen[-1].method, echo.seen[-1].body) == ("POST", body)


# -- who may use a secret ----------------------------------------------------------------------


async def test_only_its_creator_those_it_allows_and_admins_may_use_a_secret(
    start_bot, fake_slack: FakeSlack, echo: EchoServer
) -> None:
    for user in ("U0002", "U0003"):
        fake_slack.add_user(user, tz="UTC")
    running: RunningBot = await start_bot(bot_admins=frozenset({"U0003"}))
    await set_in_form(running, fake_slack, f"crm for {echo.host}", VALUE)
    test = f"/secret test {echo.url()} auth=bearer:crm"

    refused = await running.command(test, user="U0002")
    assert "You may not use the secret `crm`" in refused and "/secret allow crm <@U0002>" in refused
    assert "Only <@U0001>" in await running.command("/secret allow crm <@U0002>", user="U0002")
    assert "Only <@U0001>" in await running.command("/secret delete crm", user="U0002")
    taken = await set_in_form(
        running, fake_slack, f"crm for {echo.host}", "a-new-value-123", user="U0002"
    )
    assert "Only <@U0001>" in taken["errors"]["value"]
    assert echo.seen == []

    assert "<@U0002>" in await running.command("/secret allow crm <@U0002>")
    assert "Sending" in await running.command(test, user="U0002")
    await eventually(lambda: _true(len(echo.seen) == 1))
    assert echo.seen[0].headers["Authorization"] == f"Bearer {VALUE}"  # the value was kept

    assert "<@U0002>" not in await running.command("/secret deny crm <@U0002>")
    assert "You may not use" in await running.command(test, user="U0002")
    admin = Actor("T0001", "U0003", "C0001")
    assert (await running.bot.secrets.require_use(admin, "crm")).name == "crm"
    stranger = Actor("T0002", "U0001", "C0001")  # the same user id in another workspace
    with pytest.raises(UsageError, match="no secret named"):
        await running.bot.secrets.require_use(stranger, "crm")


async def _true(value: bool) -> bool:
    return value


# -- what is shown -----------------------------------------------------------------------------


async def test_list_and_show_never_contain_the_value_and_name_what_uses_it(
    start_bot, fake_slack: FakeSlack
) -> None:
    running: RunningBot = await start_bot()
    await set_in_form(running, fake_slack, "crm for api.crm.example.com, *.example.com", VALUE)
    async with running.bot.db.transaction() as session:
        session.add(_trigger_using("crm-sync", {"auth": "bearer:crm"}))
        session.add(_trigger_using("crm-ping", {"header.X-Api-Key": "secret:crm"}))

    listing = await running.command("/secret list")
    shown = await running.command("/secret show crm")
    for text in (listing, shown):
        assert VALUE not in text
        assert "`api.crm.example.com`" in text and "`*.example.com`" in text
        assert "trigger crm-ping, trigger crm-sync" in text and "<@U0001>" in text
    assert "the value is never shown" in shown

    refused = await running.command("/secret delete crm")
    assert "used by trigger crm-ping, trigger crm-sync" in refused
    async with running.bot.db.transaction() as session:
        await session.execute(sa.delete(Trigger))
    assert "Deleted the secret *crm*" in await running.command("/secret delete crm")
    assert "No secrets yet" in await running.command("/secret list")
    async with running.bot.db.sessions() as session:
        actions = (await session.execute(select(AuditEntry.action))).scalars().all()
    assert "set for api.crm.example.com, *.example.com" in actions and "deleted" in actions
    assert not any(VALUE in action for action in actions)
    assert "/secret set NAME for HOST" in await running.command("/secret help")


def _trigger_using(name: str, options: dict[str, str]) -> Trigger:
    return Trigger(
        team_id="T0001",
        name=name,
        channel_id="C0001",
        kind="http",
        target="https://api.crm.example.com/health",
        schedule={},
        options=options,
        state={},
        paused=True,
        created_by="U0001",
        created_at=datetime(2030, 1, 1, tzinfo=UTC),
    )


async def test_a_value_typed_after_the_host_is_stored_with_a_reminder(
    start_bot, fake_slack: FakeSlack
) -> None:
    running: RunningBot = await start_bot()
    reply = await running.command(f"/secret set typed for api.example.com {VALUE}")
    assert "Stored the secret *typed*" in reply and "Next time, leave the value out" in reply
    assert VALUE not in reply
    short = await running.command("/secret set typed for api.example.com s3cr3t!")
    assert "at least 8 characters" in short and "s3cr3t!" not in short
    assert "is a URL" in await running.command("/secret set x for https://api.example.com/v1")
    assert "never closed" in await running.command(f'/secret set q for api.example.com "{VALUE}')
    assert VALUE not in await running.command(f'/secret set q for api.example.com "{VALUE}')


async def test_the_form_shows_errors_under_its_fields(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    short = await set_in_form(running, fake_slack, "crm for api.example.com", "short")
    assert "at least 8 characters" in short["errors"]["value"]
    no_user = await set_in_form(running, fake_slack, "login for api.example.com basic", VALUE)
    assert "user name" in no_user["errors"]["user"]
    async with running.bot.db.sessions() as session:
        assert (await session.execute(select(SecretRecord))).first() is None


# -- redaction ---------------------------------------------------------------------------------


async def test_a_secret_echoed_into_a_message_a_reply_or_a_log_line_is_hidden(
    start_bot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    running: RunningBot = await start_bot()
    await set_in_form(running, fake_slack, "crm for api.crm.example.com", VALUE)
    path, signing = await create_hook(running, "echoes preset=generic")
    assert signing
    await running.command("/hook template echoes got {{ payload.text }} and {{ secret('crm') }}")
    body = json.dumps({"text": f"the token is {VALUE}"}).encode()
    headers = {"Content-Type": "application/json", "X-Signature-256": sign_generic(signing, body)}
    assert (await running.post(path, body, headers))[0] == 202
    (posted,) = await fake_slack.wait_for("chat.postMessage")
    assert VALUE not in json.dumps(posted.args) and PLACEHOLDER in posted.args["text"]
    async with running.bot.db.sessions() as session:
        texts = (await session.execute(select(OutboxMessage.text))).scalars().all()
    assert texts and not any(VALUE in text for text in texts)

    reply = await running.command(f'/hook filter echoes payload.text == "{VALUE}"')
    assert VALUE not in reply and PLACEHOLDER in reply

    with caplog.at_level(logging.INFO):
        logging.getLogger("bot.anywhere").warning("the answer held %s", VALUE)
        try:
            raise RuntimeError(f"failed with {VALUE}")
        except RuntimeError:
            logging.getLogger("bot.anywhere").exception("and then")
    assert VALUE not in caplog.text and caplog.text.count(PLACEHOLDER) == 2


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_secret_set_on_one_replica_is_hidden_by_the_others(
    start_bot, fake_slack: FakeSlack
) -> None:
    first: RunningBot = await start_bot()
    second: RunningBot = await start_bot()
    await set_in_form(first, fake_slack, "crm for api.crm.example.com", VALUE)
    assert first.bot.secrets.redact(VALUE) == PLACEHOLDER  # at once where it was set

    async def second_knows() -> bool:
        return "crm" in second.bot.secrets.redactor.names

    await eventually(second_knows, within=15)  # re-read by its watch, a couple of seconds
    assert second.bot.secrets.redact(f"x {VALUE} y") == f"x {PLACEHOLDER} y"


# -- at rest -----------------------------------------------------------------------------------


@BOTH
async def test_the_database_holds_no_credential_in_plain_text(
    start_bot, fake_slack: FakeSlack, database_url: str
) -> None:
    running: RunningBot = await start_bot()
    await set_in_form(running, fake_slack, "crm for api.crm.example.com", VALUE)
    await set_in_form(
        running, fake_slack, "mail for imap.example.com:993 basic", OTHER_VALUE, basic_user="bot"
    )
    typed = "typed-value-0123456789"
    await running.command(f"/secret set typed for api.example.com {typed}")
    path, signing = await create_hook(running, "deploys preset=github")
    chosen = "whsec_chosen_0123456789"
    await running.command(f"/hook create payments preset=stripe secret={chosen}")
    assert signing
    token = path.rsplit("/", 1)[1]
    form_token, form_secret = await _hook_made_in_the_form(running, fake_slack)

    dump = await database_bytes(database_url)
    for needle in (VALUE, OTHER_VALUE, typed, signing, chosen, token, form_token, form_secret):
        assert needle.encode() not in dump, needle
    assert hash_token(token).encode() in dump and b"gAAAAA" in dump  # what is stored instead
    async with running.bot.db.sessions() as session:
        hook = (await session.execute(select(Hook).where(col(Hook.name) == "deploys"))).scalar_one()
    assert hook.secret is not None and Keyring([SECRETS_KEY]).decrypt(hook.secret) == signing


async def _hook_made_in_the_form(running: RunningBot, fake_slack: FakeSlack) -> tuple[str, str]:
    """A hook created in its modal: the URL's token and the secret it shows once."""
    opened_before = len(fake_slack.calls_to("views.open"))
    assert await running.command_raw("/hook") == ""
    opened = (await fake_slack.wait_for("views.open", count=opened_before + 1))[-1]
    values = {
        "name": {"name": text_value("formed")},
        "channel": {"channel": {"type": "conversations_select", "selected_conversation": "C0002"}},
        "preset": {"preset": {"type": "static_select", "selected_option": {"value": "generic"}}},
        "secret": {"secret": text_value(None)},
    }
    answer = await running.interact(submission(opened.args["view"], values))
    text = json.dumps(answer["view"])
    found = re.search(r"/hooks/([\w-]+)`.*keep it\): `([^`]+)`", text, re.DOTALL)
    assert found, text
    return found.group(1), found.group(2)


async def test_a_hook_created_from_a_proposal_shows_its_url_once_in_a_modal(
    start_bot, fake_slack: FakeSlack, database_url: str
) -> None:
    fake_slack.add_channel("D0001", "dm")
    running: RunningBot = await start_bot()
    await running.event(dm("create a github webhook for <#C0002|deploys>"))
    (proposal,) = await fake_slack.wait_for("chat.postMessage")
    buttons = [e for b in proposal.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    create = next(b for b in buttons if b["action_id"] == "draft_create")
    await running.interact(click("draft_create", create["value"], channel="D0001", ts="1.2"))
    (shown,) = await fake_slack.wait_for("views.open")
    text = json.dumps(shown.args["view"])
    found = re.search(r"/hooks/([\w-]+)`.*keep it\): `([^`]+)`", text, re.DOTALL)
    assert found, text
    await fake_slack.wait_for("chat.update")  # the proposal says it was created
    messages = json.dumps([call.args for call in fake_slack.calls if call.method != "views.open"])
    dump = await database_bytes(database_url)
    for shown_once in found.groups():
        assert shown_once not in messages and shown_once.encode() not in dump


OLD_TOKEN = "old-url-token-AAAAAAAAAAAAAAAAAAAAAAAA"
OLD_UNSIGNED_TOKEN = "old-url-token-BBBBBBBBBBBBBBBBBBBBBBBB"
OLD_SECRET = "old-signing-secret-0123456789abcdef"


async def _old_database(database_url: str) -> None:
    """A database as the version before credentials left it: tokens and secrets as they are."""
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0006"))
            for name, preset, token, secret in (
                ("gh", "github", OLD_TOKEN, OLD_SECRET),
                ("plain", "generic", OLD_UNSIGNED_TOKEN, None),
            ):
                await conn.execute(
                    sa.text(
                        "INSERT INTO hook (team_id, name, channel_id, preset, token, secret, "
                        "paused, rejected, created_by, created_at) VALUES ('T0001', :name, "
                        "'C0001', :preset, :token, :secret, false, 0, 'U0001', :at)"
                    ),
                    {
                        "name": name,
                        "preset": preset,
                        "token": token,
                        "secret": secret,
                        "at": datetime(2030, 1, 1),
                    },
                )
    finally:
        await db.close()


@BOTH
async def test_an_old_database_is_migrated_and_its_hooks_keep_working(
    start_bot, fake_slack: FakeSlack, database_url: str
) -> None:
    await _old_database(database_url)
    assert OLD_SECRET.encode() in await database_bytes(database_url)  # the grep can see it
    running: RunningBot = await start_bot()
    body = fixture_bytes("github/push.json")
    status, _ = await running.post(
        f"/hooks/{OLD_TOKEN}", body, github_headers("push", body, OLD_SECRET)
    )
    assert status == 202
    unsigned = json.dumps({"text": "hello"}).encode()
    status, _ = await running.post(
        f"/hooks/{OLD_UNSIGNED_TOKEN}", unsigned, {"Content-Type": "application/json"}
    )
    assert status == 202
    await fake_slack.wait_for("chat.postMessage", count=2)
    assert "shown once" in await running.command("/hook show gh")

    dump = await database_bytes(database_url)
    for needle in (OLD_TOKEN, OLD_UNSIGNED_TOKEN, OLD_SECRET):
        assert needle.encode() not in dump, needle
    assert hash_token(OLD_TOKEN).encode() in dump


@BOTH
async def test_an_old_database_with_signing_secrets_is_refused_without_a_key(
    database_url: str,
) -> None:
    if database_url.startswith("postgres"):
        from tests.conftest import reset_postgres

        await reset_postgres(database_url)
    await _old_database(database_url)
    db = Database(database_url)
    try:
        with pytest.raises(MissingKey, match=r"SECRETS_KEY is not set.*chatops-bot keygen"):
            await open_with_key(db, None)
        async with db.engine.connect() as conn:
            assert not await conn.run_sync(current_revision_matches_head)  # nothing changed
            assert (
                await conn.execute(sa.text("SELECT secret FROM hook WHERE name = 'gh'"))
            ).scalar_one() == OLD_SECRET
    finally:
        await db.close()


# -- keys --------------------------------------------------------------------------------------


async def test_a_rotated_key_reads_old_values_and_rekey_moves_them_to_the_new_one(
    start_bot, fake_slack: FakeSlack, database_url: str, echo: EchoServer
) -> None:
    running: RunningBot = await start_bot()
    await set_in_form(running, fake_slack, f"crm for {echo.host}", VALUE)
    await running.stop()

    rotated = await start_bot(secrets_key=Secret(f"{OTHER_KEY},{SECRETS_KEY}"))
    credentials = await rotated.bot.secrets.credentials_for(ACTOR, refs(("auth", "bearer:crm")))
    await rotated.bot.fetcher.get(echo.url(), timeout=5, credentials=credentials)
    assert echo.seen[-1].headers["Authorization"] == f"Bearer {VALUE}"
    await set_in_form(rotated, fake_slack, f"fresh for {echo.host}", OTHER_VALUE)
    stored = await _ciphertexts(rotated.bot.db)
    assert Keyring([OTHER_KEY]).decrypt(stored["fresh"]) == OTHER_VALUE  # the first key encrypts
    with pytest.raises(WrongKey):
        Keyring([OTHER_KEY]).verify_can_decrypt(stored["crm"])

    assert await rekey_all(rotated.bot.db, Keyring.from_setting(f"{OTHER_KEY},{SECRETS_KEY}")) == 1
    stored = await _ciphertexts(rotated.bot.db)
    assert Keyring([OTHER_KEY]).decrypt(stored["crm"]) == VALUE
    await rotated.stop()
    db = Database(database_url)
    try:
        with pytest.raises(WrongKey):
            await open_with_key(db, SECRETS_KEY)  # the old key alone no longer opens it
    finally:
        await db.close()
    new_only = await start_bot(secrets_key=Secret(OTHER_KEY))
    assert (await new_only.bot.secrets.resolve(ACTOR, "crm", echo.url())).value == VALUE


async def _ciphertexts(db: Database) -> dict[str, str]:
    async with db.sessions() as session:
        rows = await session.execute(select(SecretRecord.name, SecretRecord.ciphertext))
        return {name: ciphertext for name, ciphertext in rows.all()}


def _cli_env(database: Path, **env: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "abc",
        "DATABASE_URL": f"sqlite:///{database}",
        "PORT": str(free_port()),
        "SECRETS_KEY": "",
    } | env


async def test_start_up_stops_with_one_line_for_a_missing_wrong_or_malformed_key(
    tmp_path: Path,
) -> None:
    database = tmp_path / "keys.db"
    db = Database(f"sqlite:///{database}")
    try:
        await open_with_key(db, SECRETS_KEY)
        async with db.transaction() as session:
            session.add(
                SecretRecord(
                    team_id="T0001",
                    name="crm",
                    hosts=["api.example.com"],
                    ciphertext=Keyring([SECRETS_KEY]).encrypt(VALUE),
                    allowed=[],
                    created_by="U0001",
                    created_at=datetime(2030, 1, 1, tzinfo=UTC),
                    set_by="U0001",
                    set_at=datetime(2030, 1, 1, tzinfo=UTC),
                )
            )
    finally:
        await db.close()

    cases = {
        "": "SECRETS_KEY is not set, but the database holds encrypted credentials",
        OTHER_KEY: "SECRETS_KEY does not decrypt the credentials already stored",
        "not-a-key": "SECRETS_KEY: the key is not a Fernet key",
    }
    for key, message in cases.items():
        result = await asyncio.to_thread(
            run_cli, _cli_env(database, SECRETS_KEY=key), "run", cwd=tmp_path
        )
        assert result.returncode == 2, result.stderr
        # (Alembic's INFO lines about the migration context may come first.)
        (line,) = [line for line in result.stderr.splitlines() if "SECRETS_KEY" in line]
        assert result.stderr.strip().endswith(line) and line.startswith("chatops-bot: ")
        assert message in line and "chatops-bot keygen" in line
        assert VALUE not in line and SECRETS_KEY not in line

    rotated = f"{OTHER_KEY},{SECRETS_KEY}"
    done = await asyncio.to_thread(
        run_cli, _cli_env(database, SECRETS_KEY=rotated), "rekey", cwd=tmp_path
    )
    assert done.returncode == 0 and "re-encrypted 1 stored credential " in done.stdout
    moved = await asyncio.to_thread(
        run_cli, _cli_env(database, SECRETS_KEY=OTHER_KEY), "migrate", cwd=tmp_path
    )
    assert moved.returncode == 0, moved.stderr


async def test_keygen_prints_a_key_and_local_mode_keeps_one_in_a_private_file(
    tmp_path: Path,
) -> None:
    made = await asyncio.to_thread(run_cli, {}, "keygen", cwd=tmp_path)
    assert made.returncode == 0 and Keyring.from_setting(made.stdout.strip()).key_count == 1
    local = {"SECRETS_KEY": "", "PORT": str(free_port())}
    first = await asyncio.to_thread(run_cli, local, "migrate", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "chatops-local.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_text()
    again = await asyncio.to_thread(run_cli, local, "migrate", cwd=tmp_path)
    assert again.returncode == 0 and key_file.read_text() == key
