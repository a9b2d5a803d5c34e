"""The event log: kept with the state change, replayed in order, pruned by retention, and the
outbox backlog figures while the broker is down; against the real database and broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from shared import eventlog
from shared.embedded import free_port
from shared.outbox import Outbox, StateChange, prune_log
from shared.service import ensure_topics
from tests.plumbing import (
    CounterIncremented,
    counter_consumer,
    make_relay,
    prepare,
    start_consumer,
    write_events,
)
from tests.support import Infra, eventually, read_topic


def counters(aggregates: int, first_seq: int, last_seq: int) -> list[CounterIncremented]:
    return [
        CounterIncremented(counter_id=f"counter-{a:03d}", seq=s)
        for s in range(first_seq, last_seq + 1)
        for a in range(aggregates)
    ]


async def test_the_log_keeps_what_the_state_change_committed_and_refuses_edits(
    infra: Infra, database: str, topic_prefix: str
) -> None:
    pool = await prepare(database)
    outbox = Outbox("/test", topic_prefix)
    await ensure_topics(infra.bootstrap_servers, [outbox.topic_for(CounterIncremented)], 3)
    relay = make_relay(pool, database, infra.bootstrap_servers)
    try:
        with pytest.raises(RuntimeError, match="rolled back"):
            async with pool.acquire() as conn, conn.transaction():
                await outbox.add(conn, *counters(1, 1, 3))
                raise RuntimeError("rolled back")
        assert await pool.fetchval("SELECT count(*) FROM event_log") == 0

        async with pool.acquire() as conn, conn.transaction():
            ids = await outbox.add(conn, *counters(2, 1, 3))
        logged = await pool.fetch("SELECT * FROM event_log ORDER BY position")
        queued = await pool.fetch("SELECT * FROM outbox ORDER BY id")
        assert [r["event_id"] for r in logged] == ids == [r["event_id"] for r in queued]
        for log_row, queue_row in zip(logged, queued, strict=True):
            for column in ("topic", "event_type", "aggregate_id", "payload", "headers"):
                assert log_row[column] == queue_row[column]

        await relay.start()
        published = await read_topic(
            infra.bootstrap_servers, outbox.topic_for(CounterIncremented), min_count=6
        )
        assert {e.headers["ce_id"] for e in published} == {str(i) for i in ids}
        await eventually(lambda: _backlog_is(pool, 0), timeout=10)
        assert await pool.fetchval("SELECT count(*) FROM event_log") == 6, "the log keeps them"

        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await pool.execute("UPDATE event_log SET topic = 'elsewhere'")
    finally:
        await relay.stop()
        await pool.close()


async def test_a_state_change_rides_in_the_events_statement_and_fails_with_them(
    database: str,
) -> None:
    """`Outbox.add(..., change=...)`: the change's rows and the events are one statement, so a
    change the database refuses leaves no event behind, and events without it are unaffected."""
    pool = await prepare(database)
    outbox = Outbox("/test")
    change = StateChange(
        "saved AS (INSERT INTO counter_projection (counter_id, last_seq, applied, out_of_order)"
        " VALUES ($1, $2, 1, 0))",
        ("counter-000", 1),
    )
    try:
        async with pool.acquire() as conn, conn.transaction():
            ids = await outbox.add(conn, *counters(1, 1, 2), change=change)
        assert await pool.fetchval("SELECT last_seq FROM counter_projection") == 1
        logged = await pool.fetch("SELECT event_id, payload FROM event_log ORDER BY position")
        assert [r["event_id"] for r in logged] == ids
        assert [CounterIncremented.model_validate_json(r["payload"]).seq for r in logged] == [1, 2]
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 2

        with pytest.raises(asyncpg.UniqueViolationError):
            async with pool.acquire() as conn, conn.transaction():
                await outbox.add(conn, *counters(1, 3, 3), change=change)
        assert await pool.fetchval("SELECT count(*) FROM event_log") == 2
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 2
    finally:
        await pool.close()


async def test_a_guarded_change_writes_its_events_only_when_it_took_place(database: str) -> None:
    """`StateChange.guard`: a conditional update of the version read, in one statement outside
    any transaction, writes its events with it, or nothing when another write came first."""
    pool = await prepare(database)
    outbox = Outbox("/test")
    await pool.execute(
        "INSERT INTO counter_projection (counter_id, last_seq, applied, out_of_order)"
        " VALUES ('counter-000', 1, 1, 0)"
    )

    def after(seq: int) -> StateChange:
        return StateChange(
            "saved AS (UPDATE counter_projection SET last_seq = $2"
            " WHERE counter_id = $1 AND last_seq = $2 - 1 RETURNING last_seq)",
            ("counter-000", seq),
            returns="EXISTS (SELECT FROM saved) AS saved",
            guard="saved",
        )

    try:
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            _, took = await outbox.add_returning(conn, *counters(1, 2, 2), change=after(2))
            _, stale = await outbox.add_returning(conn, *counters(1, 2, 2), change=after(2))
            with pytest.raises(RuntimeError, match="transaction"):
                await outbox.add(conn, *counters(1, 3, 3))
        assert took["saved"] and not stale["saved"]
        assert await pool.fetchval("SELECT last_seq FROM counter_projection") == 2
        logged = await pool.fetch("SELECT payload FROM event_log ORDER BY position")
        assert [CounterIncremented.model_validate_json(r["payload"]).seq for r in logged] == [2]
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 1
    finally:
        await pool.close()


async def test_a_replay_publishes_the_log_again_and_consumers_change_nothing(
    infra: Infra, database: str, topic_prefix: str
) -> None:
    """2,000 events applied, then replayed from the start and from a time: every copy is a
    counted duplicate, the projection is unchanged, order per aggregate holds."""
    bootstrap = infra.bootstrap_servers
    pool = await prepare(database)
    outbox = Outbox("/test", topic_prefix)
    topic = outbox.topic_for(CounterIncremented)
    await ensure_topics(bootstrap, [topic], 6)
    consumer = counter_consumer(topic_prefix, batch_size=500)
    group = consumer.group_id
    relay = make_relay(pool, database, bootstrap, batch_size=500, poll_seconds=0.1)
    await relay.start()
    broker = None
    try:
        await write_events(pool, outbox, counters(20, 1, 100))
        await eventually(lambda: _backlog_is(pool, 0), timeout=30)
        assert not await eventlog.consumed_everything(bootstrap, group, [topic])

        broker = await start_consumer(bootstrap, pool, consumer)
        await eventually(lambda: _applied(pool, 2000), timeout=60)
        await eventually(lambda: eventlog.consumed_everything(bootstrap, group, [topic]), 30)
        before = await _projection(pool)
        assert {r["applied"] for r in before} == {100} and {r["last_seq"] for r in before} == {100}

        duplicates = _duplicates(topic)
        async with pool.acquire() as conn:
            assert await eventlog.replay(conn, 0) == 2000
        await eventually(lambda: _counted(topic, duplicates + 2000), timeout=60)
        assert await _projection(pool) == before, "a replay changed the projection"

        # From a time: the events logged at or after it (one transaction of 20) go out again.
        await write_events(pool, outbox, counters(20, 101, 101))
        await eventually(lambda: _applied(pool, 2020), timeout=30)
        async with pool.acquire() as conn:
            since = await pool.fetchval(
                "SELECT created_at FROM event_log ORDER BY position DESC LIMIT 1"
            )
            after = await eventlog.position_at(conn, since)
            assert after == await pool.fetchval("SELECT max(position) FROM event_log") - 20
            assert await eventlog.replay(conn, after) == 20
        await eventually(lambda: _counted(topic, duplicates + 2020), timeout=30)

        events = await read_topic(bootstrap, topic, min_count=4040, timeout=30)
        logged = {str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM event_log")}
        assert {e.headers["ce_id"] for e in events} == logged, "replayed with the original ids"
        rows = await _projection(pool)
        assert {r["applied"] for r in rows} == {101}, "an event applied twice or lost"
        assert sum(r["out_of_order"] for r in rows) == 0
    finally:
        if broker is not None:
            await broker.stop()
        await relay.stop()
        await pool.close()


async def test_a_replay_goes_out_in_log_order_before_what_is_queued(
    infra: Infra, database: str, topic_prefix: str
) -> None:
    pool = await prepare(database)
    outbox = Outbox("/test", topic_prefix)
    topic = outbox.topic_for(CounterIncremented)
    await ensure_topics(infra.bootstrap_servers, [topic], 3)
    relay = make_relay(pool, database, infra.bootstrap_servers, batch_size=5)
    try:
        await write_events(pool, outbox, counters(3, 1, 4), per_transaction=3)
        # The relay had published the first two rounds when the broker forgot them.
        await pool.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox LIMIT 6)")
        async with pool.acquire() as conn:
            assert await eventlog.replay(conn, 0) == 12
        await write_events(pool, outbox, counters(3, 5, 5))
        await relay.start()
        events = await read_topic(infra.bootstrap_servers, topic, min_count=27)
        seen: dict[str, list[int]] = {}
        for event in events:
            seen.setdefault(event.key, []).append(event.data["seq"])
        # Each counter: the replayed stretch, its events still queued again, then the new one.
        assert seen == {f"counter-{a:03d}": [1, 2, 3, 4, 3, 4, 5] for a in range(3)}
        assert relay.replayed == 12
        assert await pool.fetchval("SELECT count(*) FROM event_log_replay") == 0
    finally:
        await relay.stop()
        await pool.close()


async def test_a_replay_goes_on_where_a_stopped_relay_left_it(
    infra: Infra, database: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap = infra.bootstrap_servers
    pool = await prepare(database)
    outbox = Outbox("/test", topic_prefix)
    topic = outbox.topic_for(CounterIncremented)
    await ensure_topics(bootstrap, [topic], 3)
    first = make_relay(pool, database, bootstrap, batch_size=10)
    second = make_relay(pool, database, bootstrap, batch_size=10)
    try:
        await write_events(pool, outbox, counters(10, 1, 10))
        await pool.execute("DELETE FROM outbox")  # published once, then the broker forgot
        async with pool.acquire() as conn:
            assert await eventlog.replay(conn, 0) == 100
        send = first._send

        async def broker_lost_after_three_batches(
            rows: list[asyncpg.Record], timeout: float
        ) -> None:
            # The relay loses the broker three batches in, whatever its speed; then it stops.
            if first.replayed >= 30:
                raise KafkaConnectionError("the broker went away")
            await send(rows, timeout)

        monkeypatch.setattr(first, "_send", broker_lost_after_three_batches)
        await first.start()

        async def under_way() -> bool:
            return first.replayed >= 30

        await eventually(under_way, timeout=15, interval=0.01)
        await first.stop()
        noted = await pool.fetchval("SELECT after FROM event_log_replay")
        assert noted == first.replayed == 30, "the relay notes how far the replay got"

        await second.start()
        events = await read_topic(bootstrap, topic, min_count=100, timeout=20)
        assert len(events) == 100, "the rest of the stretch went out, and nothing else"
        logged = {str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM event_log")}
        assert {e.headers["ce_id"] for e in events} == logged
        assert first.replayed + second.replayed == 100
    finally:
        await first.stop()
        await second.stop()
        await pool.close()


async def test_retention_prunes_only_old_published_events(database: str) -> None:
    pool = await prepare(database)
    try:
        old = datetime.now(UTC) - timedelta(days=40)
        rows = []
        for label, created in (("old published", old), ("old queued", old), ("recent", None)):
            rows.append((uuid.uuid4(), label, created or datetime.now(UTC)))
        await pool.executemany(
            """INSERT INTO event_log (event_id, topic, event_type, aggregate_id, payload,
                                      headers, created_at)
               VALUES ($1, 't', 'x.v1', $2, '\\x7b7d', '{}', $3)""",
            rows,
        )
        await pool.execute(
            """INSERT INTO outbox (event_id, topic, event_type, aggregate_id, payload, headers)
               SELECT event_id, topic, event_type, aggregate_id, payload, headers
               FROM event_log WHERE aggregate_id = 'old queued'"""
        )
        async with pool.acquire() as conn:
            assert await prune_log(conn, timedelta(days=30)) == 1
        left = {r["aggregate_id"] for r in await pool.fetch("SELECT aggregate_id FROM event_log")}
        assert left == {"old queued", "recent"}
    finally:
        await pool.close()


async def test_backlog_figures_count_while_the_broker_is_down(
    database: str, topic_prefix: str
) -> None:
    pool = await prepare(database)
    nowhere = f"127.0.0.1:{free_port()}"
    relay = make_relay(pool, database, nowhere, stats_seconds=0.2, max_backoff=0.5)
    await relay.start()
    try:
        await write_events(pool, Outbox("/test", topic_prefix), counters(5, 1, 6))

        async def counted() -> bool:
            return relay.backlog == 30 and relay.oldest_age > 0.5

        await eventually(counted, timeout=15)
        assert REGISTRY.get_sample_value("ekatalog_outbox_backlog") == 30
        assert not relay.broker_available
    finally:
        await relay.stop()
        await pool.close()


async def _backlog_is(pool: asyncpg.Pool, count: int) -> bool:
    return int(await pool.fetchval("SELECT count(*) FROM outbox")) == count


async def _applied(pool: asyncpg.Pool, count: int) -> bool:
    total = await pool.fetchval("SELECT coalesce(sum(applied), 0) FROM counter_projection")
    return int(total) >= count


async def _projection(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT * FROM counter_projection ORDER BY counter_id"))


def _duplicates(topic: str) -> float:
    labels = {"consumer": "counters", "topic": topic, "outcome": "duplicate"}
    return REGISTRY.get_sample_value("ekatalog_events_consumed_total", labels) or 0.0


async def _counted(topic: str, count: float) -> bool:
    return _duplicates(topic) >= count
