"""The scheduler is a projection of the ``trigger`` table.

Each active trigger has exactly one pending APScheduler job, at the trigger's stored
``next_run_at`` (job id ``trigger:<id>``); the job runs the trigger (`TriggerRunner.run`)
and then places the job at the next run time the run saved. Only the leader (one process,
see `bot.leader`) schedules; the others announce changes to it with NOTIFY, and the leader
re-reads every trigger once a minute as a safety net under NOTIFY.

Downtime: when a process starts leading, a run missed by less than `GRACE` runs once at
once (however many were missed: they are coalesced into one); older misses are reported in
the channel, and the trigger moves on to its next run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.leader import NOTIFY_CHANNEL
from bot.models import Trigger
from bot.outbox import Outbox, enqueue
from bot.triggers.messages import missed_runs_message
from bot.triggers.runner import GRACE, NotRun, TriggerRunner, next_run_after
from bot.triggers.schedule import schedule_from_dict

log = logging.getLogger(__name__)

RESYNC_SECONDS = 60.0
# A job fires this long before its run is due: the run claims its row (a database round
# trip that may queue behind other writes) ahead of time and starts its check on time.
CLAIM_AHEAD = timedelta(seconds=1)
MAX_JITTER_SECONDS = 2.0
MISSED_RUNS_COUNTED = 50
_TRIGGERS: sa.Table = Trigger.__table__  # type: ignore[attr-defined]


def jitter(trigger: Trigger) -> timedelta:
    """A small fixed offset per trigger, so wall-clock schedules on the same second spread out.

    Interval schedules get none: they start whenever they were created, so they are
    spread already, and their runs stay exactly on time.
    """
    if trigger.id is None:
        return timedelta(0)
    return _jitter(trigger.id, trigger.schedule)


def _jitter(trigger_id: int, schedule: dict[str, Any]) -> timedelta:
    if schedule.get("kind") == "interval":
        return timedelta(0)
    return timedelta(seconds=(trigger_id * 7919 % 1000) / 1000 * MAX_JITTER_SECONDS)


def job_id(trigger_id: int) -> str:
    """The id of a trigger's one APScheduler job."""
    return f"trigger:{trigger_id}"


@dataclass
class TriggerScheduling:
    """Keeps the scheduler's jobs in line with the ``trigger`` table (leader only)."""

    db: Database
    clock: Clock
    outbox: Outbox
    runner: TriggerRunner
    scheduler: AsyncIOScheduler = field(default_factory=lambda: AsyncIOScheduler(timezone="UTC"))
    leading: bool = False
    _resync_task: asyncio.Task[None] | None = None
    _running_jobs: set[asyncio.Task[Any]] = field(default_factory=set)

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
            await asyncio.gather(self._resync_task, return_exceptions=True)
            self._resync_task = None
        if self.scheduler.running:
            self.scheduler.remove_all_jobs()

    async def stop(self) -> None:
        """Stop scheduling, and end the runs the scheduler started (APScheduler's shutdown
        does not wait for them)."""
        await self.step_down()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for task in list(self._running_jobs):
            task.cancel()
        await asyncio.gather(*self._running_jobs, return_exceptions=True)

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
        """A change announced by another process (the LISTEN callback)."""
        if payload.isdigit() and self.leading:
            self.runner.background.spawn(self.reload(int(payload)))

    async def reload(self, trigger_id: int) -> None:
        """Bring one trigger's job in line with its row."""
        async with self.db.sessions() as session:
            trigger = await session.get(Trigger, trigger_id)
        if trigger is None:
            self.unschedule(trigger_id)
        else:
            self.schedule(trigger)

    async def resync(self) -> None:
        """The safety net under NOTIFY: make every job match its row.

        It reads three columns, not whole rows: loading 10,000 triggers as ORM objects
        took 0.4 s of the event loop's time a minute, in stalls of 40 ms that made the
        runs due then late. A job out of line is rare; its trigger is read in full.
        """
        active: set[int] = set()
        last_id = 0
        while batch := await self._due_times_after(last_id):
            for trigger_id, next_run_at, schedule in batch:
                active.add(trigger_id)
                job = self.scheduler.get_job(job_id(trigger_id))
                due = next_run_at + _jitter(trigger_id, schedule) if next_run_at else None
                if job is None or due is None or job.next_run_time != due - CLAIM_AHEAD:
                    await self.reload(trigger_id)
            last_id = batch[-1][0]
        for job in self.scheduler.get_jobs():
            if job.id.startswith("trigger:") and int(job.id.split(":")[1]) not in active:
                job.remove()

    def schedule(self, trigger: Trigger) -> None:
        """(Re)place the trigger's single job at its stored next run time (leader only)."""
        assert trigger.id is not None
        if trigger.paused or trigger.next_run_at is None:
            self.unschedule(trigger.id)
            return
        self._place_job(trigger.id, trigger.next_run_at + jitter(trigger), trigger.next_run_at)

    def unschedule(self, trigger_id: int) -> None:
        if not self.scheduler.running:
            return
        job = self.scheduler.get_job(job_id(trigger_id))
        if job is not None:
            job.remove()

    def _place_job(self, trigger_id: int, fire_at: datetime, scheduled_for: datetime) -> None:
        """The trigger's one job: fire at ``fire_at`` to run the run scheduled for ``scheduled_for``."""
        if not self.leading:
            return
        self.scheduler.add_job(
            self._job,
            DateTrigger(fire_at - CLAIM_AHEAD),
            args=[trigger_id, scheduled_for.isoformat(), fire_at.isoformat()],
            id=job_id(trigger_id),
            replace_existing=True,
            misfire_grace_time=int(GRACE.total_seconds()),
            coalesce=True,
            max_instances=1,
        )

    async def _job(self, trigger_id: int, scheduled_iso: str, due_iso: str | None = None) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running_jobs.add(task)
            task.add_done_callback(self._running_jobs.discard)
        scheduled_for = datetime.fromisoformat(scheduled_iso)
        due = datetime.fromisoformat(due_iso) if due_iso else None
        try:
            result = await self.runner.run(trigger_id, scheduled_for, not_before=due)
            if isinstance(result, NotRun) and result.reason == "claimed":
                await self._claimed_elsewhere(trigger_id, scheduled_for)
            elif isinstance(result, NotRun):
                await self.reload(trigger_id)
            elif self.leading:
                self.schedule(result.trigger)
        except Exception:
            log.exception("trigger %s run failed", trigger_id, extra={"trigger_id": trigger_id})

    async def _claimed_elsewhere(self, trigger_id: int, scheduled_for: datetime) -> None:
        """Someone else claimed this run: make sure the trigger still moves on.

        Normally the claimer finishes and saves the next run. If it died mid-run (a
        replica killed during failover), its claim goes stale: after the check's timeout
        the claim is taken over and the run happens here, once.
        """
        async with self.db.sessions() as session:
            trigger = await session.get(Trigger, trigger_id)
        if trigger is None:
            self.unschedule(trigger_id)
        elif trigger.next_run_at != scheduled_for:
            self.schedule(trigger)  # the claimer finished and moved it on
        elif await self.runner.drop_stale_claim(trigger, scheduled_for):
            self.runner.background.spawn(self._job(trigger_id, scheduled_for.isoformat()))
        else:
            retry_at = self.clock.now() + self.runner.patience(trigger)
            self._place_job(trigger_id, retry_at, scheduled_for)

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

    async def _due_times_after(
        self, last_id: int, size: int = 1000
    ) -> list[tuple[int, datetime | None, dict[str, Any]]]:
        """(id, next run, schedule) of active triggers in id order, a page at a time."""
        async with self.db.sessions() as session:
            result = await session.execute(
                sa.select(_TRIGGERS.c.id, _TRIGGERS.c.next_run_at, _TRIGGERS.c.schedule)
                .where(_TRIGGERS.c.paused.is_(False), _TRIGGERS.c.id > last_id)
                .order_by(_TRIGGERS.c.id)
                .limit(size)
            )
            return [(row[0], row[1], row[2]) for row in result.all()]

    async def _catch_up(self, trigger: Trigger) -> None:
        """At start-up: report runs missed by more than `GRACE`, then schedule (a run missed
        by less is due already, so it runs at once)."""
        now = self.clock.now()
        if trigger.next_run_at is not None and trigger.next_run_at < now - GRACE:
            await self._report_missed(trigger, now)
        self.schedule(trigger)

    async def _report_missed(self, trigger: Trigger, now: datetime) -> None:
        schedule = schedule_from_dict(trigger.schedule)
        assert trigger.next_run_at is not None
        counted = [
            trigger.next_run_at,
            *schedule.next_runs(trigger.next_run_at, MISSED_RUNS_COUNTED),
        ]
        missed = [when for when in counted if when < now - GRACE]
        next_run = next_run_after(schedule, trigger.next_run_at, now)
        async with self.db.transaction() as session:
            await enqueue(session, now, missed_runs_message(trigger, missed))
            await session.execute(
                sa.update(Trigger).where(col(Trigger.id) == trigger.id).values(next_run_at=next_run)
            )
        trigger.next_run_at = next_run
        self.outbox.wake()
