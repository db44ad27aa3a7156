"""The command line: ``chatops-bot run | migrate | say "/hook help" | keygen | rekey``.

This is the only place that reads the process environment (and ``.env``) and the only
place that prints errors for people; everything below it takes `Settings`.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import json
import logging
import os
import secrets
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from dotenv import load_dotenv

from bot.app import LOCAL_BOT_TOKEN, Bot, build
from bot.config import Secret, Settings, load_settings, local_key_file
from bot.credentials.keys import KEY_SETTING, generate_key, load_or_create_key_file
from bot.credentials.store import open_with_key, rekey_all
from bot.db import Database
from bot.errors import BotError
from bot.logs import configure_logging
from bot.slack.signing import signed_headers

if TYPE_CHECKING:
    from bot.devtools.fake_slack import FakeSlack

log = logging.getLogger("bot")

LOCAL_STATE = Path(".chatops-local.json")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bot`` and the ``chatops-bot`` script."""
    args = _parser().parse_args(argv)
    if args.command == "keygen":
        print(generate_key())
        return 0
    load_dotenv(Path.cwd() / ".env")
    try:
        settings = load_settings(os.environ)
        if args.command != "say":
            settings = _with_local_key(settings)
        configure_logging(settings.log_level, settings.log_format)
        commands = {"run": _run, "migrate": _migrate, "say": _say, "rekey": _rekey}
        return asyncio.run(commands[args.command or "run"](settings, args))
    except BotError as error:
        print(f"chatops-bot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatops-bot",
        description="A Slack chat-ops bot. Settings come from the environment and .env "
        "(see .env.example); with no Slack credentials it runs in local mode.",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (the default)")
    sub.add_parser("migrate", help="apply database migrations and exit")
    say = sub.add_parser(
        "say", help='send a signed slash command to the running bot, e.g. "/hook help"'
    )
    say.add_argument("text", help='the command as typed in Slack, e.g. "/trigger list"')
    say.add_argument("--user", default="U0001", help="Slack user id to send as")
    say.add_argument("--channel", default="C0001", help="Slack channel id to send from")
    sub.add_parser("keygen", help=f"print a new key for {KEY_SETTING}")
    sub.add_parser(
        "rekey",
        help=f"re-encrypt every stored credential with the first key of {KEY_SETTING} (new,old)",
    )
    return parser


def _with_local_key(settings: Settings) -> Settings:
    """Local mode keeps its SECRETS_KEY in a 0600 file beside its database, made on first use."""
    path = local_key_file(settings)
    if path is None:
        return settings
    return replace(settings, secrets_key=Secret(load_or_create_key_file(path)))


async def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    db = Database(settings.database_url)
    try:
        await open_with_key(db, settings.secrets_key)
    finally:
        await db.close()
    print("database is at the newest migration")
    return 0


async def _rekey(settings: Settings, _args: argparse.Namespace) -> int:
    db = Database(settings.database_url)
    try:
        keyring = await open_with_key(db, settings.secrets_key)
        changed = 0 if keyring is None else await rekey_all(db, keyring)
    finally:
        await db.close()
    if keyring is None:
        print(f"nothing is encrypted and {KEY_SETTING} is not set: nothing to re-encrypt")
    else:
        print(
            f"re-encrypted {changed} stored credential{'s' if changed != 1 else ''} with the "
            f"first key of {KEY_SETTING}; once every running copy has the new key first, "
            "the old one can be removed"
        )
    return 0


async def _run(settings: Settings, _args: argparse.Namespace) -> int:
    if settings.local_mode:
        return await _run_local(settings)
    await serve(build(settings))
    return 0


async def serve(bot: Bot, on_listening: Callable[[], None] = lambda: None) -> None:
    """Serve until SIGTERM or SIGINT, then shut down cleanly (in-flight requests finish).

    ``on_listening`` runs once the bot has started and its port is open.
    """
    runner = web.AppRunner(bot.web, shutdown_timeout=10, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, bot.settings.host, bot.settings.port).start()
    except OSError as error:
        await runner.cleanup()
        hint = (
            "is another copy running? Set PORT to use another port."
            if error.errno == errno.EADDRINUSE
            else "check HOST and PORT."
        )
        raise BotError(
            f"cannot listen on {bot.settings.host}:{bot.settings.port} ({error.strerror}); {hint}"
        ) from None
    log.info("listening on http://%s:%s", bot.settings.host, bot.settings.port)
    on_listening()
    freeze_startup_heap()
    socket_mode = await _connect_socket_mode(bot)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("shutting down")
    if socket_mode is not None:
        await socket_mode.close_async()
    await runner.cleanup()


def freeze_startup_heap() -> None:
    """Leave everything built at start-up out of the garbage collector's full passes.

    The app's long-lived objects (SQLAlchemy's mappers and caches, Bolt, the Slack SDK,
    Jinja) made each full collection take 20-85 ms, stalling every request in flight:
    it was most of the slash-command p99. ``gc.freeze`` is the standard remedy.
    """
    gc.collect()
    gc.freeze()


async def _connect_socket_mode(bot: Bot) -> Any:
    """With SLACK_APP_TOKEN, Slack traffic comes over Socket Mode; webhooks still use HTTP."""
    if not bot.settings.slack_app_token:
        return None
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(bot.bolt, str(bot.settings.slack_app_token))
    await handler.connect_async()  # type: ignore[no-untyped-call]
    log.info("connected to Slack over Socket Mode")
    return handler


async def _run_local(settings: Settings) -> int:
    """No Slack credentials: run against the built-in fake Slack and print what the bot says."""
    from bot.devtools.fake_slack import FakeSlack

    secret = secrets.token_hex(16)
    async with FakeSlack(token=LOCAL_BOT_TOKEN, on_post=_print_call) as fake:
        local = replace(settings, slack_api_url=fake.url)
        bot = build(local, signing_secret=secret)

        def announce() -> None:
            _write_local_state(local, secret)
            print(_local_banner(local, fake), flush=True)

        try:
            await serve(bot, on_listening=announce)
        finally:
            _forget_local_state(secret)
    return 0


def _local_banner(settings: Settings, fake: FakeSlack) -> str:
    channels = ", ".join(f"#{info['name']} ({id_})" for id_, info in fake.channels.items())
    you = fake.users["U0001"]
    return (
        "\nLocal mode: no Slack credentials are set, so the bot talks to a built-in fake Slack.\n"
        "Everything it posts is printed here. Talk to it from another terminal:\n"
        '    .venv/bin/chatops-bot say "/hook help"\n'
        '    .venv/bin/chatops-bot say "/hook create demo preset=generic"\n'
        f"Webhooks: POST to {settings.public_url}/hooks/<token>\n"
        f"The fake workspace has the channels {channels}; `say` speaks as U0001 in\n"
        f"{you['tz']}, from C0001. Data is kept in {settings.database_url}.\n"
        "To use a real workspace, fill SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET in .env.\n"
    )


def _print_call(call: Any) -> None:
    method = call.method
    if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
        args = call.args
        where = args.get("channel", "?") + (
            f" (thread {args['thread_ts']})" if args.get("thread_ts") else ""
        )
        print(f"[slack {method} → {where}] {args.get('text', '')}", flush=True)
    elif method in (
        "reactions.add",
        "views.open",
        "views.publish",
        "views.update",
        "conversations.join",
    ):
        print(f"[slack {method}] {json.dumps(call.args)[:200]}", flush=True)


def _write_local_state(settings: Settings, secret: str) -> None:
    # Created readable by its owner only (it holds the signing secret), never briefly more.
    state = json.dumps({"url": f"http://127.0.0.1:{settings.port}", "signing_secret": secret})
    descriptor = os.open(LOCAL_STATE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file may be there with other permissions
    with os.fdopen(descriptor, "w") as file:
        file.write(state)


def _forget_local_state(secret: str) -> None:
    """Remove the state file if it is this process's (not another running bot's)."""
    try:
        ours = json.loads(LOCAL_STATE.read_text()).get("signing_secret") == secret
    except (OSError, ValueError):
        return
    if ours:
        LOCAL_STATE.unlink(missing_ok=True)


async def _say(settings: Settings, args: argparse.Namespace) -> int:
    url, secret = _say_target(settings)
    name, _, text = args.text.strip().partition(" ")
    if not name.startswith("/"):
        example = f"/{name} {text}".strip()
        raise BotError(f'a slash command starts with "/", e.g. say "{example}"')
    body = urllib.parse.urlencode(
        {
            "token": "local",
            "team_id": "T0001",
            "team_domain": "local",
            "channel_id": args.channel,
            "channel_name": "general",
            "user_id": args.user,
            "user_name": "you",
            "command": name,
            "text": text,
            "response_url": "http://127.0.0.1/none",
            "trigger_id": f"{int(time.time())}.local",
            "api_app_id": "A0LOCAL",
        }
    ).encode()
    headers = signed_headers(secret, body) | {"Content-Type": "application/x-www-form-urlencoded"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/slack/events", data=body, headers=headers) as response,
    ):
        answer = await response.text()
    print(_reply_text(name, response.status, answer))
    return 0 if response.status == 200 else 1


def _say_target(settings: Settings) -> tuple[str, str]:
    if settings.slack_signing_secret:
        return f"http://127.0.0.1:{settings.port}", str(settings.slack_signing_secret)
    if not LOCAL_STATE.exists():
        raise BotError("the bot is not running in local mode here; start it with `make run` first")
    state = json.loads(LOCAL_STATE.read_text())
    return str(state["url"]), str(state["signing_secret"])


def _reply_text(command: str, status: int, answer: str) -> str:
    if status == 404:
        return f"the bot has no {command} command (it answers /hook, /trigger and /secret)"
    if status != 200:
        return f"the bot answered HTTP {status}: {answer}"
    if not answer:
        return "(no reply: the bot opened a form, shown as views.open in the bot's output)"
    try:
        return str(json.loads(answer).get("text", answer))
    except ValueError:
        return answer
