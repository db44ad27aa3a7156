"""What running user code in worker processes costs: start-up, per job, per batch.

Run ``python -m bench.usercode``. Compares `bot.usercode.UserCodeRunner` with rendering
in the bot's own process (`bot.expressions`, what the webhook processor did before), and
watches the event loop while batches run: its longest gap is how long the bot could not
answer anything. Timings are medians over ``--repeat`` runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.expressions import compile_template, render_template
from bot.usercode import WORKER_COMMAND, TemplateJob, UserCodeLimits, UserCodeRunner
from bot.usercode_worker import start_worker

ROOT = Path(__file__).resolve().parents[1]
PR = json.loads((ROOT / "tests/fixtures/github/pull_request.opened.json").read_text())
SMALL = "{{ payload.x }} by {{ payload.who }}"
REALISTIC = (
    "*{{ payload.pull_request.title }}* (#{{ payload.number }}) {{ payload.action }} by "
    "{{ payload.sender.login }}: {{ payload.pull_request.html_url|link('open') }}"
)


async def median_ms(repeat: int, action: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def longest_gap_ms(action: Callable[[], Awaitable[Any]]) -> float:
    longest = 0.0

    async def tick() -> None:
        nonlocal longest
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    await action()
    ticker.cancel()
    return longest * 1000


def in_process(jobs: list[TemplateJob]) -> Callable[[], Awaitable[None]]:
    async def render_all() -> None:
        for job in jobs:
            render_template(compile_template(job.source), job.context)

    return render_all


async def start_up(repeat: int) -> None:
    async def start_and_stop() -> None:
        worker = await start_worker(WORKER_COMMAND, 1 << 30, 30)
        await worker.stop()

    print(
        f"worker start-up (spawn, imports, warm-up, ready): {await median_ms(repeat, start_and_stop):.0f} ms"
    )


async def overheads(repeat: int, batch: int) -> None:
    small = [TemplateJob(SMALL, {"payload": {"x": n, "who": "me"}}) for n in range(batch)]
    real = [TemplateJob(REALISTIC, {"payload": PR, "event": "pull_request"})] * batch
    size = len(json.dumps(PR))
    print(f"\n{'':44} {'in-process':>12} {'1 worker':>10} {'2 workers':>10}")
    rows = [
        ("one small job, alone", small[:1]),
        (f"batch of {batch} small renders", small),
        (f"batch of {batch} PR renders ({size // 1000} kB payload)", real),
    ]
    for label, jobs in rows:
        cells = [await median_ms(repeat, in_process(jobs))]
        for workers in (1, 2):
            runner = UserCodeRunner(UserCodeLimits(workers=workers))
            await runner.run(jobs[:1] * workers * 2)  # start the workers
            cells.append(await median_ms(repeat, lambda r=runner, j=jobs: r.run(j)))  # type: ignore[misc]
            await runner.close()
        per_job = (
            "" if len(jobs) == 1 else f"   ({cells[1] * 1000 / len(jobs):.0f} µs/job, 1 worker)"
        )
        print(f"{label:44} {cells[0]:10.1f}ms {cells[1]:8.1f}ms {cells[2]:8.1f}ms{per_job}")


async def loop_gaps(batch: int) -> None:
    print("\nlongest event-loop gap while a batch runs (the bot is unresponsive that long)")
    big = {"payload": {"items": ["x" * 100] * 10_000, "n": 1}}  # ~1 MB of JSON
    cases = [
        (f"{batch} PR renders", [TemplateJob(REALISTIC, {"payload": PR})] * batch),
        (f"{batch} renders of a 1 MB payload", [TemplateJob("{{ payload.n }}", big)] * batch),
        (
            "10 hostile renders (range + sort, ~9 s in-process)",
            [TemplateJob("{% for i in range(100000) %}{{ range(1000)|sort|length }}{% endfor %}", {})]
            * 10,
        ),
    ]  # fmt: skip
    runner = UserCodeRunner()
    await runner.run([TemplateJob("warm", {})] * 4)
    for label, jobs in cases:
        started = time.perf_counter()
        gap = await longest_gap_ms(lambda j=jobs: runner.run(j))  # type: ignore[misc]
        print(
            f"  {label:52} gap {gap:6.1f} ms   batch {(time.perf_counter() - started) * 1000:7.0f} ms"
        )
    await runner.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--batch", type=int, default=200)
    options = parser.parse_args()
    await start_up(options.repeat)
    await overheads(options.repeat, options.batch)
    await loop_gaps(options.batch)


if __name__ == "__main__":
    asyncio.run(main())
