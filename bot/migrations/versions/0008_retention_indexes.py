"""indexes for retention

Retention deletes old rows by age in small batches; these indexes make each batch a range
read instead of a scan of the whole table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 23:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_outbox_created_at", "outbox", "created_at"),
    ("ix_thread_root_created_at", "thread_root", "created_at"),
    ("ix_slack_event_received_at", "slack_event", "received_at"),
    ("ix_audit_at", "audit", "at"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _column in INDEXES:
        op.drop_index(name, table_name=table)
