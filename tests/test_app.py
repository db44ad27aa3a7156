"""The running app over real HTTP: Slack's signatures, health, events, start-up errors."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.cli import main
from bot.devtools.fake_slack import FakeSlack
from tests.conftest import (
    FIXTURES,
    SIGNING_SECRET,
    RunningBot,
    slack_headers,
    slash_command_body,
    until_bots_idle,
)

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@BOTH
async def test_healthz_answers_when_the_database_does(start_bot) -> None:
    running: RunningBot = await start_bot()
    async with running.http.get(f"{running.base_url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Content-Type": "application/x-www-form-urlencoded"}, id="missing"),
        pytest.param("wrong-secret", id="wrong-secret"),
        pytest.param("stale", id="stale-timestamp"),
    ],
)
async def test_badly_signed_slash_command_is_401_and_changes_nothing(start_bot, headers) -> None:
    running: RunningBot = await start_bot()
    body = slash_command_body("/hook", "create sneaky")
    if headers == "wrong-secret":
        headers = slack_headers(body, form=True, secret="not-the-secret")
    elif headers == "stale":
        headers = slack_headers(body, form=True, now=time.time() - 6 * 60)
    status, _ = await running.post("/slack/events", body, headers)
    assert status == 401
    assert "No hooks yet" in await running.command("/hook list")


@pytest.mark.parametrize(
    ("body", "signed", "content_type", "status"),
    [
        (b"\xff\xfe", False, "application/x-www-form-urlencoded", 401),
        (b"{nope", False, "application/json", 401),
        (b"\xff\xfe", True, "application/x-www-form-urlencoded", 400),
        (b"{nope", True, "application/json", 400),
        (b"[1]", True, "application/json", 404),  # parses, but no listener handles it
        (b"null", True, "application/json", 404),
        (b"payload=%5B1%5D", True, "application/x-www-form-urlencoded", 400),
        (b"ssl_check=1&token=x", False, "application/x-www-form-urlencoded", 200),
    ],
)
async def test_unparseable_slack_requests_are_refused_not_500(
    start_bot, body: bytes, signed: bool, content_type: str, status: int
) -> None:
    running: RunningBot = await start_bot()
    headers = {"Content-Type": content_type}
    if signed:
        headers |= slack_headers(body, form=True)
    assert (await running.post("/slack/events", body, headers))[0] == status


async def test_a_non_numeric_slack_timestamp_is_401(start_bot) -> None:
    running: RunningBot = await start_bot()
    body = slash_command_body("/hook", "list")
    headers = slack_headers(body, form=True) | {"X-Slack-Request-Timestamp": "abc"}
    assert (await running.post("/slack/events", body, headers))[0] == 401


async def test_the_official_slack_signature_vector_is_what_we_verify() -> None:
    from bot.slack.signing import is_valid_slack_signature

    vector = json.loads((FIXTURES / "slack/signature_test_vector.json").read_text())
    body = (FIXTURES / "slack/slash_command.signed_example.txt").read_bytes()
    timestamp = vector["X-Slack-Request-Timestamp"]
    assert is_valid_slack_signature(
        vector["signing_secret"], timestamp, body, vector["X-Slack-Signature"], now=float(timestamp)
    )


async def test_url_verification_is_answered(start_bot) -> None:
    running: RunningBot = await start_bot()
    body = (FIXTURES / "slack/url_verification.json").read_bytes()
    status, answer = await running.post("/slack/events", body, slack_headers(body, form=False))
    assert status == 200
    assert (
        answer == {"challenge": json.loads(body)["challenge"]}
        or answer == json.loads(body)["challenge"]
    )


async def test_a_retried_event_is_acknowledged_and_handled_once(
    start_bot, fake_slack: FakeSlack
) -> None:
    running: RunningBot = await start_bot()
    event = json.loads((FIXTURES / "slack/app_mention.json").read_text())
    event["event"]["channel"] = "C0001"
    body = json.dumps(event).encode()
    first, _ = await running.post("/slack/events", body, slack_headers(body, form=False))
    retry_headers = slack_headers(body, form=False) | {
        "X-Slack-Retry-Num": "1",
        "X-Slack-Retry-Reason": "http_timeout",
    }
    second, _ = await running.post("/slack/events", body, retry_headers)
    assert (first, second) == (200, 200)
    await fake_slack.wait_for("chat.postMessage")
    await until_bots_idle(running)
    assert len(fake_slack.messages("C0001")) == 1


async def test_app_home_is_published(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    await running.command("/hook create deploys preset=github")
    event = json.loads((FIXTURES / "slack/app_home_opened.json").read_text())
    event["team_id"] = "T0001"  # the Home lists what this user made in this workspace
    event["event"]["tab"] = "home"
    event["event"]["user"] = "U0001"
    body = json.dumps(event).encode()
    status, _ = await running.post("/slack/events", body, slack_headers(body, form=False))
    assert status == 200
    (call,) = await fake_slack.wait_for("views.publish")
    assert "deploys" in json.dumps(call.args["view"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def outside_environment() -> dict[str, str]:
    """This process's environment without the bot's settings (the tests set their own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_PREFIXES)}


CONFIG_PREFIXES = ("SLACK_", "DATABASE_", "PORT", "LOG_", "LOCAL_")


def run_cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m bot ARGS`` as a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=outside_environment() | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass(frozen=True)
class Exit:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Iterator[Callable[..., Exit]]:
    """``cli(env, *args)``: `bot.cli.main` in this process, as ``python -m bot`` would run it
    in ``tmp_path`` with only ``env`` for settings; logging is put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    loggers = {
        name: (logger.level, logger.filters[:])
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    monkeypatch.chdir(tmp_path)

    def run(env: dict[str, str], *args: str) -> Exit:
        for name in os.environ:
            if name.startswith(CONFIG_PREFIXES):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(list(args))
        printed = capsys.readouterr()
        return Exit(code, printed.out, printed.err)

    yield run
    root.handlers[:], root.level = handlers, level
    for name, (logger_level, filters) in loggers.items():
        logger = logging.getLogger(name)
        logger.setLevel(logger_level)
        logger.filters[:] = filters


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": "abc"}, "SLACK_BOT_TOKEN"),
        ({"PORT": "eighty"}, "PORT"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"SLACK_API_URL": "not a url"}, "SLACK_API_URL"),
    ],
)
def test_bad_configuration_stops_startup_with_one_clear_line(
    cli: Callable[..., Exit], env: dict[str, str], named: str
) -> None:
    result = cli(env, "run")
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chatops-bot: ") and named in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_configuration_error_is_exit_status_2_of_the_process(tmp_path: Path) -> None:
    result = run_cli({"PORT": "eighty"}, "run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("chatops-bot: ") and "PORT" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_migrate_subcommand_creates_the_schema(cli: Callable[..., Exit], tmp_path: Path) -> None:
    result = cli({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}, "migrate")
    assert result.code == 0, result.stderr
    assert "newest migration" in result.stdout
    with sqlite3.connect(tmp_path / "x.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert {"alembic_version", "hook", "delivery", "outbox", "trigger"} <= tables


async def test_a_second_process_on_the_same_sqlite_file_is_refused(
    start_bot, cli: Callable[..., Exit], database_url: str
) -> None:
    await start_bot()
    env = {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PORT": str(free_port()),
    }
    # In a thread: main() runs an event loop of its own, as the second process would.
    result = await asyncio.to_thread(cli, env, "run")
    assert result.code == 2
    assert "another bot process" in result.stderr and "Traceback" not in result.stderr


def test_a_taken_port_stops_startup_with_one_clear_line(
    cli: Callable[..., Exit], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(
            {
                "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                "SLACK_BOT_TOKEN": "xoxb-1",
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "PORT": str(port),
                "LOG_LEVEL": "WARNING",
            },
            "run",
        )
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[-1]] and f"cannot listen on 127.0.0.1:{port}" in lines[-1], lines
    assert "Traceback" not in result.stderr


class LocalBot:
    """``chatops-bot run`` in local mode, in a directory of its own.

    A thread collects what it prints, so that a bot that hangs fails the test (after
    30 s) instead of blocking it on a read."""

    def __init__(self, cwd: Path, cli: Callable[..., Exit] | None = None, **env: str) -> None:
        self.cwd = cwd
        self.cli = cli
        # The per-port state file goes under XDG_RUNTIME_DIR: here, not in the real one.
        runtime = str(cwd / "run")
        self.env = {"PORT": str(free_port()), "XDG_RUNTIME_DIR": runtime} | env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            env=outside_environment() | self.env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.printed: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.printed.append(line)
                self.lines.put(line)

    def wait_for_banner(self) -> str:
        deadline = time.monotonic() + 30
        while (left := deadline - time.monotonic()) > 0:
            try:
                if "Data is kept in" in self.lines.get(timeout=left):
                    return "".join(self.printed)
            except queue.Empty:
                break
        raise AssertionError("no banner:\n" + "".join(self.printed))

    def say(self, *args: str, cwd: Path | None = None) -> Exit:
        """``chatops-bot say ARGS``: in this process when the test gave ``cli`` (the bot it
        talks to is the other process), else as a process of its own, run in ``cwd``."""
        if self.cli is not None and cwd is None:
            return self.cli(self.env, "say", *args)
        done = run_cli(self.env, "say", *args, cwd=cwd or self.cwd)
        return Exit(done.returncode, done.stdout, done.stderr)

    def stop(self) -> str:
        """Stop it; return everything it printed."""
        self.process.terminate()
        self.process.wait(timeout=30)
        self.reader.join(timeout=30)
        return "".join(self.printed)


def test_local_mode_talks_back_and_survives_a_second_start(
    cli: Callable[..., Exit], tmp_path: Path
) -> None:
    bot = LocalBot(tmp_path, cli)
    try:
        banner = bot.wait_for_banner()
        assert "#general (C0001)" in banner and "chatops-local.db" in banner
        assert "/hook create NAME" in bot.say("/hook help").stdout

        second = cli(bot.env, "run")  # same directory, same database
        assert second.code == 2 and "another bot process" in second.stderr
        assert "Local mode" not in second.stdout
        assert "/hook create NAME" in bot.say("/hook help").stdout  # the first one still answers

        typo = bot.say("hook help")
        assert typo.code == 2 and 'e.g. say "/hook help"' in typo.stderr
        unknown = bot.say("/deploy now")
        assert "no /deploy command" in unknown.stdout
        form = bot.say("/hook")
        assert '── form "New hook" opened ──' in form.stdout and "field `name`" in form.stdout
    finally:
        bot.stop()
    assert (tmp_path / "chatops-local.db").exists() and not (tmp_path / "chatops.db").exists()
    assert not (tmp_path / ".chatops-local.json").exists()


def test_debug_logging_never_shows_a_secret_shown_once(
    cli: Callable[..., Exit], tmp_path: Path
) -> None:
    bot = LocalBot(tmp_path, cli, LOG_LEVEL="DEBUG")
    try:
        bot.wait_for_banner()
        created = bot.say("/hook create demo preset=generic").stdout
        secret = created.split("(shown once — keep it): `")[1].split("`")[0]
        token = created.split("/hooks/")[1].split("`")[0]
        assert bot.say("/hook list").code == 0
    finally:
        output = bot.stop()
    assert "DEBUG" in output  # it did log at DEBUG
    assert secret not in output and token not in output
