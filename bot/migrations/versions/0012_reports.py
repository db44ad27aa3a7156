"""reports from data: trigger templates, what a report remembers, seen item keys

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-12 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trigger") as batch:
        batch.add_column(sa.Column("template", sa.String(), nullable=True))
        batch.add_column(sa.Column("report_state", sa.JSON(), nullable=True))
    op.create_table(
        "trigger_item",
        sa.Column("trigger_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("seen_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["trigger_id"], ["trigger.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("trigger_id", "key"),
    )
    with op.batch_alter_table("trigger_item") as batch:
        batch.create_index("ix_trigger_item_seen_at", ["seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("trigger_item") as batch:
        batch.drop_index("ix_trigger_item_seen_at")
    op.drop_table("trigger_item")
    with op.batch_alter_table("trigger") as batch:
        batch.drop_column("report_state")
        batch.drop_column("template")
