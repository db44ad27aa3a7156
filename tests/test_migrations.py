"""The Alembic migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import bot.models  # noqa: F401  - registers the tables
from bot.db import Database, current_revision_matches_head
from tests.conftest import reset_postgres


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_migrations_match_the_models(database_url: str) -> None:
    if database_url.startswith("postgres"):
        await reset_postgres(database_url)
    db = Database(database_url)
    try:
        await db.migrate()
        await db.migrate()  # a second run is a no-op
        async with db.engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
            )
            at_head = await conn.run_sync(current_revision_matches_head)
    finally:
        await db.close()
    assert differences == []
    assert at_head
