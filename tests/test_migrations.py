"""Forward-only migrations: applied once, recorded with a checksum, never silently changed."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from services.orders.app import OrdersSettings, create_app
from shared.db import MigrationError, apply_migrations, migrate_service
from tests.support import TEST_JWT_SECRET, Infra, running


def write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql)


async def test_applying_twice_is_a_no_op(database: str, tmp_path: Path) -> None:
    write(tmp_path, "001_things.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    write(tmp_path, "002_more.sql", "ALTER TABLE things ADD COLUMN name text;")
    first = await migrate_service(database, "svc", tmp_path)
    assert first == ["001_outbox_inbox.sql", "002_event_log.sql", "001_things.sql", "002_more.sql"]
    assert await migrate_service(database, "svc", tmp_path) == []
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch(
            "SELECT component, name, length(checksum) AS n FROM schema_migrations ORDER BY 1, 2"
        )
        assert [(r["component"], r["name"], r["n"]) for r in rows] == [
            ("platform", "001_outbox_inbox.sql", 64),
            ("platform", "002_event_log.sql", 64),
            ("svc", "001_things.sql", 64),
            ("svc", "002_more.sql", 64),
        ]
    finally:
        await conn.close()


async def test_a_changed_applied_file_stops_with_its_name(database: str, tmp_path: Path) -> None:
    write(tmp_path, "001_things.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    await migrate_service(database, "svc", tmp_path)
    write(tmp_path, "001_things.sql", "CREATE TABLE things (id bigint PRIMARY KEY);")
    write(tmp_path, "002_more.sql", "CREATE TABLE more (id int);")
    with pytest.raises(MigrationError, match=r"001_things\.sql was changed after it was applied"):
        await migrate_service(database, "svc", tmp_path)
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT to_regclass('more')") is None, "nothing after it ran"
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_behind(database: str, tmp_path: Path) -> None:
    write(tmp_path, "001_ok.sql", "CREATE TABLE ok (id int);")
    write(tmp_path, "002_bad.sql", "CREATE TABLE half (id int); SELECT no_such_function();")
    conn = await asyncpg.connect(database)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await apply_migrations(conn, "svc", tmp_path)
        assert await conn.fetchval("SELECT to_regclass('ok')") is not None
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        names = await conn.fetch("SELECT name FROM schema_migrations WHERE component = 'svc'")
        assert [r["name"] for r in names] == ["001_ok.sql"]
    finally:
        await conn.close()


async def test_badly_named_files_are_refused(database: str, tmp_path: Path) -> None:
    write(tmp_path, "create_things.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNN_description\.sql"):
        await migrate_service(database, "svc", tmp_path)


async def test_a_service_refuses_to_start_when_an_applied_migration_changed(
    infra: Infra, database: str, topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = OrdersSettings(
        database_url=database,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=topic_prefix,
        jwt_secret=TEST_JWT_SECRET,
    )
    async with running(create_app(settings)):
        pass
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(
            "UPDATE schema_migrations SET checksum = 'edited' WHERE component = 'orders'"
        )
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match=r"001_init\.sql"):
        async with running(create_app(settings)):
            pass
