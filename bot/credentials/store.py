"""What the credential store does to the database as a whole: check SECRETS_KEY at
start-up against what is stored, and re-encrypt everything with the first key.

Encrypted values live in two columns: ``secret.ciphertext`` (``/secret``) and
``hook.secret`` (webhook signing secrets).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, select

from bot.credentials.keys import Keyring, keyring_for_startup
from bot.db import Database
from bot.models import Hook, SecretRecord


async def sample_ciphertext(db: Database) -> str | None:
    """Any one encrypted value in the database, or None when nothing is encrypted."""
    async with db.sessions() as session:
        found = await session.execute(select(SecretRecord.ciphertext).limit(1))
        sample = found.scalar_one_or_none()
        if sample is None:
            hooks = await session.execute(
                select(Hook.secret).where(col(Hook.secret).is_not(None)).limit(1)
            )
            sample = hooks.scalar_one_or_none()
    return sample


async def open_with_key(db: Database, setting: str | None) -> Keyring | None:
    """Migrate the database with SECRETS_KEY (``setting``), then check that the key opens
    what is stored: `MalformedKey`, `MissingKey` or `WrongKey` (each a `ConfigError`,
    one line naming the variable) when it cannot. None when no key is set and nothing is
    encrypted: the bot runs, and storing a credential asks for a key."""
    keyring = Keyring.from_setting(setting) if setting and setting.strip() else None
    await db.migrate(keyring)
    return keyring_for_startup(setting, await sample_ciphertext(db))


async def rekey_all(db: Database, keyring: Keyring) -> int:
    """Re-encrypt every stored credential that opens only with an older key, in one
    transaction; returns how many changed. `UndecryptableToken` (and nothing changed)
    when one opens with no key at all."""
    changed = 0
    async with db.transaction() as session:
        for row_id, ciphertext in (
            await session.execute(select(SecretRecord.id, SecretRecord.ciphertext))
        ).all():
            if keyring.needs_rekey(ciphertext):
                await session.execute(
                    sa.update(SecretRecord)
                    .where(col(SecretRecord.id) == row_id)
                    .values(ciphertext=keyring.rekey(ciphertext))
                )
                changed += 1
        signed = await session.execute(
            select(Hook.id, Hook.secret).where(col(Hook.secret).is_not(None))
        )
        for hook_id, secret in signed.all():
            if keyring.needs_rekey(secret):
                await session.execute(
                    sa.update(Hook)
                    .where(col(Hook.id) == hook_id)
                    .values(secret=keyring.rekey(secret))
                )
                changed += 1
    return changed
