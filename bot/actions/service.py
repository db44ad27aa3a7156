"""`ActionService`: the one place actions are validated, saved, changed, audited and run
by hand.

Every front door (``/action``, its modal, a button) hands it an `ActionSpec` or names an
action, with an `Actor`. It checks what needs the world (a unique name, the URL policy,
the secrets the actor may use and where they are bound, the actor's permission), writes
the row and its audit entry together, and starts runs through `ActionRuns`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from bot.actions.runs import ActionRuns, RunRequest
from bot.actions.spec import REDIRECTED_METHODS, ActionSpec, names_in, option_pairs
from bot.audit import Actor, audit_entry, change_note
from bot.clock import Clock
from bot.credentials.send import refused_secrets
from bot.credentials.service import SecretService, secrets_in_options
from bot.db import Database
from bot.errors import SpecError, UsageError
from bot.expressions import ExpressionError, compile_template
from bot.models import Action, ActionRun, Hook, Trigger
from bot.names import valid_name
from bot.net import AddressPolicy, FetchBlocked, FetchError, check_url
from bot.permissions import Permissions
from bot.usercode import Failed, TemplateJob, UserCodeRunner

EVERYONE = "everyone"
LOG_SIZE = 20


async def actions_using_secrets(db: Database, team_id: str) -> dict[str, list[str]]:
    """The workspace's actions that send secrets, by secret name (for ``/secret``)."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(Action.name, Action.options).where(col(Action.team_id) == team_id)
        )
        found: dict[str, list[str]] = {}
        for name, options in rows.all():
            for secret in secrets_in_options(options or {}):
                found.setdefault(secret, []).append(f"action {name}")
    return found


@dataclass
class ActionService:
    """Create, change, delete and run actions on behalf of people."""

    db: Database
    clock: Clock
    policy: AddressPolicy
    permissions: Permissions
    secrets: SecretService
    runs: ActionRuns
    usercode: UserCodeRunner

    # Reading

    async def find(self, team_id: str, name: str) -> Action | None:
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Action).where(col(Action.team_id) == team_id, col(Action.name) == name)
            )
            return rows.scalars().first()

    async def named(self, team_id: str, name: str, *, verb: str = "show") -> Action:
        """The action called ``name``; a `UsageError` saying so when there is none."""
        valid = valid_name(name)
        if valid is None:
            raise UsageError(f"Which action? Example: `/action {verb} crm`")
        action = await self.find(team_id, valid)
        if action is None:
            raise UsageError(
                f"There is no action named `{valid}`. `/action list` shows them; "
                "`/action add` makes one."
            )
        return action

    async def all_of(self, team_id: str) -> list[Action]:
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Action).where(col(Action.team_id) == team_id).order_by(col(Action.name))
            )
            return list(rows.scalars().all())

    async def log(self, action: Action, limit: int = LOG_SIZE) -> list[ActionRun]:
        """The action's newest runs."""
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(ActionRun)
                .where(col(ActionRun.action_id) == action.id)
                .order_by(col(ActionRun.id).desc())
                .limit(limit)
            )
            return list(rows.scalars().all())

    async def require_existing(self, actor: Actor, names: Sequence[str], setting: str) -> None:
        """Refuse names of actions that do not exist (``then=``, ``buttons=``), and for
        ``then=`` actions ``actor`` may not run: the hook or trigger would run them for
        whoever can make it fire (a button is authorised again at each click)."""
        found = await self.runs.named(actor.team_id, names)
        missing = [name for name in names if name not in found]
        if missing:
            raise SpecError(
                f"There is no action named `{missing[0]}` for `{setting}=`. `/action list` "
                f"shows them; `/action add {missing[0]} POST https://…` makes one.",
                field=setting,
                part=missing[0],
            )
        if setting != "then":
            return
        for name in names:
            action = found[name]
            if not await self.may_run(actor, action):
                raise SpecError(
                    f"You may not run *{name}*, so `then={name}` can't run it: ask "
                    f"<@{action.created_by}> (who made it) or an admin to "
                    f"`/action set {name} allow=<@{actor.user_id}>`.",
                    field=setting,
                    part=name,
                )

    # Changing

    async def create(self, actor: Actor, spec: ActionSpec) -> Action:
        """Save a new action; `SpecError` for a name in use, a refused URL or a secret
        the actor may not use or that is not bound to the URL's host."""
        if await self.find(actor.team_id, spec.name):
            raise SpecError(
                f"An action named `{spec.name}` exists already. Pick another name, or "
                f"`/action delete {spec.name}` first.",
                field="name",
                part=spec.name,
            )
        self._check_url(spec.url)
        await self._check_secrets(actor, spec.url, spec.options())
        action = Action(
            team_id=actor.team_id,
            name=spec.name,
            method=spec.method,
            url=spec.url,
            options=spec.options(),
            body_kind=spec.body_kind,
            confirm=spec.confirm,
            timeout=spec.timeout,
            retries=spec.retries,
            allow=[],
            created_by=actor.user_id,
            created_at=self.clock.now(),
        )
        try:
            return await self._save(action, actor, "created")
        except sa.exc.IntegrityError:
            raise SpecError(
                f"An action named `{spec.name}` was just made by someone else.", field="name"
            ) from None

    async def set_body(self, actor: Actor, action: Action, source: str | None) -> Action:
        """Use ``source`` as the body template (None: no body)."""
        await self._require_owner(actor, action)
        if source is not None:
            if action.method in REDIRECTED_METHODS:
                raise UsageError(
                    f"*{action.name}* sends {action.method}, which has no body. "
                    f"Example: `/action add {action.name}-post POST {action.url}`"
                )
            check_template_source(source, "body")
        action.body = source
        return await self._save(action, actor, "body set" if source else "body cleared")

    async def set_reply(self, actor: Actor, action: Action, source: str | None) -> Action:
        """Post a line rendered from each response in the thread (None: stop)."""
        await self._require_owner(actor, action)
        if source is not None:
            check_template_source(source, "reply")
        action.reply = source
        return await self._save(action, actor, "reply set" if source else "reply cleared")

    async def change(self, actor: Actor, action: Action, changes: Mapping[str, Any]) -> Action:
        """Apply ``changes`` (column → value: allow, confirm, timeout, retries)."""
        await self._require_owner(actor, action)
        for key, value in changes.items():
            setattr(action, key, value)
        said = ", ".join(f"{key}={_shown(value)}" for key, value in changes.items())
        return await self._save(action, actor, f"set {said}")

    async def pause(self, actor: Actor, action: Action, paused: bool) -> Action:
        await self._require_owner(actor, action)
        action.paused = paused
        return await self._save(action, actor, "paused" if paused else "resumed")

    async def delete(self, actor: Actor, action: Action) -> None:
        """Delete the action and its runs, unless a hook or trigger still uses it."""
        await self._require_owner(actor, action)
        users = await self.users_of(action)
        if users:
            raise UsageError(
                f"`{action.name}` is used by {', '.join(users)}: change "
                f"{'it' if len(users) == 1 else 'them'} first (e.g. `/hook set NAME then=`)."
            )
        async with self.db.transaction() as session:
            await session.execute(sa.delete(ActionRun).where(col(ActionRun.action_id) == action.id))
            await session.execute(sa.delete(Action).where(col(Action.id) == action.id))
            session.add(audit_entry(actor, _subject(action), "deleted", self.clock.now()))

    # Running

    async def may_run(self, actor: Actor, action: Action) -> bool:
        """Its creator, admins, and whom ``allow=`` names (a user, the channel, everyone)."""
        allowed = set(action.allow)
        if EVERYONE in allowed or actor.user_id in allowed or actor.channel_id in allowed:
            return True
        return await self.permissions.may_change(actor.user_id, action.created_by)

    async def run_by_hand(
        self,
        actor: Actor,
        action: Action,
        context: dict[str, Any],
        how: str,
        *,
        thread: tuple[str, str | None] | None = None,
    ) -> ActionRun:
        """Run ``action`` for ``actor`` (``how``: "by hand", "clicked on hook x") if they
        may; audited, and the run is stored before anything is sent."""
        if not await self.may_run(actor, action):
            raise UsageError(
                f"You may not run *{action.name}*: ask <@{action.created_by}> (who made it) "
                f"or an admin to `/action set {action.name} allow=<@{actor.user_id}>`."
            )
        if action.paused:
            raise UsageError(f"*{action.name}* is paused: `/action resume {action.name}` first.")
        cause = f"<@{actor.user_id}> {how}"
        channel, key = thread if thread is not None else (None, None)
        (run,) = await self.runs.start(
            [RunRequest(action, context, cause, channel, key)],
            audit=[audit_entry(actor, _subject(action), f"ran ({how})", self.clock.now())],
        )
        return run

    async def render_body(self, action: Action, context: dict[str, Any]) -> str | Failed | None:
        """The body template's output for ``context`` (``/action test``, ``show``)."""
        if not action.body:
            return None
        (text,) = await self.usercode.run([TemplateJob(action.body, context)])
        return text

    # Inside

    def _check_url(self, url: str) -> None:
        try:
            check_url(url, self.policy)
        except (FetchBlocked, FetchError) as error:
            raise SpecError(
                f"That URL can't be used: {error.reason}.", field="url", part=url
            ) from None

    async def _check_secrets(self, actor: Actor, url: str, options: Mapping[str, str]) -> None:
        refs = option_pairs(options)
        if not secrets_in_options(dict(options)):
            return
        credentials = await self.secrets.credentials_for(actor, refs)
        refused = refused_secrets(refs, url, credentials.lookup)
        if refused:
            name = refused[0]
            hosts = ", ".join(str(host) for host in credentials.lookup(name).hosts)
            raise SpecError(
                f"The secret `{name}` may not be sent to that URL's host: it is bound to "
                f"{hosts}. Bind it with `/secret set {name} for HOST`, or use another secret.",
                field="options",
                part=name,
            )

    async def users_of(self, action: Action) -> list[str]:
        """The hooks and triggers that run ``action`` or show it as a button."""
        async with self.db.sessions() as session:
            hooks = await session.execute(
                select(Hook.name, Hook.actions, Hook.buttons).where(
                    col(Hook.team_id) == action.team_id
                )
            )
            triggers = await session.execute(
                select(Trigger.name, Trigger.settings).where(col(Trigger.team_id) == action.team_id)
            )
            users = [
                f"hook {name}"
                for name, then, buttons in hooks.all()
                if action.name in names_in(then) + names_in(buttons)
            ]
            users += [
                f"trigger {name}"
                for name, settings in triggers.all()
                if action.name
                in names_in((settings or {}).get("then"))
                + names_in((settings or {}).get("buttons"))
            ]
        return users

    async def _require_owner(self, actor: Actor, action: Action) -> None:
        await self.permissions.require(actor.user_id, action.created_by, f"action *{action.name}*")

    async def _save(self, action: Action, actor: Actor, what: str) -> Action:
        now = self.clock.now()
        action.last_change = change_note(what, actor, now)
        async with self.db.transaction() as session:
            merged = await session.merge(action)
            session.add(audit_entry(actor, _subject(action), what, now))
        return merged


def check_template_source(source: str, what: str) -> None:
    """Refuse a template that does not compile, naming ``what`` (body, reply)."""
    try:
        compile_template(source)
    except ExpressionError as error:
        raise SpecError(
            f"That {what} template doesn't compile: {str(error).rstrip('.')}. Nothing was changed.",
            field=what,
        ) from None


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "(nobody)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _subject(action: Action) -> str:
    return f"action:{action.name}"
