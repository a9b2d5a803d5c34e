"""A handler registered with `EventConsumer.on_batch` gets each Kafka batch's new events at once:
in order, without the duplicates (within the batch or delivered before), in the batch's one
transaction; a poison event among them is dead-lettered with its reason while the rest of the
batch is applied; the offsets are committed only once the batch is stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

from shared.consumer import EventConsumer
from shared.db import Connection
from shared.events import EventMeta
from tests.plumbing import CounterIncremented, counter_topic, prepare, produce, start_consumer
from tests.support import TEST_CONSUMER_SESSION_TIMEOUT_MS, Infra, eventually, read_topic
from tests.test_dead_letters import committed


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await prepare(database)
    await pool.execute(
        "ALTER TABLE counter_projection ADD CONSTRAINT seq_positive CHECK (last_seq > 0)"
    )
    yield pool
    await pool.close()


@pytest.fixture
async def topic(infra: Infra, topic_prefix: str) -> str:
    return await counter_topic(infra.bootstrap_servers, topic_prefix)


def batch_consumer(
    prefix: str, calls: list[list[int]], gate: asyncio.Event | None = None
) -> EventConsumer:
    """Counters stored by one statement per call; a negative `seq` breaks the table's check."""
    consumer = EventConsumer(
        "batched",
        topic_prefix=prefix,
        max_attempts=2,
        backoff_seconds=0.05,
        session_timeout_ms=TEST_CONSUMER_SESSION_TIMEOUT_MS,
    )

    @consumer.on_batch(CounterIncremented)
    async def apply(
        conn: Connection, events: Sequence[tuple[CounterIncremented, EventMeta]]
    ) -> None:
        calls.append([event.seq for event, _ in events])
        if gate is not None:
            await gate.wait()
        await conn.execute(
            "INSERT INTO counter_projection (counter_id, last_seq, applied)"
            " SELECT unnest($1::text[]), unnest($2::int[]), 1"
            " ON CONFLICT (counter_id) DO UPDATE SET applied = counter_projection.applied + 1",
            [event.counter_id for event, _ in events],
            [event.seq for event, _ in events],
        )

    return consumer


async def send(bootstrap: str, topic: str, events: list[tuple[uuid.UUID, int]]) -> None:
    """Publish counters `c<seq>` with these CloudEvents ids (a repeated id is a redelivery)."""
    await produce(
        bootstrap,
        topic,
        [CounterIncremented(counter_id=f"c{seq}", seq=seq) for _, seq in events],
        [event_id for event_id, _ in events],
    )


async def stored(pool: asyncpg.Pool) -> dict[str, int]:
    records = await pool.fetch("SELECT counter_id, applied FROM counter_projection")
    return {r["counter_id"]: r["applied"] for r in records}


async def test_a_batch_handler_gets_each_new_event_once_in_order(
    infra: Infra, pool: asyncpg.Pool, topic: str, topic_prefix: str
) -> None:
    first = [(uuid.uuid4(), seq) for seq in range(1, 101)]
    # Redeliveries inside the first batch.
    await send(infra.bootstrap_servers, topic, [*first[:50], first[3], first[10], *first[50:]])
    calls: list[list[int]] = []
    broker = await start_consumer(
        infra.bootstrap_servers, pool, batch_consumer(topic_prefix, calls)
    )
    try:
        await eventually(lambda: _count_is(pool, 100), timeout=30)
        assert [seq for call in calls for seq in call] == list(range(1, 101))
        assert any(len(call) > 1 for call in calls), "the handler was called once per event"
        # Redeliveries of stored events across batches, between new ones.
        calls.clear()
        later = [(uuid.uuid4(), seq) for seq in range(101, 111)]
        await send(infra.bootstrap_servers, topic, [*first[:20], *later, *first[90:]])
        await eventually(lambda: _count_is(pool, 110), timeout=30)
        assert [seq for call in calls for seq in call] == list(range(101, 111))
        assert set((await stored(pool)).values()) == {1}
        await eventually(lambda: committed_is(infra, topic_prefix, topic, 100 + 2 + 20 + 10 + 10))
    finally:
        await broker.stop()


async def _count_is(pool: asyncpg.Pool, count: int) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM counter_projection") == count)


async def committed_is(infra: Infra, prefix: str, topic: str, offset: int) -> bool:
    return await committed(infra, f"{prefix}batched", topic) == offset


async def test_a_poison_event_is_dead_lettered_and_the_rest_of_its_batch_applied(
    infra: Infra, pool: asyncpg.Pool, topic: str, topic_prefix: str
) -> None:
    events = [(uuid.uuid4(), seq) for seq in (1, 2, 3, -4, 5, 6)]
    await send(infra.bootstrap_servers, topic, events)
    calls: list[list[int]] = []
    broker = await start_consumer(
        infra.bootstrap_servers, pool, batch_consumer(topic_prefix, calls)
    )
    try:
        await eventually(lambda: _count_is(pool, 5), timeout=30)
        letters = await read_topic(infra.bootstrap_servers, f"{topic}.dlq")
        assert [(e.key, e.headers["dlq_reason"]) for e in letters] == [("c-4", "handler_failed")]
        assert "seq_positive" in letters[0].headers["dlq_error"]
        assert await stored(pool) == {f"c{seq}": 1 for seq in (1, 2, 3, 5, 6)}
        # The whole batch first, then one event at a time: the poison twice (its attempts).
        assert calls[0] == [1, 2, 3, -4, 5, 6]
        assert [call for call in calls[1:] if -4 in call] == [[-4], [-4]]
        await eventually(lambda: committed_is(infra, topic_prefix, topic, len(events)))
    finally:
        await broker.stop()


async def test_offsets_are_committed_only_after_the_batch_is_stored(
    infra: Infra, pool: asyncpg.Pool, topic: str, topic_prefix: str
) -> None:
    await send(infra.bootstrap_servers, topic, [(uuid.uuid4(), seq) for seq in range(1, 21)])
    calls: list[list[int]] = []
    gate = asyncio.Event()
    consumer = batch_consumer(topic_prefix, calls, gate)
    broker = await start_consumer(infra.bootstrap_servers, pool, consumer)
    try:

        async def called() -> bool:
            return bool(calls)

        await eventually(called, timeout=30)
        # The handler holds its batch: nothing is stored and no offset is committed.
        assert await committed(infra, consumer.group_id, topic) == 0
        assert await stored(pool) == {}
        gate.set()
        await eventually(lambda: _count_is(pool, 20), timeout=30)
        await eventually(lambda: committed_is(infra, topic_prefix, topic, 20))
    finally:
        gate.set()
        await broker.stop()
