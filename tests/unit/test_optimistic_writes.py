"""The retry loop of optimistic writes (`shared.db.optimistically`), without a database: an
attempt is run again from its read while its write finds the row changed, and after a few
stale ones it reads under a lock in a unit of work."""

from __future__ import annotations

from typing import Any, cast

import pytest

from shared.db import Connection, StaleWrite, optimistically


class FakeTransaction:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn

    async def __aenter__(self) -> None:
        self.conn.transactions += 1

    async def __aexit__(self, *exc: object) -> None:
        return None


class FakeConnection:
    """A caller's connection: the loop hands it to each attempt, and opens a unit of work on
    it for the locked attempt."""

    def __init__(self) -> None:
        self.transactions = 0

    def transaction(self) -> FakeTransaction:
        return FakeTransaction(self)


def connection() -> tuple[FakeConnection, Connection]:
    fake = FakeConnection()
    return fake, cast(Connection, fake)


async def test_an_attempt_that_finds_its_row_as_read_runs_once_without_a_lock() -> None:
    fake, conn = connection()
    seen: list[Any] = []

    async def attempt(conn: Connection, lock: bool) -> str:
        seen.append((conn, lock))
        return "written"

    assert await optimistically(conn, attempt) == "written"
    assert seen == [(conn, False)] and fake.transactions == 0


async def test_a_stale_attempt_is_run_again_from_its_read() -> None:
    fake, conn = connection()
    locks: list[bool] = []

    async def attempt(conn: Connection, lock: bool) -> int:
        locks.append(lock)
        if len(locks) < 3:
            raise StaleWrite
        return len(locks)

    assert await optimistically(conn, attempt, unlocked=3) == 3
    assert locks == [False, False, False] and fake.transactions == 0


async def test_a_contended_write_reads_under_a_lock_in_a_unit_of_work() -> None:
    fake, conn = connection()
    locks: list[bool] = []

    async def attempt(conn: Connection, lock: bool) -> str:
        locks.append(lock)
        if not lock:
            raise StaleWrite
        assert fake.transactions == 1
        return "written under the lock"

    assert await optimistically(conn, attempt, unlocked=2) == "written under the lock"
    assert locks == [False, False, True]


async def test_a_refusal_is_not_retried() -> None:
    _, conn = connection()
    attempts = 0

    async def attempt(conn: Connection, lock: bool) -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await optimistically(conn, attempt)
    assert attempts == 1
