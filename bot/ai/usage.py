"""The AI budget's counts in the database, so every replica spends from the same budget.

One row per workspace and UTC day (``ai_usage``); spending adds to it with one
``INSERT … ON CONFLICT DO UPDATE SET tokens = tokens + excluded.tokens`` statement, which
both SQLite and PostgreSQL apply atomically. Old days are deleted by `bot.retention`.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.db import Database
from bot.models import AIUsage

_USAGE: sa.Table = AIUsage.__table__  # type: ignore[attr-defined]


class DatabaseUsageStore:
    """A `bot.ai.budget.UsageStore` in the ``ai_usage`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def used(self, team: str, day: date) -> int:
        """Tokens ``team`` spent on ``day`` (0 when nothing was recorded)."""
        query = sa.select(_USAGE.c.tokens).where(_USAGE.c.team_id == team, _USAGE.c.day == day)
        async with self._db.sessions() as session:
            return int((await session.execute(query)).scalar() or 0)

    async def add(self, team: str, day: date, tokens: int) -> None:
        """Add ``tokens`` to what ``team`` spent on ``day``, in one atomic statement."""
        async with self._db.transaction() as session:
            await session.execute(_add_statement(self._db.dialect, team, day, tokens))


def _add_statement(dialect: str, team: str, day: date, tokens: int) -> sa.Executable:
    module = postgresql if dialect == "postgresql" else sqlite
    insert = module.insert(_USAGE).values(team_id=team, day=day, tokens=tokens)
    statement: sa.Executable = insert.on_conflict_do_update(
        index_elements=[_USAGE.c.team_id, _USAGE.c.day],
        set_={"tokens": _USAGE.c.tokens + insert.excluded.tokens},
    )
    return statement
