"""Rebuild the projection from every event still on the topics, while the live one serves.

The rebuild reads the consumed topics from their beginning, outside any consumer group, and
appends each batch's rows by COPY to unlogged staging tables without keys or indexes. Reading and
parsing take most of its CPU, so this first pass runs in worker processes, each reading its own
share of the topics' partitions over its own connection until they go quiet; the rebuild then
reads every partition on from where the workers stopped. Once the staging tables
hold everything the live projection holds, it builds the shadow tables (`rebuild_*`) from them in
one statement per table (per key the row the table's rule keeps), adds the keys and indexes and
computes the totals once. What the topics still bring after that is upserted into the shadow
tables. It swaps them in once they hold everything the live projection holds: then, in one
transaction that stops the live consumer's writes for a moment (readers go on), it checks again
and replaces the live tables. The live consumer then goes on where it was; what it applies again
is dropped by version. Until the swap the live tables are untouched, so an interrupted rebuild
leaves them as they were, and the next one drops what it left.
Append-only tables (the order changes behind the open data and the feed) are not copied: the
rebuild adds the rows they miss to the live table itself, so served feed positions never move.

The embedded broker's end offsets are not reliable, so the rebuild does not ask how far the
topics go: it stops reading when they go quiet and the shadow tables cover the live ones. When
the topics no longer hold everything the live projection applied (retention, a broker restart),
it gives up after `idle_seconds` of quiet and says so: replay the producers' logs first.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import queue
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.reporting import store
from services.reporting.handlers import CONSUMED_EVENTS, SERVICE
from services.reporting.projection import ORDER_CHANGE, TABLES, Table, Values, order_change, rows_of
from shared.contracts.orders import OrderEvent
from shared.events import DeadLetterError, Event, decode_headers, parse
from shared.logging import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)

# How long the swap waits for a table a reader holds before giving way (and trying again).
SWAP_LOCK_TIMEOUT_MS = 200

# Tables rebuilt in shadow copies and swapped in; append-only ones are completed in place.
SHADOWED = tuple(table for table in TABLES if not table.append_only)

Progress = Callable[[int, int], None]
"""Called with (events read, events the live projection applied) after each batch."""


class RebuildFailed(RuntimeError):
    """The rebuild could not complete; the live projection is unchanged."""


@dataclass(frozen=True)
class RebuildResult:
    events: int
    skipped: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def topics(prefix: str) -> list[str]:
    return sorted({f"{prefix}{event.topic}" for event in CONSUMED_EVENTS})


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Each batch makes many objects without reference cycles that live until the batch is
    stored: the cyclic garbage collector, scanning them and everything older again and again,
    took more time than reading and parsing together. Memory is freed by reference counting."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _events(records: list[Any]) -> tuple[list[Event], int]:
    """The events of a batch, and how many records could not be read (the live consumer
    dead-letters those; an event of a type the projection does not use becomes no rows)."""
    events = []
    unreadable = 0
    for record in records:
        try:
            event, _ = parse(decode_headers(record.headers), record.value)
        except DeadLetterError:
            unreadable += 1
            continue
        events.append(event)
    return events, unreadable


def _consumer(bootstrap_servers: str) -> AIOKafkaConsumer:
    """A consumer outside any group that starts at the beginning of what it is assigned."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )


async def _partitions(consumer: AIOKafkaConsumer, names: Sequence[str]) -> list[TopicPartition]:
    """The partitions of these topics (a topic not created yet has no events to replay), ordered
    so that dealing them out in turn gives each worker a part of every topic."""
    # The consumer's public `partitions_for_topic` only knows topics it subscribed to or was
    # assigned; the partitions are what is to be assigned, so ask the cluster itself.
    cluster = await consumer._client.fetch_all_metadata()
    found = [
        TopicPartition(topic, partition)
        for topic in names
        for partition in cluster.partitions_for_topic(topic) or ()
    ]
    return sorted(found, key=lambda tp: (tp.partition, tp.topic))


async def _next_batch(
    conn: asyncpg.Connection,
    records: list[Any],
    storing: asyncio.Task[None] | None,
    staging: bool,
) -> tuple[asyncio.Task[None], int]:
    """Parse a batch while the previous one is stored, then start storing it; returns the task
    storing it and how many of its records could not be read."""
    events, unreadable = _events(records)
    rows = rows_of(events, changes=False)
    orders = [e for e in events if isinstance(e, OrderEvent)]
    if storing is not None:
        await storing
    return asyncio.create_task(_store(conn, rows, orders, staging)), unreadable


async def _stop_storing(storing: asyncio.Task[None] | None) -> None:
    if storing is not None and not storing.done():
        storing.cancel()
        await asyncio.gather(storing, return_exceptions=True)


async def _stage_share(
    database_url: str,
    bootstrap_servers: str,
    share: list[TopicPartition],
    batch_size: int,
    poll_ms: int,
    report: Callable[[int, int], None],
) -> dict[TopicPartition, int]:
    """Stage every event of these partitions until they go quiet; the position reached in each."""
    started = time.monotonic()
    conn = await asyncpg.connect(database_url)
    consumer = _consumer(bootstrap_servers)
    storing: asyncio.Task[None] | None = None
    read = 0
    try:
        await consumer.start()
        consumer.assign(share)
        while True:
            batches = await consumer.getmany(timeout_ms=poll_ms, max_records=batch_size)
            records = [r for batch in batches.values() for r in batch]
            if not records:
                break
            storing, unreadable = await _next_batch(conn, records, storing, staging=True)
            read += len(records)
            report(len(records), unreadable)
        if storing is not None:
            await storing
        log.info(
            "partitions staged",
            partitions=len(share),
            events=read,
            seconds=round(time.monotonic() - started, 2),
            cpu_seconds=round(time.process_time(), 2),
        )
        return {tp: await consumer.position(tp) for tp in share}
    finally:
        await _stop_storing(storing)
        await consumer.stop()
        await conn.close()


def _stage_in_worker(
    database_url: str,
    bootstrap_servers: str,
    share: list[tuple[str, int]],
    batch_size: int,
    poll_ms: int,
    messages: Any,
) -> None:
    """A worker process: stage its share, sending ("read", records, unreadable) after each batch
    and ("done", positions) at the end, or ("failed", reason)."""
    try:
        with _collector_paused():
            positions = asyncio.run(
                _stage_share(
                    database_url,
                    bootstrap_servers,
                    [TopicPartition(topic, partition) for topic, partition in share],
                    batch_size,
                    poll_ms,
                    lambda read, unreadable: messages.put(("read", read, unreadable)),
                )
            )
    except BaseException as exc:
        messages.put(("failed", f"{type(exc).__name__}: {exc}"))
        raise
    messages.put(("done", {(tp.topic, tp.partition): offset for tp, offset in positions.items()}))


@dataclass
class _Staged:
    positions: dict[TopicPartition, int]
    read: int = 0
    skipped: int = 0


async def _stage_in_workers(
    settings: ServiceSettings,
    partitions: list[TopicPartition],
    workers: int,
    *,
    batch_size: int,
    poll_ms: int,
    on_read: Callable[[int], None],
) -> _Staged:
    """Stage the partitions in `workers` processes, each reading its own share; a worker that
    fails (or is killed) fails the rebuild, and the others are stopped."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    processes = [
        context.Process(
            target=_stage_in_worker,
            args=(
                settings.database_url,
                settings.kafka_bootstrap_servers,
                [(tp.topic, tp.partition) for tp in partitions[i::workers]],
                batch_size,
                poll_ms,
                messages,
            ),
            name=f"rebuild-worker-{i}",
            daemon=True,
        )
        for i in range(workers)
    ]
    staged = _Staged({})
    failures: list[str] = []
    done = 0

    def receive(message: tuple[Any, ...]) -> None:
        nonlocal done
        kind = message[0]
        if kind == "read":
            staged.read += message[1]
            staged.skipped += message[2]
            on_read(staged.read)
        elif kind == "done":
            done += 1
            staged.positions.update(
                {TopicPartition(topic, p): offset for (topic, p), offset in message[1].items()}
            )
        else:
            failures.append(message[1])

    for process in processes:
        process.start()
    try:
        while done < workers:
            try:
                receive(messages.get_nowait())
                continue
            except queue.Empty:
                pass
            dead = [p for p in processes if p.exitcode not in (None, 0)]
            if dead or failures:
                await asyncio.sleep(0.1)  # what a failing worker said is on its way
                while True:
                    try:
                        receive(messages.get_nowait())
                    except queue.Empty:
                        break
                reason = failures[0] if failures else f"exit code {dead[0].exitcode}"
                raise RebuildFailed(f"a rebuild worker failed ({reason}); nothing was swapped in")
            await asyncio.sleep(0.02)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            await asyncio.to_thread(process.join)
        messages.close()
    return staged


async def rebuild(
    settings: ServiceSettings,
    *,
    progress: Progress | None = None,
    batch_size: int = 2000,
    idle_seconds: float = 10.0,
    poll_ms: int = 500,
    workers: int | None = None,
) -> RebuildResult:
    """Replay every event into fresh tables and swap them in; see the module docstring.
    `workers` processes (at most one per partition) stage the events first; with one, the
    rebuild reads everything itself. By default one per CPU but one: PostgreSQL and the broker
    take their share of a small machine (on two cores, two workers tied with one)."""
    started = time.monotonic()
    conn = await asyncpg.connect(settings.database_url)
    consumer = _consumer(settings.kafka_bootstrap_servers)
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", store.REBUILD_LOCK):
        await conn.close()
        raise RebuildFailed("another rebuild of this projection is running")
    read = skipped = 0
    # The database stores one batch while the next is read and parsed.
    storing: asyncio.Task[None] | None = None
    # Rows go to the staging tables until those cover the live projection, then (once the
    # shadow tables are built from them) straight into the shadow tables.
    staging = True
    try:
        with _collector_paused():
            await store.create_staging_tables(conn, SHADOWED)
            await consumer.start()
            expected = await store.inbox_size(conn, SERVICE)
            partitions = await _partitions(consumer, topics(settings.topic_prefix))
            count = min(workers or (os.cpu_count() or 2) - 1 or 1, len(partitions))
            positions: dict[TopicPartition, int] = {}
            if count > 1:

                def on_read(done: int) -> None:
                    if progress is not None:
                        progress(done, max(expected, done))

                staged = await _stage_in_workers(
                    settings,
                    partitions,
                    count,
                    batch_size=batch_size,
                    poll_ms=poll_ms,
                    on_read=on_read,
                )
                read, skipped, positions = staged.read, staged.skipped, staged.positions
                log.info("workers staged", workers=count, events=read)
            consumer.assign(partitions)
            for tp, offset in positions.items():
                consumer.seek(tp, offset)
            quiet_since = time.monotonic()
            while True:
                batches = await consumer.getmany(timeout_ms=poll_ms, max_records=batch_size)
                records = [r for batch in batches.values() for r in batch]
                if records:
                    storing, unreadable = await _next_batch(conn, records, storing, staging)
                    read += len(records)
                    skipped += unreadable
                    quiet_since = time.monotonic()
                    if progress is not None:
                        progress(read, max(expected, read))
                    continue
                if storing is not None:
                    await storing
                    storing = None
                prefix = store.STAGING_PREFIX if staging else store.SHADOW_PREFIX
                behind = await store.not_covered(conn, SHADOWED, prefix)
                if not behind:
                    if staging:
                        building = time.monotonic()
                        async with conn.transaction():
                            await store.build_shadow_tables(conn, SHADOWED)
                        staging = False
                        log.info(
                            "shadow tables built",
                            events=read,
                            seconds=round(time.monotonic() - building, 2),
                        )
                    if await _try_swap(conn):
                        break
                elif time.monotonic() - quiet_since > idle_seconds:
                    raise RebuildFailed(
                        f"the topics went quiet after {read} events but the rebuilt projection is "
                        f"still {behind} rows behind the live one: the topics no longer hold every "
                        "event; replay the producers' event logs from the start, then rebuild"
                    )
                expected = await store.inbox_size(conn, SERVICE)
    finally:
        await _stop_storing(storing)
        await consumer.stop()
        await conn.execute("SELECT pg_advisory_unlock($1)", store.REBUILD_LOCK)
        await conn.close()
    result = RebuildResult(read, skipped, time.monotonic() - started)
    log.info("projection rebuilt", events=read, skipped=skipped, seconds=round(result.seconds, 2))
    return result


async def _store(
    conn: asyncpg.Connection,
    rows: Mapping[Table, list[Values]],
    orders: list[OrderEvent],
    staging: bool,
) -> None:
    async with conn.transaction():
        if staging:
            await store.stage(conn, rows)
        else:
            await store.apply(conn, rows, prefix=store.SHADOW_PREFIX)
        # The order changes are completed in the live table, serialised only when missing.
        missing = await store.missing_order_changes(
            conn, [(order.order_id, order.version) for order in orders]
        )
        changes = []
        for order in orders:
            key = (order.order_id, order.version)
            if key in missing:
                missing.discard(key)  # the first delivery of a change is the one kept
                changes.append(order_change(order))
        # Workers adding the same change wait for each other, never in a cycle: keys in order.
        changes.sort(key=ORDER_CHANGE.key_of)
        await store.apply(conn, {ORDER_CHANGE: changes})


async def _try_swap(conn: asyncpg.Connection) -> bool:
    """Swap the shadow tables in if they cover the live ones; False when they do not yet."""
    try:
        async with conn.transaction():
            # Readers lock the tables they query in their own order: rather than wait holding
            # some of them (a deadlock that could fail a reader), the swap gives way and is tried
            # again on the next pass.
            await conn.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT_MS}ms'")
            await store.lock_live_tables(conn, SHADOWED)
            if await store.not_covered(conn, SHADOWED, store.SHADOW_PREFIX):
                return False  # the live consumer stored more meanwhile: read on
            await store.swap_in_shadow_tables(conn, SHADOWED)
    except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError):
        log.info("rebuild swap gave way to readers; trying again")
        return False
    return True


class ProgressBar:
    """A one-line text progress bar; the total is the live projection's event count."""

    def __init__(self, stream: IO[str] = sys.stderr, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        filled = int(self.width * done / total) if total else self.width
        rate = done / max(time.monotonic() - self.started, 1e-9)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done:,}/{total:,} events"
            f" {rate:,.0f}/s"
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
