"""The worker that sends stored action runs: at least once, never twice at a time.

Like the webhook processor it claims rows (``sending`` until ``claimed_until``; on
PostgreSQL rows another replica is claiming are skipped), so several replicas never
send one run at once. Up to `MAX_IN_FLIGHT` requests are in flight, each claimed as a
place frees up, so a slow target holds only its own runs, and one person's actions hold at
most `MAX_IN_FLIGHT_PER_PERSON` places (a target that never answers leaves the rest); attempts that finish together
are recorded in one transaction (`bot.batching.GroupCommit`). A run is marked done only
after the target answered; a process that dies mid-send leaves a claim that expires (its
timeout and `CLAIM_MARGIN_SECONDS` later; at once when a SQLite process starts again),
and the run is sent again with the same ``Idempotency-Key``, which lets the receiver
drop the repeat.

* 2xx: sent. A 3xx is an answer too (only GET and HEAD follow redirects), so is a 4xx
  other than 429: final, no retry.
* 5xx, 429 (its ``Retry-After`` honoured), timeouts and network errors: retried with
  backoff (`retry_delay`: 1, 2, 4, 8, 16 × ``backoff_base``; about half an hour in all
  for the default 5 retries) until the run's attempts are used up.
* Refusals (an address `CHECK_ALLOWLIST` does not open, a secret not bound to the host,
  a secret gone or no longer usable by the action's creator): final, nothing sent.

Requests go through `bot.net.SafeFetcher` with the response capped at ``max_bytes``;
secrets are resolved at the moment of sending, for the action's creator, and only for
hosts they are bound to. The outcome line, and the ``reply=`` line rendered from the
response in the user-code workers, go to the run's thread through the outbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import col, select

from bot.actions.runs import outcome_message, status_text
from bot.actions.spec import REDIRECTED_METHODS, option_pairs
from bot.audit import Actor
from bot.batching import GroupCommit
from bot.clock import Clock, sleep_or_wake
from bot.credentials.service import SecretService
from bot.db import Database
from bot.errors import UsageError
from bot.models import Action, ActionRun
from bot.net import (
    DEFAULT_MAX_BYTES,
    Credentials,
    FetchBlocked,
    FetchError,
    FetchResult,
    SafeFetcher,
)
from bot.outbox import Outbox, enqueue
from bot.usercode import TemplateJob, UserCodeRunner

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64  # requests sent at once by one process
# The places one person's actions may hold at once: a target that never answers (a
# member's own action, run again and again) must leave places for everyone else's.
MAX_IN_FLIGHT_PER_PERSON = MAX_IN_FLIGHT // 4
POLL_SECONDS = 1.0
# A claim lasts the longest timeout of the runs claimed plus this margin (to resolve the
# secrets and record the outcome): after a crash, a run is sent again that much later.
CLAIM_MARGIN_SECONDS = 15.0
DEFAULT_BACKOFF_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 3600.0
REPLY_MAX_CHARS = 2_000


def retry_delay(attempts: int, base: float = DEFAULT_BACKOFF_SECONDS) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: base, 2×, 4×, …
    capped at 16× (60 s, 2, 4, 8, 16 minutes: 31 minutes over five retries)."""
    return base * 2.0 ** min(max(attempts - 1, 0), 4)


def retry_after(headers: Any, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date), capped."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 1.0), MAX_RETRY_AFTER_SECONDS)


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to: ``sent``, ``retry`` (after ``wait`` seconds, None for the
    backoff) or ``failed`` (final)."""

    verdict: Literal["sent", "retry", "failed"]
    detail: str | None = None
    response: FetchResult | None = None
    wait: float | None = None


def judge(result: FetchResult, now: datetime) -> Attempt:
    """Sort an answer into sent, retry later, or failed for good."""
    status = result.status
    if 200 <= status < 300:
        return Attempt("sent", None, result)
    said = status_text(status)
    if status == 429:
        return Attempt("retry", said, result, retry_after(result.headers, now))
    if status >= 500:
        return Attempt(
            "retry", said, result, retry_after(result.headers, now) if status == 503 else None
        )
    if 300 <= status < 400:
        return Attempt("failed", f"{said} (redirects are followed for GET and HEAD only)", result)
    return Attempt("failed", said, result)


def response_scope(result: FetchResult) -> dict[str, Any]:
    """What a ``reply=`` template sees as ``response``: status, headers, text, and json
    (None when the body is not JSON)."""
    text = result.body.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = None
    return {
        "status": result.status,
        "headers": dict(result.headers),
        "text": text,
        "json": parsed,
    }


@dataclass(frozen=True)
class _Claimed:
    run: ActionRun
    action: Action
    until: datetime  # the claim's end: the run is recorded only while it is still held


@dataclass(frozen=True)
class _Done:
    """A finished attempt, waiting to be recorded."""

    claimed: _Claimed
    attempt: Attempt
    reply: str | None


@dataclass
class ActionSender:
    """Sends stored runs; one per process, started and stopped by the composition root."""

    db: Database
    clock: Clock
    fetcher: SafeFetcher
    secrets: SecretService
    outbox: Outbox
    usercode: UserCodeRunner
    max_bytes: int = DEFAULT_MAX_BYTES
    backoff_base: float = DEFAULT_BACKOFF_SECONDS
    on_attempt: Callable[[str], None] = lambda verdict: None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False
    _in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    _busy: Counter[str] = field(default_factory=Counter)  # places held, by action creator
    _records: GroupCommit[_Done, None] = field(init=False)

    def __post_init__(self) -> None:
        self._records = GroupCommit(self._record)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="action-sender")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def release_all_claims(self) -> None:
        """Forget claims left by a crashed process. Only safe when one process runs (SQLite)."""
        async with self.db.transaction() as session:
            await session.execute(
                sa.update(ActionRun)
                .where(col(ActionRun.status) == "sending")
                .values(status="pending", claimed_until=None)
            )

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.send_due()
            except Exception:
                log.exception("sending action runs failed; retrying")
            await sleep_or_wake(self.clock, POLL_SECONDS, self._wake)
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._records.flush()

    async def send_due(self) -> int:
        """Claim the runs that are due, as many as there are free places (when at least
        half are free), and start sending each; returns how many were claimed."""
        free = MAX_IN_FLIGHT - len(self._in_flight)
        if free < MAX_IN_FLIGHT // 2:
            return 0  # the next finished send wakes the loop again
        claimed = await self._claim(free)
        for item in claimed:
            self._busy[item.action.created_by] += 1
            task = asyncio.create_task(self._send(item))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    async def _send(self, item: _Claimed) -> None:
        """One attempt, then its record (with others finishing meanwhile, in one
        transaction). A slow target holds only its own runs, not the others'."""
        try:
            attempt = await self._attempt_safely(item)
            reply = await self._reply(item, attempt)
            try:
                await self._records.submit(_Done(item, attempt, reply))
            except Exception:  # logged by the group commit; the claim expires and it is resent
                return
        finally:
            self._busy[item.action.created_by] -= 1

    async def _claim(self, limit: int) -> list[_Claimed]:
        now = self.clock.now()
        due = sa.or_(
            sa.and_(col(ActionRun.status) == "pending", col(ActionRun.next_attempt_at) <= now),
            sa.and_(col(ActionRun.status) == "sending", col(ActionRun.claimed_until) < now),
        )
        # Each person's due runs, oldest first, numbered: at most their share is taken.
        full = [who for who, held in self._busy.items() if held >= MAX_IN_FLIGHT_PER_PERSON]
        ranked = (
            select(
                col(ActionRun.id).label("id"),
                sa.func.row_number()
                .over(partition_by=col(Action.created_by), order_by=col(ActionRun.id))
                .label("place"),
            )
            .join(Action, col(Action.id) == col(ActionRun.action_id))
            .where(due, col(Action.created_by).not_in(full))
            .subquery()
        )
        fair = select(ranked.c.id).where(ranked.c.place <= MAX_IN_FLIGHT_PER_PERSON)
        query = (
            select(ActionRun, Action)
            .join(Action, col(Action.id) == col(ActionRun.action_id))
            # `due` again: PostgreSQL re-checks it on a row another replica just claimed.
            .where(due, col(ActionRun.id).in_(fair))
            .order_by(col(ActionRun.id))
            .limit(limit)
        )
        if not self.db.is_sqlite:
            query = query.with_for_update(skip_locked=True, of=ActionRun)
        async with self.db.transaction() as session:
            found = _within_shares((await session.execute(query)).all(), self._busy)
            longest = max((run.timeout for run, _ in found), default=0.0)
            until = now + timedelta(seconds=longest + CLAIM_MARGIN_SECONDS)
            rows = [_Claimed(run, action, until) for run, action in found]
            if rows:
                await session.execute(
                    sa.update(ActionRun)
                    .where(col(ActionRun.id).in_([item.run.id for item in rows]))
                    .values(
                        status="sending",
                        claimed_until=until,
                        attempts=col(ActionRun.attempts) + 1,
                    )
                    # The rows read above are counted below, the same way on every database.
                    .execution_options(synchronize_session=False)
                )
        for item in rows:
            item.run.attempts += 1
        return rows

    async def _attempt_safely(self, item: _Claimed) -> Attempt:
        try:
            attempt = await self._attempt(item)
        except Exception as error:  # one broken run must not stop the others
            log.exception("action run %s could not be sent", item.run.id)
            attempt = Attempt("retry", f"internal error: {type(error).__name__}")
        self.on_attempt(attempt.verdict)
        return attempt

    async def _attempt(self, item: _Claimed) -> Attempt:
        run = item.run
        try:
            credentials = await self._credentials(item)
        except UsageError as error:
            return Attempt("failed", f"not sent: {error}")
        try:
            result = await self.fetcher.request(
                run.method,
                run.url,
                headers=_headers(run),
                body=run.body.encode() if run.body is not None else None,
                timeout=run.timeout,
                max_bytes=self.max_bytes,
                credentials=credentials,
                follow_redirects=run.method in REDIRECTED_METHODS,
            )
        except FetchBlocked as error:
            return Attempt("failed", f"not sent: {error.reason}")
        except FetchError as error:
            return Attempt("retry", error.reason)
        return judge(result, self.clock.now())

    async def _credentials(self, item: _Claimed) -> Credentials | None:
        refs = option_pairs(item.run.options)
        if not refs:
            return None
        # Secrets are used as the action's creator: theirs, or ones they may use.
        actor = Actor(item.action.team_id, item.action.created_by, "")
        return await self.secrets.credentials_for(actor, refs)

    async def _record(self, done: list[_Done]) -> list[None]:
        """Record finished attempts in one transaction (only runs their claim still
        holds), with the outcome lines of the runs that are over."""
        now = self.clock.now()
        said = []
        async with self.db.transaction() as session:
            for finished in done:
                item = finished.claimed
                values = self._values(item.run, finished.attempt, now)
                held = await session.execute(
                    sa.update(ActionRun)
                    .where(
                        col(ActionRun.id) == item.run.id,
                        col(ActionRun.status) == "sending",
                        col(ActionRun.claimed_until) == item.until,
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if held.rowcount != 1:  # type: ignore[attr-defined]
                    log.warning("action run %s was taken over by another process", item.run.id)
                    continue
                for key, value in values.items():
                    setattr(item.run, key, value)
                if item.run.status in ("sent", "failed"):
                    said.append(outcome_message(item.action.name, item.run, finished.reply))
            messages = [message for message in said if message is not None]
            await enqueue(session, now, *messages)
        if messages:
            self.outbox.wake()
        return [None] * len(done)

    def _values(self, run: ActionRun, attempt: Attempt, now: datetime) -> dict[str, Any]:
        """The columns an attempt changes: final (sent, failed) or pending a retry."""
        values: dict[str, Any] = {
            "detail": attempt.detail,
            "response_status": attempt.response.status if attempt.response else None,
            "elapsed_ms": attempt.response.elapsed_ms if attempt.response else None,
            "claimed_until": None,
        }
        if attempt.verdict != "retry" or run.attempts >= run.max_attempts:
            status = "sent" if attempt.verdict == "sent" else "failed"
            return values | {"status": status, "finished_at": now}
        wait = attempt.wait or retry_delay(run.attempts, self.backoff_base)
        return values | {"status": "pending", "next_attempt_at": now + timedelta(seconds=wait)}

    async def _reply(self, item: _Claimed, attempt: Attempt) -> str | None:
        """The ``reply=`` line for a sent run, rendered from the response (a failed
        template says so rather than disappearing)."""
        if not item.run.reply or attempt.response is None or attempt.verdict != "sent":
            return None
        context = {"response": response_scope(attempt.response), "action": item.action.name}
        job = TemplateJob(item.run.reply, context, max_chars=REPLY_MAX_CHARS)
        (text,) = await self.usercode.run([job])
        if isinstance(text, str):
            return text.strip() or None
        return f":warning: the reply template of *{item.action.name}* failed ({text})"


def _within_shares(found: Sequence[Any], busy: Counter[str]) -> list[tuple[ActionRun, Action]]:
    """The claimed rows that fit in their creators' places (some are held already)."""
    taken: Counter[str] = Counter()
    kept = []
    for run, action in found:
        if busy[action.created_by] + taken[action.created_by] < MAX_IN_FLIGHT_PER_PERSON:
            taken[action.created_by] += 1
            kept.append((run, action))
    return kept


def _headers(run: ActionRun) -> dict[str, str]:
    headers = dict(run.headers)
    if run.content_type is not None:
        headers["Content-Type"] = run.content_type
    headers["Idempotency-Key"] = run.idempotency_key
    return headers
