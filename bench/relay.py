"""Outbox relay and inbox consumer throughput against raw aiokafka on the same broker.

    .venv/bin/python bench/relay.py [--events 20000] [--aggregates 200]

Starts its own embedded PostgreSQL and tansu broker, then measures, in one run:
  raw produce   aiokafka, pipelined keyed sends with the same headers and payloads
  relay         outbox rows -> OutboxRelay -> broker, until every row is marked published
  raw consume   aiokafka consumer group, commit after each fetched batch
  inbox         EventConsumer: inbox rows + offsets committed after each batch transaction,
                with a no-op handler (the plumbing alone) and with a one-row upsert handler
and prints throughput and the ratios relay/raw produce and inbox/raw consume.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import ClassVar

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka import KafkaBroker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.consumer import EventConsumer  # noqa: E402
from shared.db import PLATFORM_MIGRATIONS, apply_migrations, create_pool  # noqa: E402
from shared.embedded import EmbeddedPostgres, Tansu, free_port  # noqa: E402
from shared.events import Event, EventMeta  # noqa: E402
from shared.outbox import Outbox, OutboxRelay  # noqa: E402
from shared.service import ensure_topics  # noqa: E402

PARTITIONS = 6
SESSION_TIMEOUT_MS = 2000
BATCH = 2000


class StockCounted(Event):
    """Benchmark event, shaped like a small domain event."""

    type: ClassVar[str] = "ekatalog.bench.stock_counted.v1"
    topic: ClassVar[str] = "ekatalog.bench"
    aggregate_field: ClassVar[str] = "product_id"

    product_id: str
    seq: int
    etalase: str
    quantity: int
    note: str


def make_events(count: int, aggregates: int) -> list[StockCounted]:
    return [
        StockCounted(
            product_id=f"product-{i % aggregates:05d}",
            seq=i // aggregates + 1,
            etalase="ATK-2026",
            quantity=i,
            note="alat tulis kantor untuk dinas pendidikan kota pekalongan" * 3,
        )
        for i in range(count)
    ]


def say(message: str) -> None:
    print(message, flush=True)


async def raw_produce(bootstrap: str, topic: str, rows: list[tuple[bytes, bytes, list]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=2, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [
            await producer.send(topic, value=value, key=key, headers=headers)
            for key, value, headers in rows
        ]
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=200,
    )
    await consumer.start()
    try:
        seen = 0
        started = None
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            if batch and started is None:
                started = time.perf_counter()
            seen += sum(len(records) for records in batch.values())
            if batch:
                await consumer.commit()
        assert started is not None
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def run_relay(pool: asyncpg.Pool, dsn: str, bootstrap: str, count: int) -> float:
    relay = OutboxRelay(pool, dsn, bootstrap, name="bench", batch_size=1000, poll_seconds=0.05)
    started = time.perf_counter()
    await relay.start()
    while relay.published < count:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    await relay.stop()
    return elapsed


async def run_inbox(
    pool: asyncpg.Pool, bootstrap: str, prefix: str, count: int, name: str, upsert: bool
) -> float:
    consumer = EventConsumer(
        name, topic_prefix=prefix, batch_size=BATCH, session_timeout_ms=SESSION_TIMEOUT_MS
    )

    @consumer.on(StockCounted)
    async def apply(conn: asyncpg.Connection, event: StockCounted, meta: EventMeta) -> None:
        if upsert:
            await conn.execute(
                """INSERT INTO bench_stock (product_id, quantity) VALUES ($1, $2)
                   ON CONFLICT (product_id) DO UPDATE SET quantity = excluded.quantity""",
                event.product_id,
                event.quantity,
            )

    broker = KafkaBroker(bootstrap, logger=None)
    consumer.attach(broker)
    consumer.bind(pool)
    await broker.start()
    try:
        started = None
        while True:
            done = await pool.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", name)
            if done and started is None:
                started = time.perf_counter()
            if done >= count:
                assert started is not None
                return time.perf_counter() - started
            await asyncio.sleep(0.005)
    finally:
        await broker.stop()


async def main(count: int, aggregates: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ekatalog-bench-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        broker = Tansu(free_port())
        say(
            f"starting embedded PostgreSQL (durable) and tansu; {count} events, "
            f"{aggregates} aggregates, {PARTITIONS} partitions"
        )
        postgres.start(durable=True)
        broker.start()
        try:
            await bench(postgres, broker.bootstrap_servers, count, aggregates)
        finally:
            broker.stop()
            postgres.stop()


async def bench(postgres: EmbeddedPostgres, bootstrap: str, count: int, aggregates: int) -> None:
    conn = await asyncpg.connect(postgres.admin_dsn)
    await conn.execute("CREATE DATABASE bench")
    await conn.close()
    dsn = postgres.dsn("bench")
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn, "platform", PLATFORM_MIGRATIONS)
    await conn.execute("CREATE TABLE bench_stock (product_id text PRIMARY KEY, quantity int)")
    await conn.close()
    pool = await create_pool(dsn, 2, 10)

    events = make_events(count, aggregates)
    outbox = Outbox("/bench", "relay.")
    raw_topic = "raw.ekatalog.bench"
    relay_topic = outbox.topic_for(StockCounted)
    await ensure_topics(bootstrap, [raw_topic, relay_topic], PARTITIONS)

    say("writing the outbox rows (not timed) ...")
    written = time.perf_counter()
    for start in range(0, count, 1000):
        async with pool.acquire() as c, c.transaction():
            await outbox.add(c, *events[start : start + 1000])
    say(
        f"  {count / (time.perf_counter() - written):,.0f} outbox rows/s written in batches of 1000"
    )
    rows = [
        (
            r["aggregate_id"].encode(),
            r["payload"],
            [(k, str(v).encode()) for k, v in r["headers"].items()],
        )
        for r in await pool.fetch("SELECT aggregate_id, payload, headers FROM outbox ORDER BY id")
    ]

    say("raw produce ...")
    produce = count / await raw_produce(bootstrap, raw_topic, rows)
    say(f"  {produce:,.0f} msg/s")
    say("relay ...")
    relay = count / await run_relay(pool, dsn, bootstrap, count)
    say(f"  {relay:,.0f} msg/s")
    say("raw consume ...")
    consume = count / await raw_consume(bootstrap, raw_topic, count)
    say(f"  {consume:,.0f} msg/s")
    say("inbox, no-op handler ...")
    inbox = count / await run_inbox(pool, bootstrap, "relay.", count, "bench-noop", False)
    say(f"  {inbox:,.0f} msg/s")
    say("inbox, one-row upsert handler ...")
    upsert = count / await run_inbox(pool, bootstrap, "relay.", count, "bench-upsert", True)
    say(f"  {upsert:,.0f} msg/s")
    await pool.close()

    say("")
    say(f"| measure | events/s | ratio |")
    say(f"|---|---:|---:|")
    say(f"| raw aiokafka produce | {produce:,.0f} | 1.00 |")
    say(f"| outbox relay | {relay:,.0f} | {relay / produce:.2f} of raw produce |")
    say(f"| raw aiokafka consume | {consume:,.0f} | 1.00 |")
    say(f"| inbox consumer, no-op handler | {inbox:,.0f} | {inbox / consume:.2f} of raw consume |")
    say(
        f"| inbox consumer, upsert handler | {upsert:,.0f} | {upsert / consume:.2f} of raw consume |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--aggregates", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.aggregates))
