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
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from aiohttp import web
from dotenv import load_dotenv

from bot.app import LOCAL_BOT_TOKEN, Bot, build
from bot.config import Secret, Settings, load_settings, local_key_file
from bot.credentials.keys import KEY_SETTING, generate_key, load_or_create_key_file
from bot.credentials.store import open_with_key, rekey_all
from bot.db import Database
from bot.devtools import local
from bot.devtools.fake_socket_mode import DELIVER_PATH
from bot.devtools.render import Names, mrkdwn
from bot.errors import BotError
from bot.logs import configure_logging
from bot.slack.signing import signed_headers

if TYPE_CHECKING:
    from bot.devtools.fake_slack import FakeSlack

log = logging.getLogger("bot")
T = TypeVar("T")


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
        return run_in_loop(commands[args.command or "run"](settings, args))
    except BotError as error:
        print(f"chatops-bot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run_in_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to completion on asyncio's event loop, the one the tests run on.

    uvloop was measured and dropped: its gain was within noise (0.29 against 0.30 ms of
    CPU per delivery), and its subprocess pipes are not asyncio's transport classes, which
    the user-code workers (`bot.usercode_worker`) rely on.
    """
    return asyncio.run(work)


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
        "say",
        help='talk to the running bot as a person in Slack would, e.g. say "/hook help"',
        description="Act as a person in the (fake) workspace: type a slash command, DM or "
        "@mention the bot, click a button it showed, or submit the form it opened. Requests "
        "are signed as Slack signs them; what the bot shows in answer is printed.",
    )
    say.add_argument("text", nargs="?", help='a slash command as typed, e.g. "/trigger list"')
    doing = say.add_mutually_exclusive_group()
    doing.add_argument("--dm", metavar="TEXT", help="send the bot a direct message")
    doing.add_argument("--mention", metavar="TEXT", help="@mention the bot in the channel")
    doing.add_argument(
        "--click", metavar="LABEL", help='click the newest button with this label, e.g. "Create"'
    )
    doing.add_argument(
        "--submit",
        metavar="FIELD=VALUE",
        nargs="*",
        help='fill in and submit the open form, e.g. --submit name=site "schedule=every 5m"',
    )
    say.add_argument("--user", default="U0001", help="Slack user id to act as")
    say.add_argument("--channel", default="C0001", help="Slack channel id to act in")
    say.add_argument(
        "--wait", type=float, default=3.0, help="seconds to wait for what the bot shows"
    )
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
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("shutting down")
    await runner.cleanup()


def freeze_startup_heap() -> None:
    """Leave everything built at start-up out of the garbage collector's full passes.

    The app's long-lived objects (SQLAlchemy's mappers and caches, Bolt, the Slack SDK,
    Jinja) made each full collection take 20-85 ms, stalling every request in flight:
    it was most of the slash-command p99. ``gc.freeze`` is the standard remedy.
    """
    gc.collect()
    gc.freeze()


async def _run_local(settings: Settings) -> int:
    """No Slack credentials: run against the built-in fake Slack and print what the bot shows."""
    from bot.devtools.fake_slack import FakeSlack

    secret = secrets.token_hex(16)
    printer = local.CallPrinter(write=_print_flush)
    paths = local.state_paths(Path.cwd(), _runtime_dir(), settings.port)
    async with FakeSlack(
        token=LOCAL_BOT_TOKEN,
        on_post=lambda call: printer(call.method, call.args, call.ok, call.error),
    ) as fake:
        printer.names = lambda: _names_of(fake)
        # Socket Mode with the fake's app token if asked for; a real SLACK_APP_TOKEN is
        # never sent to the fake.
        app_token = Secret(fake.socket_mode.app_token) if settings.local_socket_mode else None
        local_settings = replace(settings, slack_api_url=fake.url, slack_app_token=app_token)
        bot = build(local_settings, signing_secret=secret)
        state = local.LocalState(
            f"http://127.0.0.1:{settings.port}",
            secret,
            fake.base_url,
            settings.port,
            socket_mode=settings.local_socket_mode,
        )

        def announce() -> None:
            local.write_state(state, paths)
            print(_local_banner(local_settings, fake), flush=True)

        try:
            await serve(bot, on_listening=announce)
        finally:
            local.forget_state(secret, paths)
    return 0


def _print_flush(text: str) -> None:
    print(text, flush=True)


def _names_of(fake: FakeSlack) -> Names:
    return Names(
        {channel_id: info["name"] for channel_id, info in fake.channels.items()},
        {user_id: user["name"] for user_id, user in fake.users.items()},
    )


def _runtime_dir() -> Path:
    """Where a local bot leaves its state per port, so ``say`` finds it from anywhere."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    return Path(base) / "chatops-bot" if base else Path.home() / ".cache" / "chatops-bot"


def _transport_line(settings: Settings) -> str:
    if settings.slack_app_token:
        return "Slack's requests reach the bot over Socket Mode (LOCAL_SOCKET_MODE=1).\n"
    return ""


def _local_banner(settings: Settings, fake: FakeSlack) -> str:
    channels = ", ".join(
        f"#{info['name']} ({id_})" for id_, info in fake.channels.items() if id_.startswith("C")
    )
    you = fake.users["U0001"]
    return (
        "\nLocal mode: no Slack credentials are set, so the bot talks to a built-in fake Slack.\n"
        "Everything it shows is printed here. Talk to it from another terminal:\n"
        '    .venv/bin/chatops-bot say "/hook help"\n'
        '    .venv/bin/chatops-bot say --dm "check https://example.com every 5 minutes"\n'
        '    .venv/bin/chatops-bot say --click "Create"\n'
        '    .venv/bin/chatops-bot say "/trigger"     # opens the form; then say --submit …\n'
        f"Webhooks: POST to {settings.public_url}/hooks/<token>\n"
        f"The fake workspace has the channels {channels}; `say` speaks as U0001 (@{you['name']})"
        f"\nin {you['tz']}, from C0001. Data is kept in {settings.database_url}.\n"
        + _transport_line(settings)
        + "To use a real workspace, fill SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET in .env.\n"
    )


async def _say(settings: Settings, args: argparse.Namespace) -> int:
    _check_one_thing_to_say(args)
    try:
        target = _say_target(settings)
    except local.SayError as error:
        raise BotError(str(error)) from None
    person = local.Person(args.user, args.channel)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            talk = _Talk(session, target, person)
            return await talk.say(args)
    except local.SayError as error:
        raise BotError(str(error)) from None
    except aiohttp.ClientConnectionError:
        raise BotError(
            f"the bot does not answer at {target.url}"
            + (f" (found in {target.found_in}); is it still running?" if target.found_in else "")
        ) from None


def _check_one_thing_to_say(args: argparse.Namespace) -> None:
    chosen = [args.text is not None, args.dm, args.mention, args.click, args.submit is not None]
    if sum(1 for choice in chosen if choice) != 1:
        raise BotError(
            'say one thing: a slash command ("/hook help"), --dm TEXT, --mention TEXT, '
            "--click LABEL or --submit FIELD=VALUE …"
        )
    if args.text is not None and not args.text.strip().startswith("/"):
        name, _, text = args.text.strip().partition(" ")
        example = f"/{name} {text}".strip()
        raise BotError(f'a slash command starts with "/", e.g. say "{example}" (or say --dm …)')


@dataclass(frozen=True)
class _Target:
    """The bot ``say`` talks to, and the fake Slack it shows things on (local mode)."""

    url: str
    secret: str
    fake_slack_url: str | None
    found_in: str | None
    socket_mode: bool = False  # requests go to the fake Slack, which sends them over the socket


def _say_target(settings: Settings) -> _Target:
    if settings.slack_signing_secret:
        url = f"http://127.0.0.1:{settings.port}"
        return _Target(url, str(settings.slack_signing_secret), None, None)
    here, per_port = local.state_paths(Path.cwd(), _runtime_dir(), settings.port)
    chosen = "PORT" in os.environ  # set in the environment or .env: that bot, first
    paths = (per_port, here) if chosen else (here, per_port)
    why = f"PORT={settings.port}" + ("" if chosen else ", the default")
    state = local.find_state(paths, why=why)
    found_in = next(str(path) for path in paths if path.exists())
    fake_slack_url = state.fake_slack_url or None
    socket_mode = state.socket_mode and fake_slack_url is not None
    return _Target(state.url, state.signing_secret, fake_slack_url, found_in, socket_mode)


@dataclass
class _Talk:
    """One ``say``: send what the person does, then print what the bot shows in answer."""

    session: aiohttp.ClientSession
    target: _Target
    person: local.Person
    seen: int = 0

    async def say(self, args: argparse.Namespace) -> int:
        workspace = await self._workspace()
        self.seen = max((s.get("seq", 0) for s in workspace.surfaces), default=0)
        if args.text is not None:
            return await self._slash(args.text.strip(), args.wait)
        if args.dm or args.mention:
            kind: local.EventKind = "dm" if args.dm else "mention"
            body = local.event_body(
                kind, args.dm or args.mention, self.person, workspace.bot_user_id
            )
            await self._act(body, form=False)
            return await self._show_answer(args.wait)
        if args.click:
            button = local.find_button(self._needs_fake(workspace), args.click, self.person.user)
            confirm = button.element.get("confirm")
            if confirm:
                print(f'(confirmed "{(confirm.get("title") or {}).get("text", "")}")')
            await self._act(local.click_body(button, self.person, self._response_url()), form=True)
            return await self._show_answer(args.wait)
        form = local.open_form(self._needs_fake(workspace))
        body = local.submit_body(form, local.parse_answers(args.submit), self.person, workspace)
        errors = _form_errors(await self._act(body, form=True))
        if errors:
            print("The form was not accepted:")
            for field_id, error in errors.items():
                print(f"  {field_id}: {error}")
            return 1
        return await self._show_answer(args.wait)

    async def _slash(self, typed: str, wait: float) -> int:
        name, _, text = typed.partition(" ")
        body = local.slash_body(name, text, self.person, self._response_url())
        status, answer = await self._send(body, form=True)
        if status == 200 and not answer and self.target.fake_slack_url:
            return await self._show_answer(wait)  # a form opened: show it
        reply = _reply_text(name, status, answer)
        print(mrkdwn(reply, (await self._workspace()).names) if status == 200 else reply)
        return 0 if status == 200 else 1

    async def _send(self, body: bytes, *, form: bool) -> tuple[int, str]:
        content_type = "application/x-www-form-urlencoded" if form else "application/json"
        headers = signed_headers(self.target.secret, body) | {"Content-Type": content_type}
        url = f"{self.target.url}/slack/events"
        if self.target.socket_mode and self.target.fake_slack_url:
            # The fake Slack sends it over Socket Mode and answers with the bot's ack.
            url = f"{self.target.fake_slack_url}{DELIVER_PATH}"
        async with self.session.post(url, data=body, headers=headers) as response:
            return response.status, await response.text()

    async def _act(self, body: bytes, *, form: bool) -> str:
        """Send an event, click or submission; its answer (any status but 200 is an error)."""
        status, answer = await self._send(body, form=form)
        if status != 200:
            raise BotError(f"the bot answered HTTP {status}: {answer}")
        return answer

    async def _show_answer(self, wait: float) -> int:
        """Print what the bot shows next (it may take a moment: it goes through the outbox)."""
        if not self.target.fake_slack_url:
            print("(sent; the bot answers in Slack)")
            return 0
        shown = await self._new_surfaces(wait)
        if not shown:
            print(f"(nothing shown within {wait:g} s; the bot's terminal shows what it does)")
        return 0

    async def _new_surfaces(self, wait: float) -> int:
        loop = asyncio.get_running_loop()
        deadline, quiet_until, shown = loop.time() + wait, None, 0
        while loop.time() < deadline and (quiet_until is None or loop.time() < quiet_until):
            workspace = await self._workspace()
            fresh = [s for s in workspace.surfaces if s.get("seq", 0) > self.seen]
            for surface in fresh:
                print(local.render_surface(surface, workspace.names), flush=True)
                self.seen = max(self.seen, int(surface.get("seq", 0)))
                shown += 1
                quiet_until = loop.time() + _QUIET_SECONDS  # more may follow (a reply, an edit)
            await asyncio.sleep(0.05)
        return shown

    async def _workspace(self) -> local.Workspace:
        if not self.target.fake_slack_url:
            return local.Workspace("T0001", "", Names())
        async with self.session.get(f"{self.target.fake_slack_url}/devtools/surfaces") as answer:
            return local.Workspace.of(await answer.json())

    def _needs_fake(self, workspace: local.Workspace) -> local.Workspace:
        if not self.target.fake_slack_url:
            raise BotError(
                "--click and --submit work in local mode, where I can see what the bot showed"
            )
        return workspace

    def _response_url(self) -> str:
        base = self.target.fake_slack_url or "http://127.0.0.1"
        return f"{base}/response/say-{secrets.token_hex(4)}"


_QUIET_SECONDS = 0.5


def _form_errors(answer: str) -> dict[str, str]:
    try:
        parsed = json.loads(answer) if answer else {}
    except ValueError:
        return {}
    if not isinstance(parsed, dict) or parsed.get("response_action") != "errors":
        return {}
    return {str(k): str(v) for k, v in (parsed.get("errors") or {}).items()}


def _reply_text(command: str, status: int, answer: str) -> str:
    if status == 404:
        return f"the bot has no {command} command (it answers /hook, /trigger, /secret and /action)"
    if status != 200:
        return f"the bot answered HTTP {status}: {answer}"
    if not answer:
        return "(no reply: the bot opened a form, shown in the bot's output)"
    try:
        return str(json.loads(answer).get("text", answer))
    except ValueError:
        return answer
