"""Events that cannot be processed go to `<topic>.dlq` with a reason; the rest go on.

Well-formed events of a type the consumer has no handler for (a newer producer's `.v2`) are
counted and skipped, not dead-lettered.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY

from shared.events import build_headers
from tests.plumbing import (
    CounterIncremented,
    counter_consumer,
    counter_topic,
    prepare,
    start_consumer,
)
from tests.support import Infra, eventually, read_topic


def headers_for(event_type: str, subject: str) -> list[tuple[str, bytes]]:
    headers = build_headers(
        event_id=uuid.uuid4(),
        event_type=event_type,
        source="/test",
        subject=subject,
        time=datetime.now(UTC),
        correlation_id="corr-dlq-test",
    )
    return [(k, v.encode()) for k, v in headers.items()]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ekatalog.cli", *args], capture_output=True, text=True, timeout=60
    )


async def committed(infra: Infra, group_id: str, topic: str) -> int:
    """The offset the group committed on partition 0 of `topic` (0 when none yet)."""
    # A client of the group that subscribes to nothing reads its offsets without joining it.
    reader = AIOKafkaConsumer(
        bootstrap_servers=infra.bootstrap_servers, group_id=group_id, enable_auto_commit=False
    )
    await reader.start()
    try:
        return await reader.committed(TopicPartition(topic, 0)) or 0
    finally:
        await reader.stop()


async def test_bad_events_are_dead_lettered_and_the_stream_goes_on(
    infra: Infra, database: str, topic_prefix: str
) -> None:
    pool = await prepare(database)
    # Lets the test make one schema-valid event fail in its handler.
    await pool.execute(
        "ALTER TABLE counter_projection ADD CONSTRAINT seq_positive CHECK (last_seq > 0)"
    )
    topic = await counter_topic(infra.bootstrap_servers, topic_prefix)
    good = CounterIncremented.type
    records = [
        (b'{"counter_id": "a", "seq": 1}', headers_for(good, "a")),
        (b'{"counter_id": "a", "seq": ', headers_for(good, "a")),  # malformed JSON
        (b'{"counter_id": "a", "seq": 2}', headers_for("ekatalog.test.nobody_knows.v1", "a")),
        (b'{"counter_id": "a", "seq": "two"}', headers_for(good, "a")),  # schema-invalid
        (b'{"counter_id": "b", "seq": -1}', headers_for(good, "b")),  # handler fails
        (b'{"counter_id": "a", "seq": 2}', headers_for(good, "a")),
        (
            b'{"counter_id": "a", "seq": 3}',
            [(k, v) for k, v in headers_for(good, "a") if k != "ce_id"],
        ),  # no event id
        (b'{"counter_id": "a", "seq": 3}', headers_for(good, "a")),
        # A newer producer's version, last: its offset is committed although nothing handles it.
        (b'{"counter_id": "a", "seq": 4}', headers_for(good.replace(".v1", ".v2"), "a")),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    await producer.start()
    for value, headers in records:
        await producer.send_and_wait(topic, value=value, key=b"k", headers=headers)
    await producer.stop()

    consumer = counter_consumer(topic_prefix, max_attempts=3, backoff_seconds=0.01)
    broker = await start_consumer(infra.bootstrap_servers, pool, consumer)
    try:

        async def processed() -> asyncpg.Record | None:
            return await pool.fetchrow(
                "SELECT * FROM counter_projection WHERE counter_id = 'a' AND last_seq = 3"
            )

        row = await eventually(processed, timeout=20)
        assert row["applied"] == 3 and row["out_of_order"] == 0
        assert await eventually(lambda: committed(infra, consumer.group_id, topic)) == len(records)
        letters = await read_topic(infra.bootstrap_servers, f"{topic}.dlq", min_count=5)
        reasons = sorted(e.headers["dlq_reason"] for e in letters)
        assert reasons == ["handler_failed", "malformed", "malformed", "schema_invalid"]
        by_reason = {e.headers["dlq_reason"]: e for e in letters}
        assert "CheckViolationError" in by_reason["handler_failed"].headers["dlq_error"]
        assert "seq" in by_reason["schema_invalid"].headers["dlq_error"]
        skipped = REGISTRY.get_sample_value(
            "ekatalog_events_consumed_total",
            {"consumer": consumer.name, "topic": topic, "outcome": "unknown_type"},
        )
        assert skipped == 2
        assert REGISTRY.get_sample_value(
            "ekatalog_consumer_committed_offset",
            {"consumer": consumer.name, "topic": topic, "partition": "0"},
        ) == len(records)
        for letter in letters:
            assert letter.headers["dlq_consumer"] == consumer.name
            assert letter.headers["dlq_original_topic"] == topic
        # The original headers travel with the dead letter.
        assert by_reason["handler_failed"].headers["ce_correlationid"] == "corr-dlq-test"

        listing = await asyncio.to_thread(
            run_cli, "dlq", "list", topic, "--bootstrap", infra.bootstrap_servers
        )
        assert listing.returncode == 0, listing.stderr
        lines = [json.loads(line) for line in listing.stdout.splitlines()]
        assert sorted(x["reason"] for x in lines) == reasons

        # Once the cause is fixed, re-driving the failed event applies it.
        await pool.execute("ALTER TABLE counter_projection DROP CONSTRAINT seq_positive")
        failed_id = by_reason["handler_failed"].headers["ce_id"]
        redriven = await asyncio.to_thread(
            run_cli,
            "dlq",
            "redrive",
            topic,
            "--bootstrap",
            infra.bootstrap_servers,
            "--event-id",
            failed_id,
        )
        assert redriven.returncode == 0, redriven.stderr
        assert "re-published 1 dead letter" in redriven.stdout
        b = await eventually(
            lambda: pool.fetchrow("SELECT * FROM counter_projection WHERE counter_id = 'b'")
        )
        assert b["last_seq"] == -1 and b["applied"] == 1
    finally:
        await broker.stop()
        await pool.close()
