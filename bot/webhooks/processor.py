"""From a stored delivery to a queued Slack message: filter, render, thread, enqueue.

Runs from the database, never from the request: the receiver wakes it after a commit,
and at start-up it picks up whatever a crash left behind. A batch goes in three steps:

1. **claim** up to `BATCH` received deliveries (they become ``processing`` until
   ``claimed_until``) and commit;
2. **decide** each one's message outside any transaction: filters, then templates, run in
   user-code worker processes (`bot.usercode`) under a hard deadline, so user code never
   holds a transaction, the database or the event loop;
3. **record** the outcomes and queue the messages in a second short transaction, but only
   for deliveries still claimed by this batch (a claim that expired meanwhile may have
   been taken over by another replica, which then records them instead).

A claim whose holder died expires after `CLAIM_SECONDS` and is taken again. Several
replicas can run this at once on PostgreSQL; claims skip rows another is claiming.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import col, select

from bot.actions.buttons import button_row, with_buttons
from bot.actions.runs import ActionRuns, RunRequest
from bot.actions.spec import names_in
from bot.ai.labels import Label, LabelError, parse_labels
from bot.ai.notes import content_text, with_notes
from bot.ai.steps import AISteps, ToCategorise, ToSummarise
from bot.clock import Clock, sleep_or_wake
from bot.db import Database
from bot.expressions import (
    ExpressionError,
    compile_expression,
    compile_template,
    evaluate_bool,
    render_template,
)
from bot.models import Action, ActionRun, Delivery, Hook
from bot.outbox import Message, Outbox, ThreadMode, enqueue
from bot.slack import blocks as kit
from bot.usercode import ConditionJob, Failed, TemplateJob, UserCodeRunner
from bot.webhooks import presets
from bot.webhooks.delivery import BadRequest, parse_body
from bot.webhooks.event import InboundEvent, Rendered, Sender

log = logging.getLogger(__name__)

BATCH = 200
POLL_SECONDS = 1.0
PASS_QUANTUM_SECONDS = 0.005
# Longer than a batch of user code can take (each job is killed at its deadline, and a
# source that runs out of time fails its other jobs of the batch at once).
CLAIM_SECONDS = 180.0

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
    """The parts of a delivery that decide its message (a `Delivery` row or a
    `bot.webhooks.delivery.NewDelivery` has them)."""

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


def hook_log_context(hook_name: str) -> kit.Block:
    """A footnote under a hook's message saying where it came from and how to see its log."""
    name = kit.escape_mrkdwn(hook_name)
    return kit.context([f"From hook *{name}* · `/hook log {name}`"])


def to_message(delivery: StoredDelivery, hook: Hook) -> Message | Skip:
    """Decide what one delivery becomes in Slack, running its hook's filter and template
    in this process (tests and tools; the processor runs them in `bot.usercode` workers)."""
    try:
        payload = parse_body(delivery.content_type, delivery.body)
    except BadRequest as error:
        return Skip("failed", str(error))
    return message_for(delivery, payload, hook)


def message_for(delivery: StoredDelivery, payload: Any, hook: Hook) -> Message | Skip:
    """`to_message` for a delivery whose body is already parsed into ``payload``."""
    event = inbound_event(delivery, payload)
    context = template_context(event, hook)
    if hook.filter and not _passes(hook.filter, context):
        return Skip("filtered", f"filter is false: {hook.filter}")
    return assemble(delivery, hook, event, _render_in_process(hook, context))


def inbound_event(delivery: StoredDelivery, payload: Any) -> InboundEvent:
    """The verified, parsed event a stored delivery carries."""
    return InboundEvent(_as_sender(delivery.sender), delivery.event, payload, delivery.headers)


def assemble(
    delivery: StoredDelivery, hook: Hook, event: InboundEvent, template: str | Failed | None
) -> Message:
    """The message: the preset's rendering, or the hook's ``template`` output (None: the hook
    has no template; `Failed`: it failed, and the preset's message says so)."""
    rendered = presets.render(event)
    text, blocks = _with_template(hook, rendered, template)
    blocks = [*blocks[: kit.MAX_BLOCKS - 1], hook_log_context(hook.name)]
    return Message(
        channel=hook.channel_id,
        text=text,
        blocks=blocks,
        thread_key=f"hook:{hook.id}:{rendered.thread_key}" if rendered.thread_key else None,
        thread_mode=_thread_mode(hook),
        updates_root=rendered.updates_root,
        reaction=rendered.reaction,
        new_thread=rendered.new_thread,
        source=f"delivery:{delivery.id}",
    )


def needs_processing(hook: Hook) -> bool:
    """True when a hook's deliveries run user code, ask the AI step or act (so the
    processor handles them, outside the ingest transaction)."""
    return bool(
        hook.template
        or hook.filter
        or hook.run_trigger
        or hook.categorise
        or hook.summary
        or hook.actions
        or hook.buttons
        or not hook.post
    )


def fast_message(delivery: StoredDelivery, payload: Any, hook: Hook) -> Message | None:
    """The message for a just-received delivery, when its hook needs nothing special.

    Hooks with a template, a filter or a trigger to run, and paused hooks, are left to the
    processor, so user code never runs inside the ingest transaction.
    """
    if needs_processing(hook) or hook.paused:
        return None
    outcome = message_for(delivery, payload, hook)
    return outcome if isinstance(outcome, Message) else None


def template_context(
    event: InboundEvent, hook: Hook, category: Label | None = None
) -> dict[str, Any]:
    """What templates and filters can see; ``category`` is the AI's label (None when the
    hook does not categorise, AI is off, or it failed)."""
    return {
        "payload": event.payload,
        "headers": dict(event.headers),
        "event": event.event,
        "sender": event.sender,
        "hook": hook.name,
        "category": None if category is None else category.name,
    }


def hook_labels(hook: Hook) -> tuple[Label, ...]:
    """The labels a hook's deliveries are sorted into (none when it does not categorise)."""
    if not hook.categorise:
        return ()
    try:
        return parse_labels(hook.categorise)
    except LabelError:  # checked when set; a label rule changed since
        log.warning("hook %s: its categorise= labels no longer parse; not categorising", hook.name)
        return ()


def event_text(event: InboundEvent) -> str:
    """What the AI step reads of an event: the words its preset's message shows ("" if
    the preset fails: then nothing is asked, and `assemble` reports the failure)."""
    try:
        rendered = presets.render(event)
    except Exception:
        return ""
    return content_text(rendered.text, rendered.blocks)


def _passes(source: str, context: dict[str, Any]) -> bool:
    try:
        return evaluate_bool(compile_expression(source), context)
    except ExpressionError as error:
        log.warning("hook filter %r failed (%s); delivering anyway", source, error)
        return True


def _render_in_process(hook: Hook, context: dict[str, Any]) -> str | Failed | None:
    if not hook.template:
        return None
    try:
        return render_template(compile_template(hook.template), context)
    except ExpressionError as error:
        return Failed(error.reason, error.line)


def _with_template(
    hook: Hook, rendered: Rendered, template: str | Failed | None
) -> tuple[str, list[dict[str, Any]]]:
    if template is None:
        return kit.fit_message(rendered.text, rendered.blocks)
    if isinstance(template, Failed):
        return _with_warning(rendered, f"The template of hook *{hook.name}* failed ({template})")
    if not template.strip():
        return _with_warning(rendered, f"The template of hook *{hook.name}* rendered nothing")
    return kit.fit_message(template, [kit.section(template)])


def _with_warning(rendered: Rendered, problem: str) -> tuple[str, list[dict[str, Any]]]:
    """The preset's message, headed by what went wrong with the user's template."""
    warning = f":warning: {problem}; the default message follows."
    return kit.fit_message(
        f"{warning}\n{rendered.text}", [kit.context([warning]), *rendered.blocks]
    )


def _with_buttons(
    message: Message, hook: Hook, delivery: Delivery, actions: dict[str, Action]
) -> Message:
    """The message, in a thread of its own if its actions will speak there, with the
    hook's action buttons under it."""
    if hook.actions:
        message = _threaded(message, hook, delivery)
    shown = [actions[name] for name in names_in(hook.buttons) if name in actions]
    return with_buttons(message, button_row(shown, f"delivery:{delivery.id}")) if shown else message


def _requests(
    delivery: Delivery, hook: Hook, posted: Message | None, actions: dict[str, Action]
) -> list[tuple[str, RunRequest]]:
    """The runs a delivery's hook asks for (``then=``), with the delivery's template scope."""
    parsed = _parse(delivery, hook)
    if isinstance(parsed, Skip):
        return []
    names = names_in(hook.actions)
    missing = [name for name in names if name not in actions]
    if missing:
        log.warning("hook %s runs actions that no longer exist: %s", hook.name, missing)
    cause = f"hook {hook.name} (delivery {delivery.id})"
    channel = posted.channel if posted is not None else None
    key = posted.thread_key if posted is not None else None
    return [
        (delivery.id, RunRequest(actions[name], parsed.context, cause, channel, key))
        for name in names
        if name in actions
    ]


def _passed(outcome: Message | Skip) -> bool:
    """Did the delivery pass its hook's filter (posted, or acted without posting)?"""
    return isinstance(outcome, Message) or outcome.status == "acted"


def _threaded(message: Message, hook: Hook, delivery: Delivery) -> Message:
    """A message whose actions will say their outcome in its thread: one without a
    thread of its own starts one, keyed by the delivery."""
    if message.thread_key and message.thread_mode != "off":
        return message
    key = f"hook:{hook.id}:delivery:{delivery.id}"
    return replace(message, thread_key=key, thread_mode="thread", new_thread=False)


def _thread_mode(hook: Hook) -> ThreadMode:
    mode = hook.threads or default_thread_mode(hook.preset)
    return mode  # type: ignore[return-value]  # validated by /hook set


def _as_sender(value: str) -> Sender:
    return value  # type: ignore[return-value]  # written by the receiver from a Sender


_DELIVERIES: sa.Table = Delivery.__table__  # type: ignore[attr-defined]
# One cached statement run as executemany, rather than ORM bulk updates (far more CPU).
RECORD_OUTCOME = (
    sa.update(_DELIVERIES)
    .where(_DELIVERIES.c.id == sa.bindparam("delivery_id"))
    .values(
        status=sa.bindparam("new_status"), detail=sa.bindparam("new_detail"), claimed_until=None
    )
)


def _delivery_update(delivery_id: str, outcome: Message | Skip) -> dict[str, Any]:
    if isinstance(outcome, Skip):
        return {
            "delivery_id": delivery_id,
            "new_status": outcome.status,
            "new_detail": outcome.detail,
        }
    return {"delivery_id": delivery_id, "new_status": "posted", "new_detail": None}


@dataclass(frozen=True)
class _Parsed:
    """A claimed delivery whose body could be read, with what its user code sees."""

    delivery: Delivery
    hook: Hook
    event: InboundEvent
    context: dict[str, Any]
    category: Label | None = None

    def categorised(self, category: Label | None) -> _Parsed:
        """The same delivery with the AI's label in its user code's scope."""
        if category is None:
            return self
        return replace(
            self, context=template_context(self.event, self.hook, category), category=category
        )


def _parse(delivery: Delivery, hook: Hook) -> _Parsed | Skip:
    try:
        payload = parse_body(delivery.content_type, delivery.body)
    except BadRequest as error:
        return Skip("failed", str(error))
    event = inbound_event(delivery, payload)
    return _Parsed(delivery, hook, event, template_context(event, hook))


def _assemble_safely(parsed: _Parsed, template: str | Failed | None) -> Message | Skip:
    """`assemble`, except that no delivery can ever stall the ones behind it."""
    try:
        return assemble(parsed.delivery, parsed.hook, parsed.event, template)
    except Exception as error:
        log.exception(
            "delivery %s could not be processed",
            parsed.delivery.id,
            extra={"delivery_id": parsed.delivery.id},
        )
        return Skip("failed", f"internal error: {type(error).__name__}")


@dataclass(frozen=True)
class _Claimed:
    deliveries: list[tuple[Delivery, Hook]]
    until: datetime


@dataclass
class DeliveryProcessor:
    """Turns received deliveries into outbox messages, in the order they arrived."""

    db: Database
    clock: Clock
    outbox: Outbox
    usercode: UserCodeRunner
    run_trigger: Callable[[str, str], Awaitable[None]] | None = None
    ai: AISteps | None = None
    actions: ActionRuns | None = None  # what ``/hook set NAME then=ACTION`` runs
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

    async def release_all_claims(self) -> None:
        """Forget claims left by a crashed process. Only safe when one process runs (SQLite)."""
        async with self.db.transaction() as session:
            await session.execute(
                sa.update(Delivery)
                .where(col(Delivery.status) == "processing")
                .values(status="received", claimed_until=None)
            )

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                while await self.process_batch() == BATCH:
                    pass
            except Exception:
                log.exception("processing deliveries failed; retrying")
            # Under load, one pass per quantum takes everything that arrived meanwhile in
            # one batch, and leaves the event loop to the receiver in between.
            await asyncio.sleep(PASS_QUANTUM_SECONDS)
            await sleep_or_wake(self.clock, POLL_SECONDS, self._wake)

    async def process_batch(self) -> int:
        """Claim, decide and record up to `BATCH` waiting deliveries; returns how many."""
        claimed = await self._claim()
        if not claimed.deliveries:
            return 0
        outcomes = await self._decide_all(claimed.deliveries)
        outcomes, runs = await self._act(claimed.deliveries, outcomes)
        recorded = await self._record(claimed, outcomes, runs)
        self.outbox.wake()
        if runs and self.actions is not None:
            self.actions.on_stored()
        await self._run_triggers(
            [
                (hook.team_id, hook.run_trigger)
                for (delivery, hook), outcome in zip(claimed.deliveries, outcomes, strict=True)
                if hook.run_trigger and _passed(outcome) and delivery.id in recorded
            ]
        )
        return len(claimed.deliveries)

    async def _claim(self) -> _Claimed:
        now = self.clock.now()
        until = now + timedelta(seconds=CLAIM_SECONDS)
        waiting = sa.or_(
            col(Delivery.status) == "received",
            sa.and_(col(Delivery.status) == "processing", col(Delivery.claimed_until) < now),
        )
        async with self.db.transaction() as session:
            query = (
                select(Delivery, Hook)
                .join(Hook, col(Hook.id) == col(Delivery.hook_id))
                .where(waiting)
                .order_by(col(Delivery.id))
                .limit(BATCH)
            )
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True, of=Delivery)
            rows = [(delivery, hook) for delivery, hook in (await session.execute(query)).all()]
            if rows:
                await session.execute(
                    sa.update(Delivery)
                    .where(col(Delivery.id).in_([delivery.id for delivery, _ in rows]))
                    .values(status="processing", claimed_until=until)
                )
        return _Claimed(rows, until)

    async def _decide_all(self, deliveries: list[tuple[Delivery, Hook]]) -> list[Message | Skip]:
        """Each delivery's outcome, its filter and template run in user-code workers (one
        batch of filters, then one batch of templates); the event loop only waits."""
        parsed = await self._categorise([_parse(delivery, hook) for delivery, hook in deliveries])
        readable = [item for item in parsed if isinstance(item, _Parsed)]
        filtered = await self._run_filters(readable)
        passing = [item for item in readable if id(item) not in filtered]
        templates = await self._run_templates(passing)
        outcomes: list[Message | Skip] = []
        for item in parsed:
            if isinstance(item, Skip):
                outcomes.append(item)
            elif id(item) in filtered:
                outcomes.append(filtered[id(item)])
            else:
                outcomes.append(_assemble_safely(item, templates.get(id(item))))
        return await self._with_ai_notes(parsed, outcomes)

    async def _categorise(self, parsed: list[_Parsed | Skip]) -> list[_Parsed | Skip]:
        """Each delivery of a hook with ``categorise=`` gets the AI's label (before its
        filter and template run, which see it as ``category``); none when AI is off or
        fails, and the delivery goes on as it would have."""
        wanted = [
            (index, item, labels)
            for index, item in enumerate(parsed)
            if isinstance(item, _Parsed) and (labels := hook_labels(item.hook))
        ]
        if self.ai is None or not wanted:
            return parsed
        asks = [
            ToCategorise(item.hook.team_id, event_text(item.event), labels)
            for _, item, labels in wanted
        ]
        labelled = list(parsed)
        for (index, item, _), label in zip(wanted, await self.ai.categorise_all(asks), strict=True):
            labelled[index] = item.categorised(label)
        return labelled

    async def _with_ai_notes(
        self, parsed: list[_Parsed | Skip], outcomes: list[Message | Skip]
    ) -> list[Message | Skip]:
        """Messages with the AI's category line and, for hooks with ``summary=on`` and
        long content, its summary on top (none when AI is off or fails)."""
        posted = [
            (item, outcome)
            for item, outcome in zip(parsed, outcomes, strict=True)
            if isinstance(item, _Parsed) and isinstance(outcome, Message)
        ]
        summaries = await self._summaries([(item, m) for item, m in posted if item.hook.summary])
        noted = {
            id(message): with_notes(
                message, summary=summaries.get(id(message)), category=item.category
            )
            for item, message in posted
        }
        return [noted.get(id(outcome), outcome) for outcome in outcomes]

    async def _summaries(self, posted: list[tuple[_Parsed, Message]]) -> dict[int, str]:
        """The AI's summary of each long message (by ``id()``), where it wrote one."""
        if self.ai is None or not posted:
            return {}
        asks = [
            ToSummarise(item.hook.team_id, content_text(message.text, message.blocks))
            for item, message in posted
        ]
        written = await self.ai.summaries_of(asks)
        return {
            id(message): text
            for (_, message), text in zip(posted, written, strict=True)
            if text is not None
        }

    async def _run_filters(self, items: list[_Parsed]) -> dict[int, Skip]:
        """The deliveries (by ``id()``) whose hook's filter is false."""
        with_filter = [item for item in items if item.hook.filter]
        jobs = [ConditionJob(item.hook.filter or "", item.context) for item in with_filter]
        outcomes = await self.usercode.run(jobs) if jobs else []
        skipped: dict[int, Skip] = {}
        failures: dict[str, list[Failed]] = {}
        for item, outcome in zip(with_filter, outcomes, strict=True):
            if isinstance(outcome, Failed):
                failures.setdefault(item.hook.name, []).append(outcome)
            elif not outcome:
                skipped[id(item)] = Skip("filtered", f"filter is false: {item.hook.filter}")
        for name, failed in failures.items():  # one line per hook, not one per delivery
            log.warning(
                "hook %s: filter failed on %d deliveries (%s); delivered them anyway",
                name,
                len(failed),
                failed[0],
            )
        return skipped

    async def _run_templates(self, items: list[_Parsed]) -> dict[int, str | Failed]:
        """Each delivery's template output (by ``id()``), for hooks that have a template."""
        with_template = [item for item in items if item.hook.template]
        jobs = [
            TemplateJob(item.hook.template or "", item.context, team=item.hook.team_id)
            for item in with_template
        ]
        outcomes = await self.usercode.run(jobs) if jobs else []
        return {id(item): outcome for item, outcome in zip(with_template, outcomes, strict=True)}

    async def _act(
        self, deliveries: list[tuple[Delivery, Hook]], outcomes: list[Message | Skip]
    ) -> tuple[list[Message | Skip], dict[str, list[ActionRun]]]:
        """The runs of the actions (``then=``) of each delivery that passed its hook's
        filter, by delivery id; a hook with ``post=off`` says nothing in Slack, one that
        posts gets its message a thread for the actions' outcome lines."""
        acting = [
            (delivery, hook, outcome)
            for (delivery, hook), outcome in zip(deliveries, outcomes, strict=True)
            if isinstance(outcome, Message) and (hook.actions or hook.buttons or not hook.post)
        ]
        if self.actions is None or not acting:
            return outcomes, {}
        changed: dict[str, Message | Skip] = {}
        requests: list[tuple[str, RunRequest]] = []
        found: dict[tuple[str, str | None], dict[str, Action]] = {}  # the batch's lookups
        for delivery, hook, message in acting:
            for names in (hook.actions, hook.buttons):
                if (hook.team_id, names) not in found:
                    looked_up = await self.actions.named(hook.team_id, names_in(names))
                    found[(hook.team_id, names)] = looked_up
            buttons = found[(hook.team_id, hook.buttons)]
            posted = _with_buttons(message, hook, delivery, buttons) if hook.post else None
            changed[delivery.id] = posted or Skip("acted", "post=off: ran its actions only")
            requests += _requests(delivery, hook, posted, found[(hook.team_id, hook.actions)])
        runs = await self.actions.render([request for _, request in requests])
        by_delivery: dict[str, list[ActionRun]] = {}
        for (delivery_id, _), run in zip(requests, runs, strict=True):
            by_delivery.setdefault(delivery_id, []).append(run)
        kept = [changed.get(d.id, o) for (d, _), o in zip(deliveries, outcomes, strict=True)]
        return kept, by_delivery

    async def _record(
        self,
        claimed: _Claimed,
        outcomes: list[Message | Skip],
        runs: dict[str, list[ActionRun]] | None = None,
    ) -> set[str]:
        """Record the outcomes of deliveries this batch still holds; returns their ids."""
        ids = [delivery.id for delivery, _ in claimed.deliveries]
        async with self.db.transaction() as session:
            held_query = select(Delivery.id).where(
                col(Delivery.id).in_(ids),
                col(Delivery.status) == "processing",
                col(Delivery.claimed_until) == claimed.until,
            )
            if not self.db.is_sqlite:
                held_query = held_query.with_for_update()
            held = set((await session.execute(held_query)).scalars().all())
            kept = [
                (delivery, outcome)
                for (delivery, _), outcome in zip(claimed.deliveries, outcomes, strict=True)
                if delivery.id in held
            ]
            messages = [outcome for _, outcome in kept if isinstance(outcome, Message)]
            await enqueue(session, self.clock.now(), *messages)
            if runs and self.actions is not None:
                held_runs = [run for d, _ in kept for run in runs.get(d.id, [])]
                await self.actions.store(session, held_runs)
            if kept:
                await session.execute(
                    RECORD_OUTCOME, [_delivery_update(d.id, outcome) for d, outcome in kept]
                )
        if len(held) < len(ids):
            log.warning("%d deliveries were taken over by another process", len(ids) - len(held))
        return held

    async def _run_triggers(self, requests: list[tuple[str, str]]) -> None:
        """Act, not only speak: a delivery that passed its filter runs the hook's trigger."""
        if self.run_trigger is None:
            return
        for team_id, name in dict.fromkeys(requests):
            await self.run_trigger(team_id, name)
