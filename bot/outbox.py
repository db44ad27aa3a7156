"""The durable outbox: the only path from the bot to Slack.

Code that wants to say something calls `enqueue` inside its own transaction (so the
message exists exactly when the change that caused it does) and then `Outbox.wake()`.
The sender drains the table, one task per channel:

- **Order.** A channel is leased to one sender at a time (a row in ``outbox_channel``
  with an expiring lease, so several processes on one PostgreSQL share the work), and
  its messages go out oldest first; a message that must wait blocks the ones behind it.
- **Pace.** A token bucket per channel (about one message a second, short bursts) keeps
  under Slack's ``chat.postMessage`` limit; its state is stored with the lease.
- **Failures.** 429 waits for ``Retry-After`` and retries the same message; 5xx and
  network errors retry with capped exponential backoff; permanent errors mark the row
  failed with Slack's reason. ``not_in_channel`` in a public channel joins and retries once.
- **Crashes.** A row is marked sent only after Slack answered; each step of a multi-step
  message (reply, edit the thread's first message, react) is recorded as it completes,
  so a retry never repeats one. Unsent rows are sent after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import aiohttp
import sqlalchemy as sa
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select

from bot.clock import Clock, sleep_or_wake
from bot.db import Database, Executor, TextFilter, insert_ignoring_conflicts, outgoing_text_of
from bot.models import OutboxChannel, OutboxMessage, ThreadRoot

log = logging.getLogger(__name__)

ThreadMode = Literal["update+thread", "update", "thread", "off"]
THREAD_MODES: tuple[ThreadMode, ...] = ("update+thread", "update", "thread", "off")

# Slack errors worth retrying; any other error in an ok=false answer is permanent.
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
MAX_BACKOFF_SECONDS = 300.0
LEASE_SECONDS = 15.0  # longer than one Web API call may take (the client times out at 10 s)
POLL_SECONDS = 1.0
MAX_UNEXPECTED = 5  # attempts that raised something unforeseen before giving a message up
PASS_QUANTUM_SECONDS = 0.005


@dataclass(frozen=True)
class Message:
    """Something to say in Slack. ``kind`` picks the Web API method the sender uses."""

    channel: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    thread_key: str | None = None
    thread_mode: ThreadMode = "update+thread"
    updates_root: bool = False
    reaction: str | None = None
    # A new incident under a thread key that had one: a new first message, not a reply.
    new_thread: bool = False
    kind: Literal["post", "ephemeral", "update"] = "post"
    user: str | None = None
    ts: str | None = None
    source: str | None = None


async def enqueue(
    session: Executor,
    now: datetime,
    *messages: Message,
    known_channels: Collection[str] = (),
) -> int:
    """Add messages to the outbox in the caller's transaction; returns how many.

    Call `Outbox.wake` after the transaction commits. (No ids come back: asking for them
    in order makes SQLite insert row by row.) ``known_channels`` already have their
    ``outbox_channel`` row (rows are never deleted), which saves a statement.

    This is the one door for messages, so every secret's value is hidden here
    (``••••(NAME)``, see `bot.credentials.redact`) in the text and the blocks, before
    anything is stored or sent.
    """
    if not messages:
        return 0
    redact = outgoing_text_of(session)
    rows = [_row(message, now, redact) for message in messages]
    await session.execute(sa.insert(_OUTBOX), rows)
    new = dict.fromkeys(m.channel for m in messages if m.channel not in known_channels)
    await insert_ignoring_conflicts(session, OutboxChannel, [{"channel": c} for c in new])
    return len(messages)


_OUTBOX: sa.Table = OutboxMessage.__table__  # type: ignore[attr-defined]


def _row(message: Message, now: datetime, redact: TextFilter) -> dict[str, Any]:
    return {
        "channel": message.channel,
        "kind": message.kind,
        "text": redact(message.text),
        "blocks": _redacted_blocks(message.blocks, redact),
        "user": message.user,
        "ts": message.ts,
        "thread_key": message.thread_key,
        "thread_mode": message.thread_mode,
        "updates_root": message.updates_root,
        "reaction": message.reaction,
        "new_thread": message.new_thread,
        "source": message.source,
        "status": "pending",
        "attempts": 0,
        "progress": "",
        "created_at": now,
        "next_attempt_at": now,
    }


def _redacted_blocks(blocks: Any, redact: TextFilter) -> Any:
    """Every string in Block Kit JSON passed through ``redact`` (keys are Slack's own)."""
    if isinstance(blocks, str):
        return redact(blocks)
    if isinstance(blocks, list):
        return [_redacted_blocks(item, redact) for item in blocks]
    if isinstance(blocks, dict):
        return {key: _redacted_blocks(value, redact) for key, value in blocks.items()}
    return blocks


@dataclass(frozen=True)
class Pacing:
    """Per-channel send rate: ``rate`` messages a second on average, ``burst`` at once."""

    rate: float = 1.0
    burst: int = 3


@dataclass
class _Bucket:
    tokens: float
    at: datetime


@dataclass(frozen=True)
class _Sent:
    ts: str | None


@dataclass(frozen=True)
class _Retry:
    after: float | None  # None: exponential backoff
    reason: str


@dataclass(frozen=True)
class _Failed:
    reason: str


_Outcome = _Sent | _Retry | _Failed


@dataclass
class Outbox:
    """Sends queued messages to Slack; see the module docstring for the guarantees."""

    db: Database
    client: AsyncWebClient
    clock: Clock
    pacing: Pacing = field(default_factory=Pacing)
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    on_result: Callable[[str, str], None] | None = None  # (method, outcome) for metrics
    # Told about each message Slack refused for good, once it is recorded as failed.
    on_failed: Callable[[OutboxMessage, str], Awaitable[None]] | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _draining: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _loop: asyncio.Task[None] | None = None
    _stopping: bool = False
    passes: int = 0  # dispatcher passes so far (tests wait on it to see the outbox idle)

    def wake(self, *channels: str) -> None:
        """Tell the sender new messages are waiting (saves it a poll interval).

        Naming the channels lets it skip a database pass when each is already being
        drained here: a drain reads its channel's next message after every send, and
        sets the wake itself when it stops.
        """
        if channels and all(channel in self._draining for channel in channels):
            return
        self._wake.set()

    async def send(self, *messages: Message) -> None:
        """Queue messages in a transaction of their own and wake the sender.

        For replies and notices that are not part of another change; a message caused by a
        change is queued with `enqueue` in that change's transaction instead.
        """
        async with self.db.transaction() as session:
            await enqueue(session, self.clock.now(), *messages)
        self.wake(*{message.channel for message in messages})

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="outbox")

    async def stop(self) -> None:
        """Finish the messages being sent now, then stop; the rest stay queued."""
        self._stopping = True
        self._wake.set()
        if self._loop is not None:
            await self._loop
        if self._draining:
            await asyncio.gather(*self._draining.values(), return_exceptions=True)

    async def release_all_leases(self) -> None:
        """Forget leases left by a crashed process. Only safe when one process runs (SQLite)."""
        async with self.db.transaction() as session:
            await session.execute(
                sa.update(OutboxChannel).values(lease_owner=None, lease_until=None)
            )

    # The dispatcher: find channels with due messages, lease them, drain each in a task.

    @property
    def sending(self) -> int:
        """How many channels are being sent to right now."""
        return len(self._draining)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            self.passes += 1
            try:
                delay = await self._dispatch_due_channels()
            except Exception:
                log.exception("outbox dispatch failed; retrying")
                delay = POLL_SECONDS
            # Under load, wakes come faster than passes are useful: one pass per quantum
            # picks up everything that arrived meanwhile, and leaves the loop to ingest.
            await asyncio.sleep(PASS_QUANTUM_SECONDS)
            await sleep_or_wake(self.clock, delay, self._wake)

    async def _dispatch_due_channels(self) -> float:
        now = self.clock.now()
        heads = await self._pending_heads(now)
        next_due = now + timedelta(seconds=POLL_SECONDS)
        for channel, due in heads:
            if channel in self._draining:
                continue
            if due > now:
                next_due = min(next_due, due)
            elif await self._lease(channel, now):
                self._draining[channel] = asyncio.create_task(self._drain(channel))
        return (next_due - now).total_seconds()

    async def _pending_heads(self, now: datetime) -> list[tuple[str, datetime]]:
        """Each unleased channel with pending messages, and when its oldest one is due.

        One index lookup per known channel, however long the backlog is.
        """
        head_due = (
            sa.select(col(OutboxMessage.next_attempt_at))
            .where(
                col(OutboxMessage.channel) == col(OutboxChannel.channel),
                col(OutboxMessage.status) == "pending",
            )
            .order_by(col(OutboxMessage.id))
            .limit(1)
            .scalar_subquery()
        )
        free = sa.or_(
            col(OutboxChannel.lease_until).is_(None), col(OutboxChannel.lease_until) < now
        )
        async with self.db.sessions() as session:
            result = await session.execute(
                sa.select(col(OutboxChannel.channel), head_due).where(free)
            )
            return [(channel, due) for channel, due in result.all() if due is not None]

    async def _lease(self, channel: str, now: datetime) -> bool:
        until = now + timedelta(seconds=LEASE_SECONDS)
        async with self.db.transaction() as session:
            claimed = await session.execute(
                sa.update(OutboxChannel)
                .where(
                    col(OutboxChannel.channel) == channel,
                    sa.or_(
                        col(OutboxChannel.lease_until).is_(None),
                        col(OutboxChannel.lease_until) < now,
                        col(OutboxChannel.lease_owner) == self.owner,
                    ),
                )
                .values(lease_owner=self.owner, lease_until=until)
                .returning(col(OutboxChannel.tokens), col(OutboxChannel.tokens_at))
            )
            row = claimed.first()
        if row is None:
            return False
        tokens, tokens_at = row
        self._buckets[channel] = _Bucket(
            float(self.pacing.burst) if tokens_at is None else tokens, tokens_at or now
        )
        return True

    async def _release(self, channel: str) -> None:
        bucket = self._buckets.pop(channel, None)
        values: dict[str, Any] = {"lease_owner": None, "lease_until": None}
        if bucket is not None:
            values |= {"tokens": bucket.tokens, "tokens_at": bucket.at}
        async with self.db.transaction() as session:
            await session.execute(
                sa.update(OutboxChannel)
                .where(
                    col(OutboxChannel.channel) == channel,
                    col(OutboxChannel.lease_owner) == self.owner,
                )
                .values(**values)
            )

    # One channel: send its messages in order until none is due.

    async def _drain(self, channel: str) -> None:
        try:
            while not self._stopping:
                message = await self._head_of(channel)
                if message is None or message.next_attempt_at > self.clock.now():
                    break
                await self._take_token(channel)
                outcome = await self._deliver_safely(message)
                await self._record(message, outcome)
                if isinstance(outcome, _Failed):
                    await self._tell_failed(message, outcome.reason)
                if isinstance(outcome, _Retry):
                    break
        except Exception:
            log.exception("outbox: sending to %s failed unexpectedly", channel)
        finally:
            try:
                await self._release(channel)
            finally:
                self._draining.pop(channel, None)
                self._wake.set()

    async def _head_of(self, channel: str) -> OutboxMessage | None:
        async with self.db.sessions() as session:
            result = await session.execute(
                select(OutboxMessage)
                .where(
                    col(OutboxMessage.channel) == channel, col(OutboxMessage.status) == "pending"
                )
                .order_by(col(OutboxMessage.id))
                .limit(1)
            )
            return result.scalars().first()

    async def _take_token(self, channel: str) -> None:
        bucket = self._buckets[channel]
        while True:
            now = self.clock.now()
            elapsed = (now - bucket.at).total_seconds()
            bucket.tokens = min(
                float(self.pacing.burst), bucket.tokens + elapsed * self.pacing.rate
            )
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            await self.clock.sleep((1.0 - bucket.tokens) / self.pacing.rate)

    # Delivering one message: the Web API calls, and what their answers mean.

    async def _deliver_safely(self, message: OutboxMessage) -> _Outcome:
        """`_deliver`, with a bug's exception retried a few times, then recorded as failed,
        so one broken message can never hold up its channel for good."""
        try:
            return await self._deliver(message)
        except Exception as error:
            log.exception("outbox: message %s failed unexpectedly", message.id)
            reason = f"unexpected error: {type(error).__name__}"
            return (
                _Failed(reason) if message.attempts + 1 >= MAX_UNEXPECTED else _Retry(None, reason)
            )

    async def _deliver(self, message: OutboxMessage) -> _Outcome:
        steps: dict[str, Callable[[OutboxMessage], Awaitable[_Outcome]]] = {
            "post": self._deliver_post,
            "ephemeral": self._deliver_ephemeral,
            "update": self._deliver_update,
        }
        outcome = await steps[message.kind](message)
        if isinstance(outcome, _Failed) and outcome.reason == "not_in_channel":
            return await self._join_and_retry(message)
        return outcome

    async def _deliver_ephemeral(self, message: OutboxMessage) -> _Outcome:
        return await self._call(
            "chat_postEphemeral",
            channel=message.channel,
            user=message.user,
            text=message.text,
            blocks=message.blocks,
        )

    async def _deliver_update(self, message: OutboxMessage) -> _Outcome:
        return await self._call(
            "chat_update",
            channel=message.channel,
            ts=message.ts,
            text=message.text,
            blocks=message.blocks or [],
        )

    async def _deliver_post(self, message: OutboxMessage) -> _Outcome:
        root = await self._thread_root(message)
        if root is None:
            outcome = await self._post(message, thread_ts=None)
            if isinstance(outcome, _Sent) and message.thread_key and message.thread_mode != "off":
                await self._save_thread_root(message, outcome.ts)
            return outcome
        return await self._follow_up(message, root)

    async def _follow_up(self, message: OutboxMessage, root_ts: str) -> _Outcome:
        """Reply in the thread and/or edit its first message, as the thread mode says."""
        mode = message.thread_mode
        steps: list[tuple[str, Callable[[], Awaitable[_Outcome]]]] = []
        if mode in ("thread", "update+thread"):
            steps.append(("reply", lambda: self._post(message, thread_ts=root_ts)))
        if mode == "update" or (mode == "update+thread" and message.updates_root):
            steps.append(("edit", lambda: self._edit_root(message, root_ts)))
            if message.reaction:
                steps.append(("react", lambda: self._react(message, root_ts)))
        sent: _Outcome = _Sent(ts=root_ts)
        for name, step in steps:
            if name in message.progress.split(","):
                continue
            sent = await step()
            if not isinstance(sent, _Sent):
                return sent
            await self._note_progress(message, name)
        return sent

    async def _post(self, message: OutboxMessage, *, thread_ts: str | None) -> _Outcome:
        return await self._call(
            "chat_postMessage",
            channel=message.channel,
            text=message.text,
            blocks=message.blocks,
            thread_ts=thread_ts,
            unfurl_links=False,
        )

    async def _edit_root(self, message: OutboxMessage, root_ts: str) -> _Outcome:
        outcome = await self._call(
            "chat_update",
            channel=message.channel,
            ts=root_ts,
            text=message.text,
            blocks=message.blocks or [],
        )
        return _Sent(root_ts) if isinstance(outcome, _Sent) else outcome

    async def _react(self, message: OutboxMessage, root_ts: str) -> _Outcome:
        outcome = await self._call(
            "reactions_add", channel=message.channel, timestamp=root_ts, name=message.reaction
        )
        if isinstance(outcome, _Failed) and outcome.reason == "already_reacted":
            return _Sent(root_ts)
        return outcome

    async def _join_and_retry(self, message: OutboxMessage) -> _Outcome:
        if "joined" in message.progress.split(","):
            return _Failed("not_in_channel")
        info = await self._call_raw("conversations_info", channel=message.channel)
        if not isinstance(info, dict):
            return info
        if info.get("channel", {}).get("is_private"):
            return _Failed("not_in_channel: the channel is private; invite the bot with /invite")
        joined = await self._call("conversations_join", channel=message.channel)
        if not isinstance(joined, _Sent):
            return joined
        await self._note_progress(message, "joined")
        return await self._deliver(message)

    async def _call(self, method: str, **kwargs: Any) -> _Outcome:
        answer = await self._call_raw(method, **kwargs)
        if isinstance(answer, dict):
            return _Sent(ts=answer.get("ts"))
        return answer

    async def _call_raw(self, method: str, **kwargs: Any) -> dict[str, Any] | _Retry | _Failed:
        """Call one Web API method; sort any failure into retry-later or give-up."""
        arguments = {key: value for key, value in kwargs.items() if value is not None}
        try:
            response = await getattr(self.client, method)(**arguments)
        except SlackApiError as error:
            outcome = classify_slack_error(error)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            outcome = _Retry(None, f"network error: {type(error).__name__}")
        else:
            self._count(method, "ok")
            return dict(response.data) if isinstance(response.data, dict) else {}
        self._count(
            method,
            "ratelimited"
            if isinstance(outcome, _Retry) and outcome.after
            else "retry"
            if isinstance(outcome, _Retry)
            else "error",
        )
        return outcome

    def _count(self, method: str, outcome: str) -> None:
        if self.on_result is not None:
            self.on_result(method, outcome)

    # Bookkeeping in the database.

    async def _thread_root(self, message: OutboxMessage) -> str | None:
        if not message.thread_key or message.thread_mode == "off" or message.new_thread:
            return None
        async with self.db.sessions() as session:
            root = await session.get(ThreadRoot, (message.channel, message.thread_key))
            return root.ts if root else None

    async def _save_thread_root(self, message: OutboxMessage, ts: str | None) -> None:
        if ts is None or message.thread_key is None:
            return
        async with self.db.transaction() as session:
            row = {
                "channel": message.channel,
                "thread_key": message.thread_key,
                "ts": ts,
                "created_at": self.clock.now(),
            }
            if message.new_thread:  # the key's later events belong to this new first message
                await session.execute(
                    sa.delete(ThreadRoot).where(
                        col(ThreadRoot.channel) == message.channel,
                        col(ThreadRoot.thread_key) == message.thread_key,
                    )
                )
            await insert_ignoring_conflicts(session, ThreadRoot, [row])

    async def _note_progress(self, message: OutboxMessage, step: str) -> None:
        message.progress = ",".join(filter(None, [message.progress, step]))
        async with self.db.transaction() as session:
            await session.execute(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == message.id)
                .values(progress=message.progress)
            )

    async def _record(self, message: OutboxMessage, outcome: _Outcome) -> None:
        now = self.clock.now()
        values: dict[str, Any] = {"attempts": message.attempts + 1}
        if isinstance(outcome, _Sent):
            values |= {"status": "sent", "sent_at": now, "last_error": None}
            if message.kind == "post" and outcome.ts:
                values["ts"] = outcome.ts
        elif isinstance(outcome, _Failed):
            values |= {"status": "failed", "last_error": outcome.reason}
            log.warning(
                "outbox: message %s to %s failed: %s", message.id, message.channel, outcome.reason
            )
        else:
            delay = outcome.after if outcome.after is not None else backoff(message.attempts)
            values |= {
                "next_attempt_at": now + timedelta(seconds=delay),
                "last_error": outcome.reason,
            }
        async with self.db.transaction() as session:
            await session.execute(
                sa.update(OutboxMessage).where(col(OutboxMessage.id) == message.id).values(**values)
            )
            await session.execute(
                sa.update(OutboxChannel)
                .where(
                    col(OutboxChannel.channel) == message.channel,
                    col(OutboxChannel.lease_owner) == self.owner,
                )
                .values(lease_until=now + timedelta(seconds=LEASE_SECONDS))
            )

    async def _tell_failed(self, message: OutboxMessage, reason: str) -> None:
        if self.on_failed is None:
            return
        try:
            await self.on_failed(message, reason)
        except Exception:  # a notice must never stop the channel's other messages
            log.exception("outbox: reporting the failure of message %s failed", message.id)


def backoff(attempts: int) -> float:
    """Seconds to wait before retry number ``attempts + 1``: 1, 2, 4, … capped at 5 minutes."""
    return min(MAX_BACKOFF_SECONDS, 2.0 ** min(attempts, 16))


def classify_slack_error(error: SlackApiError) -> _Retry | _Failed:
    """Turn a Web API failure into "retry after N s", "retry with backoff" or "give up"."""
    response = error.response
    status = response.status_code
    if status == 429:
        return _Retry(_retry_after(response.headers), "rate limited (429)")
    if status >= 500:
        return _Retry(None, f"Slack answered HTTP {status}")
    data = response.data if isinstance(response.data, dict) else {}
    reason = str(data.get("error") or f"HTTP {status}")
    if reason in TRANSIENT_ERRORS:
        return _Retry(_retry_after(response.headers) if reason == "ratelimited" else None, reason)
    return _Failed(reason)


def _retry_after(headers: Any) -> float:
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name) if headers else None
        if value is not None:
            try:
                return max(1.0, float(value if isinstance(value, str) else value[0]))
            except (TypeError, ValueError):
                break
    return 1.0
