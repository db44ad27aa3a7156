"""credentials: the secret table; hook secrets encrypted, hook URL tokens hashed

Before this revision a hook's signing secret and its URL token (the only credential of
an unsigned hook) were stored as they are. Now the signing secret is encrypted with the
first key of SECRETS_KEY (HMAC needs it back), and the token is replaced by its SHA-256,
which is what an incoming request's token is looked up by: existing URLs keep working,
but the database no longer holds a working one.

The key comes from ``config.attributes["keyring"]`` (`bot.db.alembic_config`), never
from the environment. Without one, a database holding signing secrets is refused before
anything changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from alembic import context, op

import bot.models
from bot.credentials.keys import KEY_SETTING, KEYGEN_COMMAND, Keyring, MissingKey

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_HOOK = sa.table(
    "hook", sa.column("id"), sa.column("token"), sa.column("token_hash"), sa.column("secret")
)


def upgrade() -> None:
    connection = op.get_bind()
    keyring = _keyring()
    _refuse_without_key(connection, keyring)
    _create_secret_table()
    with op.batch_alter_table("hook") as batch:
        batch.add_column(sa.Column("token_hash", sa.String(), nullable=True))
    if _hash_tokens(connection):
        # Tells bot.db to rebuild a SQLite file, whose freed pages still hold the plaintext.
        context.config.attributes["replaced_plaintext"] = True
    _encrypt_secrets(connection, keyring)
    with op.batch_alter_table("hook") as batch:
        batch.drop_index("ix_hook_token")
        batch.drop_column("token")
        batch.alter_column("token_hash", existing_type=sa.String(), nullable=False)
        batch.create_index("ix_hook_token_hash", ["token_hash"], unique=True)


def downgrade() -> None:
    # A hash cannot be turned back into a token: every hook gets a new URL (shown by
    # the older version's /hook show); signing secrets are decrypted again.
    import secrets

    connection = op.get_bind()
    keyring = _keyring()
    _refuse_without_key(connection, keyring)
    with op.batch_alter_table("hook") as batch:
        batch.add_column(sa.Column("token", sa.String(), nullable=True))
    for hook_id, secret in connection.execute(sa.select(_HOOK.c.id, _HOOK.c.secret)).all():
        values: dict[str, Any] = {"token": secrets.token_urlsafe(24)}
        if secret is not None:
            assert keyring is not None  # _refuse_without_key: signed hooks need a key
            values["secret"] = keyring.decrypt(secret)
        connection.execute(sa.update(_HOOK).where(_HOOK.c.id == hook_id).values(values))
    with op.batch_alter_table("hook") as batch:
        batch.drop_index("ix_hook_token_hash")
        batch.drop_column("token_hash")
        batch.alter_column("token", existing_type=sa.String(), nullable=False)
        batch.create_index("ix_hook_token", ["token"], unique=True)
    op.drop_table("secret")


def _keyring() -> Keyring | None:
    keyring: Keyring | None = context.config.attributes.get("keyring")
    return keyring


def _refuse_without_key(connection: sa.Connection, keyring: Keyring | None) -> None:
    if keyring is not None:
        return
    signed = connection.execute(
        sa.select(sa.func.count()).select_from(_HOOK).where(_HOOK.c.secret.is_not(None))
    ).scalar_one()
    if signed:
        raise MissingKey(
            f"{KEY_SETTING} is not set, but the database holds hook signing secrets that "
            f"this version stores encrypted: set {KEY_SETTING} (make a key with "
            f"`{KEYGEN_COMMAND}`) and start again"
        )


def _create_secret_table() -> None:
    op.create_table(
        "secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("ciphertext", sa.String(), nullable=False),
        sa.Column("user", sa.String(), nullable=True),
        sa.Column("allowed", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(), nullable=False),
        sa.Column("set_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_change", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "name"),
    )


def _hash_tokens(connection: sa.Connection) -> int:
    """Store each token's hash; returns how many hooks there are."""
    # The same digest as bot.credentials.keys.hash_token, written out so that this
    # migration keeps meaning what it meant when it ran.
    hooks = connection.execute(sa.select(_HOOK.c.id, _HOOK.c.token)).all()
    for hook_id, token in hooks:
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        connection.execute(sa.update(_HOOK).where(_HOOK.c.id == hook_id).values(token_hash=digest))
    return len(hooks)


def _encrypt_secrets(connection: sa.Connection, keyring: Keyring | None) -> None:
    signed = connection.execute(
        sa.select(_HOOK.c.id, _HOOK.c.secret).where(_HOOK.c.secret.is_not(None))
    ).all()
    for hook_id, secret in signed:
        assert keyring is not None  # _refuse_without_key: signed hooks need a key
        encrypted = keyring.encrypt(secret)
        connection.execute(sa.update(_HOOK).where(_HOOK.c.id == hook_id).values(secret=encrypted))
