"""The test harness: the real app on a real port, the fake Slack over HTTP, a real database.

``database_url`` is SQLite by default; tests that matter on both engines say
``@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)``.
PostgreSQL runs where TEST_DATABASE_URL is set (CI sets it); elsewhere that case skips.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import Bot, build
from bot.clock import Clock, FakeClock, SystemClock
from bot.config import Secret, Settings, to_async_driver
from bot.devtools.fake_slack import FakeSlack
from bot.slack.signing import signed_headers

FIXTURES = Path(__file__).parent / "fixtures"
SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-fake"
# SECRETS_KEY of the test bots: encrypts hook signing secrets and /secret values at rest.
SECRETS_KEY = "4GjLu2Fvt24BtLND4MkiQN_545DgPDrdW6a4WpFQCeY="


def fixture_bytes(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def fixture_json(relative: str) -> Any:
    return json.loads(fixture_bytes(relative))


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set; PostgreSQL cases run in CI")
    return url


async def reset_postgres(url: str) -> None:
    engine = create_async_engine(to_async_driver(url))
    async with engine.begin() as conn:
        await conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(sa.text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=BOT_TOKEN) as fake:
        yield fake


@dataclass
class RunningBot:
    """One bot process-equivalent: the app served on a real port."""

    bot: Bot
    runner: web.AppRunner
    base_url: str
    http: aiohttp.ClientSession

    async def command(
        self, text: str, *, user: str = "U0001", channel: str = "C0001", team: str = "T0001"
    ) -> str:
        """Send a signed slash command as Slack does; return the private reply's text."""
        name, _, rest = text.partition(" ")
        body = slash_command_body(name, rest, user=user, channel=channel, team=team)
        async with self.http.post(
            f"{self.base_url}/slack/events", data=body, headers=slack_headers(body, form=True)
        ) as response:
            assert response.status == 200, await response.text()
            return str((await response.json())["text"])

    async def command_raw(self, text: str, *, user: str = "U0001", channel: str = "C0001") -> str:
        """Send a signed slash command; return the raw answer (empty when a modal opened)."""
        name, _, rest = text.partition(" ")
        body = slash_command_body(name, rest, user=user, channel=channel)
        status, answer = await self.post("/slack/events", body, slack_headers(body, form=True))
        assert status == 200, answer
        return answer if isinstance(answer, str) else json.dumps(answer)

    async def interact(self, payload: dict[str, Any]) -> Any:
        """Send a signed interactivity payload (button click, modal submission) as Slack does."""
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        status, answer = await self.post("/slack/events", body, slack_headers(body, form=True))
        assert status == 200, answer
        return answer

    async def event(self, envelope: dict[str, Any]) -> None:
        """Send a signed Events API request."""
        body = json.dumps(envelope).encode()
        status, answer = await self.post("/slack/events", body, slack_headers(body, form=False))
        assert status == 200, answer

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        async with self.http.post(f"{self.base_url}{path}", data=body, headers=headers) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def stop(self) -> None:
        await self.runner.cleanup()


def slash_command_body(
    command: str, text: str, *, user: str = "U0001", channel: str = "C0001", team: str = "T0001"
) -> bytes:
    """A slash-command body with every field Slack sends (see fixtures/slack/slash_command.txt)."""
    return urllib.parse.urlencode(
        {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": team,
            "team_domain": "example",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": "steve",
            "command": command,
            "text": text,
            "response_url": "https://hooks.slack.com/commands/1234/5678",
            "trigger_id": f"13345224609.738474920.{int(time.time() * 1000)}",
            "api_app_id": "A123456",
        }
    ).encode()


def slack_headers(
    body: bytes, *, form: bool, secret: str = SIGNING_SECRET, now: float | None = None
) -> dict[str, str]:
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    return signed_headers(secret, body, now=now) | {"Content-Type": content_type}


BotFactory = Callable[..., Any]


@dataclass
class _Started:
    bots: list[RunningBot] = field(default_factory=list)


@pytest.fixture
async def start_bot(database_url: str, fake_slack: FakeSlack) -> AsyncIterator[Callable[..., Any]]:
    """Start the bot (again) on the same database: ``await start_bot(clock=..., **settings)``."""
    if database_url.startswith("postgres"):
        await reset_postgres(database_url)
    started = _Started()

    async def start(clock: Clock | None = None, **overrides: Any) -> RunningBot:
        settings = replace(settings_for(database_url, fake_slack), **overrides)
        bot = build(settings, clock=clock or SystemClock())
        runner = web.AppRunner(bot.web, shutdown_timeout=2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        running = RunningBot(bot, runner, f"http://127.0.0.1:{port}", aiohttp.ClientSession())
        started.bots.append(running)
        return running

    yield start
    for running in started.bots:
        await running.runner.cleanup()
        await running.http.close()


def settings_for(database_url: str, fake: FakeSlack) -> Settings:
    return Settings(
        slack_bot_token=Secret(BOT_TOKEN),
        slack_signing_secret=Secret(SIGNING_SECRET),
        slack_api_url=fake.url,
        database_url=database_url,
        public_url="https://bot.example.com",
        check_allowlist=("127.0.0.1",),
        slack_channel_burst=100,
        slack_channel_rate=100.0,
        secrets_key=Secret(SECRETS_KEY),
    )


def fake_clock(at: str = "2031-01-06T10:00:00") -> FakeClock:
    """A stopped clock. The default lies years ahead of the real one, because APScheduler
    keeps real time: jobs scheduled on the fake clock then never come due mid-test. Tests
    that pick an earlier date schedule nothing within minutes of the real time."""
    return FakeClock(datetime.fromisoformat(at).replace(tzinfo=UTC))


async def eventually(check: Callable[[], Any], within: float = 5.0) -> None:
    """Wait until ``await check()`` is true (the workers run in the same event loop).

    Polls every few milliseconds, so a passing test takes only as long as the work does.
    """
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still not true after {within} s: {check.__name__}")
        await asyncio.sleep(0.005)
