"""Retention benchmark: the database stays the same size under steady traffic.

Run ``python -m bench.retention``. The real bot serves on a loopback port, on a fresh SQLite
file, against the fake Slack, with a fake clock. Signed ~2 KB GitHub pushes arrive at a
steady simulated rate (``--per-minute``) for ``--days`` simulated days; the clock moves on
by the gap between two deliveries after each one, and every simulated hour the retention
pass runs, as the bot runs it (``RETENTION_DAYS``, here ``--retention-days``). The file's
size (after a WAL checkpoint) is printed at the end of each simulated day: with retention it
should stop growing once the first ``--retention-days`` have passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from sqlmodel import col

from bench.webhooks import trimmed_push
from bot.app import Bot, build
from bot.clock import FakeClock
from bot.config import Secret, Settings
from bot.devtools.fake_slack import FakeSlack
from bot.models import OutboxMessage
from bot.slack.signing import signed_headers
from bot.webhooks.verify import sign_github

SIGNING_SECRET = "bench-signing-secret-0123456789"
BOT_TOKEN = "xoxb-bench"


def _settings(database: Path, slack_url: str, retention_days: int) -> Settings:
    return Settings(
        slack_bot_token=Secret(BOT_TOKEN),
        slack_signing_secret=Secret(SIGNING_SECRET),
        slack_api_url=slack_url,
        database_url=f"sqlite:///{database}",
        public_url="https://bot.example.com",
        webhook_rate_limit=1_000_000,
        retention_days=retention_days,
        slack_channel_rate=1000.0,
        slack_channel_burst=1000,
        log_level="WARNING",
    )


async def _create_hook(http: aiohttp.ClientSession, base: str) -> tuple[str, str]:
    body = (
        b"token=x&team_id=T0001&channel_id=C0001&user_id=U0001&command=%2Fhook"
        b"&text=create+bench+preset%3Dgithub&trigger_id=1.1"
    )
    headers = signed_headers(SIGNING_SECRET, body) | {
        "Content-Type": "application/x-www-form-urlencoded"
    }
    async with http.post(f"{base}/slack/events", data=body, headers=headers) as response:
        reply = (await response.json())["text"]
    path = "/hooks/" + reply.split("/hooks/")[1].split("`")[0]
    secret = reply.split("*Secret* (shown once — keep it): `")[1].split("`")[0]
    return path, secret


async def _outbox_drained(bot: Bot) -> None:
    """Wait until every queued post has gone to the fake Slack."""
    pending = sa.select(sa.func.count()).where(col(OutboxMessage.status) == "pending")
    while True:
        async with bot.db.sessions() as session:
            if not (await session.execute(pending)).scalar():
                return
        bot.outbox.wake()
        await asyncio.sleep(0.01)


def _size(database: Path) -> int:
    return sum(p.stat().st_size for p in database.parent.glob(database.name + "*") if p.is_file())


async def run(days: int, per_minute: float, retention_days: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    database = workdir / "bot.db"
    clock = FakeClock(datetime(2031, 1, 6, tzinfo=UTC))
    gap = timedelta(minutes=1) / per_minute
    started = time.perf_counter()
    async with FakeSlack(token=BOT_TOKEN) as slack, aiohttp.ClientSession() as http:
        bot = build(_settings(database, slack.url, retention_days), clock=clock)
        runner = web.AppRunner(bot.web)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        for task in bot.loops:  # the pass runs here, on simulated hours
            if task.get_name() == "retention":
                task.cancel()
        path, secret = await _create_hook(http, base)
        print(f"{per_minute:g} deliveries a minute, {days} days, RETENTION_DAYS={retention_days}")
        print("day  deliveries  deleted  file (MB)")
        sent = deleted = 0
        next_pass = clock.now() + timedelta(hours=1)
        end_of_day = clock.now() + timedelta(days=1)
        for day in range(1, days + 1):
            while clock.now() < end_of_day:
                body = trimmed_push(f"bench{sent}")
                headers = {
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": f"d-{sent}",
                    "X-Hub-Signature-256": sign_github(secret, body),
                }
                async with http.post(f"{base}{path}", data=body, headers=headers) as response:
                    assert response.status == 202, await response.text()
                sent += 1
                clock.advance(gap)
                if clock.now() >= next_pass:
                    await _outbox_drained(bot)
                    deleted += (await bot.retention.run_once()).total
                    next_pass += timedelta(hours=1)
            async with bot.db.engine.connect() as connection:
                await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            print(f"{day:>3}  {sent:>10,}  {deleted:>7,}  {_size(database) / 1e6:>9.2f}")
            end_of_day += timedelta(days=1)
        await runner.cleanup()
    print(f"took {time.perf_counter() - started:.0f} s; {json.dumps(str(workdir))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--per-minute", type=float, default=2.0)
    parser.add_argument("--retention-days", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(run(args.days, args.per_minute, args.retention_days))


if __name__ == "__main__":
    main()
