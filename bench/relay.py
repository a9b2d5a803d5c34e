"""Outbox relay and inbox consumer throughput against raw aiokafka on the same broker.

    .venv/bin/python bench/relay.py [--events 20000] [--aggregates 200] [--rounds 3]

Starts its own embedded PostgreSQL and tansu broker, then measures, in one run:
  raw produce   aiokafka, pipelined keyed sends with the same headers and payloads
  relay         outbox rows -> OutboxRelay -> broker, until every row is marked published
  raw consume   aiokafka consumer group, commit after each fetched batch
  inbox         EventConsumer: inbox rows + offsets committed after each batch transaction,
                with a no-op handler (the plumbing alone) and with a one-row upsert handler
and prints throughput and the ratios relay/raw produce and inbox/raw consume, as the median of
several rounds (each round on fresh topics and a fresh database).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka import KafkaBroker

from shared.consumer import EventConsumer
from shared.db import PLATFORM_MIGRATIONS, Connection, apply_migrations, create_pool
from shared.embedded import EmbeddedPostgres, Tansu, free_port
from shared.events import Event, EventMeta
from shared.outbox import Outbox, OutboxRelay
from shared.service import ensure_topics

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
    while relay.published < count:  # noqa: ASYNC110 - polling is the measurement
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    await relay.stop()
    return elapsed


async def run_inbox(
    pool: asyncpg.Pool, bootstrap: str, prefix: str, count: int, name: str, *, upsert: bool
) -> float:
    consumer = EventConsumer(
        name, topic_prefix=prefix, batch_size=BATCH, session_timeout_ms=SESSION_TIMEOUT_MS
    )

    @consumer.on(StockCounted)
    async def apply(conn: Connection, event: StockCounted, meta: EventMeta) -> None:
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


Round = dict[str, float]
MEASURES = ("raw produce", "relay", "raw consume", "inbox no-op", "inbox upsert")


async def run_rounds(
    count: int, aggregates: int, rounds: int, one_round: Callable[..., Awaitable[Round]]
) -> list[Round]:
    """Start embedded PostgreSQL (durable) and tansu, run `one_round` `rounds` times, stop."""
    with tempfile.TemporaryDirectory(prefix="ekatalog-bench-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        broker = Tansu(free_port())
        say(
            f"embedded PostgreSQL (durable) and tansu; {count} events, {aggregates} aggregates, "
            f"{PARTITIONS} partitions, inbox batches of {BATCH}, {rounds} round(s)"
        )
        postgres.start(durable=True)
        broker.start()
        try:
            return [
                await one_round(postgres, broker.bootstrap_servers, count, aggregates, r)
                for r in range(1, rounds + 1)
            ]
        finally:
            broker.stop()
            postgres.stop()


async def fresh_database(postgres: EmbeddedPostgres, name: str) -> str:
    """A new database with the platform tables (outbox, inbox, event log); returns its DSN."""
    conn = await asyncpg.connect(postgres.admin_dsn)
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    dsn = postgres.dsn(name)
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn, "platform", PLATFORM_MIGRATIONS)
    await conn.close()
    return dsn


async def main(count: int, aggregates: int, rounds: int) -> None:
    report(await run_rounds(count, aggregates, rounds, one_round))


async def one_round(
    postgres: EmbeddedPostgres, bootstrap: str, count: int, aggregates: int, number: int
) -> Round:
    say(f"round {number}")
    dsn = await fresh_database(postgres, f"bench{number}")
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE bench_stock (product_id text PRIMARY KEY, quantity int)")
    await conn.close()
    pool = await create_pool(dsn, 2, 10)

    prefix = f"r{number}."
    outbox = Outbox("/bench", prefix)
    raw_topic = f"raw{number}.ekatalog.bench"
    await ensure_topics(bootstrap, [raw_topic, outbox.topic_for(StockCounted)], PARTITIONS)
    events = make_events(count, aggregates)
    for start in range(0, count, 1000):
        async with pool.acquire() as c, c.transaction():
            await outbox.add(c, *events[start : start + 1000])
    rows = [
        (
            r["aggregate_id"].encode(),
            r["payload"],
            [(k, str(v).encode()) for k, v in r["headers"].items()],
        )
        for r in await pool.fetch("SELECT aggregate_id, payload, headers FROM outbox ORDER BY id")
    ]

    result: Round = {}
    result["raw produce"] = count / await raw_produce(bootstrap, raw_topic, rows)
    result["relay"] = count / await run_relay(pool, dsn, bootstrap, count)
    result["raw consume"] = count / await raw_consume(bootstrap, raw_topic, count)
    result["inbox no-op"] = count / await run_inbox(
        pool, bootstrap, prefix, count, "bench-noop", upsert=False
    )
    result["inbox upsert"] = count / await run_inbox(
        pool, bootstrap, prefix, count, "bench-upsert", upsert=True
    )
    await pool.close()
    say("  " + ", ".join(f"{k} {v:,.0f}/s" for k, v in result.items()))
    return result


def report(results: list[Round]) -> None:
    median = {m: statistics.median(r[m] for r in results) for m in MEASURES}
    say("")
    say("| measure (median of rounds) | events/s | ratio |")
    say("|---|---:|---:|")
    floors = {"relay": "raw produce", "inbox no-op": "raw consume", "inbox upsert": "raw consume"}
    for measure in MEASURES:
        floor = floors.get(measure)
        ratio = f"{median[measure] / median[floor]:.2f} of {floor}" if floor else "floor"
        say(f"| {measure} | {median[measure]:,.0f} | {ratio} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--aggregates", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.aggregates, args.rounds))
