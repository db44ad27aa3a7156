"""`TriggerService`: the one place triggers are validated, saved, changed and audited.

Every front door (the ``/trigger`` slash command, the modal, buttons, plain-language
proposals) hands it a `TriggerSpec` or names a trigger and an `Actor`; it checks what
needs the world (the URL policy, the condition, a unique name, the actor's permission),
writes the row and its audit entry in one transaction, and tells the scheduler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from bot.actions.spec import names_in
from bot.audit import NOTE_TIME_FORMAT, Actor, audit_entry, change_note
from bot.clock import Clock
from bot.credentials.service import SecretService
from bot.db import Database
from bot.errors import SpecError, UsageError
from bot.models import Trigger, TriggerRun
from bot.names import valid_name
from bot.net import AddressPolicy, FetchBlocked, FetchError, check_url
from bot.permissions import Permissions
from bot.slack.channels import ChannelDirectory
from bot.triggers import checks, email
from bot.triggers.conditions import ConditionError, check_condition
from bot.triggers.evaluate import TriggerState, mute, state_from_dict
from bot.triggers.fetching import FETCH_KINDS
from bot.triggers.reports import check_template, require_credentials, spec_problem
from bot.triggers.schedule import schedule_from_dict
from bot.triggers.scheduling import TriggerScheduling
from bot.triggers.settings import ACTION_SETTINGS, TriggerSettings
from bot.triggers.spec import TriggerSpec

FEED_PROBE_SECONDS = 1.5
"""How long adding an rss trigger waits for its feed (Slack wants an answer within 3 s)."""

# A redefinition that changes one of these starts the trigger's state afresh.
_WHAT_IT_WATCHES = ("kind", "target", "condition")


@dataclass
class TriggerService:
    """Create, change and delete triggers on behalf of people."""

    db: Database
    clock: Clock
    scheduling: TriggerScheduling
    policy: AddressPolicy
    permissions: Permissions
    channels: ChannelDirectory
    fetcher: checks.Fetcher
    secrets: SecretService  # what a trigger sends: auth=, header.X=, an email password
    # Refuses action names that do not exist: (team, names, setting) → None or `SpecError`.
    check_actions: Callable[[Actor, Sequence[str], str], Awaitable[None]] | None = None

    # Reading

    async def find(self, team_id: str, name: str) -> Trigger | None:
        """The workspace's trigger called ``name``, if any."""
        async with self.db.sessions() as session:
            result = await session.execute(
                select(Trigger).where(col(Trigger.team_id) == team_id, col(Trigger.name) == name)
            )
            return result.scalars().first()

    async def named(self, team_id: str, name: str, *, verb: str = "show") -> Trigger:
        """The trigger called ``name``; a `UsageError` saying so when there is none."""
        valid = valid_name(name)
        if valid is None:
            raise UsageError(f"Which trigger? Example: `/trigger {verb} site`")
        trigger = await self.find(team_id, valid)
        if trigger is None:
            raise UsageError(
                f"There is no trigger named `{valid}`. `/trigger list` shows them all."
            )
        return trigger

    async def by_id(self, team_id: str, trigger_id: int) -> Trigger | None:
        """The trigger with this id in this workspace (a button's value), if it still exists."""
        async with self.db.sessions() as session:
            trigger = await session.get(Trigger, trigger_id)
        return trigger if trigger is not None and trigger.team_id == team_id else None

    async def all_of(self, team_id: str, *, created_by: str | None = None) -> list[Trigger]:
        """The workspace's triggers by name (only ``created_by``'s when given)."""
        query = select(Trigger).where(col(Trigger.team_id) == team_id)
        if created_by is not None:
            query = query.where(col(Trigger.created_by) == created_by)
        async with self.db.sessions() as session:
            result = await session.execute(query.order_by(col(Trigger.name)))
            return list(result.scalars().all())

    async def runs(self, trigger: Trigger, limit: int) -> list[TriggerRun]:
        """The trigger's latest runs, newest first."""
        async with self.db.sessions() as session:
            result = await session.execute(
                select(TriggerRun)
                .where(col(TriggerRun.trigger_id) == trigger.id)
                .order_by(col(TriggerRun.scheduled_for).desc())
                .limit(limit)
            )
            return list(result.scalars().all())

    # Checking

    def validate(self, spec: TriggerSpec) -> None:
        """Raise `SpecError` (with its field) for what the spec's syntax cannot tell:
        a condition that does not compile or reads names its check lacks, a URL the bot
        may not fetch."""
        if spec.condition is not None:
            try:
                check_condition(spec.condition, spec.kind)
            except ConditionError as error:
                raise SpecError(str(error), field="condition", part=spec.condition) from None
        problem = spec_problem(spec)  # reports from data: each=/key=, body=, auth=
        if problem is not None:
            raise problem
        if spec.checks_something:
            try:
                check_url(spec.target or "", self.policy)
            except (FetchBlocked, FetchError) as error:
                raise SpecError(
                    f"I can't check that URL: {error.reason}.",
                    field="target",
                    part=spec.target or "",
                ) from None

    def preview(self, actor: Actor, spec: TriggerSpec) -> Trigger:
        """The trigger ``spec`` would become for ``actor`` now (unsaved), for summaries."""
        return self._new_row(actor, spec, self.clock.now())

    # Changing

    async def create(self, actor: Actor, spec: TriggerSpec) -> Trigger:
        """Save a new trigger; `SpecError` for a bad definition or a name in use.

        A channel typed as ``#name`` is stored as its id when Slack knows it; a feed is
        fetched once (`FEED_PROBE_SECONDS` at most) to refuse an address that is no feed."""
        self.validate(spec)
        await require_credentials(self.secrets, actor, spec)
        await self._require_feed(spec)
        await self._require_mailbox(actor, spec)
        spec = await self._resolve_channel(spec)
        await self.channels.require_member(spec.channel or actor.channel_id, actor.user_id)
        if await self.find(actor.team_id, spec.name):
            raise _name_taken(spec.name)
        now = self.clock.now()
        trigger = self._new_row(actor, spec, now)
        try:
            async with self.db.transaction() as session:
                session.add(trigger)
                session.add(audit_entry(actor, _subject(trigger), "created", now))
        except sa.exc.IntegrityError:  # created by someone else since we looked
            raise _name_taken(spec.name) from None
        await self.scheduling.changed(_id(trigger))
        return trigger

    async def redefine(self, actor: Actor, trigger: Trigger, spec: TriggerSpec) -> Trigger:
        """Replace ``trigger``'s definition with ``spec``, keeping its history."""
        await self._require_owner(actor, trigger)
        self.validate(spec)
        await require_credentials(self.secrets, actor, spec)
        if (spec.kind, spec.target) != (trigger.kind, trigger.target):
            await self._require_feed(spec)
        await self._require_mailbox(actor, spec)
        spec = await self._resolve_channel(spec)
        if spec.channel is not None and spec.channel != trigger.channel_id:
            await self.channels.require_member(spec.channel, actor.user_id)
        if spec.name != trigger.name and await self.find(actor.team_id, spec.name):
            raise SpecError(
                f"A trigger named `{spec.name}` exists already.", field="name", part=spec.name
            )
        fresh = self._new_row(actor, spec, self.clock.now(), channel=trigger.channel_id)
        changes: dict[str, Any] = {
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
        if any(getattr(trigger, key) != getattr(fresh, key) for key in _WHAT_IT_WATCHES):
            changes["state"] = TriggerState.initial().to_dict()
        if spec.kind not in FETCH_KINDS:  # only json, csv and http post with a template
            changes["template"] = None
        return await self._change(actor, trigger, "edited", paused=False, **changes)

    async def pause(self, actor: Actor, trigger: Trigger) -> Trigger:
        await self._require_owner(actor, trigger)
        return await self._change(actor, trigger, "paused", paused=True)

    async def resume(self, actor: Actor, trigger: Trigger) -> Trigger:
        await self._require_owner(actor, trigger)
        next_run = schedule_from_dict(trigger.schedule).next_run(self.clock.now())
        return await self._change(actor, trigger, "resumed", paused=False, next_run_at=next_run)

    async def mute(self, actor: Actor, trigger: Trigger, until: datetime) -> Trigger:
        """Keep checking but say nothing until ``until``; then summarise what changed."""
        await self._require_owner(actor, trigger)
        state = mute(state_from_dict(trigger.state), until)
        action = f"muted until {until.astimezone(UTC):{NOTE_TIME_FORMAT}} UTC"  # see note_in
        kept = email.mail_state(trigger)  # a mailbox's position outlives a mute
        return await self._change(actor, trigger, action, state={**state.to_dict(), **kept})

    async def unmute(self, actor: Actor, trigger: Trigger) -> Trigger:
        await self._require_owner(actor, trigger)
        state = mute(state_from_dict(trigger.state), self.clock.now())
        kept = email.mail_state(trigger)
        return await self._change(actor, trigger, "unmuted", state={**state.to_dict(), **kept})

    # Email routing rules

    async def add_route(self, actor: Actor, trigger: Trigger, rule: str, channel: str) -> Trigger:
        """Append a routing rule to an email trigger: its creator or an admin; the rule
        compiles, the channel is one the person may post in."""
        await self._require_owner(actor, trigger)
        _require_email(trigger)
        email.check_rule(rule)
        routes = email.routes_of(trigger)
        if len(routes) >= email.MAX_ROUTES:
            raise UsageError(
                f"*{trigger.name}* has {email.MAX_ROUTES} rules already: "
                f"`/trigger unroute {trigger.name} N` removes one."
            )
        resolved = await self.channels.resolve(channel)
        await self.channels.require_member(resolved, actor.user_id)
        added = [*routes, email.Route(rule, resolved)]
        action = f"added routing rule {len(added)}: {rule} → {resolved}"
        return await self._change(
            actor, trigger, action, routes=[route.to_dict() for route in added]
        )

    async def remove_route(
        self, actor: Actor, trigger: Trigger, number: int
    ) -> tuple[Trigger, email.Route]:
        """Remove rule ``number`` (counted from 1) of an email trigger."""
        await self._require_owner(actor, trigger)
        _require_email(trigger)
        routes = email.routes_of(trigger)
        if not 1 <= number <= len(routes):
            listed = f"1 to {len(routes)}" if routes else "none yet"
            raise UsageError(
                f"*{trigger.name}* has no rule {number} (its rules: {listed}). "
                f"`/trigger route {trigger.name}` lists them."
            )
        removed = routes.pop(number - 1)
        action = f"removed routing rule {number}: {removed.rule} → {removed.channel}"
        changed = await self._change(
            actor, trigger, action, routes=[route.to_dict() for route in routes]
        )
        return changed, removed

    async def set_template(self, actor: Actor, trigger: Trigger, source: str | None) -> Trigger:
        """Post ``source`` on every run (each new item, for ``each=``); None: back to
        alerting on problems only. Its creator or an admin; compiled before it is saved."""
        await self._require_owner(actor, trigger)
        if source is not None:
            check_template(trigger.kind, source)
        action = "template set" if source is not None else "template cleared"
        return await self._change(actor, trigger, action, template=source)

    async def change_settings(
        self, actor: Actor, trigger: Trigger, settings: TriggerSettings
    ) -> Trigger:
        """Apply ``settings`` (``/trigger set``) to ``trigger``: its creator or an admin."""
        await self._require_owner(actor, trigger)
        for key in ACTION_SETTINGS:
            names = names_in(settings.changes.get(key))
            if names and self.check_actions is not None:
                await self.check_actions(actor, names, key)
        updated = settings.applied_to(trigger.settings or {})
        return await self._change(actor, trigger, f"set {settings.describe()}", settings=updated)

    async def delete(self, actor: Actor, trigger: Trigger) -> None:
        await self._require_owner(actor, trigger)
        async with self.db.transaction() as session:
            row = await session.get(Trigger, _id(trigger))
            if row is not None:
                await session.delete(row)
            session.add(audit_entry(actor, _subject(trigger), "deleted", self.clock.now()))
        await self.scheduling.changed(_id(trigger))

    async def require_may_change(self, actor: Actor, trigger: Trigger) -> None:
        """`UsageError` unless ``actor`` may change ``trigger`` (before showing its edit form,
        which holds its whole definition)."""
        await self._require_owner(actor, trigger)

    async def may_change(self, actor: Actor, trigger: Trigger) -> bool:
        """True when ``actor`` created ``trigger`` or is an admin."""
        return await self.permissions.may_change(actor.user_id, trigger.created_by)

    # Inside

    async def _require_mailbox(self, actor: Actor, spec: TriggerSpec) -> None:
        """An email trigger must be able to log in: see `email.validate_email`."""
        if spec.kind == "email":
            await email.validate_email(
                actor, spec.target, spec.options, secrets=self.secrets, policy=self.policy
            )

    async def _require_feed(self, spec: TriggerSpec) -> None:
        """Refuse an rss trigger whose address answers with something that is not a feed.

        Said now, to the person adding it, rather than as "down" in the channel at every
        run. The fetch is time-boxed so the answer stays within Slack's 3 s; an address
        that does not answer in time, or at all, is accepted (it may be down right now,
        and its runs will say so)."""
        if spec.kind != "rss" or not spec.target:
            return
        try:
            result = await asyncio.wait_for(
                self.fetcher.get(spec.target, timeout=FEED_PROBE_SECONDS), FEED_PROBE_SECONDS
            )
        except (FetchBlocked, FetchError, TimeoutError):
            return
        if not checks.is_success(result.status):
            return
        parsed = await asyncio.to_thread(
            checks.parse_feed, result.body, result.headers, result.final_url
        )
        seen = checks.feed_observation(result, parsed)
        if not seen.ok:
            raise SpecError(
                f"I fetched {spec.target} and it is {seen.summary}. Nothing was added. "
                "Give the feed's own address: it often ends in /feed, /rss or .xml.",
                field="target",
                part=spec.target,
            )

    async def _resolve_channel(self, spec: TriggerSpec) -> TriggerSpec:
        if spec.channel is None:
            return spec
        return replace(spec, channel=await self.channels.resolve(spec.channel))

    async def _require_owner(self, actor: Actor, trigger: Trigger) -> None:
        await self.permissions.require(
            actor.user_id, trigger.created_by, f"trigger *{trigger.name}*"
        )

    async def _change(self, actor: Actor, trigger: Trigger, action: str, **values: Any) -> Trigger:
        now = self.clock.now()
        values["last_change"] = change_note(action, actor, now)
        try:
            async with self.db.transaction() as session:
                row = await session.get(Trigger, _id(trigger))
                if row is None:
                    raise UsageError(f"*{trigger.name}* was just deleted.")
                for key, value in values.items():
                    setattr(row, key, value)
                session.add(audit_entry(actor, _subject(trigger), action, now))
        except sa.exc.IntegrityError:  # renamed to a name taken since we looked
            raise _name_taken(str(values.get("name", trigger.name))) from None
        await self.scheduling.changed(_id(row))
        return row

    def _new_row(
        self, actor: Actor, spec: TriggerSpec, now: datetime, *, channel: str | None = None
    ) -> Trigger:
        # An email watch starts at once, so mail that arrives from now on is posted.
        runs_now = spec.checks_something or spec.kind == "email"
        checks_now = runs_now and not spec.schedule.is_one_shot
        return Trigger(
            team_id=actor.team_id,
            name=spec.name,
            channel_id=spec.channel or channel or actor.channel_id,
            kind=spec.kind,
            target=spec.target,
            condition=spec.condition,
            schedule=spec.schedule.to_dict(),
            schedule_text=spec.schedule_text,
            options=dict(spec.options),
            state=TriggerState.initial().to_dict(),
            created_by=actor.user_id,
            created_at=now,
            next_run_at=now if checks_now else spec.schedule.next_run(now),
            last_change=change_note("created", actor, now),
        )


def _require_email(trigger: Trigger) -> None:
    if trigger.kind != "email":
        raise UsageError(
            f"*{trigger.name}* is {trigger.kind}: routing rules are for email triggers."
        )


def _name_taken(name: str) -> SpecError:
    return SpecError(
        f"A trigger named `{name}` exists already. Pick another name, or `/trigger show {name}`.",
        field="name",
        part=name,
    )


def _subject(trigger: Trigger) -> str:
    return f"trigger:{trigger.name}"


def _id(trigger: Trigger) -> int:
    assert trigger.id is not None
    return trigger.id
