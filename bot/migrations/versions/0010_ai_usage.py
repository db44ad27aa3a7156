"""the optional AI step: its daily token budget, and where hooks and triggers ask for it

``ai_usage`` counts the tokens each workspace spent per UTC day (added to atomically, so
replicas share one budget). Hooks get ``categorise`` (the labels) and ``summary``;
triggers get ``settings``, what ``/trigger set`` changes (kept apart from ``options``,
which the edit form re-reads with the ``/trigger add`` grammar and replaces).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_usage",
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "day"),
    )
    with op.batch_alter_table("hook") as batch:
        batch.add_column(sa.Column("categorise", sa.String(), nullable=True))
        batch.add_column(
            sa.Column("summary", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("trigger") as batch:
        batch.add_column(sa.Column("settings", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("hook") as batch:
        batch.alter_column("summary", server_default=None)
    with op.batch_alter_table("trigger") as batch:
        batch.alter_column("settings", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("trigger") as batch:
        batch.drop_column("settings")
    with op.batch_alter_table("hook") as batch:
        batch.drop_column("summary")
        batch.drop_column("categorise")
    op.drop_table("ai_usage")
