"""Hooks as stored: create, find, change, delete — and a short-lived cache by token.

The receiver looks a hook up on every request; the cache keeps that off the database.
Entries live a couple of seconds, so a pause, rotate or delete made through another
replica takes effect almost at once, and changes made here are invalidated at once.

Only the SHA-256 of a URL token is stored (`hash_token`), and the cache is keyed by it.
A signing secret is stored encrypted; the cache decrypts it once, when the hook is
loaded, so a request costs no decryption.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from bot.audit import Actor, audit_entry, change_note
from bot.clock import Clock
from bot.credentials.keys import Keyring, UndecryptableToken, hash_token
from bot.db import Database
from bot.models import Delivery, Hook, OutboxMessage

CACHE_SECONDS = 2.0


def new_token() -> str:
    """A URL token with 192 random bits."""
    return secrets.token_urlsafe(24)


def new_secret() -> str:
    """A signing secret to give the sender."""
    return secrets.token_hex(20)


@dataclass(frozen=True)
class LiveHook:
    """A hook as the receiver uses it: the row, and its signing secret in clear text
    (None for an unsigned hook). Kept in memory only; the row's ``secret`` stays encrypted."""

    hook: Hook
    signing_secret: str | None = field(repr=False)


@dataclass
class HookCache:
    """Hooks by the hash of their URL token, cached for a moment."""

    db: Database
    clock: Clock
    keyring: Keyring | None
    _entries: dict[str, tuple[float, LiveHook | None]] = field(default_factory=dict)

    async def by_token(self, token: str) -> LiveHook | None:
        """The hook whose URL carries ``token``, if any."""
        token_hash = hash_token(token)
        now = self.clock.now().timestamp()
        cached = self._entries.get(token_hash)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        async with self.db.sessions() as session:
            result = await session.execute(select(Hook).where(col(Hook.token_hash) == token_hash))
            hook = result.scalars().first()
        live = None if hook is None else LiveHook(hook, self._signing_secret(hook))
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[token_hash] = (now, live)
        return live

    def forget(self, *token_hashes: str) -> None:
        """Drop the cached hooks with these token hashes (after a change)."""
        for token_hash in token_hashes:
            self._entries.pop(token_hash, None)

    def _signing_secret(self, hook: Hook) -> str | None:
        if hook.secret is None:
            return None
        if self.keyring is None:  # start-up refuses this; see bot.credentials.store
            raise UndecryptableToken(f"hook {hook.name} is signed but SECRETS_KEY is not set")
        return self.keyring.decrypt(hook.secret)


async def find_hook(db: Database, team_id: str, name: str) -> Hook | None:
    async with db.sessions() as session:
        result = await session.execute(
            select(Hook).where(col(Hook.team_id) == team_id, col(Hook.name) == name)
        )
        return result.scalars().first()


async def list_hooks(db: Database, team_id: str, *, created_by: str | None = None) -> list[Hook]:
    """The workspace's hooks by name (only ``created_by``'s when given)."""
    query = select(Hook).where(col(Hook.team_id) == team_id)
    if created_by is not None:
        query = query.where(col(Hook.created_by) == created_by)
    async with db.sessions() as session:
        result = await session.execute(query.order_by(col(Hook.name)))
        return list(result.scalars().all())


async def save_hook(db: Database, hook: Hook, *, actor: Actor, action: str, now: datetime) -> Hook:
    """Insert or update ``hook`` and record who did what."""
    hook.last_change = change_note(action, actor, now)
    async with db.transaction() as session:
        merged = await session.merge(hook)
        session.add(audit_entry(actor, subject_of(hook), action, now))
    return merged


async def delete_hook(db: Database, hook: Hook, *, actor: Actor, now: datetime) -> None:
    async with db.transaction() as session:
        await session.execute(sa.delete(Delivery).where(col(Delivery.hook_id) == hook.id))
        await session.execute(sa.delete(Hook).where(col(Hook.id) == hook.id))
        session.add(audit_entry(actor, subject_of(hook), "deleted", now))


async def recent_deliveries(
    db: Database, hook_id: int, limit: int = 20
) -> list[tuple[Delivery, OutboxMessage | None]]:
    """The newest deliveries of a hook, each with the Slack message it became (if any)."""
    async with db.sessions() as session:
        result = await session.execute(
            select(Delivery, OutboxMessage)
            .join(
                OutboxMessage,
                col(OutboxMessage.source) == sa.literal("delivery:") + col(Delivery.id),
                isouter=True,
            )
            .where(col(Delivery.hook_id) == hook_id)
            .order_by(col(Delivery.received_at).desc())
            .limit(limit)
        )
        return [(delivery, message) for delivery, message in result.all()]


async def get_delivery(db: Database, hook_id: int, delivery_id: str) -> Delivery | None:
    async with db.sessions() as session:
        delivery = await session.get(Delivery, delivery_id)
    return delivery if delivery is not None and delivery.hook_id == hook_id else None


def subject_of(hook: Hook) -> str:
    """How the audit log names a hook."""
    return f"hook:{hook.name}"
