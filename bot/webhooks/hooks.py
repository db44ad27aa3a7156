"""Hooks as stored: create, find, change, delete — and a short-lived cache by token.

The receiver looks a hook up on every request; the cache keeps that off the database.
Entries live a couple of seconds, so a pause, rotate or delete made through another
replica takes effect almost at once, and changes made here are invalidated at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.models import AuditEntry, Delivery, Hook, OutboxMessage

CACHE_SECONDS = 2.0


def new_token() -> str:
    """A URL token with 192 random bits."""
    return secrets.token_urlsafe(24)


def new_secret() -> str:
    """A signing secret to give the sender."""
    return secrets.token_hex(20)


@dataclass
class HookCache:
    """Hooks by URL token, cached for a moment."""

    db: Database
    clock: Clock
    _entries: dict[str, tuple[float, Hook | None]] = field(default_factory=dict)

    async def by_token(self, token: str) -> Hook | None:
        now = self.clock.now().timestamp()
        cached = self._entries.get(token)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        async with self.db.sessions() as session:
            result = await session.execute(select(Hook).where(col(Hook.token) == token))
            hook = result.scalars().first()
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[token] = (now, hook)
        return hook

    def forget(self, *tokens: str) -> None:
        for token in tokens:
            self._entries.pop(token, None)


async def find_hook(db: Database, team_id: str, name: str) -> Hook | None:
    async with db.sessions() as session:
        result = await session.execute(
            select(Hook).where(col(Hook.team_id) == team_id, col(Hook.name) == name)
        )
        return result.scalars().first()


async def list_hooks(db: Database, team_id: str) -> list[Hook]:
    async with db.sessions() as session:
        result = await session.execute(
            select(Hook).where(col(Hook.team_id) == team_id).order_by(col(Hook.name))
        )
        return list(result.scalars().all())


async def save_hook(db: Database, hook: Hook, *, user_id: str, action: str, now: datetime) -> Hook:
    """Insert or update ``hook`` and record who did what."""
    hook.last_change = f"{action} by <@{user_id}> at {now:%Y-%m-%d %H:%M} UTC"
    async with db.transaction() as session:
        merged = await session.merge(hook)
        session.add(_audit(hook, user_id, action, now))
    return merged


async def delete_hook(db: Database, hook: Hook, *, user_id: str, now: datetime) -> None:
    async with db.transaction() as session:
        await session.execute(sa.delete(Delivery).where(col(Delivery.hook_id) == hook.id))
        await session.execute(sa.delete(Hook).where(col(Hook.id) == hook.id))
        session.add(_audit(hook, user_id, "deleted", now))


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


def _audit(hook: Hook, user_id: str, action: str, now: datetime) -> AuditEntry:
    return AuditEntry(
        team_id=hook.team_id, user_id=user_id, subject=f"hook:{hook.name}", action=action, at=now
    )
