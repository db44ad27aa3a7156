"""A run of an action becomes a stored row before anything is sent.

Whatever causes a run (a hook's delivery, a trigger's result, a person, a button) hands
`ActionRuns` a `RunRequest`: the action, what its body template sees, why it runs and
where its outcome line goes. The body is rendered in the user-code workers (never on the
event loop), then the run is stored: ``pending`` for the sender (`bot.actions.sender`),
or ``failed`` with the reason when the template failed, in which case nothing is ever
sent and the outcome line says why. Callers that already hold a transaction (the webhook
processor records its deliveries' runs with their outcomes) use `render` then `store`;
others call `start`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.actions.spec import CONTENT_TYPES, BodyError, body_kind_of, encode_body
from bot.clock import Clock
from bot.db import Database
from bot.models import Action, ActionRun, AuditEntry
from bot.outbox import Message, enqueue
from bot.usercode import Failed, TemplateJob, UserCodeRunner

# The longest body a template may render (bytes of text): requests, not documents.
MAX_BODY_CHARS = 100_000


@dataclass(frozen=True)
class RunRequest:
    """An action to run: what its templates see (``context``), why it runs (``cause``,
    shown in ``/action log``), and the Slack thread its outcome line goes to (if any)."""

    action: Action
    context: dict[str, Any]
    cause: str
    thread_channel: str | None = None
    thread_key: str | None = None


def new_run(request: RunRequest, now: datetime, body: str | Failed | BodyError | None) -> ActionRun:
    """The stored run for ``request``: pending with its rendered ``body``, or failed
    with the reason when the body could not be made (nothing will be sent)."""
    action = request.action
    run = ActionRun(
        action_id=_id(action),
        team_id=action.team_id,
        cause=request.cause,
        idempotency_key=str(uuid.uuid4()),
        method=action.method,
        url=action.url,
        options=dict(action.options),
        timeout=action.timeout,
        max_attempts=action.retries + 1,
        reply=action.reply,
        thread_channel=request.thread_channel,
        thread_key=request.thread_key,
        next_attempt_at=now,
        created_at=now,
    )
    if isinstance(body, Failed | BodyError):
        run.status = "failed"
        run.detail = f"not sent: the body template failed ({body})"
        run.finished_at = now
    elif action.paused:
        run.status = "failed"
        run.detail = "not sent: the action is paused"
        run.finished_at = now
    elif body is not None:
        run.body = body
        run.content_type = CONTENT_TYPES[action.body_kind]
    return run


def outcome_line(action_name: str, run: ActionRun) -> str:
    """The line said in the thread: ``→ crm: 201 Created, 140 ms``,
    ``→ crm: failed after 6 attempts: 503 Service Unavailable``, ``→ crm: not sent: …``."""
    if run.status == "sent":
        took = f", {run.elapsed_ms:.0f} ms" if run.elapsed_ms is not None else ""
        return f"→ {action_name}: {status_text(run.response_status)}{took}"
    detail = run.detail or "failed"
    if detail.startswith("not sent"):
        return f"→ {action_name}: {detail}"
    attempts = f" after {run.attempts} attempts" if run.attempts > 1 else ""
    return f"→ {action_name}: failed{attempts}: {detail}"


def status_text(status: int | None) -> str:
    """``201 Created`` (the code alone for one HTTP does not name)."""
    if status is None:
        return "no answer"
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def outcome_message(action_name: str, run: ActionRun, extra: str | None = None) -> Message | None:
    """The outcome line (and the ``reply=`` line, ``extra``) in the run's thread; None
    for a run that has no thread."""
    if run.thread_channel is None:
        return None
    text = outcome_line(action_name, run) + (f"\n{extra}" if extra else "")
    return Message(
        channel=run.thread_channel,
        text=text,
        thread_key=run.thread_key,
        thread_mode="thread" if run.thread_key else "off",
        source=f"action_run:{run.id}",
    )


@dataclass
class ActionRuns:
    """Renders and stores runs; ``on_stored`` wakes the sender after they are committed."""

    db: Database
    clock: Clock
    usercode: UserCodeRunner
    on_stored: Callable[[], None] = lambda: None
    _names: dict[int, str] = field(default_factory=dict)  # action id → name, for outcome lines

    async def named(self, team_id: str, names: Iterable[str]) -> dict[str, Action]:
        """The workspace's actions with these names (those that exist)."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Action).where(col(Action.team_id) == team_id, col(Action.name).in_(wanted))
            )
            return {action.name: action for action in rows.scalars().all()}

    async def render(self, requests: Sequence[RunRequest]) -> list[ActionRun]:
        """Each request's run, its body rendered in the user-code workers."""
        with_body = [r for r in requests if r.action.body]
        jobs = [
            TemplateJob(r.action.body or "", r.context, max_chars=MAX_BODY_CHARS) for r in with_body
        ]
        rendered = dict(
            zip(map(id, with_body), await self.usercode.run(jobs) if jobs else [], strict=True)
        )
        now = self.clock.now()
        self._names.update({_id(r.action): r.action.name for r in requests})
        return [new_run(r, now, _body(r.action.body_kind, rendered.get(id(r)))) for r in requests]

    async def store(self, session: AsyncSession, runs: Sequence[ActionRun]) -> None:
        """Add ``runs`` (from `render`) in the caller's transaction, with the outcome
        line of those that failed before sending."""
        for run in runs:
            session.add(run)
        if not runs:
            return
        await session.flush()
        said = [
            outcome_message(self._names.get(run.action_id, "action"), run)
            for run in runs
            if run.status == "failed"
        ]
        await enqueue(session, self.clock.now(), *[m for m in said if m is not None])

    async def start(
        self, requests: Sequence[RunRequest], *, audit: Sequence[AuditEntry] = ()
    ) -> list[ActionRun]:
        """Render, store (with ``audit``, who ran them by hand) and hand ``requests`` to
        the sender; returns the stored runs."""
        runs = await self.render(requests)
        async with self.db.transaction() as session:
            session.add_all(audit)
            await self.store(session, runs)
        self.on_stored()
        return runs


def _body(kind: str, rendered: str | Failed | None) -> str | Failed | BodyError | None:
    if rendered is None or isinstance(rendered, Failed):
        return rendered
    try:
        return encode_body(rendered, body_kind_of(kind))
    except BodyError as error:
        return error


def _id(action: Action) -> int:
    assert action.id is not None
    return action.id
