"""state at a glance: hourly roll-ups of trigger runs and hourly counts of hook requests

``trigger_rollup`` keeps each trigger's runs per UTC hour (runs, problems, a latency
histogram) for 90 days, while raw runs keep only the last 200; it starts with the raw
runs already stored. ``hook_hour`` counts each hook's stored deliveries and the requests
refused for failing verification, per UTC hour.

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-05 01:00:00
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import op

import bot.models
from bot.glance import roll_up

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trigger_rollup",
        sa.Column("trigger_id", sa.Integer(), nullable=False),
        sa.Column("hour", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
        sa.Column("latency", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["trigger_id"], ["trigger.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("trigger_id", "hour"),
    )
    op.create_table(
        "hook_hour",
        sa.Column("hook_id", sa.Integer(), nullable=False),
        sa.Column("hour", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["hook_id"], ["hook.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("hook_id", "hour"),
    )
    with op.batch_alter_table("trigger_rollup") as batch:
        batch.create_index("ix_trigger_rollup_hour", ["hour"], unique=False)
    with op.batch_alter_table("hook_hour") as batch:
        batch.create_index("ix_hook_hour_hour", ["hour"], unique=False)
    _roll_up_stored_runs()


class _StoredRun(NamedTuple):
    """A ``trigger_run`` row as `roll_up` reads it (`bot.glance.Run`)."""

    scheduled_for: datetime
    duration_ms: float | None
    outcome: str


def _roll_up_stored_runs() -> None:
    """Start the roll-ups with the runs already stored, so the bars are not empty at first."""
    connection = op.get_bind()
    runs = sa.table(
        "trigger_run",
        sa.column("trigger_id", sa.Integer()),
        sa.column("scheduled_for", bot.models.UTCDateTime(timezone=True)),
        sa.column("duration_ms", sa.Float()),
        sa.column("outcome", sa.String()),
    )
    by_trigger: dict[int, list[_StoredRun]] = defaultdict(list)
    for row in connection.execute(sa.select(runs)).mappings():
        by_trigger[row["trigger_id"]].append(
            _StoredRun(row["scheduled_for"], row["duration_ms"], row["outcome"])
        )
    rows: list[dict[str, Any]] = [
        {
            "trigger_id": trigger_id,
            "hour": rollup.hour,
            "runs": rollup.runs,
            "problems": rollup.problems,
            "latency": rollup.latency.to_dict(),
        }
        for trigger_id, stored in by_trigger.items()
        for rollup in roll_up(stored, max(run.scheduled_for for run in stored))
    ]
    if rows:
        rollups = sa.table(
            "trigger_rollup",
            sa.column("trigger_id", sa.Integer()),
            sa.column("hour", bot.models.UTCDateTime(timezone=True)),
            sa.column("runs", sa.Integer()),
            sa.column("problems", sa.Integer()),
            sa.column("latency", sa.JSON()),
        )
        op.bulk_insert(rollups, rows)


def downgrade() -> None:
    with op.batch_alter_table("hook_hour") as batch:
        batch.drop_index("ix_hook_hour_hour")
    with op.batch_alter_table("trigger_rollup") as batch:
        batch.drop_index("ix_trigger_rollup_hour")
    op.drop_table("hook_hour")
    op.drop_table("trigger_rollup")
