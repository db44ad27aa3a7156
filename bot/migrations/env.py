"""Alembic environment. The bot passes an open connection (see `bot.db.Database.migrate`)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import bot.models  # noqa: F401  - registers the tables on SQLModel.metadata

connection = context.config.attributes.get("connection")
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
