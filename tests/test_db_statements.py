"""`bot.db.insert_skipping_conflicts`: skips duplicates, and is compiled once then cached."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine.default import CacheStats

from bot.db import Database, insert_skipping_conflicts
from bot.models import OutboxChannel
from tests.conftest import reset_postgres

CHANNELS: sa.Table = OutboxChannel.__table__  # type: ignore[attr-defined]


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_duplicates_are_skipped_and_the_statement_comes_from_the_cache(
    database_url: str,
) -> None:
    if database_url.startswith("postgres"):
        await reset_postgres(database_url)
    db = Database(database_url)
    try:
        await db.migrate()
        first = await _insert(db, ["C1", "C2"])
        second = await _insert(db, ["C2", "C3"])
    finally:
        await db.close()
    assert sorted(first[0]) == ["C1", "C2"] and second[0] == ["C3"]
    assert second[1] is CacheStats.CACHE_HIT  # compiled once, then reused


async def _insert(db: Database, channels: list[str]) -> tuple[list[str], Any]:
    statement = insert_skipping_conflicts(CHANNELS, db.dialect).returning(CHANNELS.c.channel)
    async with db.core_transaction() as conn:
        result = await conn.execute(statement, [{"channel": c} for c in channels])
        return list(result.scalars().all()), result.context.cache_hit


def test_the_cached_statement_is_not_a_plain_insert() -> None:
    skipping = insert_skipping_conflicts(CHANNELS, "sqlite")
    assert skipping._generate_cache_key() != sa.insert(CHANNELS)._generate_cache_key()
    assert "ON CONFLICT DO NOTHING" in str(skipping.compile(dialect=sa.dialects.sqlite.dialect()))
