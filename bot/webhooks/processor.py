"""From a stored delivery to a queued Slack message: filter, render, thread, enqueue.

Runs from the database, never from the request: the receiver wakes it after a commit,
and at start-up it picks up whatever a crash left behind. Several replicas can run it
at once on PostgreSQL; each batch of deliveries is claimed with SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import col, select

from bot.clock import Clock, sleep_or_wake
from bot.db import Database
from bot.expressions import (
    ExpressionError,
    compile_expression,
    compile_template,
    evaluate_bool,
    render_template,
)
from bot.models import Delivery, Hook
from bot.outbox import Message, Outbox, ThreadMode, enqueue
from bot.slack import blocks as kit
from bot.slack.views import hook_log_context
from bot.webhooks import presets
from bot.webhooks.event import InboundEvent, Rendered, Sender
from bot.webhooks.receiver import BadRequest, parse_body

log = logging.getLogger(__name__)

BATCH = 200
POLL_SECONDS = 1.0
PASS_QUANTUM_SECONDS = 0.005

# Threads by default for senders whose events form stories (a PR, an alert group);
# a generic sender's events are unrelated unless the user says otherwise.
DEFAULT_THREADS: dict[str, ThreadMode] = {"generic": "off"}


def default_thread_mode(preset: str) -> ThreadMode:
    return DEFAULT_THREADS.get(preset, "update+thread")


@dataclass(frozen=True)
class Skip:
    """The delivery produces no message; ``status`` and ``detail`` go into the hook's log."""

    status: str
    detail: str


class StoredDelivery(Protocol):
    """The parts of a delivery that decide its message (a `Delivery` row has them)."""

    @property
    def id(self) -> str: ...
    @property
    def sender(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def body(self) -> bytes: ...


@dataclass(frozen=True)
class FreshDelivery:
    """A delivery row as the receiver built it, before it is read back as a `Delivery`."""

    id: str
    sender: str
    event: str
    content_type: str
    headers: dict[str, str]
    body: bytes


def to_message(delivery: StoredDelivery, hook: Hook) -> Message | Skip:
    """Decide what one delivery becomes in Slack. Pure: no I/O, no clock."""
    try:
        payload = parse_body(delivery.content_type, delivery.body)
    except BadRequest as error:
        return Skip("failed", str(error))
    return message_for(delivery, payload, hook)


def message_for(delivery: StoredDelivery, payload: Any, hook: Hook) -> Message | Skip:
    """`to_message` for a delivery whose body is already parsed into ``payload``."""
    event = InboundEvent(_as_sender(delivery.sender), delivery.event, payload, delivery.headers)
    context = template_context(event, hook)
    if hook.filter and not _passes(hook.filter, context):
        return Skip("filtered", f"filter is false: {hook.filter}")
    rendered = presets.render(event)
    text, blocks = _apply_template(hook, rendered, context)
    blocks = [*blocks[: kit.MAX_BLOCKS - 1], hook_log_context(hook.name)]
    return Message(
        channel=hook.channel_id,
        text=text,
        blocks=blocks,
        thread_key=f"hook:{hook.id}:{rendered.thread_key}" if rendered.thread_key else None,
        thread_mode=_thread_mode(hook),
        updates_root=rendered.updates_root,
        reaction=rendered.reaction,
        source=f"delivery:{delivery.id}",
    )


_DELIVERIES: sa.Table = Delivery.__table__  # type: ignore[attr-defined]
# One cached statement run as executemany, rather than ORM bulk updates (far more CPU).
RECORD_OUTCOME = (
    sa.update(_DELIVERIES)
    .where(_DELIVERIES.c.id == sa.bindparam("delivery_id"))
    .values(status=sa.bindparam("new_status"), detail=sa.bindparam("new_detail"))
)


def _delivery_update(delivery_id: str, outcome: Message | Skip) -> dict[str, Any]:
    if isinstance(outcome, Skip):
        return {
            "delivery_id": delivery_id,
            "new_status": outcome.status,
            "new_detail": outcome.detail,
        }
    return {"delivery_id": delivery_id, "new_status": "posted", "new_detail": None}


def _decide(delivery: Delivery, hook: Hook) -> Message | Skip:
    """`to_message`, except that no delivery can ever stall the ones behind it."""
    try:
        return to_message(delivery, hook)
    except Exception as error:
        log.exception(
            "delivery %s could not be processed", delivery.id, extra={"delivery_id": delivery.id}
        )
        return Skip("failed", f"internal error: {type(error).__name__}")


def fast_message(row: dict[str, Any], payload: Any, hook: Hook) -> Message | None:
    """The message for a just-received delivery, when its hook needs nothing special.

    Hooks with a template, a filter or a trigger to run, and paused hooks, are left to the
    processor, so user code never runs inside the ingest transaction.
    """
    if hook.template or hook.filter or hook.run_trigger or row["status"] != "received":
        return None
    fresh = FreshDelivery(
        row["id"], row["sender"], row["event"], row["content_type"], row["headers"], row["body"]
    )
    outcome = message_for(fresh, payload, hook)
    return outcome if isinstance(outcome, Message) else None


def template_context(event: InboundEvent, hook: Hook) -> dict[str, Any]:
    """What templates and filters can see."""
    return {
        "payload": event.payload,
        "headers": dict(event.headers),
        "event": event.event,
        "sender": event.sender,
        "hook": hook.name,
    }


def _passes(source: str, context: dict[str, Any]) -> bool:
    try:
        return evaluate_bool(compile_expression(source), context)
    except ExpressionError as error:
        log.warning("hook filter %r failed (%s); delivering anyway", source, error)
        return True


def _apply_template(
    hook: Hook, rendered: Rendered, context: dict[str, Any]
) -> tuple[str, list[dict[str, Any]]]:
    if not hook.template:
        return kit.fit_message(rendered.text, rendered.blocks)
    try:
        text = render_template(compile_template(hook.template), context)
    except ExpressionError as error:
        return _with_warning(rendered, f"The template of hook *{hook.name}* failed ({error})")
    if not text.strip():
        return _with_warning(rendered, f"The template of hook *{hook.name}* rendered nothing")
    return kit.fit_message(text, [kit.section(text)])


def _with_warning(rendered: Rendered, problem: str) -> tuple[str, list[dict[str, Any]]]:
    """The preset's message, headed by what went wrong with the user's template."""
    warning = f":warning: {problem}; the default message follows."
    return kit.fit_message(
        f"{warning}\n{rendered.text}", [kit.context([warning]), *rendered.blocks]
    )


def _thread_mode(hook: Hook) -> ThreadMode:
    mode = hook.threads or default_thread_mode(hook.preset)
    return mode  # type: ignore[return-value]  # validated by /hook set


def _as_sender(value: str) -> Sender:
    return value  # type: ignore[return-value]  # written by the receiver from a Sender


@dataclass
class DeliveryProcessor:
    """Turns received deliveries into outbox messages, in the order they arrived."""

    db: Database
    clock: Clock
    outbox: Outbox
    run_trigger: Callable[[str, str], Awaitable[None]] | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="deliveries")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                while await self.process_batch() == BATCH:
                    pass
            except Exception:
                log.exception("processing deliveries failed; retrying")
            # Under load, one pass per quantum takes everything that arrived meanwhile in
            # one transaction, and leaves the event loop to the receiver in between.
            await asyncio.sleep(PASS_QUANTUM_SECONDS)
            await sleep_or_wake(self.clock, POLL_SECONDS, self._wake)

    async def process_batch(self) -> int:
        """Handle up to `BATCH` waiting deliveries in one transaction; returns how many."""
        async with self.db.transaction() as session:
            query = (
                select(Delivery, Hook)
                .join(Hook, col(Hook.id) == col(Delivery.hook_id))
                .where(col(Delivery.status) == "received")
                .order_by(col(Delivery.id))
                .limit(BATCH)
            )
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True, of=Delivery)
            rows = (await session.execute(query)).all()
            if not rows:
                return 0
            outcomes = [(delivery, hook, _decide(delivery, hook)) for delivery, hook in rows]
            messages = [outcome for _, _, outcome in outcomes if isinstance(outcome, Message)]
            await enqueue(session, self.clock.now(), *messages)
            updates = [_delivery_update(d.id, outcome) for d, _, outcome in outcomes]
            await session.execute(RECORD_OUTCOME, updates)
        self.outbox.wake()
        await self._run_triggers(
            [
                (hook.team_id, hook.run_trigger)
                for _, hook, outcome in outcomes
                if hook.run_trigger and isinstance(outcome, Message)
            ]
        )
        return len(rows)

    async def _run_triggers(self, requests: list[tuple[str, str]]) -> None:
        """Act, not only speak: a delivery that passed its filter runs the hook's trigger."""
        if self.run_trigger is None:
            return
        for team_id, name in dict.fromkeys(requests):
            await self.run_trigger(team_id, name)
