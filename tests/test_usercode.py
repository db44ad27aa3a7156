"""User code in worker processes: real workers, real kills, the event loop watched.

Timing assertions compare seconds with milliseconds: a stall of the event loop or a hang
is seconds long, a healthy gap is a few milliseconds, and the bounds sit far from both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.expressions import ExpressionError, RenderError
from bot.usercode import (
    ConditionJob,
    Event,
    ExpressionJob,
    Failed,
    Job,
    RunnerClosed,
    TemplateJob,
    UserCodeLimits,
    UserCodeRunner,
    WorkerStartError,
)
from bot.usercode_worker import TimedOut, run_job

FIXTURES = Path(__file__).parent / "fixtures"
# Runs for an hour unless something stops it; it checks the cooperative deadline often.
LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
# Holds ~2 MB more at each level of recursion: ~350 MB before Python's recursion limit.
MEMORY_BOMB = (
    '{% macro m(n) %}{% set s = ("x" * 1999000) ~ n %}{{ m(n + 1) }}{{ s|length }}'
    "{% endmacro %}{{ m(0) }}"
)
STALL = 1.0  # longest acceptable gap of the test's event loop; the reported stalls were 8 s


def github(name: str, event: str) -> dict[str, Any]:
    payload = json.loads((FIXTURES / "github" / name).read_text())
    return {"payload": payload, "event": event, "sender": "github", "hook": "ci"}


def gone(pid: int) -> bool:
    """The process has exited and been reaped (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@contextlib.asynccontextmanager
async def runner_with(
    limits: UserCodeLimits, events: list[Event] | None = None
) -> AsyncIterator[UserCodeRunner]:
    """A runner that is closed afterwards, and proven to have left no process behind."""
    seen: set[int] = set()
    runner = UserCodeRunner(limits, on_event=(events.append if events is not None else None))
    try:
        yield runner
    finally:
        seen |= runner.pids()
        await runner.close()
        assert runner.pids() == set()
        assert all(gone(pid) for pid in seen)


@pytest.fixture
async def runner() -> AsyncIterator[UserCodeRunner]:
    async with runner_with(UserCodeLimits(workers=1)) as made:
        yield made


class LoopWatch:
    """Measures the longest gap between turns of the event loop while it is active."""

    def __init__(self) -> None:
        self.longest = 0.0

    async def tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            self.longest = max(self.longest, now - last)
            last = now


@contextlib.asynccontextmanager
async def watched_loop() -> AsyncIterator[LoopWatch]:
    watch = LoopWatch()
    task = asyncio.create_task(watch.tick())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.contextmanager
def takes_less_than(seconds: float) -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < seconds


# -- what comes back ----------------------------------------------------------------------------


async def test_a_mixed_batch_comes_back_in_order(runner: UserCodeRunner) -> None:
    pr = github("pull_request.opened.json", "pull_request")
    push = github("push.json", "push")
    jobs: list[Job] = [
        TemplateJob("{{ payload.pull_request.title }} by {{ payload.sender.login }}", pr),
        ConditionJob('event == "pull_request" and payload.action in ["opened"]', pr),
        ConditionJob('event == "pull_request"', push),
        ExpressionJob("payload.commits|map(attribute='id')|list|length", push),
        ExpressionJob("{'a': [1, none, payload.missing]}", push),
        TemplateJob("one\n{{ payload.x.y.z }}", push),
        TemplateJob("{{ 1 / 0 }}", {}),
    ]
    outcomes = await runner.run(jobs)
    assert outcomes[:5] == [
        "Update the README with new information. by Codertocat",
        True,
        False,
        len(push["payload"]["commits"]),
        {"a": [1, None, None]},
    ]
    assert outcomes[5] == Failed("'dict object' has no attribute 'x'", 2, "render")
    assert str(outcomes[5]) == "line 2: 'dict object' has no attribute 'x'"
    assert outcomes[6] == Failed("ZeroDivisionError: division by zero", 1, "render")


@pytest.mark.parametrize(
    ("job", "line", "reason"),
    [
        (TemplateJob("hello\n{{ } }}", {}), 2, "unexpected '}'"),
        (TemplateJob("a\n{% include 'x' %}", {}), 2, "'include' is not available"),
        (TemplateJob("x" * 10_001, {}), None, "the template is longer than 10000 characters"),
        (ConditionJob("status 200", {}), 1, "unexpected text after the expression"),
        (ExpressionJob("x|no_such_filter", {}), 1, "No filter named 'no_such_filter'."),
    ],
)
async def test_compile_errors_are_outcomes(
    runner: UserCodeRunner, job: Job, line: int | None, reason: str
) -> None:
    (outcome,) = await runner.run([job])
    assert isinstance(outcome, Failed)
    assert (outcome.kind, outcome.line) == ("compile", line)
    assert outcome.reason.startswith(reason)
    error = outcome.as_error()
    assert type(error) is ExpressionError and str(error) == str(outcome)


async def test_render_failures_convert_to_the_exceptions_of_the_in_process_api(
    runner: UserCodeRunner,
) -> None:
    (outcome,) = await runner.run([TemplateJob("{{ x.y }}", {})])
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.as_error(), RenderError)
    assert str(outcome.as_error()) == "line 1: 'x' is undefined"


async def test_contexts_that_are_not_json_arrive_as_documented(runner: UserCodeRunner) -> None:
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    cyclic: list[Any] = []
    cyclic.append(cyclic)
    context = {
        "when": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        "raw": b"caf\xc3\xa9 \xff",
        "pair": (1, 2),
        "tags": frozenset({"x"}),
        "thing": Thing(),
        "by_number": {1: "one"},
    }
    outcomes = await runner.run(
        [
            ExpressionJob("[when, raw, pair, tags, thing, by_number]", context),
            TemplateJob("{{ x }}", {"x": cyclic}),
            TemplateJob("still {{ 'fine' }}", {}),
        ]
    )
    assert outcomes[0] == [
        "2024-05-01T12:30:00+00:00",
        "café \ufffd",
        [1, 2],
        ["x"],
        "a thing",
        {"1": "one"},
    ]
    assert isinstance(outcomes[1], Failed) and outcomes[1].kind == "context"
    assert "cannot be sent as JSON" in outcomes[1].reason
    assert outcomes[2] == "still fine"


async def test_values_come_back_as_json_and_are_capped(runner: UserCodeRunner) -> None:
    outcomes = await runner.run(
        [
            ExpressionJob("range(3)|map('string')", {}),
            ExpressionJob("missing", {}),
            ExpressionJob("'x' * 100", {}, max_chars=50),
        ]
    )
    assert outcomes[:2] == [["0", "1", "2"], None]
    assert outcomes[2] == Failed("the value is longer than 50 characters as JSON", None, "render")


async def test_an_empty_batch(runner: UserCodeRunner) -> None:
    assert await runner.run([]) == []


# -- hostile code ---------------------------------------------------------------------------------


async def test_the_reported_freezes_fail_fast_and_leave_the_loop_free() -> None:
    """The three stalls of the security report, as the bot would run them."""
    body = {"s": "ü" * 120_000}
    reported: list[tuple[list[Job], str]] = [
        # A hook filter with four deliveries: ~8 s of frozen bot.
        (
            [ConditionJob("('a' * 1300000)|wordwrap(2)|length > 0", {})] * 4,
            "wordwrap takes at most 10000 characters",
        ),
        # punycode on a 120 kB body: 8.6 s.
        (
            [TemplateJob("{{ payload.s.encode('punycode') }}", {"payload": body})],
            "the 'punycode' encoding is not available",
        ),
        # Ten deliveries, each a long loop and a sort that keep to the limit: 9.3 s.
        (
            [TemplateJob("{% for i in range(100000) %}{{ range(1000)|sort|length }}{% endfor %}", {})]
            * 10,
            "took longer than the limit of 0.5 s",
        ),
    ]  # fmt: skip
    async with runner_with(UserCodeLimits()) as runner, watched_loop() as watch:
        for jobs, reason in reported:
            with takes_less_than(5.0):
                outcomes = await runner.run(jobs)
            assert all(isinstance(o, Failed) and reason in o.reason for o in outcomes)
    assert watch.longest < STALL


async def test_a_source_that_ran_out_of_time_is_not_run_again_in_its_batch() -> None:
    events: list[Event] = []
    async with runner_with(UserCodeLimits(workers=1), events) as runner:
        with takes_less_than(3.0):  # ten full time limits would be 5 s
            outcomes = await runner.run([TemplateJob(LOOP, {})] * 10 + [TemplateJob("ok", {})])
        assert outcomes[0] == Failed("took longer than the limit of 0.5 s", 1, "time_limit")
        skipped = (
            "took longer than the limit of 0.5 s (on an earlier job of this batch, so not run)"
        )
        assert outcomes[1:10] == [Failed(skipped, None, "time_limit")] * 9
        assert outcomes[10] == "ok"
        # The next batch gets its own chance.
        (again,) = await runner.run([TemplateJob(LOOP, {})])
        assert again == outcomes[0]
    assert events.count("job_timed_out") == 11


async def test_skipping_can_be_turned_off() -> None:
    limits = UserCodeLimits(workers=1, time_limit=0.05, skip_after_time_limit=False)
    async with runner_with(limits) as runner:
        outcomes = await runner.run([TemplateJob(LOOP, {})] * 3)
    assert outcomes == [Failed("took longer than the limit of 0.05 s", 1, "time_limit")] * 3


async def test_a_batch_where_job_3_of_10_hangs_returns_the_9_others() -> None:
    jobs: list[Job] = [TemplateJob("{{ n }}", {"n": n}) for n in range(10)]
    jobs[2] = TemplateJob(LOOP, {})
    async with runner_with(UserCodeLimits(workers=1)) as runner:
        outcomes = await runner.run(jobs)
    assert outcomes[2] == Failed("took longer than the limit of 0.5 s", 1, "time_limit")
    assert [o for i, o in enumerate(outcomes) if i != 2] == [str(n) for n in range(10) if n != 2]


async def test_a_job_past_the_hard_deadline_is_killed_and_the_batch_goes_on() -> None:
    """Whatever keeps a job from returning (here the cooperative limit is set out of
    reach, as a single long builtin step would be), the worker dies at the hard limit."""
    events: list[Event] = []
    limits = UserCodeLimits(workers=1, time_limit=3600, kill_after=0.5)
    jobs: list[Job] = [TemplateJob("{{ n }}", {"n": n}) for n in range(10)]
    jobs[2] = TemplateJob(LOOP, {})
    async with runner_with(limits, events) as runner, watched_loop() as watch:
        await runner.run([TemplateJob("warm", {})])
        (first,) = runner.pids()
        with takes_less_than(10.0):  # the loop alone would take an hour
            outcomes = await runner.run(jobs)
        (second,) = runner.pids()
        assert second != first and gone(first)
        # Later batches use the replacement.
        assert await runner.run([TemplateJob("{{ 7 * 6 }}", {})]) == ["42"]
    assert outcomes[2] == Failed("took longer than the limit of 0.5 s", None, "time_limit")
    assert [o for i, o in enumerate(outcomes) if i != 2] == [str(n) for n in range(10) if n != 2]
    assert events.count("worker_killed") == 1
    assert events.count("worker_started") == 2
    assert watch.longest < STALL


async def test_a_worker_killed_from_outside_fails_only_the_job_it_was_running() -> None:
    events: list[Event] = []
    first_done = asyncio.Event()

    def on_event(event: Event) -> None:
        events.append(event)
        if event == "job_ok":
            first_done.set()

    runner = UserCodeRunner(UserCodeLimits(workers=1, time_limit=3600), on_event=on_event)
    jobs: list[Job] = [TemplateJob("first", {}), TemplateJob(LOOP, {})]
    jobs += [TemplateJob("{{ n }}", {"n": n}) for n in range(5)]
    try:
        async with asyncio.timeout(30):
            batch = asyncio.create_task(runner.run(jobs))
            await first_done.wait()  # the worker has moved on to the loop, sent with it
            (pid,) = runner.pids()
            os.kill(pid, signal.SIGKILL)
            outcomes = await batch
    finally:
        await runner.close()
    assert outcomes[0] == "first"
    assert outcomes[1] == Failed(
        "the worker running it stopped (killed by signal 9)", None, "crashed"
    )
    assert outcomes[2:] == ["0", "1", "2", "3", "4"]
    assert gone(pid)
    assert "worker_died" in events and events.count("worker_started") == 2


async def test_a_memory_bomb_fails_its_job_not_the_bot() -> None:
    small = UserCodeLimits(workers=1, memory_bytes=256 << 20, time_limit=5)
    async with runner_with(small) as runner:
        outcomes = await runner.run([TemplateJob(MEMORY_BOMB, {}), TemplateJob("after", {})])
    bomb = outcomes[0]
    assert isinstance(bomb, Failed)
    # Either Python raised MemoryError in the worker, or the worker died of it.
    assert (bomb.kind, bomb.reason) == ("render", "MemoryError") or bomb.kind == "crashed"
    assert outcomes[1] == "after"
    # The control: with a gigabyte the same template only meets Python's recursion limit.
    async with runner_with(UserCodeLimits(workers=1, time_limit=5)) as runner:
        (control,) = await runner.run([TemplateJob(MEMORY_BOMB, {})])
    assert isinstance(control, Failed) and "recursion" in control.reason


# -- the pool -------------------------------------------------------------------------------------


async def test_workers_are_started_once_and_reused() -> None:
    events: list[Event] = []
    async with runner_with(UserCodeLimits(workers=2), events) as runner:
        assert runner.pids() == set()  # nothing starts before the first job
        for _ in range(3):
            batch = [TemplateJob("{{ n }}", {"n": n}) for n in range(50)]
            assert await runner.run(batch) == [str(n) for n in range(50)]
        assert len(runner.pids()) <= 2
    assert 1 <= events.count("worker_started") <= 2
    assert events.count("job_ok") == 150


async def test_concurrent_batches_take_turns() -> None:
    limits = UserCodeLimits(workers=1, in_flight=1)
    slow = TemplateJob("{% for i in range(20000) %}{{ i % 2 }}{% endfor %}", {}, max_chars=10**5)
    async with runner_with(limits) as runner:
        big = asyncio.create_task(runner.run([slow] * 10))
        await asyncio.sleep(0)  # the big batch is queued first
        assert await runner.run([TemplateJob("urgent", {})]) == ["urgent"]
        assert not big.done()
        outcomes = await big
    assert all(isinstance(o, str) for o in outcomes)


async def test_a_cancelled_caller_drops_its_jobs() -> None:
    async with runner_with(UserCodeLimits(workers=1, in_flight=1)) as runner:
        batch = asyncio.create_task(runner.run([TemplateJob(LOOP, {})] * 20))
        await asyncio.sleep(0.1)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        with takes_less_than(3.0):  # not behind twenty time limits
            assert await runner.run([TemplateJob("next", {})]) == ["next"]


async def test_close_stops_the_workers_and_fails_what_is_running() -> None:
    runner = UserCodeRunner(UserCodeLimits(workers=2, time_limit=3600))
    await runner.run([TemplateJob("warm", {}), TemplateJob("warm", {})])
    batch = asyncio.create_task(runner.run([TemplateJob(LOOP, {})] * 4))
    await asyncio.sleep(0.2)
    pids = runner.pids()
    assert pids
    with takes_less_than(5.0):
        await runner.close()
    with pytest.raises(RunnerClosed):
        await batch
    assert all(gone(pid) for pid in pids)
    with pytest.raises(RunnerClosed):
        await runner.run([TemplateJob("late", {})])


async def test_a_worker_that_cannot_start_is_an_error_for_every_waiting_caller() -> None:
    broken = (sys.executable, "-c", "import sys; sys.exit('ImportError: no module bot')")
    async with runner_with(UserCodeLimits(workers=2, command=broken)) as runner:
        with pytest.raises(WorkerStartError, match="did not start: ImportError: no module bot"):
            await runner.run([TemplateJob(str(n), {}) for n in range(10)])
        with pytest.raises(WorkerStartError):  # the next caller hears it too
            await runner.run([TemplateJob("again", {})])


# -- the worker's own loop, in this process ----------------------------------------------------


def test_the_worker_answers_a_broken_job_instead_of_dying() -> None:
    timed_out = TimedOut()
    assert run_job(b"{not json", timed_out) == {
        "error": "the job could not be read (JSONDecodeError)",
        "line": None,
        "kind": "context",
    }
    assert run_job(b"[1, 2]", timed_out)["kind"] == "context"
    assert run_job(b'{"kind": "nonsense", "source": "x"}', timed_out)["kind"] == "render"


def test_the_worker_remembers_the_latest_sources_that_ran_out_of_time() -> None:
    timed_out = TimedOut(keep=2)
    for batch in (1, 2, 3):
        timed_out.add(batch, "{{ slow }}")
    assert (1, "{{ slow }}") not in timed_out
    assert (2, "{{ slow }}") in timed_out and (3, "{{ slow }}") in timed_out
    job = {"kind": "template", "source": "{{ slow }}", "context": {}, "batch": 3}
    reply = run_job(json.dumps({**job, "time_limit": 0.5, "max_chars": 10}).encode(), timed_out)
    assert reply == {
        "error": "took longer than the limit of 0.5 s (on an earlier job of this batch, so not run)",
        "line": None,
        "kind": "time_limit",
    }
