"""`SecretService`: the one place secrets are validated, saved, changed, audited and used.

Every front door (the ``/secret`` slash command, the secret modal) hands it a
`SecretSpec` or names a secret, with an `Actor`. It encrypts the value with SECRETS_KEY,
writes the row and its audit entry together, and answers for the features that send
secrets: may this person use secret NAME (`require_use`), and what does a request to URL
send (`resolve`, `credentials_for`, refusing hosts the secret is not bound to).

It also keeps this process's `Redactor`, which hides every secret's value from messages,
replies and log lines: rebuilt after each change made here, and re-read when another
replica changed a secret (a cheap check of what changed, every `REFRESH_SECONDS` and
before every use).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlmodel import col, select

from bot.audit import Actor, audit_entry, change_note
from bot.clock import Clock
from bot.credentials.hosts import HostPattern, Target, parse_host_pattern
from bot.credentials.keys import KEY_SETTING, KEYGEN_COMMAND, Keyring, UndecryptableToken
from bot.credentials.redact import Redactor
from bot.credentials.refs import (
    CredentialRef,
    RefError,
    ResolvedSecret,
    is_credential_option,
    parse_option,
    secret_names,
)
from bot.credentials.send import SecretNotAllowed, StoredSecret
from bot.credentials.spec import SecretSpec, parse_target_name
from bot.db import Database
from bot.errors import SpecError, UsageError
from bot.models import SecretRecord, Trigger
from bot.net import Credentials
from bot.permissions import Permissions

log = logging.getLogger(__name__)

REFRESH_SECONDS: Final = 2.0

# Finds what uses secrets in a workspace: {secret name: ["trigger site", …]}.
UsageFinder = Callable[[Database, str], Awaitable[dict[str, list[str]]]]


@dataclass(frozen=True)
class SecretInfo:
    """A stored secret as people may see it: everything but its value."""

    name: str
    hosts: tuple[str, ...]
    user: str | None
    created_by: str
    set_by: str
    set_at: datetime
    allowed: tuple[str, ...]
    used_by: tuple[str, ...]
    last_change: str | None


async def triggers_using_secrets(db: Database, team_id: str) -> dict[str, list[str]]:
    """The workspace's triggers that send secrets (``auth=…``, ``header.X=secret:…``
    options), by secret name."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(Trigger.name, Trigger.options).where(col(Trigger.team_id) == team_id)
        )
        found: dict[str, list[str]] = {}
        for name, options in rows.all():
            for secret in secrets_in_options(options or {}):
                found.setdefault(secret, []).append(f"trigger {name}")
    return found


def secrets_in_options(options: dict[str, str]) -> frozenset[str]:
    """The secret names that stored options refer to (options that do not parse are
    left out: they were refused when saved)."""
    refs: list[CredentialRef] = []
    for key, value in options.items():
        if is_credential_option(key):
            try:
                refs.append(parse_option(key, value))
            except RefError:
                continue
    return secret_names(refs)


@dataclass(frozen=True)
class _Redaction:
    """The redactor for the secrets as they were when ``fingerprint`` was read."""

    fingerprint: tuple[tuple[int, str], ...]
    redactor: Redactor


@dataclass
class SecretService:
    """Store, change, delete and hand out secrets on behalf of people."""

    db: Database
    clock: Clock
    keyring: Keyring | None
    permissions: Permissions
    usage_finders: tuple[UsageFinder, ...] = (triggers_using_secrets,)
    _redaction: _Redaction = field(default_factory=lambda: _Redaction((), Redactor({})))
    _reading: asyncio.Lock = field(default_factory=asyncio.Lock)

    # Reading

    async def all_of(self, team_id: str) -> list[SecretInfo]:
        """The workspace's secrets by name, with what uses each; never a value."""
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(SecretRecord)
                .where(col(SecretRecord.team_id) == team_id)
                .order_by(col(SecretRecord.name))
            )
            records = list(rows.scalars().all())
        uses = await self._uses(team_id)
        return [_info(record, uses.get(record.name, [])) for record in records]

    async def info(self, team_id: str, name: str) -> SecretInfo:
        """The secret called ``name``, as people may see it; `UsageError` if there is none."""
        record = await self._named(team_id, name)
        return _info(record, (await self._uses(team_id)).get(record.name, []))

    # Changing

    async def set(self, actor: Actor, spec: SecretSpec) -> SecretInfo:
        """Store ``spec`` (a new secret, or a new value and hosts for an existing one)."""
        keyring = self._keyring_for_storing()
        existing = await self._find(actor.team_id, spec.name)
        if existing is not None:
            await self._require_owner(actor, existing)
        now = self.clock.now()
        action = _set_action(spec)
        record = existing or SecretRecord(
            team_id=actor.team_id,
            name=spec.name,
            hosts=[],
            ciphertext="",
            allowed=[],
            created_by=actor.user_id,
            created_at=now,
            set_by=actor.user_id,
            set_at=now,
        )
        record.hosts = [str(host) for host in spec.hosts]
        record.ciphertext = keyring.encrypt(spec.value)
        record.user = spec.user
        record.set_by = actor.user_id
        record.set_at = now
        record.last_change = change_note(action, actor, now)
        try:
            async with self.db.transaction() as session:
                await session.merge(record)
                session.add(audit_entry(actor, _subject(spec.name), action, now))
        except sa.exc.IntegrityError:
            raise UsageError(
                f"`{spec.name}` was set by someone else just now. See `/secret show {spec.name}`."
            ) from None
        await self.reload()
        return await self.info(actor.team_id, spec.name)

    async def delete(self, actor: Actor, name: str) -> None:
        """Delete the secret, unless something still uses it (named in the refusal)."""
        record = await self._named(actor.team_id, name)
        await self._require_owner(actor, record)
        users = (await self._uses(actor.team_id)).get(record.name, [])
        if users:
            raise UsageError(
                f"`{record.name}` is used by {', '.join(users)}: change or delete "
                f"{'it' if len(users) == 1 else 'them'} first."
            )
        now = self.clock.now()
        async with self.db.transaction() as session:
            await session.execute(sa.delete(SecretRecord).where(col(SecretRecord.id) == record.id))
            session.add(audit_entry(actor, _subject(record.name), "deleted", now))
        await self.reload()

    async def allow(self, actor: Actor, name: str, users: Sequence[str]) -> SecretInfo:
        """Let ``users`` use the secret in their own hooks, triggers and actions."""
        record = await self._named(actor.team_id, name)
        await self._require_owner(actor, record)
        added = [u for u in dict.fromkeys(users) if u not in record.allowed]
        mentions = " ".join(f"<@{user}>" for user in added)
        if added:
            await self._change_allowed(
                actor, record, [*record.allowed, *added], f"allowed {mentions}"
            )
        return await self.info(actor.team_id, record.name)

    async def deny(self, actor: Actor, name: str, users: Sequence[str]) -> SecretInfo:
        """Stop ``users`` using the secret (its creator and the admins always may)."""
        record = await self._named(actor.team_id, name)
        await self._require_owner(actor, record)
        if record.created_by in users:
            raise UsageError(
                f"<@{record.created_by}> created `{record.name}` and may always use it; "
                f"`/secret delete {record.name}` removes it."
            )
        removed = [user for user in record.allowed if user in users]
        kept = [user for user in record.allowed if user not in users]
        mentions = " ".join(f"<@{user}>" for user in removed)
        if removed:
            await self._change_allowed(actor, record, kept, f"denied {mentions}")
        return await self.info(actor.team_id, record.name)

    # Using

    async def may_use(self, actor: Actor, record: SecretRecord) -> bool:
        """True for the secret's creator, the users it allows, and admins."""
        if actor.user_id == record.created_by or actor.user_id in record.allowed:
            return True
        return await self.permissions.is_admin(actor.user_id)

    async def require_use(self, actor: Actor, name: str) -> SecretRecord:
        """The secret ``name`` if ``actor`` may use it; `UsageError` saying why not."""
        record = await self._named(actor.team_id, name)
        if not await self.may_use(actor, record):
            raise UsageError(
                f"You may not use the secret `{record.name}`: ask <@{record.created_by}> "
                f"(who set it) or an admin to `/secret allow {record.name} <@{actor.user_id}>`."
            )
        return record

    async def resolve(self, actor: Actor, name: str, url: str) -> ResolvedSecret:
        """The value (and user name) of ``name`` for a request to ``url`` by ``actor``.

        `UsageError` when ``actor`` may not use it or ``url``'s host is not one it is
        bound to: nothing is decrypted then.
        """
        record = await self.require_use(actor, name)
        target = Target.of_url(url)
        if target is None or not any(p.allows_target(target) for p in _patterns(record)):
            shown = f"{target.host}:{target.port}" if target is not None else "that address"
            raise UsageError(str(SecretNotAllowed((record.name,), shown)))
        await self.refresh()
        return ResolvedSecret(self._decrypt(record), record.user)

    async def credentials_for(self, actor: Actor, refs: Iterable[CredentialRef]) -> Credentials:
        """What a request by ``actor`` with ``refs`` sends: `bot.net.SafeFetcher` builds the
        headers from it, only for hosts the secrets are bound to. `UsageError` when a
        secret does not exist or ``actor`` may not use it."""
        refs = tuple(refs)
        stored: dict[str, StoredSecret] = {}
        for name in sorted(secret_names(refs)):
            record = await self.require_use(actor, name)
            stored[name] = StoredSecret(self._decrypt(record), _patterns(record), record.user)
        await self.refresh()
        return Credentials(refs, stored.__getitem__)

    # Redaction

    @property
    def redactor(self) -> Redactor:
        """The redactor for every secret this process knows of now."""
        return self._redaction.redactor

    def current_redactor(self) -> Redactor:
        """`redactor` as a function, for `bot.credentials.redact.RedactingFilter`."""
        return self._redaction.redactor

    def redact(self, text: str) -> str:
        """``text`` with every secret's value replaced by ``••••(NAME)``."""
        return self._redaction.redactor.redact(text)

    async def refresh(self) -> None:
        """Re-read the secrets if any changed since they were last read (here or by
        another replica): one small query when nothing did."""
        if await self._fingerprint() != self._redaction.fingerprint:
            await self.reload()

    async def reload(self) -> None:
        """Read every secret and rebuild the redactor."""
        async with self._reading:
            async with self.db.sessions() as session:
                rows = await session.execute(select(SecretRecord))
                records = list(rows.scalars().all())
            self._redaction = _Redaction(_fingerprint_of(records), self._redactor_of(records))

    async def watch(self) -> None:
        """Refresh every `REFRESH_SECONDS` until cancelled (secrets set on other replicas)."""
        while True:
            await self.clock.sleep(REFRESH_SECONDS)
            try:
                await self.refresh()
            except (sa.exc.SQLAlchemyError, OSError) as error:
                log.warning("re-reading secrets failed: %s", type(error).__name__)

    # Inside

    async def _fingerprint(self) -> tuple[tuple[int, str], ...]:
        async with self.db.sessions() as session:
            rows = await session.execute(select(SecretRecord.id, SecretRecord.set_at))
            return tuple(sorted((row_id or 0, set_at.isoformat()) for row_id, set_at in rows.all()))

    def _redactor_of(self, records: list[SecretRecord]) -> Redactor:
        values: dict[str, str] = {}
        users: dict[str, str] = {}
        for record in sorted(records, key=lambda r: (r.name, r.team_id)):
            # Two workspaces may each have a secret of the same name.
            key = record.name if record.name not in values else f"{record.name} ({record.team_id})"
            try:
                values[key] = self._decrypt(record)
            except UndecryptableToken:
                log.error("the secret %s (%s) does not decrypt", record.name, record.team_id)
                continue
            if record.user is not None:
                users[key] = record.user
        return Redactor(values, users)

    def _decrypt(self, record: SecretRecord) -> str:
        if self.keyring is None:  # start-up refuses this; see bot.credentials.store
            raise UndecryptableToken(f"the secret {record.name} is stored but no key is set")
        return self.keyring.decrypt(record.ciphertext)

    def _keyring_for_storing(self) -> Keyring:
        if self.keyring is None:
            raise SpecError(
                f"Secrets are stored encrypted, and {KEY_SETTING} is not set: ask whoever "
                f"runs the bot to set it (`{KEYGEN_COMMAND}` makes a key). Nothing was stored.",
                field="value",
            )
        return self.keyring

    async def _find(self, team_id: str, name: str) -> SecretRecord | None:
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(SecretRecord).where(
                    col(SecretRecord.team_id) == team_id, col(SecretRecord.name) == name
                )
            )
            return rows.scalars().first()

    async def _named(self, team_id: str, name: str) -> SecretRecord:
        try:
            valid = parse_target_name(name)
        except SpecError:
            raise UsageError(f"Which secret? Example: `/secret show {_EXAMPLE}`") from None
        record = await self._find(team_id, valid)
        if record is None:
            raise UsageError(
                f"There is no secret named `{valid}`. `/secret list` shows them; "
                f"`/secret set {valid} for HOST` stores one."
            )
        return record

    async def _require_owner(self, actor: Actor, record: SecretRecord) -> None:
        await self.permissions.require(
            actor.user_id, record.created_by, f"the secret *{record.name}*"
        )

    async def _change_allowed(
        self, actor: Actor, record: SecretRecord, allowed: list[str], action: str
    ) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            await session.execute(
                sa.update(SecretRecord)
                .where(col(SecretRecord.id) == record.id)
                .values(allowed=allowed, last_change=change_note(action, actor, now))
            )
            session.add(audit_entry(actor, _subject(record.name), action, now))

    async def _uses(self, team_id: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for finder in self.usage_finders:
            for name, users in (await finder(self.db, team_id)).items():
                found.setdefault(name, []).extend(users)
        return {name: sorted(users) for name, users in found.items()}


_EXAMPLE: Final = "crm-token"


def _patterns(record: SecretRecord) -> tuple[HostPattern, ...]:
    return tuple(parse_host_pattern(host) for host in record.hosts)


def _info(record: SecretRecord, used_by: list[str]) -> SecretInfo:
    return SecretInfo(
        name=record.name,
        hosts=tuple(record.hosts),
        user=record.user,
        created_by=record.created_by,
        set_by=record.set_by,
        set_at=record.set_at,
        allowed=tuple(record.allowed),
        used_by=tuple(used_by),
        last_change=record.last_change,
    )


def _set_action(spec: SecretSpec) -> str:
    hosts = ", ".join(str(host) for host in spec.hosts)
    user = f" (basic auth as {spec.user})" if spec.user else ""
    return f"set for {hosts}{user}"


def _subject(name: str) -> str:
    return f"secret:{name}"


def _fingerprint_of(records: list[SecretRecord]) -> tuple[tuple[int, str], ...]:
    return tuple(sorted((record.id or 0, record.set_at.isoformat()) for record in records))
