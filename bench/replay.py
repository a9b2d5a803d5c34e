"""Replay of a service's event log into a consumer that already applied every event.

    .venv/bin/python bench/replay.py [--events 100000] [--aggregates 200] [--rounds 3]

Starts its own embedded PostgreSQL (durable) and tansu broker. In each round, on a fresh database
and fresh topics:
  1. writes the events through `Outbox.add` (outbox queue and event log; timed, for reference);
  2. a relay in a separate process, as in a service, publishes them; not timed;
  3. inbox no-op: an `EventConsumer` (batches of 2,000, no-op handler) applies them all, timed
     from the first applied event to the last: the floor;
  4. replay: `shared.eventlog.replay` asks for the whole log again, the relay publishes it and
     the same consumer drops every event as a duplicate, timed from the request to the last
     duplicate.
Prints both throughputs and the ratio replay / inbox no-op (median of the rounds), and checks
that the replay changed nothing: no handler ran again and the inbox holds one row per event.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event as StopSignal

from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY
from relay import (
    BATCH,
    PARTITIONS,
    SESSION_TIMEOUT_MS,
    StockCounted,
    fresh_database,
    make_events,
    run_rounds,
    say,
)

from shared import eventlog
from shared.consumer import EventConsumer
from shared.db import Connection, create_pool
from shared.embedded import EmbeddedPostgres
from shared.events import EventMeta
from shared.outbox import Outbox, OutboxRelay
from shared.service import ensure_topics

WRITE_BATCH = 1000


def run_relay(dsn: str, bootstrap: str, stop: StopSignal) -> None:
    """The producing service's relay, in its own process as it would be."""

    async def main() -> None:
        pool = await create_pool(dsn, 1, 4)
        relay = OutboxRelay(pool, dsn, bootstrap, name="bench", batch_size=1000, poll_seconds=0.05)
        await relay.start()
        while not stop.is_set():  # noqa: ASYNC110 - a process-wide signal
            await asyncio.sleep(0.05)
        await relay.stop()
        await pool.close()

    asyncio.run(main())


class CountingConsumer:
    """A consumer group with a no-op handler that counts how often it ran."""

    def __init__(self, prefix: str, name: str) -> None:
        self.name = name
        self.topic = f"{prefix}{StockCounted.topic}"
        self.applied = 0
        self.first_applied: float | None = None
        self.consumer = EventConsumer(
            name, topic_prefix=prefix, batch_size=BATCH, session_timeout_ms=SESSION_TIMEOUT_MS
        )

        @self.consumer.on(StockCounted)
        async def apply(conn: Connection, event: StockCounted, meta: EventMeta) -> None:
            if self.first_applied is None:
                self.first_applied = time.perf_counter()
            self.applied += 1

    def duplicates(self) -> float:
        labels = {"consumer": self.name, "topic": self.topic, "outcome": "duplicate"}
        return REGISTRY.get_sample_value("ekatalog_events_consumed_total", labels) or 0.0


async def wait_for(condition: Callable[[], bool], timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark did not finish in time")
        await asyncio.sleep(0.005)
    return time.perf_counter()


async def one_round(
    postgres: EmbeddedPostgres, bootstrap: str, count: int, aggregates: int, number: int
) -> dict[str, float]:
    say(f"round {number}")
    dsn = await fresh_database(postgres, f"replay{number}")
    pool = await create_pool(dsn, 2, 10)
    prefix = f"p{number}."
    outbox = Outbox("/bench", prefix)
    await ensure_topics(bootstrap, [outbox.topic_for(StockCounted)], PARTITIONS)

    result: dict[str, float] = {}
    events = make_events(count, aggregates)
    started = time.perf_counter()
    for start in range(0, count, WRITE_BATCH):
        async with pool.acquire() as c, c.transaction():
            await outbox.add(c, *events[start : start + WRITE_BATCH])
    result["write (outbox + log)"] = count / (time.perf_counter() - started)

    stop = multiprocessing.get_context("spawn").Event()
    relay = multiprocessing.get_context("spawn").Process(
        target=run_relay, args=(dsn, bootstrap, stop)
    )
    relay.start()
    counting = CountingConsumer(prefix, f"bench-replay-{number}")
    broker = KafkaBroker(bootstrap, logger=None)
    counting.consumer.attach(broker)
    counting.consumer.bind(pool)
    try:
        while await pool.fetchval("SELECT count(*) FROM outbox"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await broker.start()
        finished = await wait_for(lambda: counting.applied >= count)
        assert counting.first_applied is not None
        result["inbox no-op"] = count / (finished - counting.first_applied)

        started = time.perf_counter()
        async with pool.acquire() as c:
            assert await eventlog.replay(c, 0) == count
        queued_at = time.perf_counter()
        finished = await wait_for(lambda: counting.duplicates() >= count)
        result["replay"] = count / (finished - started)
        say(
            f"  replay: asked for in {queued_at - started:.2f} s, "
            f"all dropped as duplicates after {finished - started:.2f} s"
        )

        assert counting.applied == count, "the replay ran a handler again"
        stored = await pool.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = $1", counting.name
        )
        assert stored == count, "the replay changed the inbox"
    finally:
        await broker.stop()
        stop.set()
        relay.join(30)
        await pool.close()
    result["ratio"] = result["replay"] / result["inbox no-op"]
    say("  " + ", ".join(f"{k} {v:,.0f}/s" for k, v in result.items() if k != "ratio"))
    say(f"  replay / inbox no-op {result['ratio']:.2f}")
    return result


async def main(count: int, aggregates: int, rounds: int) -> None:
    results = await run_rounds(count, aggregates, rounds, one_round)
    median = {m: statistics.median(r[m] for r in results) for m in results[0]}
    say("")
    say("| measure (median of rounds) | events/s | ratio |")
    say("|---|---:|---:|")
    say(f"| write (outbox + log) | {median['write (outbox + log)']:,.0f} | |")
    say(f"| inbox no-op | {median['inbox no-op']:,.0f} | floor |")
    say(
        f"| replay into a consumer that applied all | {median['replay']:,.0f} "
        f"| {median['ratio']:.2f} of inbox no-op (median of the rounds' ratios) |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--aggregates", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.aggregates, args.rounds))
