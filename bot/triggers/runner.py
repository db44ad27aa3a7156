"""One run of a trigger: claim → check → decide → save (state, history, messages) together.

A run claims ``(trigger id, scheduled time)`` in ``trigger_run`` first, so it can never
happen twice; then it checks (outside any transaction), decides what is worth saying
(`bot.triggers.evaluate`), and in one transaction saves the new state, the run, the next
run time and the messages. Claims and saves of runs that finish together share one
transaction each (`bot.batching.GroupCommit`). Scheduling the next run is the caller's
business (`bot.triggers.scheduling`): the result says when it is.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import col, select

from bot.actions.buttons import trigger_buttons, with_buttons
from bot.actions.runs import ActionRuns
from bot.actions.spec import names_in
from bot.ai.steps import AISteps
from bot.batching import GroupCommit
from bot.clock import Clock
from bot.db import Database, insert_skipping_conflicts
from bot.glance import Drawing
from bot.models import Trigger, TriggerRun
from bot.net import DEFAULT_MAX_BYTES
from bot.outbox import Outbox, enqueue
from bot.tasks import BackgroundTasks
from bot.triggers import checks, email
from bot.triggers.acting import Seen, trigger_requests
from bot.triggers.ai_notes import NO_NOTES, ItemNotes, noted, notes_for
from bot.triggers.conditions import to_expression
from bot.triggers.digest import digest
from bot.triggers.evaluate import (
    Announcement,
    Policy,
    TriggerState,
    decide,
    decide_feed,
    state_from_dict,
)
from bot.triggers.grammar import parse_duration
from bot.triggers.messages import announcement_message, opens_incident, post_message, recovers
from bot.triggers.observation import Observation
from bot.triggers.reporting import ScanItem
from bot.triggers.reports import ReportObservation, Reports
from bot.triggers.rollups import add_runs, drawings_in
from bot.triggers.schedule import IntervalSchedule, Schedule, schedule_from_dict
from bot.usercode import ConditionJob, Failed, UserCodeRunner

log = logging.getLogger(__name__)

# A run this late is reported as missed rather than run (see `bot.triggers.scheduling`).
GRACE = timedelta(minutes=5)
STALE_CLAIM_MARGIN = timedelta(seconds=10)
HISTORY_KEPT = 200
# Pruning history is a DELETE with a subquery; doing it on one run in 20 keeps the table
# within about 10% of HISTORY_KEPT per trigger at a twentieth of the cost.
PRUNE_CHANCE = 0.05


@dataclass(frozen=True)
class RunResult:
    """What one run saw and said. ``trigger`` is the row as it stands after the run
    (its ``next_run_at`` is the next run), for the scheduler."""

    trigger: Trigger
    outcome: str
    summary: str
    announcements: list[Announcement]


@dataclass(frozen=True)
class NotRun:
    """Why a run did not happen: the run is claimed already (or its trigger is gone), or
    the trigger is paused."""

    reason: Literal["claimed", "paused"]


@dataclass(frozen=True)
class _Claim:
    trigger_id: int
    scheduled_for: datetime
    now: datetime


@dataclass(frozen=True)
class _Outcome:
    trigger: Trigger
    scheduled_for: datetime
    observation: Observation
    duration_ms: float
    state: TriggerState
    announcements: list[Announcement]
    next_run: datetime | None
    notes: Sequence[ItemNotes] = ()  # the AI's, per announcement (bot.triggers.ai_notes)


@dataclass(frozen=True)
class _Saved:
    """What saving a run decided: the trigger's incident number after it, and the new
    items of a scan (where ``then=ACTION on=item`` finds what to act on)."""

    incident: int
    new_items: Sequence[ScanItem] = ()


_TRIGGERS: sa.Table = Trigger.__table__  # type: ignore[attr-defined]
_RUNS: sa.Table = TriggerRun.__table__  # type: ignore[attr-defined]
# Cached statements run as executemany: one round trip for a whole round of runs.
UPDATE_TRIGGER = (
    sa.update(_TRIGGERS)
    .where(_TRIGGERS.c.id == sa.bindparam("t_id"))
    .values(
        state=sa.bindparam("t_state"),
        last_run_at=sa.bindparam("t_last"),
        next_run_at=sa.bindparam("t_next"),
        incident=sa.bindparam("t_incident"),
    )
)
UPDATE_RUN = (
    sa.update(_RUNS)
    .where(
        _RUNS.c.trigger_id == sa.bindparam("r_trigger"),
        _RUNS.c.scheduled_for == sa.bindparam("r_when"),
    )
    .values(
        duration_ms=sa.bindparam("r_ms"),
        outcome=sa.bindparam("r_outcome"),
        summary=sa.bindparam("r_summary"),
    )
)


def _claim_statement(db: Database) -> Any:
    return insert_skipping_conflicts(_RUNS, db.dialect).returning(
        _RUNS.c.trigger_id, _RUNS.c.scheduled_for
    )


def policy_of(trigger: Trigger) -> Policy:
    """The noise-control settings a trigger's options ask for."""
    options = trigger.options
    repeat = options.get("repeat")
    return Policy(
        retries=int(options.get("retries", 1)),
        recover=int(options.get("recover", 1)),
        repeat=parse_duration(repeat) if repeat else None,
        max_repeats=int(options["max"]) if "max" in options else None,
        feed_latest_on_first_run=int(options.get("latest", 0)),
    )


def _anchor(
    trigger: Trigger, schedule: Schedule, scheduled_for: datetime, checked_at: datetime
) -> datetime:
    """What an interval schedule counts the next run from: the run's scheduled time, so
    late runs do not drift, except for the run a new check makes at once. That one is
    scheduled at the moment of creation, and its check starts only once the creation is
    written; counting from the check itself keeps the first interval as long as the others."""
    made_at_creation = trigger.last_run_at is None and scheduled_for <= trigger.created_at
    if made_at_creation and isinstance(schedule, IntervalSchedule):
        return max(scheduled_for, checked_at)
    return scheduled_for


def next_run_after(schedule: Schedule, scheduled_for: datetime, now: datetime) -> datetime | None:
    """The next run after ``scheduled_for`` that is not already more than `GRACE` late."""
    nxt = schedule.next_run(scheduled_for)
    if nxt is not None and nxt < now - GRACE:
        return schedule.next_run(now)
    return nxt


@dataclass
class TriggerRunner:
    """Runs triggers: at most ``concurrency`` checks at once, each bounded by its timeout."""

    db: Database
    clock: Clock
    outbox: Outbox
    fetcher: checks.Fetcher
    check_timeout: float
    concurrency: int
    reports: Reports  # reports from data: csv, templates, each=, request options
    check_max_bytes: int = DEFAULT_MAX_BYTES
    usercode: UserCodeRunner = field(default_factory=UserCodeRunner)
    ai: AISteps | None = None
    mail: email.MailWatch | None = None
    on_run: Callable[[str, str, float, float], None] = lambda kind, outcome, late, took: None
    last_lateness: float = 0.0  # seconds, of the latest scheduled run (for /trigger status)
    _limit: asyncio.Semaphore = field(init=False)
    background: BackgroundTasks = field(default_factory=BackgroundTasks)
    _claims: GroupCommit[_Claim, Trigger | None] = field(init=False)
    _saves: GroupCommit[_Outcome, _Saved] = field(init=False)
    actions: ActionRuns | None = None  # what ``/trigger set NAME then=ACTION`` runs

    def __post_init__(self) -> None:
        self._limit = asyncio.Semaphore(self.concurrency)
        self._claims = GroupCommit(self._claim_round)
        self._saves = GroupCommit(self._save_round)

    async def run(
        self,
        trigger_id: int,
        scheduled_for: datetime,
        *,
        manual: bool = False,
        not_before: datetime | None = None,
    ) -> RunResult | NotRun:
        """One run: claim, check, decide, then save and enqueue together.

        The scheduler starts a run ahead of time (``not_before`` is when it is due): the
        claim, a database round trip that queues behind other work, is made early, and
        the check waits for its time, so the request leaves on time. At most
        ``concurrency`` checks are in flight, so a burst of due triggers waits here rather
        than piling onto the database pool. A manual run (``/trigger run``) runs even if
        paused or already claimed, and leaves the next run where it was.
        """
        now = self.clock.now()
        started = max(now, not_before) if not_before is not None else now
        trigger = await self._claim(trigger_id, scheduled_for, started)
        if trigger is None:
            return NotRun("claimed")
        if trigger.paused and not manual:
            return NotRun("paused")
        if not_before is not None:
            await self.clock.sleep((not_before - self.clock.now()).total_seconds())
        async with self._limit:
            checking = self.clock.now()
            began = time.perf_counter()
            observation = await self._observe(trigger, checking)
            duration_ms = (time.perf_counter() - began) * 1000
            state, announcements = self._decide(trigger, observation, self.clock.now())
            notes = await notes_for(self.ai, trigger, announcements)
            schedule = schedule_from_dict(trigger.schedule)
            next_run = (
                trigger.next_run_at
                if manual
                else next_run_after(
                    schedule, _anchor(trigger, schedule, scheduled_for, checking), self.clock.now()
                )
            )
            if self.reports.handles(trigger):  # a failed report says so and is retried sooner
                observation, announcements, next_run = self.reports.after_decision(
                    trigger, observation, announcements, next_run, self.clock.now(), manual=manual
                )
            saved = await self._saves.submit(
                _Outcome(
                    trigger,
                    scheduled_for,
                    observation,
                    duration_ms,
                    state,
                    announcements,
                    next_run,
                    notes,
                )
            )
        trigger.next_run_at = next_run
        await self._act(trigger, observation, announcements, saved)
        outcome = "ok" if observation.ok else "problem"
        lateness = 0.0 if manual else (checking - scheduled_for).total_seconds()
        if not manual:
            self.last_lateness = lateness
        self.on_run(trigger.kind, outcome, lateness, duration_ms / 1000)
        return RunResult(trigger, outcome, observation.summary, announcements)

    def run_in_background(
        self, trigger_id: int, on_done: Callable[[RunResult | NotRun | None], Awaitable[None]]
    ) -> None:
        """Run now without blocking the caller (``/trigger run``); ``on_done(result)`` after
        (None when the run failed unexpectedly: it is logged)."""

        async def run_and_tell() -> None:
            result: RunResult | NotRun | None
            try:
                result = await self.run(trigger_id, self.clock.now(), manual=True)
            except Exception:
                log.exception("trigger %s run failed", trigger_id, extra={"trigger_id": trigger_id})
                result = None
            await on_done(result)

        self.background.spawn(run_and_tell())

    async def run_named(self, team_id: str, name: str) -> None:
        """Run the named trigger at once, in the background (a webhook asked for it).

        An unknown name is logged: the hook that names it was set up with a trigger since
        deleted.
        """
        async with self.db.sessions() as session:
            result = await session.execute(
                select(Trigger.id).where(col(Trigger.team_id) == team_id, col(Trigger.name) == name)
            )
            trigger_id = result.scalars().first()
        if trigger_id is None:
            log.warning("a hook asked to run trigger %r, which does not exist", name)
            return

        async def nobody_to_tell(_result: RunResult | NotRun | None) -> None:
            return None

        self.run_in_background(trigger_id, nobody_to_tell)

    async def check_only(self, trigger: Trigger) -> Observation:
        """What the trigger's check sees now, changing nothing (no claim, no state, no post)."""
        if trigger.kind in ("message", "report"):
            return Observation(True, f"it posts on schedule: {trigger.target or 'a report'}")
        return await self._observe(trigger, self.clock.now())

    async def flush(self) -> None:
        """Wait until every claim and save queued so far is written (at shutdown: a
        cancelled run leaves no transaction behind)."""
        await self._claims.flush()
        await self._saves.flush()

    def timeout_of(self, trigger: Trigger) -> float:
        """The seconds a check of ``trigger`` may take."""
        value = trigger.options.get("timeout")
        return parse_duration(value).total_seconds() if value else self.check_timeout

    async def drop_stale_claim(self, trigger: Trigger, scheduled_for: datetime) -> bool:
        """Forget a claim on this run whose claimer has been gone for longer than the check
        may take (a replica died mid-run); True if there was one, so the run may happen."""
        older_than = self.clock.now() - self.patience(trigger)
        async with self.db.transaction() as session:
            result = await session.execute(
                sa.delete(_RUNS).where(
                    _RUNS.c.trigger_id == trigger.id,
                    _RUNS.c.scheduled_for == scheduled_for,
                    _RUNS.c.outcome == "running",
                    _RUNS.c.started_at < older_than,
                )
            )
            return bool(getattr(result, "rowcount", 0))

    def patience(self, trigger: Trigger) -> timedelta:
        """How long another process's claim on a run of ``trigger`` is trusted."""
        return timedelta(seconds=self.timeout_of(trigger)) + STALE_CLAIM_MARGIN

    # Claiming

    async def _claim(
        self, trigger_id: int, scheduled_for: datetime, now: datetime
    ) -> Trigger | None:
        """Claim (trigger, scheduled time) once and load the trigger; None if already claimed."""
        return await self._claims.submit(_Claim(trigger_id, scheduled_for.astimezone(UTC), now))

    async def _claim_round(self, claims: list[_Claim]) -> list[Trigger | None]:
        """One transaction for every run that came due together."""
        rows = [
            {"trigger_id": c.trigger_id, "scheduled_for": c.scheduled_for, "started_at": c.now}
            for c in claims
        ]
        async with self.db.transaction() as session:
            result = await session.execute(_claim_statement(self.db), rows)
            won = {(tid, when.astimezone(UTC)) for tid, when in result.all()}
            ids = {trigger_id for trigger_id, _ in won}
            loaded = await session.execute(select(Trigger).where(col(Trigger.id).in_(ids)))
            triggers = {trigger.id: trigger for trigger in loaded.scalars().all()}
        answers: list[Trigger | None] = []
        for claim in claims:
            key = (claim.trigger_id, claim.scheduled_for)
            answers.append(triggers.get(claim.trigger_id) if key in won else None)
            won.discard(key)  # the same run asked for twice in one round is given once
        return answers

    # Checking and deciding

    async def _observe(self, trigger: Trigger, now: datetime) -> Observation:
        try:
            return await asyncio.wait_for(self._check(trigger, now), self.timeout_of(trigger) + 5)
        except TimeoutError:
            return Observation(False, f"timed out after {self.timeout_of(trigger):g} s")
        except Exception as error:
            # A bug in a check must still end the run (a claimed run left unfinished
            # blocks `/trigger run` and its state), and must show.
            log.exception(
                "trigger %s: the check failed", trigger.id, extra={"trigger_id": trigger.id}
            )
            return Observation(False, f"the check itself failed ({type(error).__name__})")

    async def _check(self, trigger: Trigger, now: datetime) -> Observation:
        url = trigger.target or ""
        timeout = self.timeout_of(trigger)
        condition = self._condition(trigger.condition) if trigger.condition else None
        if self.reports.handles(trigger):  # reports from data (bot.triggers.reports)
            return await self.reports.run(trigger, now, timeout=timeout, condition=condition)
        if trigger.kind == "http":
            return await checks.check_http(
                self.fetcher,
                url,
                timeout=timeout,
                condition=condition,
                condition_text=trigger.condition,
                now=now,
                max_bytes=self.check_max_bytes,
            )
        if trigger.kind == "json":
            assert condition is not None
            return await checks.check_json(
                self.fetcher,
                url,
                timeout=timeout,
                condition=condition,
                condition_text=trigger.condition,
                now=now,
                max_bytes=self.check_max_bytes,
            )
        if trigger.kind == "rss":
            return await checks.check_feed(
                self.fetcher, url, timeout=timeout, max_bytes=self.check_max_bytes
            )
        if trigger.kind == "email":
            if self.mail is None:
                return Observation(False, "email is not available in this process")
            return await self.mail.check(trigger, now, step_timeout=timeout)
        return Observation(True, "scheduled post")

    def _condition(self, text: str) -> checks.Condition:
        """The trigger's condition, evaluated in a user-code worker (never on the loop)."""
        source = to_expression(text)

        async def holds(context: Mapping[str, Any]) -> bool:
            (outcome,) = await self.usercode.run([ConditionJob(source, dict(context))])
            if isinstance(outcome, Failed):
                raise outcome.as_error()
            return outcome

        return holds

    def _decide(
        self, trigger: Trigger, observation: Observation, now: datetime
    ) -> tuple[TriggerState, list[Announcement]]:
        state = state_from_dict(trigger.state) if trigger.state else TriggerState.initial()
        if self.reports.handles(trigger):  # reports from data: a report alerts at once
            policy = self.reports.policy(trigger, policy_of(trigger))
            return decide(trigger.name, state, observation, now, policy)
        if trigger.kind in ("http", "json", "email"):  # email: its problems; mail in `settle`
            return decide(trigger.name, state, observation, now, policy_of(trigger))
        if trigger.kind == "rss":
            return decide_feed(trigger.name, state, observation, now, policy_of(trigger))
        return state, []

    # Saving

    async def _act(
        self,
        trigger: Trigger,
        observation: Observation,
        announcements: list[Announcement],
        saved: _Saved,
    ) -> None:
        """Run the trigger's actions (``then=``) for what this run saw, after it is saved:
        their bodies are user code, which never runs inside the transaction."""
        if self.actions is None or not (trigger.settings or {}).get("then"):
            return
        seen = Seen(observation, announcements, saved.incident, saved.new_items)
        names = names_in(trigger.settings.get("then"))
        found = await self.actions.named(trigger.team_id, names)
        requests = trigger_requests(trigger, found, seen)
        if requests:
            await self.actions.start(requests)

    async def _save_round(self, outcomes: list[_Outcome]) -> list[_Saved]:
        """Save every finished run's state, history and messages in one transaction."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            # an email run's posts and mailbox position, saved together.
            mail = {
                o.trigger.id: await email.settle(session, o.trigger, o.observation, now)
                for o in outcomes
                if o.trigger.kind == "email"
            }
            # Each run joins its hour's roll-up (kept 90 days) before a recovery says uptime.
            await add_runs(session, self.db.dialect, [_ran(o) for o in outcomes], now)
            recovering = [o.trigger for o in outcomes if recovers(o.announcements)]
            drawings = await drawings_in(session, recovering, now) if recovering else {}
            saved = [
                await self._enqueue_results(session, o, now, drawings.get(o.trigger.id or 0))
                for o in outcomes
            ]
            await session.execute(
                UPDATE_TRIGGER,
                [
                    {
                        "t_id": o.trigger.id,
                        "t_state": {**o.state.to_dict(), **mail.get(o.trigger.id, {})},
                        "t_last": now,
                        "t_next": o.next_run,
                        "t_incident": result.incident,
                    }
                    for o, result in zip(outcomes, saved, strict=True)
                ],
            )
            await session.execute(
                UPDATE_RUN,
                [
                    {
                        "r_trigger": o.trigger.id,
                        "r_when": o.scheduled_for.astimezone(UTC),
                        "r_ms": o.duration_ms,
                        "r_outcome": "ok" if o.observation.ok else "problem",
                        "r_summary": o.observation.summary[:500],
                    }
                    for o in outcomes
                ],
            )
            for outcome in outcomes:
                if random.random() < PRUNE_CHANCE:
                    await _prune_history(session, outcome.trigger)
        if mail or any(
            o.announcements
            or o.trigger.kind in ("message", "report")
            or isinstance(o.observation, ReportObservation)
            for o in outcomes
        ):
            self.outbox.wake()
        return saved

    async def _enqueue_results(
        self, session: Any, outcome: _Outcome, now: datetime, drawing: Drawing | None = None
    ) -> _Saved:
        """Queue a run's announcements (and a message/report trigger's post); returns the
        trigger's incident number after them (each new incident gets its own thread).
        A recovery shows ``drawing`` (uptime and latency)."""
        trigger = outcome.trigger
        incident = trigger.incident
        messages = []
        notes = outcome.notes or [NO_NOTES] * len(outcome.announcements)
        buttons = await trigger_buttons(session, trigger) if outcome.announcements else None
        for announcement, said in zip(outcome.announcements, notes, strict=True):
            if opens_incident(announcement):
                incident += 1
            message = announcement_message(trigger, announcement, incident, drawing)
            if buttons is not None and opens_incident(announcement):  # "Restart api"
                message = with_buttons(message, buttons)
            messages.append(noted(message, said))
        if trigger.kind == "message":
            messages.append(post_message(trigger, trigger.target or ""))
        elif trigger.kind == "report":
            messages.append(post_message(trigger, await digest(session, trigger, now)))
        # Reports from data; `saved.new_items` is where then=ACTION on=item starts.
        saved = await self.reports.save(session, trigger, outcome.observation, now)
        messages += saved.messages
        await enqueue(session, now, *messages)
        return _Saved(incident, saved.new_items)


@dataclass(frozen=True)
class _Ran:
    """A finished run as its hour's roll-up counts it (`bot.glance.Run`)."""

    scheduled_for: datetime
    duration_ms: float | None
    outcome: str


def _ran(outcome: _Outcome) -> tuple[int, _Ran]:
    assert outcome.trigger.id is not None  # a claimed run's trigger is saved
    result = "ok" if outcome.observation.ok else "problem"
    return outcome.trigger.id, _Ran(outcome.scheduled_for, outcome.duration_ms, result)


async def _prune_history(session: Any, trigger: Trigger) -> None:
    keep = (
        select(TriggerRun.id)
        .where(col(TriggerRun.trigger_id) == trigger.id)
        .order_by(col(TriggerRun.scheduled_for).desc())
        .limit(HISTORY_KEPT)
    )
    await session.execute(
        sa.delete(TriggerRun).where(
            col(TriggerRun.trigger_id) == trigger.id,
            col(TriggerRun.id).not_in(keep.scalar_subquery()),
        )
    )
