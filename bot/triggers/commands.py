"""``/trigger``: schedule checks, feeds, reminders and reports from Slack.

``command`` = ack → parse → store → (re)schedule → reply. Bad input becomes a private
reply naming the part that could not be understood, with a command that works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select

from bot.clock import Clock
from bot.config import Settings
from bot.db import Database
from bot.models import AuditEntry, Trigger, TriggerRun
from bot.net import AddressPolicy, FetchBlocked, FetchError, check_url
from bot.outbox import Message, Outbox, enqueue
from bot.permissions import Permissions
from bot.slack.blocks import channel_mention, plural
from bot.slack.commands import Command, Reply, Subcommand, UsageError, run_subcommand
from bot.status import describe_health, read_health
from bot.triggers.command import TriggerSpec, TriggerSyntaxError, parse_duration, parse_trigger_add
from bot.triggers.conditions import ConditionError, compile_condition
from bot.triggers.evaluate import TriggerState, mute, state_from_dict
from bot.triggers.runner import RunResult, TriggerRunner
from bot.triggers.schedule import Schedule, local_time, schedule_from_dict

NAME = re.compile(r"^[a-z0-9_-]{1,40}$")
CLOCK_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$", re.I)

HELP = """*Triggers* — the bot checks something on a schedule and reports only what changed.
• `/trigger add site every 5m http https://example.com` — down once, recovered once
• `/trigger add site every 5m http https://example.com when latency > 500ms retries=3 #ops`
• `/trigger add blog every 30m rss https://example.com/feed.xml #news` — each new item once
• `/trigger add status every 5m json https://status.example.com/api/v2/status.json when json.status.indicator != "none"`
• `/trigger add standup every weekday at 9:30 message "Standup in 5 minutes" #team`
• `/trigger add weekly every monday at 9am report #ops`
Schedules: `every 1m|5m|2h|1d`, `every day at 17:30`, `every mon,wed,fri at 8am`, `every month on the 1st at 9am`, `cron "0 9 * * 1-5"`, `at 2026-12-01 09:00`, `in 2 hours`, `tomorrow at 9am`, plus `tz Europe/Berlin`.
Options: `retries=3 recover=2 repeat=30m max=3 timeout=5s latest=1`.
Manage: `/trigger list` · `/trigger status` · `show NAME` · `history NAME` · `run NAME` · `pause NAME` · `resume NAME` · `mute NAME 2h` · `mute NAME until 18:00` · `unmute NAME` · `delete NAME`"""


class SpecError(UsageError):
    """A trigger definition that cannot be saved: ``part`` is the fragment at fault, and
    ``field`` the form field it belongs to when that is certain (a modal shows it there)."""

    def __init__(self, message: str, *, part: str = "", field: str | None = None) -> None:
        super().__init__(message)
        self.part = part
        self.field = field


@dataclass
class TriggerCommands:
    """The ``/trigger`` slash command."""

    settings: Settings
    db: Database
    clock: Clock
    runner: TriggerRunner
    outbox: Outbox
    slack: AsyncWebClient
    policy: AddressPolicy
    permissions: Permissions
    _zones: dict[str, ZoneInfo] = field(default_factory=dict)

    async def __call__(self, command: Command) -> Reply:
        subcommands: dict[str, Subcommand] = {
            "add": self.add,
            "list": self.list_all,
            "show": self.show,
            "pause": self.pause,
            "resume": self.resume,
            "delete": self.delete,
            "run": self.run,
            "history": self.history,
            "mute": self.mute,
            "unmute": self.unmute,
            "status": self.status,
        }
        return await run_subcommand(command, "/trigger", subcommands, HELP)

    async def add(self, command: Command, _words: list[str], rest: str) -> Reply:
        return await self.create(command, rest)

    async def create(self, command: Command, text: str) -> Reply:
        """Save a new trigger from ``/trigger add`` text (what follows ``add``).

        Every front door ends here: the slash command, the modal and the plain-language
        proposals. Raises `UsageError` (a `SpecError` for a bad definition).
        """
        now = self.clock.now()
        spec = await self.check(command, text)
        if await self._find(command.team_id, spec.name):
            raise UsageError(
                f"A trigger named `{spec.name}` exists already. Pick another name, or `/trigger show {spec.name}`."
            )
        trigger = self._new_trigger(command, spec, now)
        async with self.db.transaction() as session:
            session.add(trigger)
            session.add(_audit(command, trigger.name, "created", now))
        await self.runner.changed(_id(trigger))
        return Reply(
            f"Added *{trigger.name}*: {describe_target(trigger)}, {describe_when(spec.schedule, trigger.next_run_at)}, reporting in {channel_mention(trigger.channel_id)}."
        )

    async def preview(self, command: Command, spec: TriggerSpec) -> str:
        """The words-and-next-run summary of ``spec`` (what ``create`` would answer)."""
        trigger = self._new_trigger(command, spec, self.clock.now())
        return (
            f"*{trigger.name}*: {describe_target(trigger)}, "
            f"{describe_when(spec.schedule, trigger.next_run_at)}, reporting in {channel_mention(trigger.channel_id)}."
        )

    async def find(self, team_id: str, name: str) -> Trigger | None:
        return await self._find(team_id, name)

    async def check(self, command: Command, text: str) -> TriggerSpec:
        """Parse and validate ``/trigger add`` text as ``command``'s user would get it."""
        return self._parse(text, await self.user_zone(command.user_id), self.clock.now())

    async def replace(self, command: Command, name: str, text: str) -> Reply:
        """Redefine trigger ``name`` from ``/trigger add`` text, keeping its history."""
        trigger = await self._owned_trigger(command, [name], "edit")
        spec = await self.check(command, text)
        if spec.name != trigger.name and await self._find(command.team_id, spec.name):
            raise SpecError(
                f"A trigger named `{spec.name}` exists already.", part=spec.name, field="name"
            )
        fresh = self._new_trigger(command, spec, self.clock.now())
        changes = {
            key: getattr(fresh, key)
            for key in (
                "name",
                "channel_id",
                "kind",
                "target",
                "condition",
                "schedule",
                "schedule_text",
                "options",
                "next_run_at",
            )
        }
        if (trigger.kind, trigger.target, trigger.condition) != (
            fresh.kind,
            fresh.target,
            fresh.condition,
        ):
            changes["state"] = TriggerState.initial().to_dict()  # a new target starts afresh
        updated = await self._update(command, trigger, "edited", paused=False, **changes)
        await self.runner.changed(_id(updated))
        return Reply(
            f"Updated *{updated.name}*: {describe_target(updated)}, {describe_when(spec.schedule, updated.next_run_at)}, reporting in {channel_mention(updated.channel_id)}."
        )

    def _parse(self, text: str, zone: ZoneInfo, now: datetime) -> TriggerSpec:
        try:
            spec = parse_trigger_add(
                text,
                default_tz=zone,
                now=now,
                min_interval=timedelta(seconds=self.settings.trigger_min_interval),
            )
            if spec.condition:
                compile_condition(spec.condition)
            if spec.kind in ("http", "rss", "json"):
                check_url(spec.target or "", self.policy)
        except TriggerSyntaxError as error:
            raise SpecError(str(error), part=error.part) from None
        except ConditionError as error:
            raise SpecError(str(error), field="condition") from None
        except (FetchBlocked, FetchError) as error:
            raise SpecError(f"I can't check that URL: {error.reason}.", field="target") from None
        return spec

    def _new_trigger(self, command: Command, spec: TriggerSpec, now: datetime) -> Trigger:
        channel = (
            (spec.channel.id or f"#{spec.channel.name}") if spec.channel else command.channel_id
        )
        checks_now = spec.kind in ("http", "rss", "json") and not spec.schedule.is_one_shot
        return Trigger(
            team_id=command.team_id,
            name=spec.name,
            channel_id=channel,
            kind=spec.kind,
            target=spec.target,
            condition=spec.condition,
            schedule=spec.schedule.to_dict(),
            schedule_text=spec.schedule_text,
            options=spec.options,
            state=TriggerState.initial().to_dict(),
            created_by=command.user_id,
            created_at=now,
            next_run_at=now if checks_now else spec.schedule.next_run(now),
            last_change=f"created by <@{command.user_id}> at {now:%Y-%m-%d %H:%M} UTC",
        )

    async def list_all(self, command: Command, _words: list[str], _rest: str) -> Reply:
        async with self.db.sessions() as session:
            result = await session.execute(
                select(Trigger)
                .where(col(Trigger.team_id) == command.team_id)
                .order_by(col(Trigger.name))
            )
            triggers = list(result.scalars().all())
        if not triggers:
            return Reply(
                "No triggers yet. Try `/trigger add site every 5m http https://example.com`"
            )
        lines = [
            f"• *{t.name}* — {t.kind} · {schedule_from_dict(t.schedule).describe()} · next: {_local(t.next_run_at, t)} · {describe_state(t, self.clock.now())}"
            for t in triggers
        ]
        return Reply("*Triggers*\n" + "\n".join(lines))

    async def show(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._trigger(command, words, "show")
        schedule = schedule_from_dict(trigger.schedule)
        upcoming = (
            schedule.next_runs(trigger.next_run_at - timedelta(microseconds=1), 3)
            if trigger.next_run_at
            else []
        )
        runs = await self._runs(trigger, 5)
        lines = [
            f"*{trigger.name}* — {describe_target(trigger)} → {channel_mention(trigger.channel_id)}",
            f"*Schedule:* {schedule.describe()}",
            "*Next runs:* "
            + (", ".join(local_time(when, schedule.tz) for when in upcoming) or "none"),
            f"*State:* {describe_state(trigger, self.clock.now())}",
            "*Options:* "
            + (" ".join(f"{k}={v}" for k, v in trigger.options.items()) or "defaults"),
            f"*Last change:* {trigger.last_change or '—'}",
            "*Last runs:*" if runs else "*Last runs:* none yet",
            *(_run_line(run, schedule.tz) for run in runs),
        ]
        return Reply("\n".join(lines))

    async def history(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._trigger(command, words, "history")
        runs = await self._runs(trigger, 20)
        if not runs:
            return Reply(f"*{trigger.name}* hasn't run yet.")
        tz = schedule_from_dict(trigger.schedule).tz
        return Reply(
            f"*Last {plural(len(runs), 'run')} of {trigger.name}*\n"
            + "\n".join(_run_line(r, tz) for r in runs)
        )

    async def pause(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._owned_trigger(command, words, "pause")
        await self._update(command, trigger, "paused", paused=True)
        await self.runner.changed(_id(trigger))
        return Reply(f"Paused *{trigger.name}*. `/trigger resume {trigger.name}` starts it again.")

    async def resume(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._owned_trigger(command, words, "resume")
        schedule = schedule_from_dict(trigger.schedule)
        trigger.next_run_at = schedule.next_run(self.clock.now())
        trigger = await self._update(
            command, trigger, "resumed", paused=False, next_run_at=trigger.next_run_at
        )
        await self.runner.changed(_id(trigger))
        return Reply(f"Resumed *{trigger.name}*: {describe_when(schedule, trigger.next_run_at)}.")

    async def delete(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._owned_trigger(command, words, "delete")
        async with self.db.transaction() as session:
            row = await session.get(Trigger, _id(trigger))
            if row is not None:
                await session.delete(row)
            session.add(_audit(command, trigger.name, "deleted", self.clock.now()))
        await self.runner.changed(_id(trigger))
        return Reply(f"Deleted *{trigger.name}*.")

    async def run(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._trigger(command, words, "run")

        async def tell(result: RunResult | None) -> None:
            text = (
                f"*{trigger.name}* ran: {result.summary}"
                if result
                else f"*{trigger.name}* was already running."
            )
            if result and result.reports:
                text += f" (reported {plural(len(result.reports), 'change')} in {channel_mention(trigger.channel_id)})"
            async with self.db.transaction() as session:
                reply = Message(command.channel_id, text, kind="ephemeral", user=command.user_id)
                await enqueue(session, self.clock.now(), reply)
            self.outbox.wake()

        self.runner.run_in_background(_id(trigger), tell)
        return Reply(f"Running *{trigger.name}* now; I'll tell you the result here.")

    async def status(self, command: Command, _words: list[str], _rest: str) -> Reply:
        """How the bot itself is doing: scheduler lag, overdue runs, the outbox, last activity."""
        now = self.clock.now()
        health = await read_health(self.db, now)
        return Reply(
            describe_health(
                health, leader=self.runner.leading, lateness=self.runner.last_lateness, now=now
            )
        )

    async def mute(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._owned_trigger(command, words, "mute")
        tz = schedule_from_dict(trigger.schedule).tz
        until = self._mute_until(words[1:], tz, trigger.name)
        state = mute(state_from_dict(trigger.state), until)
        await self._update(
            command, trigger, f"muted until {until:%Y-%m-%d %H:%M} UTC", state=state.to_dict()
        )
        return Reply(
            f"Muted *{trigger.name}* until {local_time(until, tz)}; it keeps checking, and I'll summarise what changed when the mute ends."
        )

    async def unmute(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._owned_trigger(command, words, "unmute")
        state = mute(state_from_dict(trigger.state), self.clock.now())
        await self._update(command, trigger, "unmuted", state=state.to_dict())
        return Reply(
            f"Unmuted *{trigger.name}*; the next run reports anything that changed meanwhile."
        )

    def _mute_until(self, words: list[str], tz: ZoneInfo, name: str) -> datetime:
        example = f"`/trigger mute {name} 2h` or `/trigger mute {name} until 18:00`"
        now = self.clock.now()
        if len(words) == 2 and words[0].lower() == "until":
            match = CLOCK_TIME.match(words[1])
            if match is None:
                raise UsageError(
                    f"I couldn't understand `{words[1]}` as a time of day. Try {example}"
                )
            return _next_clock_time(match, now, tz)
        if len(words) == 1:
            try:
                return now + parse_duration(words[0])
            except ValueError:
                pass
        raise UsageError(f"For how long? Try {example}")

    async def user_zone(self, user_id: str) -> ZoneInfo:
        """The Slack time zone of the user (cached), UTC when Slack does not say."""
        if user_id not in self._zones:
            self._zones[user_id] = await _slack_zone(self.slack, user_id)
        return self._zones[user_id]

    async def _find(self, team_id: str, name: str) -> Trigger | None:
        async with self.db.sessions() as session:
            result = await session.execute(
                select(Trigger).where(col(Trigger.team_id) == team_id, col(Trigger.name) == name)
            )
            return result.scalars().first()

    async def _trigger(self, command: Command, words: list[str], verb: str) -> Trigger:
        name = words[0].lower() if words else ""
        if not NAME.match(name):
            raise UsageError(f"Which trigger? Example: `/trigger {verb} site`")
        trigger = await self._find(command.team_id, name)
        if trigger is None:
            raise UsageError(f"There is no trigger named `{name}`. `/trigger list` shows them all.")
        return trigger

    async def _owned_trigger(self, command: Command, words: list[str], verb: str) -> Trigger:
        """The named trigger, if this user may change it (its creator or an admin)."""
        trigger = await self._trigger(command, words, verb)
        await self.permissions.require(
            command.user_id, trigger.created_by, f"trigger *{trigger.name}*"
        )
        return trigger

    async def _runs(self, trigger: Trigger, limit: int) -> list[TriggerRun]:
        async with self.db.sessions() as session:
            result = await session.execute(
                select(TriggerRun)
                .where(col(TriggerRun.trigger_id) == trigger.id)
                .order_by(col(TriggerRun.scheduled_for).desc())
                .limit(limit)
            )
            return list(result.scalars().all())

    async def _update(
        self, command: Command, trigger: Trigger, action: str, **values: Any
    ) -> Trigger:
        now = self.clock.now()
        values["last_change"] = f"{action} by <@{command.user_id}> at {now:%Y-%m-%d %H:%M} UTC"
        async with self.db.transaction() as session:
            row = await session.get(Trigger, _id(trigger))
            if row is None:
                raise UsageError(f"*{trigger.name}* was just deleted.")
            for key, value in values.items():
                setattr(row, key, value)
            session.add(_audit(command, trigger.name, action, now))
        return row


async def _slack_zone(slack: AsyncWebClient, user_id: str) -> ZoneInfo:
    """The user's Slack time zone, or UTC when Slack doesn't say."""
    try:
        response = await slack.users_info(user=user_id)
        return ZoneInfo(str(response["user"]["tz"]))
    except (SlackApiError, KeyError, TypeError, ValueError, OSError):
        return ZoneInfo("UTC")


def _next_clock_time(match: re.Match[str], now: datetime, tz: ZoneInfo) -> datetime:
    hour, minute, meridiem = (
        int(match.group(1)),
        int(match.group(2) or 0),
        (match.group(3) or "").lower(),
    )
    if meridiem == "pm" and hour < 12:
        hour += 12
    if meridiem == "am" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        raise UsageError("That time of day doesn't exist. Example: `until 18:00`")
    local = now.astimezone(tz)
    target = datetime.combine(local.date(), time(hour, minute), tzinfo=tz)
    if target <= local:
        target += timedelta(days=1)
    return target.astimezone(now.tzinfo)


def _id(trigger: Trigger) -> int:
    assert trigger.id is not None
    return trigger.id


def _audit(command: Command, name: str, action: str, now: datetime) -> AuditEntry:
    return AuditEntry(
        team_id=command.team_id,
        user_id=command.user_id,
        subject=f"trigger:{name}",
        action=action,
        at=now,
    )


def describe_target(trigger: Trigger) -> str:
    if trigger.kind == "message":
        return f'posts "{trigger.target}"'
    if trigger.kind == "report":
        return "posts a report of webhooks and triggers"
    condition = f" when {trigger.condition}" if trigger.condition else ""
    verb = {"http": "checks", "rss": "watches the feed", "json": "watches"}[trigger.kind]
    return f"{verb} {trigger.target}{condition}"


def describe_when(schedule: Schedule, next_run: datetime | None) -> str:
    nxt = local_time(next_run, schedule.tz) if next_run else "never (it is in the past)"
    return f"{schedule.describe()} — next: {nxt}"


def _local(when: datetime | None, trigger: Trigger) -> str:
    if when is None:
        return "—"
    return local_time(when, schedule_from_dict(trigger.schedule).tz)


def describe_state(trigger: Trigger, now: datetime) -> str:
    if trigger.paused:
        return "paused"
    state = state_from_dict(trigger.state) if trigger.state else TriggerState.initial()
    text = {"unknown": "not run yet", "ok": "ok", "failing": "failing", "flapping": "flapping"}[
        state.status
    ]
    if state.since and state.status in ("failing", "flapping"):
        text += f" since {state.since:%d %b %H:%M} UTC"
    if state.muted_until and state.muted_until > now:
        text += f" · muted until {state.muted_until:%d %b %H:%M} UTC"
    return text


def _run_line(run: TriggerRun, tz: ZoneInfo) -> str:
    return f"• {run.scheduled_for.astimezone(tz):%a %d %b %H:%M:%S %Z} · {run.duration_ms:.0f} ms · *{run.outcome}* · {run.summary}"
