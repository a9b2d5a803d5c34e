"""Idempotent event consumer: inbox, bounded retries, dead letters, commit after storing.

Each Kafka batch is handled in one database transaction that stores the projection changes and
the inbox rows together; the offsets are committed only after that transaction (FastStream's
`NACK_ON_ERROR` policy: a failure rewinds the partition instead of committing).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from shared.db import Connection
from shared.events import (
    DeadLetterError,
    Event,
    EventMeta,
    decode_headers,
    parse_data,
    parse_meta,
    registry,
)
from shared.logging import correlation_id_var, get_logger, handled_event_var
from shared.metrics import CONSUMER_COMMITTED_OFFSET, EVENTS_CONSUMED

log = get_logger(__name__)

Handler = Callable[[Connection, Any, EventMeta], Awaitable[None]]
BatchHandler = Callable[[Connection, Sequence[tuple[Any, EventMeta]]], Awaitable[None]]


@dataclass(frozen=True)
class _Batched:
    """A handler called once per batch with all of the batch's new events of its types."""

    handle: BatchHandler


DLQ_SUFFIX = ".dlq"

# Errors of the platform's own database calls (taking a connection, the inbox, the commit) that
# say the database is unavailable: retrying the event cannot help and dead-lettering it would
# lose it, so the batch is rewound and read again later. A handler's errors are not judged by
# their type (a handler may time out on its own): the database is asked instead.
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    OSError,
    TimeoutError,
)
# How long the database may take to answer `SELECT 1` after a handler failed.
_PING_TIMEOUT_SECONDS = 5.0


class HandlerFailed(DeadLetterError):
    reason = "handler_failed"


class DatabaseUnavailable(Exception):
    """A handler failed and the database did not answer afterwards: rewind, do not dead-letter."""


@dataclass
class _Received:
    record: ConsumerRecord[Any, Any]
    event: Event | None
    meta: EventMeta | None
    error: DeadLetterError | None = None


async def _raw_decoder(msg: KafkaMessage) -> None:
    # The consumer parses records itself so that a malformed body becomes a dead letter
    # instead of a decoding error inside FastStream.
    return None


class EventConsumer:
    """One consumer group: handlers registered per event type, one subscriber per topic.

    A handler registered with `on` is called once per event; one registered with `on_batch` once
    per batch, with the batch's new events of its types in order (after the per-event handlers
    of the same batch), so that it can store them with set-based statements. Either way the
    calls run in the batch's one transaction, after the inbox dropped the duplicates. When the
    batch fails, its events are applied one at a time to find the culprit (a batch handler is
    then called with one event), which is retried and dead-lettered while the others commit.

    `retry_budget_seconds` bounds the time one batch may spend on failing events (attempts and
    backoff); once spent, an event that fails is dead-lettered on its first failure, so a batch
    in which every event fails still ends well within `max_poll_interval_ms`.
    """

    def __init__(
        self,
        name: str,
        *,
        topic_prefix: str = "",
        batch_size: int = 500,
        max_attempts: int = 3,
        backoff_seconds: float = 0.2,
        retry_budget_seconds: float = 30.0,
        session_timeout_ms: int = 10_000,
        max_poll_interval_ms: int = 300_000,
        fetch_max_wait_ms: int = 50,
    ) -> None:
        self.name = name
        self.session_timeout_ms = session_timeout_ms
        self.max_poll_interval_ms = max_poll_interval_ms
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.topic_prefix = topic_prefix
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.retry_budget_seconds = retry_budget_seconds
        self.handlers: dict[str, Handler | _Batched] = {}
        self._pool: asyncpg.Pool | None = None
        self._broker: KafkaBroker | None = None
        self._skipped_types: set[str] = set()

    def on(self, *event_types: type[Event]) -> Callable[[Handler], Handler]:
        def register(func: Handler) -> Handler:
            self._register(event_types, func)
            return func

        return register

    def on_batch(self, *event_types: type[Event]) -> Callable[[BatchHandler], BatchHandler]:
        def register(func: BatchHandler) -> BatchHandler:
            self._register(event_types, _Batched(func))
            return func

        return register

    def _register(self, event_types: Sequence[type[Event]], handler: Handler | _Batched) -> None:
        for event_type in event_types:
            if event_type.type in self.handlers:
                raise ValueError(f"{self.name} already handles {event_type.type}")
            self.handlers[event_type.type] = handler

    @property
    def group_id(self) -> str:
        return f"{self.topic_prefix}{self.name}"

    @property
    def topics(self) -> list[str]:
        names = {registry.get(t).topic for t in self.handlers}  # type: ignore[union-attr]
        return sorted(f"{self.topic_prefix}{name}" for name in names)

    def attach(self, broker: KafkaBroker) -> None:
        """Declare the subscriber on `broker`; call `bind` with the pool before it starts.

        One subscriber reads every topic, so each instance of a service is one member of its
        group: a start or a stop is one rebalance, not one per topic. Members that each read a
        different topic made every instance's start a chain of rebalances, and a member stopped
        in the middle of one left the embedded broker's group without assignments for over a
        minute.
        """
        self._broker = broker
        topics = self.topics
        if not topics:
            return
        broker.subscriber(
            *topics,
            group_id=self.group_id,
            batch=True,
            max_records=self.batch_size,
            batch_timeout_ms=100,
            auto_offset_reset="earliest",
            # A new member is assigned partitions only after the group's join window,
            # which brokers derive from the session timeout.
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(self.session_timeout_ms // 10, 100),
            max_poll_interval_ms=self.max_poll_interval_ms,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=_raw_decoder,
            title=self.name,
            description=f"{self.name} consumes "
            + "; ".join(f"{topic}: {', '.join(self._types_on(topic))}" for topic in topics),
        )(self._on_batch)

    def _types_on(self, topic: str) -> list[str]:
        return [
            t
            for t in self.handlers
            if f"{self.topic_prefix}{registry.get(t).topic}" == topic  # type: ignore[union-attr]
        ]

    def bind(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _on_batch(self, msg: KafkaMessage) -> None:
        records: Sequence[ConsumerRecord[Any, Any]] = (
            msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
        )
        try:
            await self.process(records)
        except (*_UNAVAILABLE, DatabaseUnavailable, KafkaError) as exc:
            log.warning(
                "consumer cannot store the batch; it will be read again",
                consumer=self.name,
                error=repr(exc.__cause__ or exc),
            )
            await asyncio.sleep(max(self.backoff_seconds, 0.5))
            raise
        # Committed here rather than after return, so the offset gauge shows what was committed.
        await msg.ack()
        _record_committed(self.name, records)

    async def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """Store the effects of a batch exactly once; dead-letter what cannot be processed."""
        assert self._pool is not None, "EventConsumer.bind(pool) was not called"
        deadline = asyncio.get_running_loop().time() + self.retry_budget_seconds
        received = self._parse(records)
        dead = [r for r in received if r.error is not None]
        todo = [r for r in received if r.error is None]
        if todo:  # a batch of skipped events needs no connection
            async with self._pool.acquire() as conn:
                try:
                    async with conn.transaction():
                        outcomes = await self._apply_batch(conn, todo)
                except Exception as exc:
                    await self._check_database(conn, exc)
                    # Find the culprits in order; the events around them still commit.
                    dead += await self._apply_in_order(conn, todo, deadline)
                else:
                    self._count(outcomes)
        for item in dead:
            await self._dead_letter(item)

    def _parse(self, records: Sequence[ConsumerRecord[Any, Any]]) -> list[_Received]:
        received = []
        seen: set[uuid.UUID] = set()
        for record in records:
            try:
                meta = parse_meta(
                    decode_headers(record.headers),
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                )
                if meta.type not in self.handlers:
                    self._skip(record, meta.type)
                    continue
                event = parse_data(meta.type, record.value)
            except DeadLetterError as exc:
                received.append(_Received(record, None, None, exc))
                continue
            if meta.id in seen:
                EVENTS_CONSUMED.labels(self.name, record.topic, "duplicate").inc()
                continue
            seen.add(meta.id)
            received.append(_Received(record, event, meta))
        return received

    def _skip(self, record: ConsumerRecord[Any, Any], event_type: str) -> None:
        """A well-formed event this consumer has no handler for: counted, and its offset is
        committed with the batch (a newer producer's types must not fill the dead letters)."""
        outcome = "ignored" if registry.get(event_type) is not None else "unknown_type"
        EVENTS_CONSUMED.labels(self.name, record.topic, outcome).inc()
        if event_type not in self._skipped_types:
            self._skipped_types.add(event_type)
            log.info(
                "events of this type are skipped",
                consumer=self.name,
                topic=record.topic,
                event_type=event_type,
                outcome=outcome,
            )

    async def _claim(self, conn: Connection, items: Sequence[_Received]) -> set[uuid.UUID]:
        """Insert the inbox rows; returns the ids this consumer had not processed before."""
        rows = await conn.fetch(
            "INSERT INTO inbox (consumer, event_id, event_type)"
            " SELECT $1, unnest($2::uuid[]), unnest($3::text[])"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            self.name,
            [i.meta.id for i in items],  # type: ignore[union-attr]
            [i.meta.type for i in items],  # type: ignore[union-attr]
        )
        return {r["event_id"] for r in rows}

    async def _apply_batch(
        self, conn: Connection, items: Sequence[_Received]
    ) -> Counter[tuple[str, str]]:
        new = await self._claim(conn, items)
        outcomes: Counter[tuple[str, str]] = Counter()
        batched: dict[_Batched, list[tuple[Any, EventMeta]]] = {}
        for item in items:
            assert item.meta is not None
            if item.meta.id in new:
                handler = self.handlers[item.meta.type]
                if isinstance(handler, _Batched):
                    batched.setdefault(handler, []).append((item.event, item.meta))
                else:
                    await self._handle(conn, handler, item)
                outcomes[(item.record.topic, "processed")] += 1
            else:
                outcomes[(item.record.topic, "duplicate")] += 1
        for batch_handler, events in batched.items():
            await batch_handler.handle(conn, events)
        return outcomes

    def _count(self, outcomes: Counter[tuple[str, str]]) -> None:
        for (topic, outcome), count in outcomes.items():
            EVENTS_CONSUMED.labels(self.name, topic, outcome).inc(count)

    async def _apply_in_order(
        self, conn: Connection, items: list[_Received], deadline: float
    ) -> list[_Received]:
        """Apply events one at a time in partition order; returns those to dead-letter.

        A failing event is retried `max_attempts` times with exponential backoff before the
        events behind it go on. The backoff is slept outside any transaction, and only while the
        batch's retry budget (up to `deadline`) lasts; after that a failure is final at once.
        """
        loop = asyncio.get_running_loop()
        failed: list[_Received] = []
        attempts: Counter[uuid.UUID] = Counter()
        pending = items
        while pending:
            done, error = await self._apply_until_failure(conn, pending)
            if error is None:
                break
            culprit = pending[done]
            assert culprit.meta is not None
            attempts[culprit.meta.id] += 1
            attempt = attempts[culprit.meta.id]
            remaining = deadline - loop.time()
            log.warning(
                "event handler failed",
                consumer=self.name,
                event_id=str(culprit.meta.id),
                event_type=culprit.meta.type,
                attempt=attempt,
                retry_budget_left=round(max(remaining, 0.0), 3),
                error=repr(error),
            )
            if attempt >= self.max_attempts or remaining <= 0:
                culprit.error = HandlerFailed(f"{type(error).__name__}: {error}")
                failed.append(culprit)
                pending = pending[done + 1 :]
            else:
                pending = pending[done:]
                await asyncio.sleep(min(self.backoff_seconds * 2 ** (attempt - 1), remaining))
        return failed

    async def _apply_until_failure(
        self, conn: Connection, items: Sequence[_Received]
    ) -> tuple[int, Exception | None]:
        """Apply `items` in one transaction, each under a savepoint, up to the first that fails;
        commits those before it. Returns how many were applied and the failure, if any."""
        outcomes: Counter[tuple[str, str]] = Counter()
        error: Exception | None = None
        async with conn.transaction():
            for item in items:
                try:
                    async with conn.transaction():
                        outcomes += await self._apply_batch(conn, [item])
                except Exception as exc:
                    error = exc
                    break
        self._count(outcomes)
        if error is not None:
            await self._check_database(conn, error)
        return outcomes.total(), error

    async def _check_database(self, conn: Connection, error: Exception) -> None:
        """Raise DatabaseUnavailable when the database does not answer after `error`."""
        try:
            await conn.fetchval("SELECT 1", timeout=_PING_TIMEOUT_SECONDS)
        except Exception as ping_error:
            log.warning(
                "the database does not answer",
                consumer=self.name,
                error=repr(error),
                ping_error=repr(ping_error),
            )
            raise DatabaseUnavailable(repr(ping_error)) from error

    async def _handle(self, conn: Connection, handler: Handler, item: _Received) -> None:
        assert item.meta is not None
        correlation = correlation_id_var.set(item.meta.correlation_id)
        handled = handled_event_var.set((str(item.meta.id), item.meta.type))
        try:
            await handler(conn, item.event, item.meta)
        finally:
            handled_event_var.reset(handled)
            correlation_id_var.reset(correlation)

    async def _dead_letter(self, item: _Received) -> None:
        assert self._broker is not None and item.error is not None
        record = item.record
        headers = decode_headers(record.headers)
        headers.update(
            {
                "dlq_reason": item.error.reason,
                "dlq_error": str(item.error)[:2000],
                "dlq_consumer": self.name,
                "dlq_original_topic": record.topic,
                "dlq_original_partition": str(record.partition),
                "dlq_original_offset": str(record.offset),
                "dlq_failed_at": datetime.now(UTC).isoformat(),
            }
        )
        await self._broker.publish(
            record.value or b"",
            f"{record.topic}{DLQ_SUFFIX}",
            key=record.key,
            headers=headers,
        )
        EVENTS_CONSUMED.labels(self.name, record.topic, "dead_letter").inc()
        log.error(
            "event dead-lettered",
            consumer=self.name,
            topic=record.topic,
            offset=record.offset,
            reason=item.error.reason,
            error=str(item.error),
            correlation_id=headers.get("ce_correlationid"),
        )


def _record_committed(name: str, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
    """Set the committed-offset gauge from the records of a batch that was just committed.

    Lag is not derived from the broker's end offsets: the embedded broker reports them lower
    than the records it holds. Compare this gauge (or the processed count) with what the
    producers published instead.
    """
    following: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        following[key] = max(following.get(key, 0), record.offset + 1)
    for (topic, partition), offset in following.items():
        CONSUMER_COMMITTED_OFFSET.labels(name, topic, str(partition)).set(offset)
