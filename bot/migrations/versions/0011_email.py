"""email triggers: their routing rules

An email trigger keeps its rules (``/trigger route``) in ``trigger.routes``: a JSON list
of ``{"rule": …, "channel": …}`` in the order they are tried. Its mailbox position lives
in the existing ``state`` document.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trigger") as batch:
        batch.add_column(sa.Column("routes", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("trigger") as batch:
        batch.alter_column("routes", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("trigger") as batch:
        batch.drop_column("routes")
