"""a message may start a new thread under a key that had one

An issue that regresses after it was resolved is a new incident: its message starts a new
thread (and becomes the key's first message), so the old, resolved one stays as it was.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("new_thread", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("new_thread", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("new_thread")
