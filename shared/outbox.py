"""Transactional outbox: write events with the state change, publish them with a relay."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from shared.db import Connection
from shared.events import Event, build_headers, encode
from shared.logging import current_correlation_id, get_logger
from shared.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE

log = get_logger(__name__)

NOTIFY_CHANNEL = "ekatalog_outbox"

_INSERT = """
INSERT INTO outbox (event_id, topic, event_type, aggregate_id, payload, headers)
VALUES ($1, $2, $3, $4, $5, $6)
"""

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
_BACKLOG = """
SELECT count(*) AS backlog, extract(epoch FROM now() - min(created_at)) AS oldest FROM outbox
"""


class Outbox:
    """Writes events into the outbox table inside the caller's transaction."""

    def __init__(self, source: str, topic_prefix: str = "") -> None:
        self.source = source
        self.topic_prefix = topic_prefix

    @classmethod
    def for_service(cls, service: str, topic_prefix: str = "") -> Outbox:
        """The outbox a service's commands and its event handlers both write through."""
        return cls(source=f"/ekatalog/{service}", topic_prefix=topic_prefix)

    def topic_for(self, event: Event | type[Event]) -> str:
        return f"{self.topic_prefix}{event.topic}"

    async def add(self, conn: Connection, *events: Event) -> list[uuid.UUID]:
        if not conn.is_in_transaction():
            raise RuntimeError("outbox events must be written in the state change's transaction")
        now = datetime.now(UTC)
        correlation_id = current_correlation_id()
        rows = []
        ids = []
        for event in events:
            event_id = uuid.uuid4()
            ids.append(event_id)
            headers = build_headers(
                event_id=event_id,
                event_type=event.type,
                source=self.source,
                subject=event.aggregate_id,
                time=now,
                correlation_id=correlation_id,
            )
            rows.append(
                (
                    event_id,
                    self.topic_for(event),
                    event.type,
                    event.aggregate_id,
                    encode(event),
                    headers,
                )
            )
        await conn.executemany(_INSERT, rows)
        await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
        return ids


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
    loses its session and the rows are free again. Sends are pipelined: the whole batch is handed
    to the producer and the acknowledgements are awaited together; then the rows are deleted
    (marked published) in the claiming transaction. A failure rolls the claim back and the relay
    backs off while the broker is unreachable.
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
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.bootstrap_servers = bootstrap_servers
        self.name = name
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.max_backoff = max_backoff
        self.lock_key = zlib.crc32(f"outbox-relay:{name}".encode())
        self.published = 0
        self.broker_available = False
        self.backlog = 0
        self.oldest_age = 0.0
        self._producer: AIOKafkaProducer | None = None
        self._lock_conn: Connection | None = None
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_stats = 0.0

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
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
                published = await self.publish_batch()
                backoff = 0.1
                await self._housekeeping()
                if published == 0:
                    await self._sleep(self.poll_seconds)
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
        self._wakeup.clear()
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
        assert self._producer is not None
        lease_ms = int(self.lease_seconds * 1000)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SET LOCAL idle_in_transaction_session_timeout = {lease_ms}")
            rows = await conn.fetch(_CLAIM, self.batch_size)
            if not rows:
                return 0
            futures = [
                await self._producer.send(
                    r["topic"],
                    value=r["payload"],
                    key=r["aggregate_id"].encode(),
                    headers=_kafka_headers(r["headers"]),
                )
                for r in rows
            ]
            # Within the lease, so that the rows are still ours when they are marked.
            await asyncio.wait_for(asyncio.gather(*futures), timeout=self.lease_seconds * 0.8)
            await conn.execute(_DELETE_PUBLISHED, [r["id"] for r in rows])
        self.broker_available = True
        self.published += len(rows)
        for r in rows:
            EVENTS_PUBLISHED.labels(r["topic"]).inc()
        return len(rows)

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_stats >= 1.0:
            self._last_stats = now
            async with self.pool.acquire() as conn:
                self.backlog, self.oldest_age = await outbox_backlog(conn)
            OUTBOX_BACKLOG.set(self.backlog)
            OUTBOX_OLDEST_AGE.set(self.oldest_age)


def _kafka_headers(headers: Any) -> list[tuple[str, bytes]]:
    if isinstance(headers, str):
        headers = json.loads(headers)
    return [(k, str(v).encode()) for k, v in headers.items()]
