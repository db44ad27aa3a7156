"""`HookService`: the one place hooks are validated, saved, changed and audited.

Every front door (the ``/hook`` slash command, the modal, buttons, plain-language
proposals) hands it a `HookSpec` or `HookSettings` and an `Actor`. It checks what needs
the world (a unique name, the actor's permission, a trigger that exists), writes the row
and its audit entry together, and forgets the cached copy the receiver uses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import sqlalchemy as sa

from bot.audit import Actor
from bot.clock import Clock
from bot.config import Settings
from bot.credentials.keys import KEY_SETTING, KEYGEN_COMMAND, Keyring, hash_token
from bot.db import Database
from bot.errors import SpecError, UsageError
from bot.expressions import ExpressionError, compile_expression, compile_template
from bot.models import Delivery, Hook, OutboxMessage
from bot.names import valid_name
from bot.permissions import Permissions
from bot.slack.channels import ChannelDirectory
from bot.webhooks import hooks as store
from bot.webhooks import presets
from bot.webhooks.delivery import NewDelivery
from bot.webhooks.event import SENDERS, Sender
from bot.webhooks.ingest import DeliveryWriter
from bot.webhooks.spec import MIN_SECRET_CHARS, SENDER_CHOSEN_SECRETS, HookSettings, HookSpec

# What `/hook rotate NAME [url|secret]` renews.
Renewed = Literal["url", "secret", "both"]


@dataclass(frozen=True)
class CreatedHook:
    """A new (or rotated) hook, with what is shown once: the secret (None: the sender has
    its own, or it was not renewed) and the URL (None: not renewed)."""

    hook: Hook
    secret: str | None = field(repr=False)
    url: str | None = field(repr=False)


@dataclass
class HookService:
    """Create, change and delete hooks on behalf of people."""

    settings: Settings
    db: Database
    clock: Clock
    cache: store.HookCache
    writer: DeliveryWriter
    permissions: Permissions
    find_trigger: Callable[[str, str], Awaitable[object | None]]
    channels: ChannelDirectory
    keyring: Keyring | None
    # Refuses action names that do not exist: (team, names, setting) → None or `SpecError`.
    check_actions: Callable[[Actor, Sequence[str], str], Awaitable[None]] | None = None

    # Reading

    async def find(self, team_id: str, name: str) -> Hook | None:
        """The workspace's hook called ``name``, if any."""
        return await store.find_hook(self.db, team_id, name)

    async def named(self, team_id: str, name: str, *, verb: str = "show") -> Hook:
        """The hook called ``name``; a `UsageError` saying so when there is none."""
        valid = valid_name(name)
        if valid is None:
            raise UsageError(f"Which hook? Example: `/hook {verb} deploys`")
        hook = await self.find(team_id, valid)
        if hook is None:
            raise UsageError(f"There is no hook named `{valid}`. `/hook list` shows them all.")
        return hook

    async def by_id(self, team_id: str, hook_id: int) -> Hook | None:
        """The hook with this id in this workspace (a button's value), if it still exists."""
        async with self.db.sessions() as session:
            hook = await session.get(Hook, hook_id)
        return hook if hook is not None and hook.team_id == team_id else None

    async def all_of(self, team_id: str, *, created_by: str | None = None) -> list[Hook]:
        """The workspace's hooks by name (only ``created_by``'s when given)."""
        return await store.list_hooks(self.db, team_id, created_by=created_by)

    async def deliveries(
        self, hook: Hook, limit: int = 20
    ) -> list[tuple[Delivery, OutboxMessage | None]]:
        """The newest deliveries of ``hook``, each with the message it became."""
        return await store.recent_deliveries(self.db, _id(hook), limit=limit)

    async def may_change(self, actor: Actor, hook: Hook) -> bool:
        """True when ``actor`` created ``hook`` or is an admin (they may rotate its URL)."""
        return await self.permissions.may_change(actor.user_id, hook.created_by)

    # Changing

    async def create(self, actor: Actor, spec: HookSpec) -> CreatedHook:
        """Save a new hook; `SpecError` for a name in use or a short secret."""
        if await self.find(actor.team_id, spec.name):
            raise _name_taken(spec.name)
        if spec.secret is not None:
            _check_secret(spec.secret)
        secret = spec.secret or (
            store.new_secret() if spec.preset not in SENDER_CHOSEN_SECRETS else None
        )
        channel = await self.channels.resolve(spec.channel) if spec.channel else None
        await self.channels.require_member(channel or actor.channel_id, actor.user_id)
        token = store.new_token()
        hook = Hook(
            team_id=actor.team_id,
            name=spec.name,
            channel_id=channel or actor.channel_id,
            preset=spec.preset,
            token_hash=hash_token(token),
            secret=self._encrypted(secret),
            created_by=actor.user_id,
            created_at=self.clock.now(),
        )
        try:
            hook = await self._save(hook, actor, "created")
        except sa.exc.IntegrityError:  # created by someone else since we looked
            raise _name_taken(spec.name) from None
        return CreatedHook(hook, secret, self.settings.hook_url(token))

    async def change(self, actor: Actor, hook: Hook, settings: HookSettings) -> Hook:
        """Apply ``settings`` to ``hook``."""
        await self._require_owner(actor, hook)
        if settings.secret is not None:
            _check_secret(settings.secret)
        run = settings.run_trigger
        if run and await self.find_trigger(actor.team_id, run) is None:
            raise UsageError(
                f"There is no trigger named `{run}` to run. `/trigger list` shows them; "
                "`run=` with nothing clears it."
            )
        for names, key in ((settings.actions, "then"), (settings.buttons, "buttons")):
            if names and self.check_actions is not None:
                await self.check_actions(actor, names, key)
        if settings.channel is not None:
            settings = replace(settings, channel=await self.channels.resolve(settings.channel))
            await self.channels.require_member(settings.channel or "", actor.user_id)
        columns = settings.columns()
        if "secret" in columns:
            columns["secret"] = self._encrypted(columns["secret"])
        return await self._save(_with(hook, columns), actor, f"set {settings.describe()}")

    async def pause(self, actor: Actor, hook: Hook) -> Hook:
        await self._require_owner(actor, hook)
        return await self._save(_with(hook, {"paused": True}), actor, "paused")

    async def resume(self, actor: Actor, hook: Hook) -> Hook:
        await self._require_owner(actor, hook)
        return await self._save(_with(hook, {"paused": False}), actor, "resumed")

    async def delete(self, actor: Actor, hook: Hook) -> None:
        await self._require_owner(actor, hook)
        await store.delete_hook(self.db, hook, actor=actor, now=self.clock.now())
        self.cache.forget(hook.token_hash)

    async def rotate(self, actor: Actor, hook: Hook, renew: Renewed = "both") -> CreatedHook:
        """A new URL (the old one answers 404) and, if the bot made the secret, a new one;
        ``renew`` limits it to one of the two. What is new is shown once, in the result."""
        await self._require_owner(actor, hook)
        changes: dict[str, Any] = {}
        token = store.new_token() if renew in ("url", "both") else None
        if token is not None:
            changes["token_hash"] = hash_token(token)
        generated = hook.secret is not None and hook.preset not in SENDER_CHOSEN_SECRETS
        secret = store.new_secret() if generated and renew in ("secret", "both") else None
        if secret is not None:
            changes["secret"] = self._encrypted(secret)
        action = {"url": "rotated the URL", "secret": "rotated the secret", "both": "rotated"}
        rotated = await self._save(_with(hook, changes), actor, action[renew])
        self.cache.forget(hook.token_hash)
        url = self.settings.hook_url(token) if token is not None else None
        return CreatedHook(rotated, secret, url)

    async def set_template(self, actor: Actor, hook: Hook, source: str | None) -> Hook:
        """Use ``source`` as the hook's template (None: the preset's message again)."""
        await self._require_owner(actor, hook)
        if source is not None:
            try:
                compile_template(source)
            except ExpressionError as error:
                raise SpecError(
                    f"That template doesn't compile: {str(error).rstrip('.')}. Nothing was changed.",
                    field="template",
                ) from None
        action = "template set" if source is not None else "template cleared"
        return await self._save(_with(hook, {"template": source}), actor, action)

    async def set_filter(self, actor: Actor, hook: Hook, source: str | None) -> Hook:
        """Post only deliveries where ``source`` is true (None: every delivery again)."""
        await self._require_owner(actor, hook)
        if source is not None:
            try:
                compile_expression(source)
            except ExpressionError as error:
                raise SpecError(
                    f"That filter doesn't compile: {str(error).rstrip('.')}. Nothing was changed.",
                    field="filter",
                ) from None
        action = "filter set" if source is not None else "filter cleared"
        return await self._save(_with(hook, {"filter": source}), actor, action)

    async def send_sample(self, hook: Hook) -> NewDelivery:
        """Send a sample event of the hook's sender through it (``/hook test``)."""
        sample = presets.sample_event(_sample_sender(hook.preset))
        delivery = NewDelivery.sample(
            hook, sample.sender, sample.event, sample.payload, self.clock.now()
        )
        await self.writer.record(delivery)
        return delivery

    async def replay(self, actor: Actor, hook: Hook, delivery_id: str) -> NewDelivery:
        """Send a stored delivery through the hook again."""
        await self._require_owner(actor, hook)
        original = await store.get_delivery(self.db, _id(hook), delivery_id)
        if original is None:
            raise UsageError(
                f"*{hook.name}* has no delivery `{delivery_id}`. See `/hook log {hook.name}` for ids."
            )
        delivery = NewDelivery.replay(original, self.clock.now())
        await self.writer.record(delivery)
        return delivery

    # Inside

    async def _require_owner(self, actor: Actor, hook: Hook) -> None:
        await self.permissions.require(actor.user_id, hook.created_by, f"hook *{hook.name}*")

    async def _save(self, hook: Hook, actor: Actor, action: str) -> Hook:
        saved = await store.save_hook(
            self.db, hook, actor=actor, action=action, now=self.clock.now()
        )
        self.cache.forget(saved.token_hash)
        return saved

    def _encrypted(self, secret: str | None) -> str | None:
        """A signing secret as it is stored: encrypted with SECRETS_KEY."""
        if secret is None:
            return None
        if self.keyring is None:
            raise SpecError(
                f"Signing secrets are stored encrypted, and {KEY_SETTING} is not set: ask "
                f"whoever runs the bot to set it (`{KEYGEN_COMMAND}` makes a key).",
                field="secret",
            )
        return self.keyring.encrypt(secret)


def _name_taken(name: str) -> SpecError:
    return SpecError(
        f"A hook named `{name}` exists already. Pick another name, or `/hook show {name}`.",
        field="name",
        part=name,
    )


def _check_secret(secret: str) -> None:
    if len(secret) < MIN_SECRET_CHARS:
        raise SpecError(
            f"A secret must be at least {MIN_SECRET_CHARS} characters. Example: `secret=whsec_…`",
            field="secret",
        )


def _with(hook: Hook, changes: dict[str, Any]) -> Hook:
    copy = hook.model_copy()
    for key, value in changes.items():
        setattr(copy, key, value)
    return copy


def _sample_sender(preset: str) -> Sender:
    return next((sender for sender in SENDERS if sender == preset), "generic")


def _id(hook: Hook) -> int:
    assert hook.id is not None
    return hook.id
