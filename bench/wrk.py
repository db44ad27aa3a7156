"""Webhook ingest driven by ``wrk``: the bare route and the bot's, alternating in one run.

``python -m bench.webhooks --wrk`` (see bench/README.md). wrk is far cheaper per request
than a Python client, so the server is the limit. One thread (``-t1``), ``c`` connections,
``--seconds`` per phase; phases alternate bare, bot, bare, bot... so that drift in the
machine's other load hits both routes alike. Each bot request is the ~2 KB signed GitHub
push of `bench.webhooks` with its own ``X-GitHub-Delivery`` (a Lua counter), so every one
is verified, deduplicated and stored before its 202. After the run the database is read:
every 2xx answer must have its row.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.webhooks import (
    BOT_TOKEN,
    Server,
    create_hook,
    github_headers,
    running_server,
    trimmed_push,
)
from bot.devtools.fake_slack import FakeSlack

WARMUP_SECONDS: Final = 2
_UNITS: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_PERCENTILE: Final = re.compile(r"^\s*(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def lua_script(body: bytes, headers: dict[str, str], delivery_prefix: str) -> str:
    """A wrk script: POST ``body`` with ``headers``; a unique delivery id per request."""
    fixed = {k: v for k, v in headers.items() if k != "X-GitHub-Delivery"}
    lines = [f'wrk.headers["{name}"] = "{value}"' for name, value in fixed.items()]
    escaped = body.decode().replace("\\", "\\\\").replace('"', '\\"')
    return "\n".join(
        [
            'wrk.method = "POST"',
            f'wrk.body = "{escaped}"',
            *lines,
            "local counter = 0",
            "request = function()",
            "  counter = counter + 1",
            f'  wrk.headers["X-GitHub-Delivery"] = "{delivery_prefix}" .. counter',
            "  return wrk.format(nil, nil, nil, nil)",
            "end",
            "",
        ]
    )


@dataclass(frozen=True)
class WrkResult:
    """One wrk phase."""

    route: str
    concurrency: int
    requests: int
    non_2xx: int
    socket_errors: int
    rate: float
    p50_ms: float
    p99_ms: float
    server_cpu_s: float

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU per answered request."""
        return 1000 * self.server_cpu_s / max(1, self.requests)


def parse_wrk(output: str) -> tuple[int, int, int, float, dict[str, float]]:
    """requests, non-2xx, socket errors, req/s and the latency percentiles from wrk's text."""
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = sum(int(n) for n in sockets.groups()) if sockets else 0
    latency = {m[0]: float(m[1]) * _UNITS[m[2]] for m in _PERCENTILE.findall(output)}
    return requests, int(bad.group(1)) if bad else 0, errors, rate, latency


async def run_wrk(
    server: Server, path: str, script: Path, route: str, concurrency: int, seconds: float
) -> WrkResult:
    """One wrk phase against ``server``, with the server's CPU over it."""
    cpu_before = server.cpu_seconds()
    process = await asyncio.create_subprocess_exec(
        *("wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency", "-s", str(script)),
        server.base_url + path,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    cpu = server.cpu_seconds() - cpu_before
    requests, bad, errors, rate, latency = parse_wrk(output.decode())
    return WrkResult(
        route, concurrency, requests, bad, errors, rate, latency["50"], latency["99"], cpu
    )


def stored_deliveries(database: Path) -> tuple[int, int]:
    """Rows in ``delivery``, and those still waiting for the processor."""
    with sqlite3.connect(database) as conn:
        total = conn.execute("SELECT count(*) FROM delivery").fetchone()[0]
        waiting = conn.execute(
            "SELECT count(*) FROM delivery WHERE status IN ('received', 'processing')"
        ).fetchone()[0]
    return int(total), int(waiting)


async def measure(concurrencies: tuple[int, ...], seconds: float, rounds: int) -> None:
    """Alternate bare and bot phases at each concurrency; print the table and the check."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    results: list[WrkResult] = []
    warm_ups: list[WrkResult] = []
    async with FakeSlack(token=BOT_TOKEN) as fake:
        with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
            database = Path(tmp) / "ingest.db"
            async with (
                running_server("bare") as bare,
                running_server("bot", f"sqlite:///{database}", fake.url) as bot,
            ):
                hook = await create_hook(bot, "bench", "C0001")
                body = trimmed_push("benchmark0")
                headers = github_headers(body, hook.secret, "")
                bare_script, bot_script = Path(tmp) / "bare.lua", Path(tmp) / "bot.lua"
                bare_script.write_text(lua_script(body, {"Content-Type": "application/json"}, ""))
                for number, concurrency in enumerate(concurrencies):
                    bot_script.write_text(lua_script(body, headers, f"wrk-{number}-"))
                    await run_wrk(bare, "/bare", bare_script, "bare", concurrency, WARMUP_SECONDS)
                    bot_script.write_text(lua_script(body, headers, f"warm-{number}-"))
                    warm_ups.append(
                        await run_wrk(
                            bot, hook.path, bot_script, "bot", concurrency, WARMUP_SECONDS
                        )
                    )
                    for phase in range(rounds):
                        bot_script.write_text(lua_script(body, headers, f"wrk-{number}-{phase}-"))
                        for server, path, script, route in (
                            (bare, "/bare", bare_script, "bare"),
                            (bot, hook.path, bot_script, "bot"),
                        ):
                            results.append(
                                await run_wrk(server, path, script, route, concurrency, seconds)
                            )
                await asyncio.sleep(2)  # let the processor catch up before counting
                stored, waiting = stored_deliveries(database)
    answered = sum(r.requests - r.non_2xx for r in [*results, *warm_ups] if r.route == "bot")
    print_report(results, seconds)
    print(
        f"bot: 2xx answers {answered} (warm-ups included), delivery rows stored {stored} "
        f"(at least as many: wrk does not count the requests in flight when it stops), "
        f"waiting for the processor 2 s later: {waiting}"
    )


def print_report(results: list[WrkResult], seconds: float) -> None:
    """The table (one row per phase) and the ratio of the bot's rate to the bare route's."""
    print(f"\nWebhook ingest with wrk -t1 -d{seconds:g}s, ~2 KB signed GitHub push, alternating")
    print(
        f"{'route':<6} {'c':>3} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'srv CPU ms/req':>14} {'non-2xx':>7} {'sock err':>8}"
    )
    for r in results:
        print(
            f"{r.route:<6} {r.concurrency:>3} {r.rate:>8.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} "
            f"{r.cpu_ms_per_request:>14.3f} {r.non_2xx:>7} {r.socket_errors:>8}"
        )
    for concurrency in sorted({r.concurrency for r in results}):
        bare = [r.rate for r in results if r.concurrency == concurrency and r.route == "bare"]
        bot = [r.rate for r in results if r.concurrency == concurrency and r.route == "bot"]
        ratio = (sum(bot) / len(bot)) / (sum(bare) / len(bare))
        print(f"c={concurrency}: bot / bare = {ratio:.2f}x (mean of {len(bot)} phases each)")
