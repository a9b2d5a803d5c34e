"""Failing handlers against the real broker and database: bounded retries, no sleeping inside a
transaction, a handler's own timeouts dead-lettered, an unavailable database rewound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from faststream.kafka import KafkaBroker

from shared.consumer import EventConsumer
from shared.db import Connection
from shared.events import EventMeta
from tests.plumbing import (
    CounterIncremented,
    counter_consumer,
    counter_topic,
    prepare,
    produce,
    start_consumer,
)
from tests.support import TEST_CONSUMER_SESSION_TIMEOUT_MS, Infra, eventually, read_topic


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await prepare(database)
    yield pool
    await pool.close()


@pytest.fixture
async def topic(infra: Infra, topic_prefix: str) -> str:
    return await counter_topic(infra.bootstrap_servers, topic_prefix)


async def applied(pool: asyncpg.Pool, counter_id: str) -> int:
    value = await pool.fetchval(
        "SELECT applied FROM counter_projection WHERE counter_id = $1", counter_id
    )
    return int(value or 0)


async def test_a_batch_in_which_every_event_fails_ends_within_its_retry_budget(
    infra: Infra, pool: asyncpg.Pool, topic: str, topic_prefix: str
) -> None:
    await pool.execute(
        "ALTER TABLE counter_projection ADD CONSTRAINT seq_positive CHECK (last_seq > 0)"
    )
    failing = 60
    # Without a budget: 60 events x (0.8 s + 1.6 s) of backoff = 144 s, beyond the poll interval.
    await produce(
        infra.bootstrap_servers,
        topic,
        [CounterIncremented(counter_id=f"bad-{i}", seq=-1) for i in range(failing)],
    )
    consumer = counter_consumer(
        topic_prefix,
        max_attempts=3,
        backoff_seconds=0.8,
        retry_budget_seconds=2.5,
        max_poll_interval_ms=20_000,
    )
    idle_in_transaction: list[int] = []

    async def watch_transactions() -> None:
        # A backoff slept inside a transaction shows as a long "idle in transaction" backend.
        while True:
            idle_in_transaction.append(
                await pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state = 'idle in transaction'"
                    " AND clock_timestamp() - state_change > interval '400 milliseconds'"
                )
            )
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch_transactions())
    broker = await start_consumer(infra.bootstrap_servers, pool, consumer)
    started = time.monotonic()
    try:
        letters = await read_topic(
            infra.bootstrap_servers, f"{topic}.dlq", min_count=failing, timeout=20
        )
        elapsed = time.monotonic() - started
        assert len(letters) == failing
        assert {e.headers["dlq_reason"] for e in letters} == {"handler_failed"}
        assert all("CheckViolationError" in e.headers["dlq_error"] for e in letters)
        assert elapsed < 15, f"the failing batch took {elapsed:.1f} s"
        assert len(idle_in_transaction) > 20 and not any(idle_in_transaction), (
            "a backoff was slept inside an open transaction"
        )

        # The consumer goes on with what comes next.
        await produce(
            infra.bootstrap_servers, topic, [CounterIncremented(counter_id="good", seq=1)]
        )
        await eventually(lambda: applied(pool, "good"), timeout=15)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await broker.stop()


def troubled_consumer(prefix: str, terminated: list[str]) -> EventConsumer:
    """Counters whose handler fails on purpose by `seq`: 0 times out on its own, -1 hits an
    OSError of its own, -2 loses its database connection once and reports it as a timeout."""
    consumer = EventConsumer(
        "troubled",
        topic_prefix=prefix,
        max_attempts=2,
        backoff_seconds=0.05,
        session_timeout_ms=TEST_CONSUMER_SESSION_TIMEOUT_MS,
    )

    @consumer.on(CounterIncremented)
    async def apply(conn: Connection, event: CounterIncremented, meta: EventMeta) -> None:
        if event.seq == 0:
            raise TimeoutError("the regional tax office did not answer")
        if event.seq == -1:
            raise ConnectionRefusedError("the price index service refused the connection")
        if event.seq == -2 and event.counter_id not in terminated:
            terminated.append(event.counter_id)
            try:
                await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            except Exception as exc:
                raise TimeoutError("the database went away") from exc
        await conn.execute(
            "INSERT INTO counter_projection (counter_id, last_seq, applied) VALUES ($1, $2, 1)"
            " ON CONFLICT (counter_id) DO UPDATE SET applied = counter_projection.applied + 1",
            event.counter_id,
            event.seq,
        )

    return consumer


async def test_a_handlers_own_timeout_is_dead_lettered_and_a_lost_database_is_rewound(
    infra: Infra, pool: asyncpg.Pool, topic: str, topic_prefix: str
) -> None:
    terminated: list[str] = []
    await produce(
        infra.bootstrap_servers,
        topic,
        [
            CounterIncremented(counter_id="slow-office", seq=0),
            CounterIncremented(counter_id="refused", seq=-1),
            CounterIncremented(counter_id="lost-connection", seq=-2),
            CounterIncremented(counter_id="after", seq=1),
        ],
    )
    broker: KafkaBroker = await start_consumer(
        infra.bootstrap_servers, pool, troubled_consumer(topic_prefix, terminated)
    )
    try:
        await eventually(lambda: applied(pool, "after"), timeout=20)
        letters = await read_topic(infra.bootstrap_servers, f"{topic}.dlq", min_count=2)
        by_key = {e.key: e.headers for e in letters}
        assert set(by_key) == {"slow-office", "refused"}
        assert by_key["slow-office"]["dlq_reason"] == "handler_failed"
        assert by_key["slow-office"]["dlq_error"].startswith("TimeoutError: the regional tax")
        assert by_key["refused"]["dlq_error"].startswith("ConnectionRefusedError")
        # The event whose database connection was lost was read again and applied once.
        assert terminated == ["lost-connection"]
        assert await applied(pool, "lost-connection") == 1
        assert await applied(pool, "after") == 1
        assert await applied(pool, "slow-office") == 0
    finally:
        await broker.stop()
