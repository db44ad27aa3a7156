"""User code (templates, hook filters, trigger conditions) in worker processes, under a
hard deadline, so that none of it can hold the bot's event loop.

The sandbox in `bot.expressions` checks its deadline between steps; one long builtin step,
or many steps that each keep to the limit, would still hold the one event loop the whole
bot runs on. Here the code runs in child processes (``python -m bot.usercode_worker``)
and the event loop only waits on pipes::

    runner = UserCodeRunner()                       # one per app; workers start lazily
    texts = await runner.run([TemplateJob(hook.template, context) for ...])
    keep = await runner.run([ConditionJob(hook.filter, context) for ...])
    for text in texts:
        if isinstance(text, Failed):                # str(text): "line 2: ...", as RenderError
            ...
    await runner.close()                            # at shutdown: no process is left

Guarantees:

* Each job runs under the cooperative `DEFAULT_TIME_LIMIT` inside the worker; if it is
  still running `KILL_MARGIN` seconds past that (one long builtin step), the worker is
  killed with SIGKILL and the job fails with the same reason (``took longer than the limit
  of 0.5 s``). Its clock starts when the worker can start it, not when it was queued.
* A worker that dies (killed, crashed, out of its address space, killed from outside)
  fails only the job it was running; the jobs queued behind it run on a fresh worker.
* Within one `run`, once a source has run out of time, its other jobs fail at once with
  ``... (on an earlier job of this batch, so not run)``: a batch of 200 deliveries to a
  hostile template costs one time limit, not 200 (``skip_after_time_limit=False`` turns
  this off).
* Concurrent `run` calls are served round-robin, a job at a time, so a trigger's
  condition does not wait behind a batch of 200 webhook renders (beyond the at most
  ``in_flight`` jobs already sent to each worker).
* Compile errors, render errors and time limits are `Failed` outcomes; only a broken
  installation (a worker that cannot start: `WorkerStartError`) or a closed runner
  (`RunnerClosed`) raise.
* The event loop never runs user code; it encodes each context as JSON (one job per
  turn of the loop: a 1 MB payload takes about 5 ms) and waits on pipes.

Summaries: a template's ``|summarise`` calls are recorded in the worker, which prints a
marker for each (`bot.ai.summaries`); `run` then has ``write_summaries`` (the AI step,
given by the composition root) write them, for ``TemplateJob.team``'s budget, and
returns the text with each marker replaced. Without it, or if it fails, each becomes the
rule-based fallback (the first words and "…"). Callers only ever see finished text.

Wiring: one runner per app, built in the composition root (``on_event`` can feed a
Prometheus counter) and closed after the callers stop. The webhook processor runs a
`ConditionJob` per delivery whose hook has a filter, then a `TemplateJob` per delivery
that passed, outside its database transaction; a trigger runs
``ConditionJob(to_expression(text), condition_context(...))``. `Failed` takes the place
of the `ExpressionError` they catch today (``as_error()`` gives one). Checking a source
when it is saved stays in-process: `bot.expressions` compiles 10 kB in under 100 ms.

Contexts are sent as JSON. JSON values (what webhook payloads, headers and check results
are) arrive unchanged; tuples, sets and other sequences become lists, mappings objects
with their keys as text (as ``json`` does for numbers), datetimes, dates and times their
ISO 8601 text, bytes their UTF-8 text (invalid bytes replaced), anything else (a
generator included) its ``str()``; a context with a cycle is a ``context`` failure. Results come back the same way: a template's text, a condition's bool, an
expression's value as JSON (Undefined is None).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal, overload

from bot.ai.summaries import (
    RecordedSummaries,
    SummaryRequest,
    fill_markers,
    slack_fallback,
)
from bot.expressions import (
    DEFAULT_MAX_CHARS,
    DEFAULT_TIME_LIMIT,
    ExpressionError,
    RenderError,
    TimeLimitError,
    time_limit_reason,
)
from bot.usercode_worker import (
    WORKER_COMMAND,
    FailureKind,
    StartFailed,
    WorkerDied,
    WorkerProcess,
    frame,
    skipped_reason,
    start_worker,
)

log = logging.getLogger(__name__)

KILL_MARGIN = 0.25  # seconds past the cooperative limit before a worker is killed

JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]
Context = Mapping[str, Any]

# What the optional ``on_event`` callback receives (for a Prometheus counter):
#   job_ok, job_failed (compile or render error), job_timed_out, job_crashed (its worker
#   died), worker_started, worker_killed (at a deadline), worker_died (anything else).
Event = Literal[
    "job_ok",
    "job_failed",
    "job_timed_out",
    "job_crashed",
    "worker_started",
    "worker_killed",
    "worker_died",
]


class UserCodeUnavailable(RuntimeError):
    """User code cannot run at all; `run` raises it instead of returning outcomes."""


class RunnerClosed(UserCodeUnavailable):
    """`UserCodeRunner.close` was called before the jobs finished."""


class WorkerStartError(UserCodeUnavailable):
    """A worker process did not start (the message ends with what it printed)."""


# -- jobs and outcomes --------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateJob:
    """Render the template ``source``; the outcome is its text (at most ``max_chars``,
    plus what ``|summarise`` calls write).

    ``team`` is the workspace whose AI budget pays for the template's ``|summarise``
    calls (None: they print the rule-based fallback).
    """

    source: str
    context: Context
    max_chars: int = DEFAULT_MAX_CHARS
    team: str | None = None


@dataclass(frozen=True)
class ConditionJob:
    """The truth of the expression ``source`` (a hook filter, a trigger condition)."""

    source: str
    context: Context


@dataclass(frozen=True)
class ExpressionJob:
    """The value of the expression ``source`` as JSON (at most ``max_chars`` of it)."""

    source: str
    context: Context
    max_chars: int = DEFAULT_MAX_CHARS


Job = TemplateJob | ConditionJob | ExpressionJob


@dataclass(frozen=True)
class Failed:
    """A job that produced no result; ``str()`` reads like `ExpressionError`'s text.

    ``kind``: ``compile`` (the source is not valid), ``render`` (it failed on this
    context), ``time_limit``, ``crashed`` (its worker died: a memory bomb, a crash, a
    kill from outside) or ``context`` (the context could not be sent).
    """

    reason: str
    line: int | None = None
    kind: FailureKind = "render"

    def __str__(self) -> str:
        return self.reason if self.line is None else f"line {self.line}: {self.reason}"

    def as_error(self) -> ExpressionError:
        """The exception `bot.expressions` would have raised in this process."""
        kinds: Mapping[str, type[ExpressionError]] = {
            "compile": ExpressionError,
            "time_limit": TimeLimitError,
        }
        return kinds.get(self.kind, RenderError)(self.reason, self.line)


Outcome = str | bool | JSON | Failed
# Writes the summaries a template asked for (``|summarise``), as Slack text to put in
# place of its markers: ``(team, requests) -> one text per request``. Never raises.
SummaryWriter = Callable[[str | None, Sequence[SummaryRequest]], Awaitable[Sequence[str]]]


@dataclass(frozen=True)
class _Summarised:
    """A template's text whose markers still wait for their summaries (`bot.ai.summaries`)."""

    text: str
    summaries: RecordedSummaries


_Settled = Outcome | _Summarised


@dataclass(frozen=True)
class UserCodeLimits:
    """How the workers run; the defaults suit a small bot on two cores."""

    workers: int = 2
    # The cooperative deadline of each job, inside the worker.
    time_limit: float = DEFAULT_TIME_LIMIT
    # The hard one: the worker is killed if a job is still running after this long.
    # Default: `time_limit` plus `KILL_MARGIN`, for a last long step and the reply.
    kill_after: float | None = None
    # After a job ran out of time, the jobs of the same `run` with the same source fail
    # at once: see the module docstring.
    skip_after_time_limit: bool = True
    memory_bytes: int = 1 << 30  # each worker's address space
    # Jobs sent ahead to a worker so that it never waits for the bot; when a worker is
    # lost, the ones it had not started go to a fresh worker.
    in_flight: int = 16
    in_flight_bytes: int = 8 << 20
    start_timeout: float = 20.0
    # How to start a worker (``--memory BYTES`` is appended): a wrapper such as bwrap or
    # systemd-run can confine it further.
    command: tuple[str, ...] = WORKER_COMMAND

    @property
    def hard_limit(self) -> float:
        return self.time_limit + KILL_MARGIN if self.kill_after is None else self.kill_after

    @property
    def reported_limit(self) -> float:
        """The limit a job that ran out of time is said to have passed."""
        return min(self.time_limit, self.hard_limit)


# -- the wire -------------------------------------------------------------------------------


def _context_default(value: Any) -> Any:
    """How values that are not JSON are sent (see the module docstring)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Set | Sequence):  # finite: a generator could run forever here
        return list(value)
    return str(value)


_KIND_OF: Mapping[type[Any], str] = {
    TemplateJob: "template",
    ConditionJob: "condition",
    ExpressionJob: "expression",
}


def _request(job: Job, limits: UserCodeLimits, batch: int) -> bytes:
    """The job as a frame for the worker; ValueError or TypeError if its context is not
    JSON even after `_context_default` (a cycle, a key that is not text or a number)."""
    body = {
        "kind": _KIND_OF[type(job)],
        "source": job.source,
        "context": job.context,
        "time_limit": limits.time_limit,
        "max_chars": getattr(job, "max_chars", DEFAULT_MAX_CHARS),
        "batch": batch if limits.skip_after_time_limit else None,
    }
    return frame(json.dumps(body, default=_context_default).encode())


_FAILURE_KINDS: Mapping[str, FailureKind] = {
    "compile": "compile",
    "render": "render",
    "time_limit": "time_limit",
    "context": "context",
}


def _outcome(job: Job, reply: Mapping[str, Any]) -> _Settled:
    """The worker's reply for ``job``, checked: the worker runs untrusted code."""
    if "ok" not in reply:
        line = reply.get("line")
        kind = _FAILURE_KINDS.get(str(reply.get("kind")), "render")
        return Failed(str(reply.get("error")), line if isinstance(line, int) else None, kind)
    value = reply["ok"]
    if isinstance(job, TemplateJob):
        if not isinstance(value, str):
            return Failed("the worker sent no text")
        return _template_text(value, reply.get("summaries"))
    if isinstance(job, ConditionJob):
        return value if isinstance(value, bool) else Failed("the worker sent no truth value")
    return value  # type: ignore[no-any-return]  # any JSON, by contract


def _template_text(text: str, summaries: Any) -> str | _Summarised | Failed:
    if summaries is None:
        return text
    try:
        return _Summarised(text, RecordedSummaries.from_json(summaries))
    except ValueError as error:
        return Failed(f"the worker sent malformed summaries ({error})")


# -- the queue --------------------------------------------------------------------------------


@dataclass(eq=False)
class _Batch:
    """The jobs of one `run` call not yet sent, and the sources that timed out in it
    (the worker keeps its own list for the jobs it was sent)."""

    id: int
    waiting: deque[_Pending] = field(default_factory=deque)
    timed_out: set[str] = field(default_factory=set)


@dataclass(eq=False)
class _Pending:
    job: Job
    result: asyncio.Future[_Settled]
    batch: _Batch

    def fail(self, error: UserCodeUnavailable) -> None:
        if not self.result.done():
            self.result.set_exception(error)


class _Queue:
    """The jobs of all `run` calls, served a job at a time from each batch in turn."""

    def __init__(self, limits: UserCodeLimits, on_event: Callable[[Event], None] | None) -> None:
        self._limits = limits
        self._on_event = on_event
        self._batches: deque[_Batch] = deque()
        self._work = asyncio.Event()

    def add(self, batch: _Batch) -> None:
        if batch.waiting:
            self._batches.append(batch)
            self._work.set()

    async def wait(self) -> None:
        """Until there may be work."""
        await self._work.wait()

    def take(self) -> _Pending | None:
        """The next job to send, or None."""
        while self._batches:
            batch = self._batches.popleft()
            pending = _next_live(batch.waiting)
            if batch.waiting:
                self._batches.append(batch)
            if pending is None:
                continue
            if self._limits.skip_after_time_limit and pending.job.source in batch.timed_out:
                skipped = skipped_reason(self._limits.reported_limit)
                self.settle(pending, Failed(skipped, None, "time_limit"))
                continue
            return pending
        self._work.clear()
        return None

    def put_back(self, pendings: Iterable[_Pending]) -> None:
        """Jobs a lost worker had not started go first, in their order."""
        for pending in reversed(list(pendings)):
            batch = pending.batch
            batch.waiting.appendleft(pending)
            if batch not in self._batches:
                self._batches.appendleft(batch)
            self._work.set()

    def fail_all(self, error: UserCodeUnavailable) -> None:
        while self._batches:
            for pending in self._batches.popleft().waiting:
                pending.fail(error)

    def settle(self, pending: _Pending, outcome: _Settled) -> None:
        self.event(_event_for(outcome))
        if isinstance(outcome, Failed) and outcome.kind == "time_limit":
            pending.batch.timed_out.add(pending.job.source)
        if not pending.result.done():
            pending.result.set_result(outcome)

    def time_limit_failure(self) -> Failed:
        return Failed(time_limit_reason(self._limits.reported_limit), None, "time_limit")

    def event(self, event: Event) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:  # a metrics callback must not stop the workers
            log.exception("the user-code event callback failed")


def _next_live(waiting: deque[_Pending]) -> _Pending | None:
    """The first job whose caller still waits for it."""
    while waiting:
        pending = waiting.popleft()
        if not pending.result.done():
            return pending
    return None


def _event_for(outcome: _Settled) -> Event:
    if not isinstance(outcome, Failed):
        return "job_ok"
    events: Mapping[str, Event] = {"time_limit": "job_timed_out", "crashed": "job_crashed"}
    return events.get(outcome.kind, "job_failed")


# -- one worker of the pool --------------------------------------------------------------------


@dataclass(eq=False)
class _Sent:
    pending: _Pending
    size: int


class _Slot:
    """One worker and the jobs sent ahead to it: sends, reads the replies in order,
    kills the worker at a job's deadline and starts another when it is lost."""

    def __init__(self, queue: _Queue, limits: UserCodeLimits, pids: set[int]) -> None:
        self.queue = queue
        self.limits = limits
        self.pids = pids
        self.worker: WorkerProcess | None = None
        self.sent: deque[_Sent] = deque()
        self.sent_bytes = 0
        self.first_started = 0.0  # loop time when the worker could start sent[0]

    async def serve(self) -> None:
        """The slot's task: runs until cancelled by `UserCodeRunner.close`."""
        try:
            while True:
                try:
                    await self._step()
                except Exception:  # the one handler of this task: keep the pool alive
                    log.exception("a user-code worker slot failed; replacing its worker")
                    self._fail_sent(UserCodeUnavailable("the user-code worker slot failed"))
                    await self._lose_worker("worker_died")
                    await asyncio.sleep(1)
        finally:
            await self._shut_down()

    async def _shut_down(self) -> None:
        busy = bool(self.sent)
        self._fail_sent(RunnerClosed("the user-code runner was closed"))
        worker, self.worker = self.worker, None
        if worker is not None:
            self.pids.discard(worker.pid)
            # An idle worker exits when its stdin closes; a busy one would first run
            # every job still in its pipe.
            await (worker.kill() if busy else worker.stop())

    async def _step(self) -> None:
        await self._fill()
        if self.sent:
            await self._settle_first()
        else:
            await self.queue.wait()

    async def _fill(self) -> None:
        """Send jobs until ``in_flight`` are out, or ``in_flight_bytes``, or none is left."""
        while len(self.sent) < self.limits.in_flight and (
            self.sent_bytes < self.limits.in_flight_bytes
        ):
            pending = self.queue.take()
            if pending is None or not await self._send(pending):
                return
            await asyncio.sleep(0)  # one context encoded per turn of the event loop

    async def _send(self, pending: _Pending) -> bool:
        try:
            data = _request(pending.job, self.limits, pending.batch.id)
        except (TypeError, ValueError, RecursionError) as error:
            failure = Failed(f"the context cannot be sent as JSON ({error})", None, "context")
            self.queue.settle(pending, failure)
            return True
        worker = await self._worker(pending)
        if worker is None:
            return False
        try:
            worker.send(data)
        except WorkerDied:
            self.queue.put_back([pending])
            if not self.sent:  # it died idle: nothing ran on it, so nothing failed
                await self._lose_worker("worker_died")
            return False  # otherwise reading the reply of sent[0] tells what happened
        if not self.sent:
            self.first_started = asyncio.get_running_loop().time()
        self.sent.append(_Sent(pending, len(data)))
        self.sent_bytes += len(data)
        return True

    async def _worker(self, pending: _Pending) -> WorkerProcess | None:
        """The slot's worker, started if need be; None if it cannot start, and then
        every waiting caller hears why (a broken installation, not one job's fault)."""
        if self.worker is None:
            try:
                self.worker = await start_worker(
                    self.limits.command, self.limits.memory_bytes, self.limits.start_timeout
                )
            except (OSError, StartFailed) as error:
                failure = WorkerStartError(str(error))
                pending.fail(failure)
                self.queue.fail_all(failure)
                return None
            self.pids.add(self.worker.pid)
            self.queue.event("worker_started")
        return self.worker

    async def _settle_first(self) -> None:
        """Wait for the reply to the oldest job sent; kill the worker at its deadline."""
        assert self.worker is not None
        deadline = self.first_started + self.limits.hard_limit
        try:
            reply = await self.worker.reply(deadline)
        except WorkerDied:
            await self.worker.kill()  # reaped, so that its exit status is known
            self._finish(self._crash_failure())
            await self._lose_worker("worker_died")
            return
        if reply is None:
            self._finish(self.queue.time_limit_failure())
            await self._lose_worker("worker_killed")
            return
        self._finish(_outcome(self.sent[0].pending.job, reply))
        self.first_started = asyncio.get_running_loop().time()

    def _crash_failure(self) -> Failed:
        assert self.worker is not None
        status = self.worker.exit_status()
        log.warning(
            "user-code worker %s stopped (%s): %s",
            self.worker.pid,
            status,
            self.worker.last_words(),
        )
        return Failed(f"the worker running it stopped ({status})", None, "crashed")

    def _finish(self, outcome: _Settled) -> None:
        done = self.sent.popleft()
        self.sent_bytes -= done.size
        self.queue.settle(done.pending, outcome)

    async def _lose_worker(self, event: Event) -> None:
        """Kill the worker; the jobs it had not started go to the next one."""
        worker, self.worker = self.worker, None
        self.queue.put_back(item.pending for item in self.sent)
        self.sent.clear()
        self.sent_bytes = 0
        if worker is not None:
            self.pids.discard(worker.pid)
            self.queue.event(event)
            await worker.kill()

    def _fail_sent(self, error: UserCodeUnavailable) -> None:
        for item in self.sent:
            item.pending.fail(error)
        self.sent.clear()
        self.sent_bytes = 0


# -- the runner -------------------------------------------------------------------------------


class UserCodeRunner:
    """Runs batches of user-code jobs on a small pool of worker processes (see the
    module docstring). Create it anywhere; the workers start on the first `run`."""

    def __init__(
        self,
        limits: UserCodeLimits | None = None,
        *,
        on_event: Callable[[Event], None] | None = None,
        write_summaries: SummaryWriter | None = None,
    ) -> None:
        self.limits = limits or UserCodeLimits()
        self._on_event = on_event
        self._write_summaries = write_summaries
        self._queue: _Queue | None = None
        self._slots: list[asyncio.Task[None]] = []
        self._pids: set[int] = set()
        self._batch_ids = itertools.count()
        self._closed = False

    @overload
    async def run(self, jobs: Sequence[TemplateJob]) -> Sequence[str | Failed]: ...
    @overload
    async def run(self, jobs: Sequence[ConditionJob]) -> Sequence[bool | Failed]: ...
    @overload
    async def run(self, jobs: Sequence[Job]) -> Sequence[Outcome]: ...

    async def run(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
        """The outcome of every job, in order; raises only `UserCodeUnavailable`.

        If the caller is cancelled, its jobs that have not started are dropped."""
        if self._closed:
            raise RunnerClosed("the user-code runner is closed")
        queue = self._started()
        loop = asyncio.get_running_loop()
        batch = _Batch(next(self._batch_ids))
        results = [loop.create_future() for _ in jobs]
        batch.waiting.extend(
            _Pending(job, result, batch) for job, result in zip(jobs, results, strict=True)
        )
        queue.add(batch)
        try:
            settled = list(await asyncio.gather(*results))
        finally:
            for result in results:
                result.cancel()  # no-op for the settled ones
        return await self._with_summaries(jobs, settled)

    async def _with_summaries(
        self, jobs: Sequence[Job], settled: Sequence[_Settled]
    ) -> list[Outcome]:
        """The outcomes, with every template's ``|summarise`` markers filled, all
        templates' summaries written at once."""
        waiting = [
            (index, job.team if isinstance(job, TemplateJob) else None, outcome)
            for index, (job, outcome) in enumerate(zip(jobs, settled, strict=True))
            if isinstance(outcome, _Summarised)
        ]
        outcomes: list[Outcome] = [
            "" if isinstance(outcome, _Summarised) else outcome for outcome in settled
        ]
        texts = await asyncio.gather(
            *(self._summaries(team, outcome.summaries.requests) for _, team, outcome in waiting)
        )
        for (index, _, outcome), written in zip(waiting, texts, strict=True):
            summaries = outcome.summaries
            outcomes[index] = fill_markers(outcome.text, summaries.nonce, written)
        return outcomes

    async def _summaries(
        self, team: str | None, requests: Sequence[SummaryRequest]
    ) -> Sequence[str]:
        fallback = [slack_fallback(request) for request in requests]
        if self._write_summaries is None:
            return fallback
        try:
            written = await self._write_summaries(team, requests)
        except Exception:  # a summary is never worth losing the message over
            log.exception("writing template summaries failed; using the fallback")
            return fallback
        return written if len(written) == len(requests) else fallback

    def pids(self) -> set[int]:
        """The process ids of the running workers (for tests and diagnostics)."""
        return set(self._pids)

    async def close(self) -> None:
        """Stop the workers, waiting for each to exit, and fail what has not finished."""
        self._closed = True
        for slot in self._slots:
            slot.cancel()
        await asyncio.gather(*self._slots, return_exceptions=True)
        self._slots.clear()
        if self._queue is not None:
            self._queue.fail_all(RunnerClosed("the user-code runner was closed"))

    def _started(self) -> _Queue:
        if self._queue is None:
            self._queue = _Queue(self.limits, self._on_event)
        while len(self._slots) < self.limits.workers:
            slot = _Slot(self._queue, self.limits, self._pids)
            name = f"usercode-slot-{len(self._slots)}"
            self._slots.append(asyncio.create_task(slot.serve(), name=name))
        return self._queue
