"""Transactional outbox: write events with the state change, publish them with a relay.

Every event goes into two tables in the caller's transaction: `outbox`, the queue the relay
publishes from and empties, and `event_log`, the service's permanent record of what it published
(see `shared.eventlog` for replay and recovery).
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import pydantic_core
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from shared.db import Connection
from shared.events import Event, build_headers, encode
from shared.logging import current_correlation_id, get_logger
from shared.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE

if TYPE_CHECKING:
    from aiokafka.producer.message_accumulator import BatchBuilder

log = get_logger(__name__)

NOTIFY_CHANNEL = "ekatalog_outbox"
# A transaction that sends a NOTIFY holds one database-wide lock through its commit (the WAL flush
# included), so PostgreSQL commits such transactions one at a time: with a NOTIFY in every write,
# concurrent writes lose group commit and half their rate or more. An outbox therefore wakes the
# relay with at most one write in each interval, and a relay that published within the last
# `BUSY_SECONDS` looks for rows again after the interval by itself: the writes in between wait
# for that poll, not for a notification.
NOTIFY_INTERVAL = 0.02
BUSY_SECONDS = 1.0

# One statement, one round trip, for every write of every service: the log and the queue get the
# events in the order they were given (the ids are drawn in ordinality order), so the log
# positions and the outbox ids of one aggregate's events follow each other, and the relay is
# woken when the transaction commits. A state change that does not need to read anything back
# rides in the same statement, as data-modifying CTEs ahead of the events' (see `StateChange`).
_ADD = """
WITH {change}events AS (
    SELECT * FROM unnest(${a}::uuid[], ${b}::text[], ${c}::text[], ${d}::text[], ${e}::bytea[],
                         ${f}::text[])
        WITH ORDINALITY AS e(event_id, topic, event_type, aggregate_id, payload, headers, n)
    {guard}
), logged AS (
    INSERT INTO event_log (event_id, topic, event_type, aggregate_id, payload, headers)
    SELECT event_id, topic, event_type, aggregate_id, payload, headers::jsonb FROM events
    ORDER BY n
), queued AS (
    INSERT INTO outbox (event_id, topic, event_type, aggregate_id, payload, headers)
    SELECT event_id, topic, event_type, aggregate_id, payload, headers::jsonb FROM events
    ORDER BY n
)
SELECT {wake}{returns}
"""


@dataclass(frozen=True)
class StateChange:
    """A state change written in the events' own statement, saving a round trip per write.

    `ctes` are data-modifying common table expressions (`saved AS (UPDATE ...), history AS
    (INSERT ... FROM saved)`) over the parameters `$1` to `$n`, whose values `args` holds. They
    see the statement's snapshot and cannot read the outbox's rows: a change whose event needs
    what the database computes (`RETURNING`) runs its own statement first.
    """

    ctes: str
    args: tuple[Any, ...]
    # Expressions over the CTEs that the statement returns (`Outbox.add_returning`), e.g.
    # whether a conditional insert took place.
    returns: str = ""
    # The name of a CTE: the events are written only if it returned a row. A conditional change
    # (an insert within the pagu, an update of the version read) then writes its events with it
    # or nothing at all, in one statement that needs no transaction around it.
    guard: str = ""


@functools.cache
def _add_statement(ctes: str, after: int, notify: bool, returns: str = "", guard: str = "") -> str:
    """The outbox statement behind `ctes`, its own parameters numbered from `after` + 1; with
    `notify` it wakes the relay (the channel is the last parameter)."""
    numbers = dict(zip("abcdef", range(after + 1, after + 7), strict=True))
    wake = f"pg_notify(${after + 7}, '')" if notify else "1"
    return _ADD.format(
        change=f"{ctes},\n" if ctes else "",
        guard=f"WHERE EXISTS (SELECT FROM {guard})" if guard else "",
        wake=wake,
        returns=f", {returns}" if returns else "",
        **numbers,
    )


# Rows commit out of id order, so the relay never keeps a cursor: it takes the oldest rows that no
# other transaction holds. Commands lock their aggregate before writing events, which keeps one
# aggregate's ids in commit order.
_CLAIM = """
SELECT id, topic, aggregate_id, payload, headers FROM outbox
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED
"""
_DELETE_PUBLISHED = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"
_NEXT_REPLAY = "SELECT id, after, upto FROM event_log_replay ORDER BY id LIMIT 1"
_REPLAYED = """
SELECT position, topic, aggregate_id, payload, headers FROM event_log
WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3
"""
_REPLAYED_UP_TO = "UPDATE event_log_replay SET after = $2 WHERE id = $1"
_BACKLOG = """
SELECT count(*) AS backlog, extract(epoch FROM now() - min(created_at)) AS oldest FROM outbox
"""


class Outbox:
    """Writes events into the outbox table inside the caller's transaction."""

    def __init__(
        self, source: str, topic_prefix: str = "", notify_interval: float = NOTIFY_INTERVAL
    ) -> None:
        self.source = source
        self.topic_prefix = topic_prefix
        self.notify_interval = notify_interval
        self._notified_at = -notify_interval

    @classmethod
    def for_service(cls, service: str, topic_prefix: str = "") -> Outbox:
        """The outbox a service's commands and its event handlers both write through."""
        return cls(source=f"/ekatalog/{service}", topic_prefix=topic_prefix)

    def topic_for(self, event: Event | type[Event]) -> str:
        return f"{self.topic_prefix}{event.topic}"

    async def add(
        self, conn: Connection, *events: Event, change: StateChange | None = None
    ) -> list[uuid.UUID]:
        """Log and queue `events` in the caller's transaction, with `change` in the same
        statement when given; returns the events' ids."""
        ids, _ = await self.add_returning(conn, *events, change=change)
        return ids

    async def add_returning(
        self, conn: Connection, *events: Event, change: StateChange | None = None
    ) -> tuple[list[uuid.UUID], asyncpg.Record]:
        """`add`, also returning the row of the statement: `change.returns` is in it.

        Outside a transaction only with `change`: the one statement is then the transaction."""
        if change is None and not conn.is_in_transaction():
            raise RuntimeError("outbox events must be written in the state change's transaction")
        now = datetime.now(UTC)
        correlation_id = current_correlation_id()
        columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
        for event in events:
            event_id = uuid.uuid4()
            headers = build_headers(
                event_id=event_id,
                event_type=event.type,
                source=self.source,
                subject=event.aggregate_id,
                time=now,
                correlation_id=correlation_id,
            )
            row = (
                event_id,
                self.topic_for(event),
                event.type,
                event.aggregate_id,
                encode(event),
                pydantic_core.to_json(headers).decode(),
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        clock = time.monotonic()
        notify = clock - self._notified_at >= self.notify_interval
        if notify:
            self._notified_at = clock
        change = change or StateChange("", ())
        statement = _add_statement(
            change.ctes, len(change.args), notify, change.returns, change.guard
        )
        wake = (NOTIFY_CHANNEL,) if notify else ()
        result = await conn.fetchrow(statement, *change.args, *columns, *wake)
        assert result is not None  # a SELECT without FROM: always one row
        return columns[0], result


async def outbox_backlog(conn: Connection) -> tuple[int, float]:
    """Number of unpublished events and the age in seconds of the oldest one."""
    row = await conn.fetchrow(_BACKLOG)
    assert row is not None  # an aggregate always returns one row
    return int(row["backlog"]), float(row["oldest"] or 0.0)


class OutboxRelay:
    """Publishes outbox rows to Kafka, keyed by aggregate id, in id order.

    Exactly one relay per database publishes at a time (a session advisory lock), which keeps each
    aggregate's events in order. A batch is claimed with `FOR UPDATE SKIP LOCKED` in a transaction
    whose lease is PostgreSQL's `idle_in_transaction_session_timeout`: a relay that stalls or dies
    loses its session and the rows are free again. Sends are pipelined: the claimed rows go to
    the producer as one record batch per partition and the acknowledgements are awaited
    together; then the rows are deleted (marked published) in the claiming transaction. A
    failure rolls the claim back and the relay backs off while the broker is unreachable.

    A replay asked for in `event_log_replay` is published from the log before the queue.

    The backlog figures (`backlog`, `oldest_age` and their gauges) are refreshed by a task of
    their own, so that they keep counting while the broker is down. With `log_retention` set, the
    relay that holds the lock also deletes published log rows older than that.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        bootstrap_servers: str,
        *,
        name: str,
        batch_size: int = 500,
        poll_seconds: float = 0.5,
        lease_seconds: float = 30.0,
        max_backoff: float = 5.0,
        stats_seconds: float = 1.0,
        log_retention: timedelta | None = None,
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.bootstrap_servers = bootstrap_servers
        self.name = name
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.max_backoff = max_backoff
        self.stats_seconds = stats_seconds
        self.log_retention = log_retention
        self.lock_key = zlib.crc32(f"outbox-relay:{name}".encode())
        self.published = 0
        self.replayed = 0
        self.broker_available = False
        self.backlog = 0
        self.oldest_age = 0.0
        self._producer: AIOKafkaProducer | None = None
        self._lock_conn: Connection | None = None
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_prune = 0.0
        self._published_at = -BUSY_SECONDS

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.name}")
        self._stats_task = asyncio.create_task(self._watch_backlog(), name=f"backlog-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._stats_task is not None:
            self._stats_task.cancel()
            await asyncio.gather(self._stats_task, return_exceptions=True)
            self._stats_task = None
        if self._task is not None:
            await self._task
            self._task = None
        await self._close_producer()
        await self._release_lock()

    def wake(self) -> None:
        self._wakeup.set()

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                if not await self._hold_lock():
                    await self._sleep(self.poll_seconds)
                    continue
                await self._ensure_producer()
                # Cleared before the claim, not before the wait: a notification arriving while
                # the claim runs is for rows the claim may not have seen.
                self._wakeup.clear()
                # A replay goes out before what is queued: it covers events logged earlier.
                published = await self.replay_batch() or await self.publish_batch()
                backoff = 0.1
                await self._prune_log()
                if published:
                    self._published_at = time.monotonic()
                elif time.monotonic() - self._published_at < BUSY_SECONDS:
                    await self._wait(min(NOTIFY_INTERVAL, self.poll_seconds))
                else:
                    await self._wait(self.poll_seconds)
            except (KafkaError, OSError, TimeoutError) as exc:
                self.broker_available = False
                log.warning(
                    "outbox relay cannot reach the broker", error=repr(exc), retry_in=backoff
                )
                await self._close_producer()
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("outbox relay database error", error=repr(exc), retry_in=backoff)
                await self._release_lock()
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _sleep(self, seconds: float) -> None:
        """Wait `seconds` unless woken by what arrives from now on (a backoff)."""
        self._wakeup.clear()
        await self._wait(seconds)

    async def _wait(self, seconds: float) -> None:
        """Wait `seconds` unless woken, or woken already since the last claim began."""
        if self._stopping:
            return
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _hold_lock(self) -> bool:
        if self._lock_conn is not None and not self._lock_conn.is_closed():
            return True
        conn = await asyncpg.connect(self.dsn)
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_key):
            await conn.close()
            return False
        await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wakeup.set())
        self._lock_conn = conn
        log.info("outbox relay holds the publishing lock", relay=self.name)
        return True

    async def _release_lock(self) -> None:
        if self._lock_conn is not None:
            conn, self._lock_conn = self._lock_conn, None
            if not conn.is_closed():
                await conn.close()

    async def _ensure_producer(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            acks="all",
            linger_ms=2,
            max_batch_size=256 * 1024,
            request_timeout_ms=5000,
            retry_backoff_ms=200,
            client_id=f"ekatalog-relay-{self.name}",
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer
        self.broker_available = True

    async def _close_producer(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await asyncio.wait_for(producer.stop(), timeout=5)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.debug("producer stop failed", error=repr(exc))

    async def publish_batch(self) -> int:
        """Claim, send and mark one batch; returns how many events were published."""
        lease_ms = int(self.lease_seconds * 1000)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SET LOCAL idle_in_transaction_session_timeout = {lease_ms}")
            rows = await conn.fetch(_CLAIM, self.batch_size)
            if not rows:
                return 0
            # Within the lease, so that the rows are still ours when they are marked.
            await self._send(rows, timeout=self.lease_seconds * 0.8)
            await conn.execute(_DELETE_PUBLISHED, [r["id"] for r in rows])
        self.published += len(rows)
        return len(rows)

    async def replay_batch(self) -> int:
        """Publish the next stretch of the oldest replay asked for (`shared.eventlog.replay`)
        straight from the log, in log order; returns how many events were sent.

        Nothing is locked or deleted: if the relay stops before it notes how far it got, the
        stretch goes out again and consumers drop the copies.
        """
        async with self.pool.acquire() as conn:
            job = await conn.fetchrow(_NEXT_REPLAY)
            if job is None:
                return 0
            rows = await conn.fetch(_REPLAYED, job["after"], job["upto"], self.batch_size)
            if rows:
                await self._send(rows, timeout=self.lease_seconds)
                self.replayed += len(rows)
            if len(rows) < self.batch_size or rows[-1]["position"] >= job["upto"]:
                await conn.execute("DELETE FROM event_log_replay WHERE id = $1", job["id"])
                log.info("replay published", relay=self.name, upto=job["upto"])
            else:
                await conn.execute(_REPLAYED_UP_TO, job["id"], rows[-1]["position"])
        return len(rows)

    async def _send(self, rows: list[asyncpg.Record], timeout: float) -> None:
        """Hand the rows to the producer as one record batch per partition, in their order
        within it, then await all the acknowledgements together.

        A batch is filled without the coroutine and the future that the producer's `send`
        makes for each event; each event goes on the partition `send` would pick for its key.
        """
        producer = self._producer
        assert producer is not None
        partitions: dict[str, list[int]] = {}
        open_batches: dict[tuple[str, int], BatchBuilder] = {}
        futures = []
        for r in rows:
            topic, key = r["topic"], r["aggregate_id"].encode()
            if topic not in partitions:
                partitions[topic] = sorted(await producer.partitions_for(topic))
            partition = default_partition(key, partitions[topic])
            headers = _kafka_headers(r["headers"])
            batch = open_batches.get((topic, partition))
            # An empty batch takes any record; a full one goes now and a new one follows it.
            while batch is None or (
                batch.append(timestamp=None, key=key, value=r["payload"], headers=headers) is None
            ):
                if batch is not None:
                    futures.append(await self._submit(batch, topic, partition))
                batch = open_batches[(topic, partition)] = producer.create_batch()
        for (topic, partition), batch in open_batches.items():
            futures.append(await self._submit(batch, topic, partition))
        await asyncio.wait_for(asyncio.gather(*futures), timeout=timeout)
        self.broker_available = True
        for topic, count in Counter(r["topic"] for r in rows).items():
            EVENTS_PUBLISHED.labels(topic).inc(count)

    async def _submit(self, batch: BatchBuilder, topic: str, partition: int) -> asyncio.Future[Any]:
        assert self._producer is not None
        batch.close()
        future: asyncio.Future[Any] = await self._producer.send_batch(
            batch, topic, partition=partition
        )
        return future

    async def refresh_backlog(self) -> None:
        async with self.pool.acquire(timeout=self.stats_seconds * 5) as conn:
            self.backlog, self.oldest_age = await outbox_backlog(conn)
        OUTBOX_BACKLOG.set(self.backlog)
        OUTBOX_OLDEST_AGE.set(self.oldest_age)

    async def _watch_backlog(self) -> None:
        while True:
            try:
                await self.refresh_backlog()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                log.debug("outbox backlog not refreshed", error=repr(exc))
            await asyncio.sleep(self.stats_seconds)

    async def _prune_log(self) -> None:
        if self.log_retention is None or time.monotonic() - self._last_prune < _PRUNE_EVERY:
            return
        self._last_prune = time.monotonic()
        async with self.pool.acquire() as conn:
            pruned = await prune_log(conn, self.log_retention)
        if pruned:
            log.info("event log pruned", relay=self.name, events=pruned)


_PRUNE_EVERY = 600.0
_PRUNE = """
DELETE FROM event_log l
WHERE l.created_at < now() - $1::interval
  AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = l.event_id)
"""


async def prune_log(conn: Connection, retention: timedelta) -> int:
    """Delete logged events older than `retention` that are no longer waiting to be published."""
    status = await conn.execute(_PRUNE, retention)
    return int(status.split()[-1])


@functools.lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    """The Java client's partitioning hash of a key, as aiokafka's default partitioner takes it.

    An aggregate's events come one after another, and the pure-Python murmur2 cost more than
    the rest of handing an event to the producer."""
    hashed: int = murmur2(key)
    return hashed & 0x7FFFFFFF


def default_partition(key: bytes, partitions: list[int]) -> int:
    """The partition Kafka's default partitioner gives a key: an aggregate's events stay in
    one partition."""
    return partitions[_key_hash(key) % len(partitions)]


def _kafka_headers(headers: Any) -> list[tuple[str, bytes]]:
    if isinstance(headers, str):
        headers = json.loads(headers)
    return [(k, str(v).encode()) for k, v in headers.items()]
