"""The Alembic migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import bot.models  # noqa: F401  - registers the tables
from bot.db import Database, alembic_config, current_revision_matches_head
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


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_secrets_noted_by_older_versions_are_scrubbed(database_url: str) -> None:
    if database_url.startswith("postgres"):
        await reset_postgres(database_url)
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0004"))
            await conn.execute(
                sa.text(
                    "INSERT INTO hook (team_id, name, channel_id, preset, token, paused,"
                    " rejected, created_by, created_at, last_change) VALUES ('T', 'h', 'C',"
                    " 'generic', 'tok', false, 0, 'U', :at, :note)"
                ),
                {"at": datetime(2026, 1, 1), "note": "set secret=hunter2-old by <@U> at x"},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO audit (team_id, user_id, subject, action, at)"
                    " VALUES ('T', 'U', 'hook:h', 'set secret=hunter2-old threads=off', :at)"
                ),
                {"at": datetime(2026, 1, 1)},
            )
        await db.migrate()
        async with db.engine.connect() as conn:
            note = (await conn.execute(sa.text("SELECT last_change FROM hook"))).scalar_one()
            action = (await conn.execute(sa.text("SELECT action FROM audit"))).scalar_one()
    finally:
        await db.close()
    assert note == "set secret=(new secret) by <@U> at x"
    assert action == "set secret=(new secret) threads=off"
