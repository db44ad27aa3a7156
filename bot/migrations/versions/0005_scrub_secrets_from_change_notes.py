"""scrub secrets from change notes

Before this revision ``/hook set NAME secret=VALUE`` was noted, value included, in the
hook's ``last_change`` (which ``/hook show`` displays to everyone) and in the audit log.
The values are replaced with the note that is written now.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 11:25:00
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SECRET_VALUE = re.compile(r"secret=\S+")
REDACTED = "secret=(new secret)"


def upgrade() -> None:
    connection = op.get_bind()
    _scrub(connection, "hook", "last_change")
    _scrub(connection, "audit", "action")


def downgrade() -> None:
    pass  # the values are gone, as they should be


def _scrub(connection: sa.Connection, name: str, column: str) -> None:
    table = sa.table(name, sa.column("id"), sa.column(column))
    noted = table.c[column]
    rows = connection.execute(sa.select(table.c.id, noted).where(noted.like("%secret=%"))).all()
    for row_id, note in rows:
        connection.execute(
            sa.update(table)
            .where(table.c.id == row_id)
            .values({column: SECRET_VALUE.sub(REDACTED, note)})
        )
