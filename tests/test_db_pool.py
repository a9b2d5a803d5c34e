"""The services' connection pool (`shared.db.create_pool`) lends its connections in the order
they were asked for: a task that asks just as a connection comes back does not take it from
one that has been waiting."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg

from shared.db import create_pool


async def overtakings(pool: asyncpg.Pool, borrowers: int) -> int:
    """Tasks ask for a connection one per turn of the event loop, each running one query with
    it; returns how often a task got one before a task that had asked earlier."""
    served: list[int] = []

    async def borrow(ticket: int) -> None:
        async with pool.acquire() as conn:
            served.append(ticket)
            await conn.fetchval("SELECT 1")

    tasks = []
    for ticket in range(borrowers):
        tasks.append(asyncio.create_task(borrow(ticket)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return sum(1 for before, after in itertools.pairwise(served) if after < before)


async def test_connections_go_to_the_longest_waiting_task(database: str) -> None:
    pool = await create_pool(database, min_size=2, max_size=2)
    try:
        assert await overtakings(pool, 500) == 0
    finally:
        await pool.close()
