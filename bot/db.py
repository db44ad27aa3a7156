"""The database: one async engine, migrations at start-up, SQLite tuned for a bot.

SQLite runs in WAL mode with ``synchronous=NORMAL`` (durable across process crashes,
the fsync cost paid at checkpoints) and a busy timeout; one process at a time owns a
SQLite file (a lock file beside it), since leases and the scheduler assume it.
PostgreSQL needs nothing special here: several replicas may share it.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import dml as postgresql_dml
from sqlalchemy.dialects.sqlite import dml as sqlite_dml
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.config import sqlite_path, to_async_driver
from bot.errors import AlreadyRunning
from bot.jsoncodec import dumps

INCREMENTAL_VACUUM = 2  # SQLite's PRAGMA auto_vacuum value for INCREMENTAL

log = logging.getLogger(__name__)

# How long `Database.close` waits for connections still in use (a transaction takes
# milliseconds; a stuck one is left behind after this).
CLOSE_WAIT_SECONDS = 10.0

if TYPE_CHECKING:
    from bot.credentials.keys import Keyring

# Where a transaction keeps the filter that texts bound for Slack pass through before
# they are stored (see `outgoing_text_of`).
_OUTGOING_TEXT = "bot.outgoing_text"
TextFilter = Callable[[str], str]


def _unchanged(text: str) -> str:
    return text


class Database:
    """The engine, a session factory, and the things done to the database as a whole."""

    def __init__(self, url: str) -> None:
        self.url = to_async_driver(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.dialect = "sqlite" if self.is_sqlite else "postgresql"
        self.engine: AsyncEngine = _create_engine(self.url)
        # Reads need no transaction of their own: on PostgreSQL, AUTOCOMMIT saves the BEGIN
        # and ROLLBACK round trips. (SQLite's driver only begins before a write anyway, and
        # switching its isolation level would cost two thread hand-offs per session.)
        reading = self.engine if self.is_sqlite else _autocommit(self.engine)
        self.sessions = async_sessionmaker(reading, expire_on_commit=False)
        self._writing = async_sessionmaker(self.engine, expire_on_commit=False)
        self._lock_file: IO[str] | None = None
        # Every text written for Slack passes through this before it is stored: the
        # composition root sets the credential store's redactor (`bot.outbox.enqueue`).
        self.outgoing_text: TextFilter = _unchanged

    # ``sessions()`` is for reading only: each statement sees the newest committed data.
    # Changes go through ``transaction()`` (on PostgreSQL a write through ``sessions()``
    # would commit on its own, statement by statement).

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self._writing() as session, session.begin():
            session.info[_OUTGOING_TEXT] = self.outgoing_text
            yield session

    @asynccontextmanager
    async def core_transaction(self) -> AsyncIterator[AsyncConnection]:
        """Like `transaction`, for Core statements only: a connection, no ORM session.

        The session's bookkeeping cost ~10% of a webhook's CPU in the ingest round, which
        inserts rows and loads no objects.
        """
        async with self.engine.begin() as connection:
            connection.info[_OUTGOING_TEXT] = self.outgoing_text
            yield connection

    def claim_sqlite_file(self) -> None:
        """Refuse to run a second process on the same SQLite file."""
        path = sqlite_path(self.url)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(f"{path}.lock", "w")  # noqa: SIM115 - held open for the process lifetime
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise AlreadyRunning(
                f"another bot process is already using {path}; SQLite serves one process. "
                "Stop it, or use PostgreSQL (DATABASE_URL=postgresql://…) to run several."
            ) from None
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock_file = lock

    async def migrate(self, keyring: Keyring | None = None) -> None:
        """Bring the schema to the newest migration (Alembic), creating it if needed.

        ``keyring`` encrypts the credentials an older version kept in plain text. When
        a migration replaced such plaintext, SQLite's file is rebuilt (VACUUM) and its
        write-ahead log emptied, so that no freed page still holds the old values. A
        SQLite file is also switched to incremental auto-vacuum once, so that space freed
        by retention (`bot.retention`) can be given back to the file system.
        """
        if self.is_sqlite:
            await self._use_incremental_vacuum()
        async with self.engine.begin() as conn:
            replaced_plaintext = await conn.run_sync(_upgrade_to_head, keyring)
        if replaced_plaintext and self.is_sqlite:
            await self._rebuild_sqlite_file()

    async def _rebuild_sqlite_file(self) -> None:
        async with self.engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(sa.text("VACUUM"))
            await autocommit.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))

    async def _use_incremental_vacuum(self) -> None:
        async with self.engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA auto_vacuum")).scalar()
            if mode == INCREMENTAL_VACUUM:
                return
            # The mode of an existing file changes only with a VACUUM, outside a transaction.
            await conn.exec_driver_sql(f"PRAGMA auto_vacuum={INCREMENTAL_VACUUM}")
            await conn.commit()
            raw = await conn.get_raw_connection()
            cursor = await raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
            await cursor.close()

    async def is_reachable(self) -> bool:
        """True when a trivial query answers."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (sa.exc.SQLAlchemyError, OSError):
            return False
        return True

    async def at_newest_migration(self) -> bool:
        """True when the schema is at the newest migration this code knows."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(current_revision_matches_head)

    async def close(self) -> None:
        """Close every connection, waiting first for those still in use to come back.

        ``dispose()`` closes only the idle connections. One still checked out (say by a
        group-commit round whose callers were cancelled at shutdown) would later be
        returned to the discarded pool and never closed: aiosqlite then warns when the
        garbage collector finds it.
        """
        await self._connections_returned()
        await self.engine.dispose()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    async def _connections_returned(self) -> None:
        """Wait (up to `CLOSE_WAIT_SECONDS`) until no connection is checked out."""
        pool = self.engine.pool
        if not isinstance(pool, sa.QueuePool):
            return
        returned = asyncio.Event()

        def on_checkin(*_: Any) -> None:
            returned.set()

        sa.event.listen(pool, "checkin", on_checkin)
        try:
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                while pool.checkedout():
                    await returned.wait()
                    returned.clear()
        except TimeoutError:
            log.warning("closing the database with %d connection(s) in use", pool.checkedout())
        finally:
            sa.event.remove(pool, "checkin", on_checkin)


def _create_engine(url: str) -> AsyncEngine:
    if not url.startswith("sqlite"):
        # 20 kept open: with fewer, bursts of slash commands overflowed the pool, and each
        # overflow connection (a new PostgreSQL backend) was opened and closed per request.
        return create_async_engine(
            url, pool_size=20, max_overflow=10, pool_pre_ping=True, json_serializer=dumps
        )
    # One connection: SQLite allows one writer at a time, and a second connection waiting
    # for the lock sleeps in SQLite's busy handler (1, 2, 5 … 100 ms steps). Queuing for
    # the connection in the pool instead costs microseconds.
    engine = create_async_engine(
        url,
        connect_args={"timeout": 30},
        pool_size=1,
        max_overflow=0,
        pool_timeout=60,
        pool_reset_on_return=None,
        json_serializer=dumps,
    )
    sa.event.listen(engine.sync_engine, "connect", _tune_sqlite)
    return engine


def _autocommit(engine: AsyncEngine) -> AsyncEngine:
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(
    connection: sa.Connection | None = None, keyring: Keyring | None = None
) -> Config:
    """Alembic's configuration, pointing at the migrations shipped inside the package.

    Migrations find the open ``connection`` and the ``keyring`` (SECRETS_KEY, or None)
    in ``config.attributes``; none of them reads the environment. One that replaced
    plaintext credentials sets ``config.attributes["replaced_plaintext"]``.
    """
    config = Config()
    config.set_main_option("script_location", str(Path(str(resources.files("bot"))) / "migrations"))
    config.attributes["connection"] = connection
    config.attributes["keyring"] = keyring
    return config


def _upgrade_to_head(connection: sa.Connection, keyring: Keyring | None) -> bool:
    """Upgrade; True when a migration replaced plaintext credentials."""
    config = alembic_config(connection, keyring)
    command.upgrade(config, "head")
    return bool(config.attributes.get("replaced_plaintext"))


def current_revision_matches_head(connection: sa.Connection) -> bool:
    """True when the database schema is at the newest migration."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return MigrationContext.configure(connection).get_current_revision() == head


# SQLAlchemy's dialect INSERTs (and their ON CONFLICT clauses) opt out of its statement
# cache, because an ON CONFLICT clause may carry arbitrary targets and SET values. Ours
# always reads "DO NOTHING" with no target, so the cache key SQLAlchemy derives from the
# table, columns and RETURNING is complete: these subclasses opt back in. Uncached, every
# round of webhook deliveries and trigger claims compiled its INSERT afresh.
class _SqliteInsert(sqlite.Insert):
    inherit_cache = True


class _SqliteDoNothing(sqlite_dml.OnConflictDoNothing):
    inherit_cache = True
    _traverse_internals: Any = []  # no target, nothing to set: the class is the key


class _PostgresInsert(postgresql.Insert):
    inherit_cache = True


class _PostgresDoNothing(postgresql_dml.OnConflictDoNothing):
    inherit_cache = True
    _traverse_internals: Any = []


def insert_skipping_conflicts(table: Any, dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` into ``table`` for the named SQL dialect,
    compiled once and then taken from SQLAlchemy's statement cache.

    SQLite and PostgreSQL spell it alike; SQLAlchemy keeps it in each dialect's module.
    """
    if dialect == "postgresql":
        statement: Any = _PostgresInsert(table)
        statement._post_values_clause = _PostgresDoNothing()
    else:
        statement = _SqliteInsert(table)
        statement._post_values_clause = _SqliteDoNothing()
    return statement


# Where statements run: an ORM session, or a Core connection (`core_transaction`).
Executor = AsyncSession | AsyncConnection


def insert_adding(table: Any, dialect: str, keys: Sequence[str], added: Sequence[str]) -> Any:
    """``INSERT … ON CONFLICT (keys) DO UPDATE`` adding the new row's ``added`` columns to
    the stored row's: a counter that concurrent writers (replicas too) add to atomically."""
    module = postgresql if dialect == "postgresql" else sqlite
    insert = module.insert(table)
    return insert.on_conflict_do_update(
        index_elements=[table.c[name] for name in keys],
        set_={name: table.c[name] + insert.excluded[name] for name in added},
    )


def outgoing_text_of(executor: Executor) -> TextFilter:
    """The filter for texts bound for Slack in this transaction (unchanged outside one
    opened by `Database.transaction` or `Database.core_transaction`)."""
    found: TextFilter = executor.info.get(_OUTGOING_TEXT, _unchanged)
    return found


async def insert_ignoring_conflicts(
    session: Executor, table: type[Any], rows: list[dict[str, Any]]
) -> int:
    """INSERT rows, skipping any that break a unique constraint; returns how many went in."""
    if not rows:
        return 0
    dialect = session.dialect if isinstance(session, AsyncConnection) else session.bind.dialect
    statement = insert_skipping_conflicts(table, dialect.name).values(rows)
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
