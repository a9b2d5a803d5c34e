"""A service's event log: publishing it again, and knowing how far every consumer got.

The log (`event_log`, written by `Outbox.add` with the outbox row) keeps every event the service
published. A replay is a request in `event_log_replay`: the service's relay publishes that
stretch of the log again, in log order and before anything queued, with the original event ids
and headers; consumers drop what they have already stored (inbox). Going through the relay keeps
one aggregate's events in order with the ones being written meanwhile, and asking for a replay
needs nothing but the service's database.

The checkpoint is the log position up to which every consumer of the service's topics is known to
have stored every event. It is recorded after a clean stop let the consumers drain, and a broker
that starts empty needs only the events above it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.db import Connection
from shared.outbox import NOTIFY_CHANNEL

# Taken by `replay` and `log_head`: it waits for the transactions that are writing events and
# holds new ones back until it commits, so that no event with a lower position commits later.
_HOLD_WRITERS = "LOCK TABLE event_log IN SHARE MODE"


async def has_event_log(conn: Connection) -> bool:
    """False for a database whose platform migrations predate the log (or were never run)."""
    return bool(await conn.fetchval("SELECT to_regclass('event_log') IS NOT NULL"))


async def checkpoint(conn: Connection) -> int:
    """The log position every consumer is known to have reached; 0 when none was recorded."""
    return int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM event_log_checkpoint"))


async def record_checkpoint(conn: Connection, position: int) -> None:
    await conn.execute(
        """INSERT INTO event_log_checkpoint (position) VALUES ($1)
           ON CONFLICT (singleton) DO UPDATE SET position = $1, recorded_at = now()""",
        position,
    )


async def position_at(conn: Connection, since: datetime) -> int:
    """The position just before the first event logged at or after `since`."""
    first = await conn.fetchval("SELECT min(position) FROM event_log WHERE created_at >= $1", since)
    if first is None:
        return int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM event_log"))
    return int(first) - 1


async def replay(conn: Connection, after: int) -> int:
    """Ask the relay to publish every logged event above position `after` again, in log order,
    before anything queued; returns how many events that is.

    The stretch ends at the last position logged when the writers are held back, so none of its
    events commits later; events written afterwards go out behind it. Events of the stretch
    still queued in the outbox go out again after it, as duplicates.
    """
    async with conn.transaction():
        await conn.execute(_HOLD_WRITERS)
        head = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM event_log"))
        if head <= after:
            return 0
        await conn.execute(
            "INSERT INTO event_log_replay (after, upto) VALUES ($1, $2)", after, head
        )
        count = await conn.fetchval(
            "SELECT count(*) FROM event_log WHERE position > $1 AND position <= $2", after, head
        )
        await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
    return int(count)


async def log_head(conn: Connection) -> tuple[int, int]:
    """The last position in the log, and how many queued events and replays are still to go.

    Exact while the writers are held back: when the second figure is 0, every event up to the
    first has been acknowledged by the broker.
    """
    async with conn.transaction():
        await conn.execute(_HOLD_WRITERS)
        head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM event_log")
        waiting = await conn.fetchval(
            "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM event_log_replay)"
        )
    return int(head), int(waiting)


async def topics_after(conn: Connection, position: int) -> set[str]:
    """The topics of the events logged above `position`."""
    rows = await conn.fetch("SELECT DISTINCT topic FROM event_log WHERE position > $1", position)
    return {r["topic"] for r in rows}


async def consumed_everything(
    bootstrap_servers: str, group_id: str, topics: Iterable[str], *, wait_ms: int = 1000
) -> bool:
    """True when consumer group `group_id` has committed past every record of `topics`.

    Reads the records after the group's committed offsets instead of comparing with the end
    offsets the broker reports: the embedded broker reports end offsets lower than the records it
    holds. A partition the group never committed on counts from its first record.
    """
    probe = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=f"ekatalog-drain-{group_id}",
    )
    await probe.start()
    try:
        # The metadata read at start covers every topic that existed then; a topic created
        # later holds no record published before this check began.
        partitions = [
            TopicPartition(topic, n)
            for topic in sorted(set(topics))
            for n in sorted(probe.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return True
        # Assigned by hand: reading the committed offsets does not join the group.
        probe.assign(partitions)
        for tp in partitions:
            probe.seek(tp, await probe.committed(tp) or 0)
        found = await probe.getmany(timeout_ms=wait_ms, max_records=1)
        return not any(found.values())
    finally:
        await probe.stop()
