"""Idempotent event consumer: inbox, retries with backoff, dead letters, commit after storing.

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
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from shared.db import Connection
from shared.events import DeadLetterError, Event, EventMeta, decode_headers, parse, registry
from shared.logging import correlation_id_var, get_logger, handled_event_var
from shared.metrics import CONSUMER_LAG, EVENTS_CONSUMED

log = get_logger(__name__)

Handler = Callable[[Connection, Any, EventMeta], Awaitable[None]]

DLQ_SUFFIX = ".dlq"

# Errors that say the database itself is unavailable: retrying the event cannot help and
# dead-lettering it would lose it, so the batch is rewound and read again later.
_INFRASTRUCTURE_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    OSError,
    TimeoutError,
)


class HandlerFailed(DeadLetterError):
    reason = "handler_failed"


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
    """One consumer group: handlers registered per event type, one subscriber per topic."""

    def __init__(
        self,
        name: str,
        *,
        topic_prefix: str = "",
        batch_size: int = 500,
        max_attempts: int = 3,
        backoff_seconds: float = 0.2,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self.name = name
        self.session_timeout_ms = session_timeout_ms
        self.topic_prefix = topic_prefix
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.handlers: dict[str, Handler] = {}
        self._pool: asyncpg.Pool | None = None
        self._broker: KafkaBroker | None = None

    def on(self, *event_types: type[Event]) -> Callable[[Handler], Handler]:
        def register(func: Handler) -> Handler:
            for event_type in event_types:
                if event_type.type in self.handlers:
                    raise ValueError(f"{self.name} already handles {event_type.type}")
                self.handlers[event_type.type] = func
            return func

        return register

    @property
    def group_id(self) -> str:
        return f"{self.topic_prefix}{self.name}"

    @property
    def topics(self) -> list[str]:
        names = {registry.get(t).topic for t in self.handlers}  # type: ignore[union-attr]
        return sorted(f"{self.topic_prefix}{name}" for name in names)

    def attach(self, broker: KafkaBroker) -> None:
        """Declare the subscribers on `broker`; call `bind` with the pool before it starts."""
        self._broker = broker
        for topic in self.topics:
            broker.subscriber(
                topic,
                group_id=self.group_id,
                batch=True,
                max_records=self.batch_size,
                batch_timeout_ms=100,
                auto_offset_reset="earliest",
                # A new member is assigned partitions only after the group's join window,
                # which brokers derive from the session timeout.
                session_timeout_ms=self.session_timeout_ms,
                heartbeat_interval_ms=max(self.session_timeout_ms // 10, 100),
                ack_policy=AckPolicy.NACK_ON_ERROR,
                decoder=_raw_decoder,
                title=f"{self.name}:{topic}",
                description=f"{self.name} consumes " + ", ".join(self._types_on(topic)),
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
        except (*_INFRASTRUCTURE_ERRORS, KafkaError) as exc:
            log.warning(
                "consumer cannot store the batch; it will be read again",
                consumer=self.name,
                error=repr(exc),
            )
            await asyncio.sleep(max(self.backoff_seconds, 0.5))
            raise
        _record_lag(self.name, msg, records)

    async def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """Store the effects of a batch exactly once; dead-letter what cannot be processed."""
        assert self._pool is not None, "EventConsumer.bind(pool) was not called"
        received = self._parse(records)
        dead = [r for r in received if r.error is not None]
        todo = [r for r in received if r.error is None]
        async with self._pool.acquire() as conn:
            if todo:
                try:
                    async with conn.transaction():
                        await self._apply_batch(conn, todo)
                except _INFRASTRUCTURE_ERRORS:
                    raise
                except Exception:
                    # Find the culprit one event at a time; the others still commit.
                    async with conn.transaction():
                        dead += await self._apply_one_by_one(conn, todo)
        for item in dead:
            await self._dead_letter(item)

    def _parse(self, records: Sequence[ConsumerRecord[Any, Any]]) -> list[_Received]:
        received = []
        seen: set[uuid.UUID] = set()
        for record in records:
            headers = decode_headers(record.headers)
            event_type = headers.get("ce_type")
            if event_type is not None and event_type not in self.handlers:
                if registry.get(event_type) is not None:
                    EVENTS_CONSUMED.labels(self.name, record.topic, "ignored").inc()
                    continue
            try:
                event, meta = parse(
                    headers,
                    record.value,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                )
            except DeadLetterError as exc:
                received.append(_Received(record, None, None, exc))
                continue
            if meta.id in seen:
                EVENTS_CONSUMED.labels(self.name, record.topic, "duplicate").inc()
                continue
            seen.add(meta.id)
            received.append(_Received(record, event, meta))
        return received

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

    async def _apply_batch(self, conn: Connection, items: list[_Received]) -> None:
        new = await self._claim(conn, items)
        outcomes: Counter[tuple[str, str]] = Counter()
        for item in items:
            if item.meta.id in new:  # type: ignore[union-attr]
                await self._handle(conn, item)
                outcomes[(item.record.topic, "processed")] += 1
            else:
                outcomes[(item.record.topic, "duplicate")] += 1
        for (topic, outcome), count in outcomes.items():
            EVENTS_CONSUMED.labels(self.name, topic, outcome).inc(count)

    async def _apply_one_by_one(self, conn: Connection, items: list[_Received]) -> list[_Received]:
        failed = []
        for item in items:
            error = await self._apply_with_retries(conn, item)
            if error is not None:
                item.error = error
                failed.append(item)
        return failed

    async def _apply_with_retries(
        self, conn: Connection, item: _Received
    ) -> DeadLetterError | None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with conn.transaction():
                    if await self._claim(conn, [item]):
                        await self._handle(conn, item)
                        outcome = "processed"
                    else:
                        outcome = "duplicate"
                EVENTS_CONSUMED.labels(self.name, item.record.topic, outcome).inc()
                return None
            except _INFRASTRUCTURE_ERRORS:
                raise
            except Exception as exc:
                log.warning(
                    "event handler failed",
                    consumer=self.name,
                    event_id=str(item.meta.id),  # type: ignore[union-attr]
                    event_type=item.meta.type,  # type: ignore[union-attr]
                    attempt=attempt,
                    error=repr(exc),
                )
                if attempt == self.max_attempts:
                    return HandlerFailed(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        return None

    async def _handle(self, conn: Connection, item: _Received) -> None:
        assert item.meta is not None
        correlation = correlation_id_var.set(item.meta.correlation_id)
        handled = handled_event_var.set((str(item.meta.id), item.meta.type))
        try:
            await self.handlers[item.meta.type](conn, item.event, item.meta)
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


def _record_lag(name: str, msg: KafkaMessage, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
    consumer = getattr(msg, "consumer", None)
    highwater = getattr(consumer, "highwater", None)
    if highwater is None:
        return
    last: dict[tuple[str, int], int] = {}
    for record in records:
        last[(record.topic, record.partition)] = record.offset
    for (topic, partition), offset in last.items():
        end = highwater(TopicPartition(topic, partition))
        if end is not None:
            CONSUMER_LAG.labels(name, topic, str(partition)).set(max(end - offset - 1, 0))
