"""Mailbox watch benchmark: a 10,000-message mailbox, its baseline and a run with 50 new.

Run ``python -m bench.mail`` (``--messages``, ``--new``, ``--repeat``). The IMAP server
(pymap, in-memory, the tests' harness) runs in its own OS process (this module re-invoked
with ``--serve``), so the figures are the bot side only: its time and its memory. The
mailbox is filled in-process on the server side with the published sample emails
(tests/fixtures/email, 0.3-6.5 KB each, every MIME shape) cycled; the connection is
IMAP with STARTTLS on 127.0.0.1, verified against a throw-away CA, as in production.

Figures: wall time per run (median and max of ``--repeat`` runs, no tracing), then one
more run of each under `tracemalloc` for the peak of Python allocations during the run.
Last, the email trigger's routing of the new messages: three rules (a sender's domain, a
subject pattern, attachments) run in the bot's user-code worker processes, as a run does.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.webhooks import ROOT, stop_process
from bot.config import Secret
from bot.mail.message import parse_message
from bot.mail.poll import MailSource, PollResult, ReadMessage, poll_mailbox
from bot.mail.watch import Position
from bot.models import Trigger
from bot.net import AddressPolicy
from bot.triggers.email import MailWatch, Route
from bot.usercode import UserCodeRunner
from tests.imap_server import ImapServer, TestTLS

USER: Final = "support@example.com"
PASSWORD: Final = "bench-password"
FIXTURES: Final = ROOT / "tests" / "fixtures" / "email"


def sample_messages(count: int, start: int = 0) -> list[bytes]:
    """``count`` messages cycling through the fixtures, each with its own Message-ID."""
    samples = [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))]
    return [
        b"Message-ID: <bench-%d@example.com>\r\n" % (start + n)
        + samples[(start + n) % len(samples)]
        for n in range(count)
    ]


# ----- the server process ----------------------------------------------------------------


async def serve(messages: int, pki: Path) -> None:
    """Run pymap with ``messages`` in INBOX; print the port; add mail on "more N" lines."""
    tls = TestTLS(*(pki.joinpath(name).read_bytes() for name in ("ca", "cert", "key")))
    async with ImapServer({USER: PASSWORD}, tls=tls) as server:
        await server.seed(USER, "INBOX", sample_messages(messages))
        print(f"port {server.port}", flush=True)
        added = messages
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command, _, count = line.partition(" ")
            if command == "more":
                await server.seed(USER, "INBOX", sample_messages(int(count), added))
                added += int(count)
                print("ok", flush=True)


@dataclass
class ServerProcess:
    """The server child: send it lines, read its answers."""

    process: asyncio.subprocess.Process

    async def say(self, line: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()
        return (await asyncio.wait_for(self.process.stdout.readline(), 300)).decode().strip()


async def start_server(messages: int, pki: Path) -> tuple[ServerProcess, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.mail", "--serve", "--messages", str(messages),
        "--pki", str(pki),
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    first = await asyncio.wait_for(process.stdout.readline(), 600)
    if not first.startswith(b"port "):
        await stop_process(process)
        raise SystemExit(f"the IMAP server did not start: {first!r}")
    return ServerProcess(process), int(first.split()[1])


# ----- measuring -------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    label: str
    seconds: list[float]
    peak_bytes: int
    result: PollResult


async def measure(label: str, run: Callable[[], Awaitable[PollResult]], repeat: int) -> Measured:
    seconds: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = await run()
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    try:
        result = await run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return Measured(label, seconds, peak, result)


def report(rows: list[Measured]) -> None:
    print(f"{'run':<44} {'median s':>9} {'max s':>7} {'peak MiB':>9}  result")
    for row in rows:
        result = row.result
        what = f"{len(result.messages)} read, position {result.position.last_uid}"
        print(
            f"{row.label:<44} {statistics.median(row.seconds):>9.3f} {max(row.seconds):>7.3f} "
            f"{row.peak_bytes / 2**20:>9.2f}  {what}"
        )


async def bench(messages: int, new: int, repeat: int) -> None:
    tls = TestTLS.make()
    with tempfile.TemporaryDirectory() as folder:
        pki = Path(folder)
        for name, pem in (("ca", tls.ca_pem), ("cert", tls.cert_pem), ("key", tls.key_pem)):
            pki.joinpath(name).write_bytes(pem)
        started = time.perf_counter()
        server, port = await start_server(messages, pki)
        print(f"server up with {messages:,} messages in {time.perf_counter() - started:.1f} s")
        try:
            await run_phases(server, port, tls, new, repeat)
        finally:
            await stop_process(server.process)


async def run_phases(server: ServerProcess, port: int, tls: TestTLS, new: int, repeat: int) -> None:
    source = MailSource(
        f"imap://support%40example.com@localhost:{port}/INBOX", None, Secret(PASSWORD), timeout=60
    )
    policy = AddressPolicy.from_allowlist(["127.0.0.1"])

    def poll(stored: Position | None) -> Callable[[], Awaitable[PollResult]]:
        return lambda: poll_mailbox(source, stored, policy=policy, tls_context=tls.client_context())

    rows = [await measure("baseline (first run: EXAMINE, no bodies)", poll(None), repeat)]
    position = rows[0].result.position
    rows.append(await measure("no new mail (EXAMINE only)", poll(position), repeat))
    assert await server.say(f"more {new}") == "ok"
    rows.append(await measure(f"{new} new (search, fetch, parse)", poll(position), repeat))
    report(rows)
    assert len(rows[-1].result.messages) == new, len(rows[-1].result.messages)
    sizes = [read.message.size for read in rows[-1].result.messages]
    print(f"the {new} new messages: {min(sizes):,}-{max(sizes):,} bytes, {sum(sizes):,} in all")
    print(f"parse_message alone: {parse_cost_ms(sample_messages(new)):.2f} ms per message")
    await route_phase(rows[-1].result.messages, repeat)


ROUTES = (
    Route('from_domain == "bigcorp.com"', "C0100"),
    Route('subject matches "(?i)invoice|receipt|pdf"', "C0101"),
    Route("has_attachment", "C0102"),
)


async def route_phase(messages: tuple[ReadMessage, ...], repeat: int) -> None:
    """Route the new messages by `ROUTES` in user-code workers (started before timing)."""
    trigger = Trigger(
        team_id="T", name="bench", channel_id="C0001", kind="email", schedule={},
        options={}, state={}, routes=[route.to_dict() for route in ROUTES], created_by="U",
    )  # fmt: skip
    usercode = UserCodeRunner()
    try:
        watch = MailWatch(secrets=None, policy=AddressPolicy(), usercode=usercode)  # type: ignore[arg-type]
        await watch.route(trigger, messages[:1])  # the workers start here, not in the timing
        seconds = []
        for _ in range(repeat):
            started = time.perf_counter()
            routed = await watch.route(trigger, messages)
            seconds.append(time.perf_counter() - started)
    finally:
        await usercode.close()
    channels = {
        channel: sum(r.channel == channel for r in routed)
        for channel in ("C0100", "C0101", "C0102", "C0001")
    }
    print(
        f"routing {len(messages)} by {len(ROUTES)} rules in workers: median "
        f"{statistics.median(seconds):.3f} s, max {max(seconds):.3f} s; to {channels}"
    )


def parse_cost_ms(raws: list[bytes]) -> float:
    """Mean CPU time of `parse_message` over ``raws`` (three passes)."""
    started = time.process_time()
    for _ in range(3):
        for raw in raws:
            parse_message(raw)
    return (time.process_time() - started) * 1000 / (3 * len(raws))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pki", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.messages, args.pki))
    else:
        asyncio.run(bench(args.messages, args.new, args.repeat))


if __name__ == "__main__":
    main()
