"""Running triggers: the scheduler is a projection of the ``trigger`` table.

Each active trigger has exactly one pending APScheduler job, at the trigger's stored
``next_run_at`` (job id ``trigger:<id>``). A run claims ``(trigger id, scheduled time)``
in ``trigger_run`` first, so a run can never happen twice; then it checks, decides what
is worth saying (`bot.triggers.evaluate`), and in one transaction saves the new state,
the run, the next run time and the messages. Then it schedules the next run.

Downtime: at start-up, a run missed by less than `GRACE` runs once at once (however many
were missed: they are coalesced into one); older misses are reported in the channel.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from sqlmodel import col, select

from bot.batching import GroupCommit
from bot.clock import Clock
from bot.db import Database, insert_skipping_conflicts
from bot.models import Trigger, TriggerRun
from bot.outbox import Message, Outbox, enqueue
from bot.slack import blocks as kit
from bot.slack import views
from bot.triggers import checks
from bot.triggers.command import parse_duration
from bot.triggers.conditions import compile_condition
from bot.triggers.evaluate import (
    Policy,
    Report,
    TriggerState,
    decide,
    decide_feed,
    state_from_dict,
)
from bot.triggers.observation import Observation
from bot.triggers.report import digest
from bot.triggers.schedule import Schedule, local_time, schedule_from_dict

log = logging.getLogger(__name__)

GRACE = timedelta(minutes=5)
RESYNC_SECONDS = 60.0
STALE_CLAIM_MARGIN = timedelta(seconds=10)
NOTIFY_CHANNEL = "chatops_triggers"
HISTORY_KEPT = 200
# Pruning history is a DELETE with a subquery; doing it on one run in 20 keeps the table
# within about 10% of HISTORY_KEPT per trigger at a twentieth of the cost.
PRUNE_CHANCE = 0.05
MAX_JITTER_SECONDS = 2.0


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
    reports: list[Report]
    next_run: datetime | None


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


@dataclass(frozen=True)
class RunResult:
    """What one run saw and said."""

    outcome: str
    summary: str
    reports: list[Report]


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


def jitter(trigger: Trigger) -> timedelta:
    """A small fixed offset per trigger, so wall-clock schedules on the same second spread out.

    Interval schedules get none: they start whenever they were created, so they are
    spread already, and their runs stay exactly on time.
    """
    if trigger.id is None or trigger.schedule.get("kind") == "interval":
        return timedelta(0)
    return timedelta(seconds=(trigger.id * 7919 % 1000) / 1000 * MAX_JITTER_SECONDS)


@dataclass
class TriggerRunner:
    """Schedules, runs and reports triggers."""

    db: Database
    clock: Clock
    outbox: Outbox
    fetcher: checks.Fetcher
    check_timeout: float
    concurrency: int
    scheduler: AsyncIOScheduler = field(default_factory=lambda: AsyncIOScheduler(timezone="UTC"))
    _limit: asyncio.Semaphore = field(init=False)
    _claims: GroupCommit[_Claim, Trigger | None] = field(init=False)
    _saves: GroupCommit[_Outcome, None] = field(init=False)
    _background: set[asyncio.Task[Any]] = field(default_factory=set)
    on_run: Callable[[str, str, float, float], None] = lambda kind, outcome, late, took: None
    leading: bool = False
    last_lateness: float = 0.0  # seconds, of the latest run (for /trigger status)
    _resync_task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self._limit = asyncio.Semaphore(self.concurrency)
        self._claims = GroupCommit(self._claim_round)
        self._saves = GroupCommit(self._save_round)

    async def lead(self) -> None:
        """This process now runs the scheduler: schedule every active trigger, catching up."""
        if not self.scheduler.running:
            self.scheduler.start()
        self.leading = True
        last_id = 0
        while batch := await self._active_after(last_id):
            for trigger in batch:
                await self._catch_up(trigger)
            last_id = batch[-1].id or last_id
        self._resync_task = asyncio.create_task(self._resync_forever(), name="trigger-resync")

    async def step_down(self) -> None:
        """Another process runs the scheduler now (or we lost the database): drop our jobs."""
        self.leading = False
        if self._resync_task is not None:
            self._resync_task.cancel()
            self._resync_task = None
        if self.scheduler.running:
            self.scheduler.remove_all_jobs()

    async def changed(self, trigger_id: int) -> None:
        """A trigger was added, edited, paused, resumed or deleted: update the schedule.

        Here if this process leads; through NOTIFY otherwise (the leader listens).
        """
        if self.leading:
            await self.reload(trigger_id)
        elif not self.db.is_sqlite:
            async with self.db.transaction() as session:
                await session.execute(
                    sa.text("SELECT pg_notify(:channel, :id)"),
                    {"channel": NOTIFY_CHANNEL, "id": str(trigger_id)},
                )

    def heard(self, payload: str) -> None:
        """A change announced by another process (LISTEN callback)."""
        if payload.isdigit() and self.leading:
            task = asyncio.create_task(self.reload(int(payload)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def reload(self, trigger_id: int) -> None:
        """Bring one trigger's job in line with its row."""
        async with self.db.sessions() as session:
            trigger = await session.get(Trigger, trigger_id)
        if trigger is None:
            self.unschedule(trigger_id)
        else:
            self.schedule(trigger)

    async def resync(self) -> None:
        """The safety net under NOTIFY: make every job match its row."""
        active: set[int] = set()
        last_id = 0
        while batch := await self._active_after(last_id):
            for trigger in batch:
                assert trigger.id is not None
                active.add(trigger.id)
                job = self.scheduler.get_job(f"trigger:{trigger.id}")
                due = trigger.next_run_at + jitter(trigger) if trigger.next_run_at else None
                if job is None or job.next_run_time != due:
                    self.schedule(trigger)
            last_id = batch[-1].id or last_id
        for job in self.scheduler.get_jobs():
            if job.id.startswith("trigger:") and int(job.id.split(":")[1]) not in active:
                job.remove()

    async def _resync_forever(self) -> None:
        while self.leading:
            await asyncio.sleep(RESYNC_SECONDS)
            try:
                await self.resync()
            except Exception:
                log.exception("trigger resync failed; trying again later")

    async def _active_after(self, last_id: int, size: int = 1000) -> list[Trigger]:
        """Active triggers in id order, a page at a time (start-up memory stays flat)."""
        async with self.db.sessions() as session:
            result = await session.execute(
                select(Trigger)
                .where(col(Trigger.paused).is_(False), col(Trigger.id) > last_id)
                .order_by(col(Trigger.id))
                .limit(size)
            )
            return list(result.scalars().all())

    async def stop(self) -> None:
        await self.step_down()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def schedule(self, trigger: Trigger) -> None:
        """(Re)place the trigger's single job at its stored next run time (leader only)."""
        assert trigger.id is not None
        if not self.leading:
            return
        if trigger.paused or trigger.next_run_at is None:
            self.unschedule(trigger.id)
            return
        self._schedule_job(trigger.id, trigger.next_run_at + jitter(trigger), trigger.next_run_at)

    def _schedule_job(self, trigger_id: int, fire_at: datetime, scheduled_for: datetime) -> None:
        """The trigger's one job: fire at ``fire_at`` to run the run scheduled for ``scheduled_for``."""
        if not self.leading:
            return
        self.scheduler.add_job(
            self._job,
            DateTrigger(fire_at),
            args=[trigger_id, scheduled_for.isoformat()],
            id=f"trigger:{trigger_id}",
            replace_existing=True,
            misfire_grace_time=int(GRACE.total_seconds()),
            coalesce=True,
            max_instances=1,
        )

    def unschedule(self, trigger_id: int) -> None:
        if not self.scheduler.running:
            return
        job = self.scheduler.get_job(f"trigger:{trigger_id}")
        if job is not None:
            job.remove()

    def run_in_background(
        self, trigger_id: int, on_done: Callable[[RunResult | None], Awaitable[None]] | None = None
    ) -> None:
        """Run now without blocking the caller (``/trigger run``); ``on_done(result)`` after."""

        async def run_and_tell() -> None:
            try:
                result = await self.run(trigger_id, self.clock.now(), manual=True)
            except Exception:
                log.exception("trigger %s run failed", trigger_id, extra={"trigger_id": trigger_id})
                result = None
            if on_done is not None:
                await on_done(result)

        task = asyncio.create_task(run_and_tell())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def find(self, team_id: str, name: str) -> Trigger | None:
        async with self.db.sessions() as session:
            result = await session.execute(
                select(Trigger).where(col(Trigger.team_id) == team_id, col(Trigger.name) == name)
            )
            return result.scalars().first()

    async def run_now(self, team_id: str, name: str) -> None:
        """Run the named trigger's check at once (a webhook asked for it); unknown names are logged."""
        trigger = await self.find(team_id, name)
        if trigger is None or trigger.id is None:
            log.warning("a hook asked to run trigger %r, which does not exist", name)
            return
        self.run_in_background(trigger.id)

    async def _job(self, trigger_id: int, scheduled_iso: str) -> None:
        try:
            await self.run(trigger_id, datetime.fromisoformat(scheduled_iso))
        except Exception:
            log.exception("trigger %s run failed", trigger_id, extra={"trigger_id": trigger_id})

    async def _catch_up(self, trigger: Trigger) -> None:
        """At start-up: run a recently missed run once, report older misses, schedule."""
        now = self.clock.now()
        due = trigger.next_run_at
        if due is not None and due < now - GRACE:
            await self._report_missed(trigger, now)
        self.schedule(trigger)

    async def _report_missed(self, trigger: Trigger, now: datetime) -> None:
        schedule = schedule_from_dict(trigger.schedule)
        assert trigger.next_run_at is not None
        missed = [trigger.next_run_at, *schedule.next_runs(trigger.next_run_at, 50)]
        missed = [when for when in missed if when < now - GRACE]
        local = [local_time(when, schedule.tz) for when in missed[:3]]
        more = f" and {len(missed) - 3} more" if len(missed) > 3 else ""
        text = f":warning: *{trigger.name}* missed {', '.join(local)}{more}: the bot was down."
        next_run = _next_after(schedule, trigger.next_run_at, now)
        async with self.db.transaction() as session:
            await enqueue(
                session, now, Message(trigger.channel_id, text, source=f"trigger:{trigger.id}")
            )
            await session.execute(
                sa.update(Trigger).where(col(Trigger.id) == trigger.id).values(next_run_at=next_run)
            )
        trigger.next_run_at = next_run
        self.outbox.wake()

    async def run(
        self, trigger_id: int, scheduled_for: datetime, *, manual: bool = False
    ) -> RunResult | None:
        """One run: claim, check, decide, save and enqueue together, schedule the next.

        At most ``concurrency`` runs are in flight, so a burst of due triggers waits
        here rather than piling onto the database pool.
        """
        async with self._limit:
            started = self.clock.now()
            trigger = await self._claim(trigger_id, scheduled_for, started)
            if trigger is None and not manual:
                await self._claimed_elsewhere(trigger_id, scheduled_for)
                return None
            if trigger is None or (trigger.paused and not manual):
                return None
            began = time.perf_counter()
            observation = await self._observe(trigger, self.clock.now())
            duration_ms = (time.perf_counter() - began) * 1000
            state, reports = self._decide(trigger, observation, self.clock.now())
            schedule = schedule_from_dict(trigger.schedule)
            next_run = (
                trigger.next_run_at
                if manual
                else _next_after(schedule, scheduled_for, self.clock.now())
            )
            await self._save(
                trigger, scheduled_for, observation, duration_ms, state, reports, next_run
            )
        trigger.next_run_at = next_run
        self.schedule(trigger)
        outcome = "ok" if observation.ok else "problem"
        lateness = 0.0 if manual else (started - scheduled_for).total_seconds()
        self.last_lateness = lateness
        self.on_run(trigger.kind, outcome, lateness, duration_ms / 1000)
        return RunResult(outcome, observation.summary, reports)

    async def _claim(
        self, trigger_id: int, scheduled_for: datetime, now: datetime
    ) -> Trigger | None:
        """Claim (trigger, scheduled time) once and load the trigger; None if already claimed."""
        return await self._claims.submit(_Claim(trigger_id, scheduled_for.astimezone(UTC), now))

    async def _claimed_elsewhere(self, trigger_id: int, scheduled_for: datetime) -> None:
        """Someone else claimed this run: make sure the trigger still moves on.

        Normally the claimer finishes and schedules the next run. If it died mid-run (a
        replica killed during failover), its claim goes stale: after the check's timeout
        the claim is taken over and the run happens here, once.
        """
        async with self.db.sessions() as session:
            trigger = await session.get(Trigger, trigger_id)
        if trigger is None:
            self.unschedule(trigger_id)
            return
        if trigger.next_run_at != scheduled_for:
            self.schedule(trigger)  # the claimer finished and moved it on
            return
        patience = timedelta(seconds=self._timeout(trigger)) + STALE_CLAIM_MARGIN
        if await self._drop_stale_claim(trigger_id, scheduled_for, self.clock.now() - patience):
            task = asyncio.create_task(self.run(trigger_id, scheduled_for))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            self._schedule_job(trigger_id, self.clock.now() + patience, scheduled_for)

    async def _drop_stale_claim(
        self, trigger_id: int, scheduled_for: datetime, older_than: datetime
    ) -> bool:
        async with self.db.transaction() as session:
            result = await session.execute(
                sa.delete(_RUNS).where(
                    _RUNS.c.trigger_id == trigger_id,
                    _RUNS.c.scheduled_for == scheduled_for,
                    _RUNS.c.outcome == "running",
                    _RUNS.c.started_at < older_than,
                )
            )
            return bool(getattr(result, "rowcount", 0))

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

    async def _observe(self, trigger: Trigger, now: datetime) -> Observation:
        try:
            return await asyncio.wait_for(self._check(trigger, now), self._timeout(trigger) + 5)
        except TimeoutError:
            return Observation(False, f"timed out after {self._timeout(trigger):g} s")
        except Exception as error:
            # A bug in a check must still end the run (a claimed run left unfinished
            # blocks `/trigger run` and its state), and must show.
            log.exception(
                "trigger %s: the check failed", trigger.id, extra={"trigger_id": trigger.id}
            )
            return Observation(False, f"the check itself failed ({type(error).__name__})")

    def _timeout(self, trigger: Trigger) -> float:
        value = trigger.options.get("timeout")
        return parse_duration(value).total_seconds() if value else self.check_timeout

    async def _check(self, trigger: Trigger, now: datetime) -> Observation:
        url = trigger.target or ""
        timeout = self._timeout(trigger)
        condition = compile_condition(trigger.condition) if trigger.condition else None
        if trigger.kind == "http":
            return await checks.check_http(
                self.fetcher,
                url,
                timeout=timeout,
                condition=condition,
                condition_text=trigger.condition,
                now=now,
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
            )
        if trigger.kind == "rss":
            return await checks.check_feed(self.fetcher, url, timeout=timeout)
        return Observation(True, "scheduled post")

    def _decide(
        self, trigger: Trigger, observation: Observation, now: datetime
    ) -> tuple[TriggerState, list[Report]]:
        state = state_from_dict(trigger.state) if trigger.state else TriggerState.initial()
        if trigger.kind in ("http", "json"):
            return decide(trigger.name, state, observation, now, policy_of(trigger))
        if trigger.kind == "rss":
            return decide_feed(trigger.name, state, observation, now, policy_of(trigger))
        return state, []

    async def _save(
        self,
        trigger: Trigger,
        scheduled_for: datetime,
        observation: Observation,
        duration_ms: float,
        state: TriggerState,
        reports: list[Report],
        next_run: datetime | None,
    ) -> None:
        outcome = _Outcome(
            trigger, scheduled_for, observation, duration_ms, state, reports, next_run
        )
        await self._saves.submit(outcome)

    async def _save_round(self, outcomes: list[_Outcome]) -> list[None]:
        """Save every finished run's state, history and messages in one transaction."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            incidents = [await self._enqueue_results(session, o, now) for o in outcomes]
            await session.execute(
                UPDATE_TRIGGER,
                [
                    {
                        "t_id": o.trigger.id,
                        "t_state": o.state.to_dict(),
                        "t_last": now,
                        "t_next": o.next_run,
                        "t_incident": incident,
                    }
                    for o, incident in zip(outcomes, incidents, strict=True)
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
        if any(o.reports or o.trigger.kind in ("message", "report") for o in outcomes):
            self.outbox.wake()
        return [None] * len(outcomes)

    async def _enqueue_results(self, session: Any, outcome: _Outcome, now: datetime) -> int:
        """Queue a run's reports (and a message/report trigger's post); the incident number."""
        trigger = outcome.trigger
        incident = await self._enqueue_reports(session, trigger, outcome.reports, now)
        if trigger.kind in ("message", "report"):
            text = (
                trigger.target or ""
                if trigger.kind == "message"
                else await digest(session, trigger, now)
            )
            await enqueue(
                session, now, Message(trigger.channel_id, text, source=f"trigger:{trigger.id}")
            )
        return incident

    async def _enqueue_reports(
        self, session: Any, trigger: Trigger, reports: list[Report], now: datetime
    ) -> int:
        incident = trigger.incident
        messages = []
        for report in reports:
            if report.kind in ("down", "flapping"):
                incident += 1
            messages.append(report_message(trigger, report, incident))
        await enqueue(session, now, *messages)
        return incident


def report_message(trigger: Trigger, report: Report, incident: int) -> Message:
    """A report as a Slack message: alerts start a thread, follow-ups reply and update it."""
    thread_key = f"trigger:{trigger.id}:incident:{incident}"
    source = f"trigger:{trigger.id}"
    if report.kind in ("down", "flapping"):
        return Message(
            trigger.channel_id,
            report.text,
            blocks=alert_blocks(trigger, report.text),
            thread_key=thread_key,
            source=source,
        )
    if report.follows_up:
        closes = report.kind in ("recovered", "stable")
        return Message(
            trigger.channel_id,
            report.text,
            thread_key=thread_key,
            updates_root=closes,
            reaction="white_check_mark" if report.kind == "recovered" else None,
            source=source,
        )
    return Message(trigger.channel_id, report.text, source=source)


def alert_blocks(trigger: Trigger, text: str) -> list[dict[str, Any]]:
    """An alert with its buttons: Run now, Snooze 1h, Pause, History (values are ids)."""
    assert trigger.id is not None
    return [kit.section(text), views.alert_actions(trigger.id)]


def _next_after(schedule: Schedule, scheduled_for: datetime, now: datetime) -> datetime | None:
    """The next run after ``scheduled_for`` that is not already in the past."""
    nxt = schedule.next_run(scheduled_for)
    if nxt is not None and nxt < now - GRACE:
        return schedule.next_run(now)
    return nxt


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
