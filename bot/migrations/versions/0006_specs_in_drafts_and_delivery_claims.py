"""specs in drafts, and claims on deliveries

Drafts store what was proposed as a spec (JSON) instead of slash-command text, so a
Create click saves exactly what the summary showed. Drafts still open from before are
closed: their text was never a spec, and a proposal is cheap to ask for again.

Deliveries get ``claimed_until``: the processor claims a batch and commits, renders it
outside any transaction, and records the outcomes in a second one; a claim whose holder
died is taken over once it expires.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(
            sa.Column("claimed_until", bot.models.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("draft") as batch:
        batch.add_column(sa.Column("kind", sa.String(), nullable=False, server_default="trigger"))
        batch.add_column(sa.Column("spec", sa.JSON(), nullable=True))
    op.execute("UPDATE draft SET kind = 'hook' WHERE command = '/hook'")
    op.execute("UPDATE draft SET status = 'expired' WHERE status = 'open'")
    with op.batch_alter_table("draft") as batch:
        batch.drop_column("command")
        batch.drop_column("text")
        batch.alter_column("kind", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("draft") as batch:
        batch.add_column(
            sa.Column("command", sa.String(), nullable=False, server_default="/trigger")
        )
        batch.add_column(sa.Column("text", sa.String(), nullable=False, server_default=""))
    op.execute("UPDATE draft SET command = '/hook' WHERE kind = 'hook'")
    op.execute("UPDATE draft SET status = 'expired' WHERE status = 'open'")
    with op.batch_alter_table("draft") as batch:
        batch.drop_column("spec")
        batch.drop_column("kind")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("claimed_until")
