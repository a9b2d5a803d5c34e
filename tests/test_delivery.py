"""Delivery guarantees of outbox -> broker -> inbox, against the real broker and database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import REGISTRY

from shared.embedded import Tansu, free_port
from shared.outbox import NOTIFY_CHANNEL, Outbox, OutboxRelay, outbox_backlog
from shared.service import ensure_topics
from tests.plumbing import (
    CounterIncremented,
    counter_consumer,
    make_relay,
    prepare,
    start_consumer,
    write_events,
)
from tests.proxy import TcpProxy
from tests.support import Infra, eventually

AGGREGATES = 200
EVENTS_PER_AGGREGATE = 50  # 10,000 events in all


def counter_events(first_seq: int, last_seq: int) -> list[CounterIncremented]:
    # Aggregates interleave, as they would in a real stream of commands.
    return [
        CounterIncremented(counter_id=f"counter-{a:03d}", seq=s)
        for s in range(first_seq, last_seq + 1)
        for a in range(AGGREGATES)
    ]


async def keep_published_history(pool: asyncpg.Pool) -> None:
    """Keep a copy of every row the relay deletes, so the test can publish it a second time."""
    await pool.execute(
        """CREATE TABLE published_history (LIKE outbox);
           CREATE FUNCTION keep_published() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO published_history SELECT OLD.*; RETURN OLD; END $$;
           CREATE TRIGGER keep_published AFTER DELETE ON outbox
               FOR EACH ROW EXECUTE FUNCTION keep_published();"""
    )


async def applied_total(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT coalesce(sum(applied), 0) FROM counter_projection"))


@pytest.fixture
async def proxied_broker() -> AsyncIterator[tuple[Tansu, TcpProxy]]:
    """A broker whose clients all go through a proxy that the test can cut."""
    proxy_port = free_port()
    broker = Tansu(free_port(), advertised_port=proxy_port)
    broker.start()
    proxy = TcpProxy(proxy_port, broker.port)
    await proxy.start()
    yield broker, proxy
    await proxy.stop()
    broker.stop()


@pytest.mark.slow
async def test_ten_thousand_events_arrive_exactly_once_in_order_through_failures(
    database: str, topic_prefix: str, proxied_broker: tuple[Tansu, TcpProxy]
) -> None:
    broker, proxy = proxied_broker
    bootstrap = broker.bootstrap_servers
    pool = await prepare(database)
    await keep_published_history(pool)
    outbox = Outbox("/test", topic_prefix)
    await ensure_topics(bootstrap, [outbox.topic_for(CounterIncremented)], 6)
    relay = make_relay(pool, database, bootstrap, batch_size=200, max_backoff=1.0)
    await relay.start()
    options = {"batch_size": 50}

    # (a) The consumer stops mid-stream and comes back: nothing is lost or applied twice.
    await write_events(pool, outbox, counter_events(1, 20))
    consumer = await start_consumer(bootstrap, pool, counter_consumer(topic_prefix, **options))
    await eventually(lambda: _at_least(pool, 500), timeout=30, interval=0.02)
    await consumer.stop()
    stopped_at = await applied_total(pool)
    assert stopped_at < 4000, "the consumer was meant to stop mid-stream"
    # Once everything written is on the broker, a consumer still running would have moved on.
    await eventually(lambda: _outbox_drained(pool), timeout=30)
    assert await applied_total(pool) == stopped_at, "a stopped consumer changed the projection"
    consumer = await start_consumer(bootstrap, pool, counter_consumer(topic_prefix, **options))
    await eventually(lambda: _at_least(pool, 4000), timeout=60)

    # (c) The broker becomes unreachable while new events are written: the outbox holds them.
    await proxy.cut()
    await write_events(pool, outbox, counter_events(21, 30))

    async def held_through_the_outage() -> bool:
        async with pool.acquire() as conn:
            backlog, oldest = await outbox_backlog(conn)
        assert backlog == 2000, "events written during the outage must wait in the outbox"
        return oldest > 2

    await eventually(held_through_the_outage, timeout=30)
    await proxy.start()
    await eventually(lambda: _at_least(pool, 6000), timeout=90)

    # (b) Everything published so far is published a second time, then the stream goes on.
    topic = outbox.topic_for(CounterIncremented)
    duplicates_before = _duplicates(topic)
    async with pool.acquire() as conn:
        republished = await conn.execute(
            """INSERT INTO outbox (event_id, topic, event_type, aggregate_id, payload, headers)
               SELECT event_id, topic, event_type, aggregate_id, payload, headers
               FROM published_history ORDER BY id"""
        )
    assert republished == "INSERT 0 6000"
    relay.wake()
    await write_events(pool, outbox, counter_events(31, 50))

    total = AGGREGATES * EVENTS_PER_AGGREGATE
    await eventually(lambda: _outbox_drained(pool), timeout=90)
    await eventually(lambda: _at_least(pool, total), timeout=90)
    # Every re-published copy has reached the consumer and been dropped as a duplicate.
    await eventually(lambda: _duplicates_seen(topic, duplicates_before + 6000), timeout=60)

    rows = await pool.fetch("SELECT * FROM counter_projection ORDER BY counter_id")
    assert len(rows) == AGGREGATES
    assert {r["applied"] for r in rows} == {EVENTS_PER_AGGREGATE}, "an event applied twice or lost"
    assert {r["last_seq"] for r in rows} == {EVENTS_PER_AGGREGATE}
    assert sum(r["out_of_order"] for r in rows) == 0, "an aggregate's events arrived out of order"
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'counters'") == total
    assert relay.published == total + 6000

    await consumer.stop()
    await relay.stop()
    await pool.close()


def _duplicates(topic: str) -> float:
    seen = REGISTRY.get_sample_value(
        "ekatalog_events_consumed_total",
        {"consumer": "counters", "topic": topic, "outcome": "duplicate"},
    )
    return seen or 0.0


async def _duplicates_seen(topic: str, count: float) -> bool:
    return _duplicates(topic) >= count


async def _at_least(pool: asyncpg.Pool, count: int) -> bool:
    return await applied_total(pool) >= count


async def _holds_publishing_lock(pool: asyncpg.Pool, key: int) -> bool:
    held = await pool.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1::bigint::oid"
        " AND granted",
        key,
    )
    return bool(held)


async def _outbox_drained(pool: asyncpg.Pool) -> bool:
    async with pool.acquire() as conn:
        backlog, _ = await outbox_backlog(conn)
    return backlog == 0


async def test_relay_publishes_keyed_by_aggregate_and_marks_rows(
    infra: Infra, database: str, topic_prefix: str
) -> None:
    from tests.support import read_topic

    pool = await prepare(database)
    outbox = Outbox("/test", topic_prefix)
    topic = outbox.topic_for(CounterIncremented)
    await ensure_topics(infra.bootstrap_servers, [topic], 3)
    await write_events(pool, outbox, counter_events(1, 2)[:10])
    written = {str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM outbox")}
    relay = make_relay(pool, database, infra.bootstrap_servers)
    await relay.start()
    try:
        events = await read_topic(infra.bootstrap_servers, topic, min_count=10)
        assert len(events) == 10
        for event in events:
            assert event.key == event.data["counter_id"]
            assert event.type == CounterIncremented.type
            assert event.headers["ce_specversion"] == "1.0"
            assert event.headers["ce_subject"] == event.data["counter_id"]
            assert event.headers["content-type"] == "application/json"
            assert event.headers["ce_source"] == "/test"
        ids = {e.headers["ce_id"] for e in events}
        assert ids == written, "the event id is minted in the outbox, not at publish time"
        await eventually(lambda: _outbox_drained(pool), timeout=10)
    finally:
        await relay.stop()
        await pool.close()


async def test_each_aggregate_keeps_its_partition_and_order_when_batches_fill(
    infra: Infra, database: str, topic_prefix: str
) -> None:
    """The relay hands the producer one record batch per partition and starts another when one
    fills: every aggregate's events land on the partition Kafka's default partitioner gives its
    key, in order, and the aggregates spread over the partitions."""
    pool = await prepare(database)
    outbox = Outbox("/test", topic_prefix)
    topic = outbox.topic_for(CounterIncremented)
    all_partitions = list(range(6))
    await ensure_topics(infra.bootstrap_servers, [topic], len(all_partitions))
    # Keys of 3,000 characters (in the key, the payload and a header): a claim of 500 events
    # holds several 256 KB batches of each partition.
    names = [f"counter-{n:02d}-" + "x" * 3000 for n in range(48)]
    events = [CounterIncremented(counter_id=name, seq=s) for s in range(1, 11) for name in names]
    await write_events(pool, outbox, events)
    relay = make_relay(pool, database, infra.bootstrap_servers, batch_size=500)
    reader = AIOKafkaConsumer(
        topic,
        bootstrap_servers=infra.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await relay.start()
    await reader.start()
    try:
        seen: dict[str, list[tuple[int, int]]] = {}
        deadline = asyncio.get_running_loop().time() + 30
        while sum(map(len, seen.values())) < len(events):
            assert asyncio.get_running_loop().time() < deadline, "not every event arrived"
            for records in (await reader.getmany(timeout_ms=500)).values():
                for record in records:
                    key = record.key.decode()
                    seen.setdefault(key, []).append((record.partition, record.offset))
                    assert json.loads(record.value)["seq"] == len(seen[key])
        partitioner = DefaultPartitioner()
        assert sorted(seen) == names
        for name, arrived in seen.items():
            partition = partitioner(name.encode(), all_partitions, all_partitions)
            assert [p for p, _ in arrived] == [partition] * 10, name[:10]
            assert [o for _, o in arrived] == sorted(o for _, o in arrived)
        assert len({p for arrived in seen.values() for p, _ in arrived}) == len(all_partitions)
    finally:
        await reader.stop()
        await relay.stop()
        await pool.close()


async def test_only_one_relay_publishes_per_database(
    infra: Infra, database: str, topic_prefix: str
) -> None:
    pool = await prepare(database)
    first = make_relay(pool, database, infra.bootstrap_servers)
    second = make_relay(pool, database, infra.bootstrap_servers)
    await first.start()
    await eventually(lambda: _holds_publishing_lock(pool, first.lock_key), timeout=15)
    await second.start()
    outbox = Outbox("/test", topic_prefix)
    await ensure_topics(infra.bootstrap_servers, [outbox.topic_for(CounterIncremented)], 3)
    await write_events(pool, outbox, counter_events(1, 1))
    try:
        await eventually(lambda: _outbox_drained(pool), timeout=15)
        assert first.published == AGGREGATES and second.published == 0
        await first.stop()  # the lock passes to the other relay
        await write_events(pool, outbox, counter_events(2, 2))
        await eventually(lambda: _outbox_drained(pool), timeout=15)
        assert second.published == AGGREGATES
    finally:
        await second.stop()
        await pool.close()


async def test_writes_wake_the_relay_without_a_notification_each(
    infra: Infra, database: str, topic_prefix: str
) -> None:
    """A NOTIFY serialises the commits that send it, so an outbox sends at most one per
    interval; the relay still publishes at once: woken from idle by a notification, and looking
    again by itself while it is busy. Its own poll is an hour here, so it never helps."""
    pool = await prepare(database)
    outbox = Outbox("/test", topic_prefix, notify_interval=0.5)
    await ensure_topics(infra.bootstrap_servers, [outbox.topic_for(CounterIncremented)], 3)
    relay = make_relay(pool, database, infra.bootstrap_servers, poll_seconds=3600)
    listener = await asyncpg.connect(database)
    notifications: list[object] = []
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: notifications.append(args))

    async def writer(first: int) -> None:
        for seq in range(first, 41, 8):
            async with pool.acquire() as conn, conn.transaction():
                await outbox.add(conn, CounterIncremented(counter_id=f"c-{seq % 8}", seq=seq))

    try:
        await relay.start()
        await eventually(lambda: _holds_lock(relay), timeout=10)
        await write_events(pool, outbox, [CounterIncremented(counter_id="c-idle", seq=0)])
        await eventually(lambda: _published(relay, 1), timeout=10)

        await asyncio.gather(*(writer(first) for first in range(1, 9)))
        await eventually(lambda: _published(relay, 41), timeout=10)
        assert 1 <= len(notifications) < 41, "one notification per interval, not per write"
    finally:
        await relay.stop()
        await listener.close()
        await pool.close()


async def _holds_lock(relay: OutboxRelay) -> bool:
    return relay._lock_conn is not None


async def _published(relay: OutboxRelay, count: int) -> bool:
    return relay.published >= count
