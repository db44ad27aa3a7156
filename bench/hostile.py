"""Hostile user code: does the bot still answer while it runs?

Run ``python -m bench.hostile``. The real bot runs in its own process (as in
``bench.webhooks``), on a fresh SQLite file, against the fake Slack in this process. Two
hooks carry user code that runs until its time limit on every delivery: one a template
(two nested loops), one a filter (a long chain of joins). Deliveries arrive at each hook's
full rate (``WEBHOOK_RATE_LIMIT``, 600 a minute by default) while probes measure, from
outside, how long ``GET /healthz`` and a signed ``/hook list`` slash command take to
answer. The same probes run first without the hostile load: the baseline of this run.
Target: p99 under 100 ms for both while the hostile load runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.webhooks import Server, percentile, running_server, slash_command
from bot.devtools.fake_slack import FakeSlack
from bot.webhooks.verify import sign_generic

BOT_TOKEN = "xoxb-bench"
SLOW_TEMPLATE = "{% for a in range(3000) %}{% for b in range(3000) %}{% endfor %}{% endfor %}x"
SLOW_FILTER = " + ".join(["(range(100000)|map('string')|join|length)"] * 20) + " > 0"
HOOK_REPLY = re.compile(r"(/hooks/[\w-]+)")
SECRET_REPLY = re.compile(r"\*Secret\* \(shown once — keep it\): `([^`]+)`")


@dataclass(frozen=True)
class Probes:
    """Response times (ms) of the two probes over one phase."""

    healthz: list[float]
    slash: list[float]

    def line(self, label: str) -> str:
        def shown(values: list[float]) -> str:
            return (
                f"p50 {percentile(values, 0.5):6.1f}  p99 {percentile(values, 0.99):6.1f}"
                f"  max {max(values):6.1f} ms ({len(values)})"
            )

        return f"{label:<22} /healthz {shown(self.healthz)}   /hook list {shown(self.slash)}"


async def _command(http: aiohttp.ClientSession, server: Server, text: str) -> str:
    body, headers = slash_command(text, "C0001")
    async with http.post(f"{server.base_url}/slack/events", data=body, headers=headers) as r:
        return str((await r.json())["text"])


async def _hostile_hook(
    http: aiohttp.ClientSession, server: Server, name: str, setting: str
) -> tuple[str, str]:
    reply = await _command(http, server, f"/hook create {name} preset=generic")
    path, secret = HOOK_REPLY.search(reply), SECRET_REPLY.search(reply)
    assert path and secret, reply
    answer = await _command(http, server, f"/hook {setting}")
    assert "now" in answer, answer
    return path.group(1), secret.group(1)


async def _probe(http: aiohttp.ClientSession, server: Server, seconds: float) -> Probes:
    healthz: list[float] = []
    slash: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        async with http.get(f"{server.base_url}/healthz") as response:
            await response.read()
        healthz.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        await _command(http, server, "/hook list")
        slash.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.05)
    return Probes(healthz, slash)


async def _flood(
    http: aiohttp.ClientSession,
    server: Server,
    hook: tuple[str, str],
    per_second: float,
    seconds: float,
) -> int:
    path, secret = hook
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        body = json.dumps({"n": sent, "text": "hello"}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Signature-256": sign_generic(secret, body),
        }
        async with http.post(f"{server.base_url}{path}", data=body, headers=headers) as response:
            await response.read()
        sent += 1
        await asyncio.sleep(max(0.0, start + sent / per_second - time.monotonic()))
    return sent


async def run(seconds: float, per_minute: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    async with (
        FakeSlack(token=BOT_TOKEN) as slack,
        running_server("bot", f"sqlite:///{workdir / 'bot.db'}", slack.url) as server,
        aiohttp.ClientSession() as http,
    ):
        await _command(http, server, "/hook list")  # warm up
        baseline = await _probe(http, server, seconds)
        hooks = [
            await _hostile_hook(http, server, "slowtpl", f"template slowtpl {SLOW_TEMPLATE}"),
            await _hostile_hook(http, server, "slowflt", f"filter slowflt {SLOW_FILTER}"),
        ]
        rate = per_minute / 60
        floods = [asyncio.create_task(_flood(http, server, hook, rate, seconds)) for hook in hooks]
        hostile = await _probe(http, server, seconds)
        sent = sum(await asyncio.gather(*floods))
    print(f"two hostile hooks at {per_minute}/min each for {seconds:g} s ({sent} deliveries)")
    print(baseline.line("baseline (no load)"))
    print(hostile.line("with hostile user code"))
    worst = max(percentile(hostile.healthz, 0.99), percentile(hostile.slash, 0.99))
    print(f"p99 with hostile load: {worst:.1f} ms (target < 100 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--per-minute", type=int, default=600, help="each hook's rate")
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.per_minute))


if __name__ == "__main__":
    main()
