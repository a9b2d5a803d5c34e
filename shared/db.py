"""PostgreSQL pool and the forward-only migration runner."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import asyncpg
import pydantic_core
from asyncpg.pool import PoolConnectionProxy

from shared.logging import get_logger

log = get_logger(__name__)

if TYPE_CHECKING:
    # What commands, stores and handlers receive: a plain connection or one lent by the pool.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:
    Connection = asyncpg.Connection

PLATFORM_MIGRATIONS = Path(__file__).parent / "sql"
_MIGRATION_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")
# One lock id for all migration runs: two processes of one service starting together must not
# both apply the same file.
_MIGRATION_LOCK = 0x656B_6174_6D69


class MigrationError(RuntimeError):
    """A migration file is malformed, or one already applied was changed afterwards."""


@dataclass(frozen=True)
class Migration:
    component: str
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def _jsonb_text(value: object) -> str:
    return pydantic_core.to_json(value).decode()


def _jsonb_codec(conn: asyncpg.Connection) -> object:
    # pydantic-core's JSON: a third of the standard library's time to encode a profile, half to
    # decode one; every write and read of a document column goes through it.
    return conn.set_type_codec(
        "jsonb", encoder=_jsonb_text, decoder=pydantic_core.from_json, schema="pg_catalog"
    )


async def _init_connection(conn: asyncpg.Connection) -> None:
    await _jsonb_codec(conn)  # type: ignore[misc]


@asynccontextmanager
async def unit_of_work(db: asyncpg.Pool | Connection) -> AsyncIterator[Connection]:
    """One transaction for a use case: opened on a pool connection, or joined when the caller
    passes its own connection (an event handler's batch, a saga step), as a savepoint there.

    Commands take `db` and run their whole change inside this block, so the same command serves
    an HTTP request (pool) and a handler composing it with others (connection): either all of
    it commits with the caller, or none of it does.
    """
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with db.transaction():
            yield db


class StaleWrite(Exception):
    """A write guarded on the version it read found the row changed since (another write came
    first) and wrote nothing: read again and decide again."""


T = TypeVar("T")
# Attempts of an optimistic write without a lock; each failure means another write of the
# aggregate committed in between, and the attempt after them takes the lock.
UNLOCKED_ATTEMPTS = 3


async def optimistically(
    db: asyncpg.Pool | Connection,
    attempt: Callable[[Connection, bool], Awaitable[T]],
    unlocked: int = UNLOCKED_ATTEMPTS,
) -> T:
    """Run `attempt(conn, lock)`: read the aggregate (locking it with `lock`), decide, and write
    it in one statement guarded on what was read, raising `StaleWrite` when that wrote nothing.

    The first `unlocked` attempts read without a lock and outside a transaction (on a pool: a
    read and one statement, two round trips, and no row lock held while Python decides); each
    stale one is run again from its read. After them the aggregate is contended: the last
    attempt reads it under a lock in a unit of work, which its write cannot lose, so writers of
    one aggregate queue instead of racing without end.

    On a caller's connection the attempts join its transaction: a retry still reads the latest
    committed row (READ COMMITTED: each statement sees what committed before it) and a stale
    statement wrote nothing to undo. An attempt that writes twice opens a `unit_of_work` for
    its writes.
    """
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await optimistically(conn, attempt, unlocked)
    for _ in range(unlocked):
        try:
            return await attempt(db, False)
        except StaleWrite:
            continue
    async with unit_of_work(db) as conn:
        return await attempt(conn, True)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool connections carry no session state (no SET, LISTEN or session advisory lock: those
    use their own connections), so the default reset query on every release is a round trip for
    nothing; an unfinished transaction is still rolled back by asyncpg before this runs."""


class FairPool(asyncpg.Pool):
    """asyncpg's pool, lending its connections in the order they were asked for.

    asyncpg's own queue lets a task that asks just as a connection comes back take it before
    the one woken for it, which then queues again at the back: with more concurrent requests
    than connections, a few of them waited 10 to 50 times the median for a connection (a p99
    of 200 to 500 ms at 32 concurrent requests on 10 connections). A FIFO semaphore of the
    pool's size in front of the queue hands each connection released to the oldest waiter.
    """

    def __init__(self, *args: Any, max_size: int, **kwargs: Any) -> None:
        super().__init__(*args, max_size=max_size, **kwargs)
        self._turns = asyncio.Semaphore(max_size)

    async def _acquire(self, timeout: float | None) -> Any:
        if timeout is None:
            await self._turns.acquire()
        else:
            started = time.monotonic()
            await asyncio.wait_for(self._turns.acquire(), timeout)
            timeout = max(timeout - (time.monotonic() - started), 0.001)
        try:
            return await super()._acquire(timeout)  # type: ignore[misc]
        except BaseException:
            self._turns.release()
            raise

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:
        lent = (
            type(connection) is PoolConnectionProxy
            and connection._holder._pool is self
            and getattr(connection, "_con", None) is not None
        )
        try:
            await super().release(connection, timeout=timeout)
        finally:
            if lent:
                self._turns.release()


async def create_pool(dsn: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    # `asyncpg.create_pool` with its defaults, building the fair pool instead of its own.
    pool = FairPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        reset=_keep_session,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
    )
    await pool
    return pool


def load_migrations(component: str, directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"{path}: migration files are named NNN_description.sql (lower case)"
            )
        migrations.append(Migration(component, match.group(1), path.name, path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migration files share a version number")
    return migrations


async def apply_migrations(conn: asyncpg.Connection, component: str, directory: Path) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; returns the names applied.

    Refuses to go on when a file that was already applied no longer matches its recorded checksum.
    """
    migrations = load_migrations(component, directory)
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   component  text NOT NULL,
                   version    text NOT NULL,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (component, version))"""
        )
        rows = await conn.fetch(
            "SELECT version, name, checksum FROM schema_migrations WHERE component = $1",
            component,
        )
        applied = {r["version"]: r for r in rows}
        for migration in migrations:
            recorded = applied.get(migration.version)
            if recorded is not None and recorded["checksum"] != migration.checksum:
                raise MigrationError(
                    f"migration {directory / migration.name} was changed after it was applied "
                    f"(recorded as {recorded['name']}); add a new migration instead"
                )
        done = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (component, version, name, checksum)"
                    " VALUES ($1, $2, $3, $4)",
                    component,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration applied", component=component, migration=migration.name)
            done.append(migration.name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


async def migrate_service(dsn: str, service: str, directory: Path) -> list[str]:
    """Apply the platform tables (outbox, inbox) and then the service's own migrations."""
    conn = await asyncpg.connect(dsn)
    try:
        applied = await apply_migrations(conn, "platform", PLATFORM_MIGRATIONS)
        applied += await apply_migrations(conn, service, directory)
        return applied
    finally:
        await conn.close()


async def ensure_database(admin_dsn: str, name: str) -> bool:
    """Create database `name` if it does not exist; returns True when it was created."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await conn.close()
