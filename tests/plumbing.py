"""A tiny producer/consumer pair built only from `shared/`, for the delivery tests and bench."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar

import asyncpg
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker

from shared.consumer import EventConsumer
from shared.db import PLATFORM_MIGRATIONS, Connection, apply_migrations, create_pool
from shared.events import Event, EventMeta, build_headers, encode
from shared.outbox import Outbox, OutboxRelay
from shared.service import ensure_topics
from tests.support import TEST_CONSUMER_SESSION_TIMEOUT_MS


class CounterIncremented(Event):
    """Test event: counter `counter_id` reached `seq`."""

    type: ClassVar[str] = "ekatalog.test.counter_incremented.v1"
    topic: ClassVar[str] = "ekatalog.test.counters"
    aggregate_field: ClassVar[str] = "counter_id"

    counter_id: str
    seq: int


PROJECTION = """
CREATE TABLE IF NOT EXISTS counter_projection (
    counter_id text PRIMARY KEY,
    last_seq   integer NOT NULL,
    applied    integer NOT NULL,
    out_of_order integer NOT NULL DEFAULT 0
)
"""


async def prepare(dsn: str) -> asyncpg.Pool:
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, "platform", PLATFORM_MIGRATIONS)
        await conn.execute(PROJECTION)
    finally:
        await conn.close()
    return await create_pool(dsn, 1, 10)


async def counter_topic(bootstrap_servers: str, prefix: str) -> str:
    """The counter events' topic and its dead-letter topic, created with one partition."""
    topic = Outbox("/test", prefix).topic_for(CounterIncremented)
    await ensure_topics(bootstrap_servers, [topic, f"{topic}.dlq"], 1)
    return topic


def counter_consumer(prefix: str, **options: object) -> EventConsumer:
    options.setdefault("session_timeout_ms", TEST_CONSUMER_SESSION_TIMEOUT_MS)
    consumer = EventConsumer("counters", topic_prefix=prefix, **options)  # type: ignore[arg-type]

    @consumer.on(CounterIncremented)
    async def apply(conn: Connection, event: CounterIncremented, meta: EventMeta) -> None:
        await conn.execute(
            """INSERT INTO counter_projection (counter_id, last_seq, applied, out_of_order)
               VALUES ($1, $2, 1, CASE WHEN $2 = 1 THEN 0 ELSE 1 END)
               ON CONFLICT (counter_id) DO UPDATE SET
                 applied = counter_projection.applied + 1,
                 out_of_order = counter_projection.out_of_order
                     + CASE WHEN $2 = counter_projection.last_seq + 1 THEN 0 ELSE 1 END,
                 last_seq = $2""",
            event.counter_id,
            event.seq,
        )

    return consumer


async def write_events(
    pool: asyncpg.Pool, outbox: Outbox, events: list[CounterIncremented], per_transaction: int = 100
) -> None:
    for start in range(0, len(events), per_transaction):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, *events[start : start + per_transaction])


async def start_consumer(
    bootstrap: str, pool: asyncpg.Pool, consumer: EventConsumer
) -> KafkaBroker:
    broker = KafkaBroker(bootstrap)
    consumer.attach(broker)
    consumer.bind(pool)
    await broker.start()
    return broker


async def produce(
    bootstrap: str,
    topic: str,
    events: list[CounterIncremented],
    event_ids: list[uuid.UUID] | None = None,
) -> None:
    """Publish events straight to the broker, as another producer would, bypassing any outbox;
    with `event_ids`, under these CloudEvents ids (a repeated id is a redelivery)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for index, event in enumerate(events):
            headers = build_headers(
                event_id=event_ids[index] if event_ids else uuid.uuid4(),
                event_type=event.type,
                source="/test",
                subject=event.counter_id,
                time=datetime.now(UTC),
                correlation_id=None,
            )
            await producer.send(
                topic,
                value=encode(event),
                key=event.counter_id.encode(),
                headers=[(k, v.encode()) for k, v in headers.items()],
            )
        await producer.flush()
    finally:
        await producer.stop()


def make_relay(pool: asyncpg.Pool, dsn: str, bootstrap: str, **options: object) -> OutboxRelay:
    return OutboxRelay(pool, dsn, bootstrap, name="counters", **options)  # type: ignore[arg-type]
