"""A worker process for `bot.usercode`, both ends: the process itself (``python -m
bot.usercode_worker``, `main`) and the bot's handle on it (`start_worker`, `WorkerProcess`).

The worker reads jobs from stdin and writes replies to stdout, one at a time and in
order, each a frame: 4 bytes of big-endian length, then that many bytes of JSON.

    job:    {"kind": "template" | "expression" | "condition", "source": str,
             "context": {...}, "time_limit": float, "max_chars": int}
    reply:  {"ok": value}  or  {"error": str, "line": int | null, "kind": FailureKind}

A template that called ``|summarise`` is answered ``{"ok": text, "summaries": {"nonce":
str, "requests": [{"text", "words", "instruction"}, ...]}}``: its text holds a marker per
request, which the bot fills (`bot.ai.summaries`); the worker itself never calls a model.

and first of all, once it is ready, ``{"ready": pid}``. It exits when stdin closes.

Jobs run with `bot.expressions` and its cooperative deadline; the bot kills the worker
if a job overruns that deadline anyway. The worker limits its own address space
(``--memory``), so a memory bomb ends in a MemoryError or in the worker's death, never
in the bot's; it dumps no core, and keeps its stdout for frames (anything else that
prints goes to stderr). It gets no secrets: its environment holds only what Python
needs to import the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import struct
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from jinja2.runtime import Undefined

from bot.ai.summaries import SummaryRecorder
from bot.expressions import (
    ExpressionError,
    RenderError,
    TimeLimitError,
    compile_expression,
    compile_template,
    evaluate,
    evaluate_bool,
    render_template,
    time_limit_reason,
)

FailureKind = Literal["compile", "render", "time_limit", "crashed", "context"]
Reply = dict[str, Any]

HEADER = struct.Struct(">I")


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame's payload, or None at the end of the stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (length,) = HEADER.unpack(header)
    payload = stream.read(length)
    return payload if len(payload) == length else None


def frame(payload: bytes) -> bytes:
    """``payload`` with its length in front."""
    return HEADER.pack(len(payload)) + payload


def write_reply(stream: BinaryIO, reply: Reply) -> None:
    stream.write(frame(json.dumps(reply).encode()))
    stream.flush()


# -- one job ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _WithSummaries:
    """A template's text with the ``|summarise`` requests its markers stand for."""

    text: str
    summaries: SummaryRecorder


def _render(job: Mapping[str, Any]) -> Any:
    template = compile_template(job["source"])
    recorder = SummaryRecorder()
    text = render_template(
        template,
        job["context"],
        max_chars=job["max_chars"],
        time_limit=job["time_limit"],
        summaries=recorder,
    )
    return _WithSummaries(text, recorder) if recorder.requests else text


def _truth(job: Mapping[str, Any]) -> Any:
    expression = compile_expression(job["source"])
    return evaluate_bool(expression, job["context"], time_limit=job["time_limit"])


def _value(job: Mapping[str, Any]) -> Any:
    expression = compile_expression(job["source"])
    value = evaluate(expression, job["context"], time_limit=job["time_limit"])
    text = _as_json(value)
    if len(text) > job["max_chars"]:
        raise RenderError(f"the value is longer than {job['max_chars']} characters as JSON")
    return json.loads(text)


def _as_json(value: Any) -> str:
    """The value as JSON: Undefined is null, mappings are objects, other iterables arrays,
    anything else its text."""
    try:
        return json.dumps(value, default=_plain, ensure_ascii=False)
    except Exception as error:  # listing a lazy value (map, select) runs user code
        raise RenderError(f"the value cannot be returned as JSON ({error})") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Undefined):
        return None
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return list(value)
    return str(value)


_KINDS: Mapping[str, Callable[[Mapping[str, Any]], Any]] = {
    "template": _render,
    "condition": _truth,
    "expression": _value,
}


def _failure(reason: str, line: int | None, kind: FailureKind) -> Reply:
    return {"error": reason, "line": line, "kind": kind}


def skipped_reason(time_limit: float) -> str:
    """Why a job was not run: its source ran out of time earlier in the same batch."""
    return f"{time_limit_reason(time_limit)} (on an earlier job of this batch, so not run)"


class TimedOut:
    """The (batch, source) pairs that ran out of time, the most recent few hundred: a batch
    of 200 deliveries to one hostile template costs one time limit, not 200."""

    def __init__(self, keep: int = 256) -> None:
        self._keep = keep
        self._pairs: dict[tuple[int, str], None] = {}

    def add(self, batch: int, source: str) -> None:
        self._pairs[batch, source] = None
        if len(self._pairs) > self._keep:
            del self._pairs[next(iter(self._pairs))]

    def __contains__(self, pair: object) -> bool:
        return pair in self._pairs


def run_job(payload: bytes, timed_out: TimedOut) -> Reply:
    """Run one job frame; every failure of the user's code is an outcome, not an error."""
    try:
        job = json.loads(payload)
    except (ValueError, RecursionError, MemoryError) as error:
        return _failure(f"the job could not be read ({type(error).__name__})", None, "context")
    if not isinstance(job, dict):
        return _failure("the job is not an object", None, "context")
    batch = job.get("batch")
    if batch is not None and (batch, job["source"]) in timed_out:
        return _failure(skipped_reason(job["time_limit"]), None, "time_limit")
    reply = _run(job)
    if batch is not None and reply.get("kind") == "time_limit":
        timed_out.add(batch, job["source"])
    return reply


def _run(job: Mapping[str, Any]) -> Reply:
    try:
        value = _KINDS[job["kind"]](job)
        if isinstance(value, _WithSummaries):
            return {"ok": value.text, "summaries": value.summaries.to_json()}
        return {"ok": value}
    except TimeLimitError as error:
        return _failure(error.reason, error.line, "time_limit")
    except RenderError as error:
        return _failure(error.reason, error.line, "render")
    except ExpressionError as error:
        return _failure(error.reason, error.line, "compile")
    except Exception as error:  # compiling can fail in ways jinja does not wrap
        return _failure(f"{type(error).__name__}: {error}", None, "render")


# -- the process ------------------------------------------------------------------------------


def _limit_resources(memory_bytes: int) -> None:
    """Cap the address space (a memory bomb gets MemoryError or kills only this process)
    and dump no core when it dies."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _private_stdout() -> BinaryIO:
    """Stdout for frames only: file descriptor 1 is pointed at stderr, so that anything
    else printing (a warning, a library) cannot corrupt the stream of frames."""
    frames = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return frames


def _warm_up() -> None:
    """Import and build what the first real job would, before saying ready."""
    _run(_WARM_UP)


_WARM_UP = {
    "kind": "template",
    "source": "{% for x in xs|sort %}{{ x|upper }}{% endfor %}",
    "context": {"xs": ["b", "a"]},
    "time_limit": 5.0,
    "max_chars": 100,
}


def main(argv: list[str] | None = None) -> int:
    """Serve jobs until stdin closes."""
    parser = argparse.ArgumentParser(prog="python -m bot.usercode_worker")
    parser.add_argument("--memory", type=int, required=True, help="address space, bytes")
    options = parser.parse_args(argv)
    _limit_resources(options.memory)
    jobs = sys.stdin.buffer
    replies = _private_stdout()
    _warm_up()
    write_reply(replies, {"ready": os.getpid()})
    timed_out = TimedOut()
    while (payload := read_frame(jobs)) is not None:
        write_reply(replies, run_job(payload, timed_out))
    return 0


# -- the bot's end ----------------------------------------------------------------------------

_MAX_REPLY_BYTES = 64 << 20  # far above any result; a longer frame means a broken worker
_STDERR_TAIL = 2000


def _child_environment() -> dict[str, str]:
    """The worker's environment: what Python needs to import the bot, and no secrets
    (tokens and database URLs live in the bot's environment, and the worker runs
    untrusted code)."""
    env = {"PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    for name in ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


class WorkerDied(Exception):
    """The worker's stdout closed (it exited or was killed) before the reply came."""


class _Pipes(asyncio.SubprocessProtocol):
    """Collects the worker's frames from stdout and the tail of its stderr."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.replies: deque[Mapping[str, Any]] = deque()
        self.stdout_closed = False
        self.broken = False
        self.stderr_tail = b""
        self.exited = asyncio.get_running_loop().create_future()
        self.stderr_closed = asyncio.get_running_loop().create_future()
        self._waiter: asyncio.Future[None] | None = None

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 2:
            self.stderr_tail = (self.stderr_tail + data)[-_STDERR_TAIL:]
            return
        self._buffer += data
        self._parse()
        self._wake()

    def _parse(self) -> None:
        while len(self._buffer) >= HEADER.size and not self.broken:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > _MAX_REPLY_BYTES:
                self.broken = True
                return
            end = HEADER.size + length
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[HEADER.size : end])
            del self._buffer[:end]
            try:
                reply = json.loads(payload)
            except ValueError:
                reply = None
            if not isinstance(reply, dict):
                self.broken = True
                return
            self.replies.append(reply)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.stdout_closed = True
            self._wake()
        elif fd == 2 and not self.stderr_closed.done():
            self.stderr_closed.set_result(None)

    async def last_stderr(self, within: float) -> None:
        """Wait (at most ``within`` seconds) until stderr is read to its end: stdout may
        close, and the process be reaped, before the last words on stderr are read."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await asyncio.shield(self.stderr_closed)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def reply(self, deadline: float) -> Mapping[str, Any] | None:
        """The next reply, None once ``deadline`` (loop time) has passed without one,
        or `WorkerDied` if stdout closed first."""
        loop = asyncio.get_running_loop()
        while not self.replies:
            # A reply that arrived with the deadline still counts: it is checked first.
            if self.stdout_closed or self.broken:
                raise WorkerDied
            if loop.time() >= deadline:
                return None
            self._waiter = loop.create_future()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._waiter
        return self.replies.popleft()


@dataclass
class WorkerProcess:
    """The bot's end of one worker: send job frames, read replies, stop or kill it."""

    transport: asyncio.SubprocessTransport
    pipes: _Pipes

    @property
    def pid(self) -> int:
        return self.transport.get_pid()

    async def reply(self, deadline: float) -> Mapping[str, Any] | None:
        """The next reply; None once ``deadline`` (loop time) passed without one;
        `WorkerDied` if the worker's stdout closed first."""
        return await self.pipes.reply(deadline)

    def last_words(self) -> str:
        """The last line the worker printed to stderr (a crash, a fatal error)."""
        lines = self.pipes.stderr_tail.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "nothing printed"

    def send(self, data: bytes) -> None:
        """Queue a frame for the worker's stdin; `WorkerDied` if it is known to be gone."""
        stdin = self.transport.get_pipe_transport(0)
        if not isinstance(stdin, asyncio.WriteTransport) or stdin.is_closing():
            raise WorkerDied
        if self.pipes.stdout_closed:
            raise WorkerDied
        stdin.write(data)

    def exit_status(self) -> str:
        # Two parties may reap the worker: asyncio's child watcher, and Popen when kill()
        # polls a process that already died. Whichever came second can only guess (the
        # watcher says 255, Popen 0), so the watcher's answer counts unless it is its guess.
        code = self.transport.get_returncode()
        if code == _UNKNOWN_TO_THE_WATCHER:
            code = getattr(self.transport.get_extra_info("subprocess"), "returncode", code)
        if code is None:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    async def kill(self) -> None:
        """SIGKILL, then wait until it is reaped."""
        with contextlib.suppress(ProcessLookupError):
            self.transport.kill()
        await self._reap()

    async def stop(self, grace: float = 2.0) -> None:
        """Close stdin so that the idle worker exits; kill it after ``grace`` seconds."""
        stdin = self.transport.get_pipe_transport(0)
        if stdin is not None:
            stdin.close()
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(self.pipes.exited)
        except TimeoutError:
            await self.kill()
        await self._reap()

    async def _reap(self) -> None:
        """Wait until the process has been reaped, then close the pipes; even if
        cancelled, the transport is closed (which kills a process still running)."""
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):  # SIGKILL ends a process unless the kernel holds it
                    await asyncio.shield(self.pipes.exited)
        finally:
            self.transport.close()


_UNKNOWN_TO_THE_WATCHER = 255


class StartFailed(Exception):
    """The worker did not say it was ready; the message ends with what it printed."""


WORKER_COMMAND = (sys.executable, "-m", "bot.usercode_worker")


async def start_worker(
    command: Sequence[str], memory_bytes: int, start_timeout: float
) -> WorkerProcess:
    """A worker that has said it is ready, or `StartFailed` (or OSError from the spawn)."""
    loop = asyncio.get_running_loop()
    transport, pipes = await loop.subprocess_exec(
        _Pipes,
        *command,
        "--memory",
        str(memory_bytes),
        env=_child_environment(),
        # Its own session: a Ctrl-C in the terminal is the bot's to handle, not the
        # worker's; the bot stops its workers by closing their stdin.
        start_new_session=True,
    )
    worker = WorkerProcess(transport, pipes)
    try:
        ready = await pipes.reply(loop.time() + start_timeout)
    except WorkerDied:
        ready = None
    except BaseException:  # cancelled while starting: leave no process behind
        await worker.kill()
        raise
    if ready is None or "ready" not in ready:
        if pipes.stdout_closed:  # it died: what it printed says why
            await pipes.last_stderr(within=2.0)
        await worker.kill()
        printed = pipes.stderr_tail.decode(errors="replace").strip()
        raise StartFailed(f"the user-code worker did not start: {printed or 'no output'}")
    return worker


if __name__ == "__main__":
    raise SystemExit(main())
