"""Reading and re-driving dead-letter topics (`<topic>.dlq`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.consumer import DLQ_SUFFIX
from shared.events import decode_headers


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def original_topic(self) -> str:
        return self.headers.get("dlq_original_topic", "")

    @property
    def event_id(self) -> str:
        return self.headers.get("ce_id", "")

    def summary(self) -> dict[str, str | int]:
        return {
            "offset": f"{self.partition}:{self.offset}",
            "event_id": self.event_id,
            "type": self.headers.get("ce_type", ""),
            "consumer": self.headers.get("dlq_consumer", ""),
            "reason": self.headers.get("dlq_reason", ""),
            "error": self.headers.get("dlq_error", ""),
            "failed_at": self.headers.get("dlq_failed_at", ""),
            "original": f"{self.original_topic}@{self.headers.get('dlq_original_partition')}:"
            f"{self.headers.get('dlq_original_offset')}",
        }


def dlq_topic(topic: str) -> str:
    return topic if topic.endswith(DLQ_SUFFIX) else f"{topic}{DLQ_SUFFIX}"


async def read_dead_letters(bootstrap_servers: str, topic: str) -> list[DeadLetter]:
    """Everything currently in the dead-letter topic of `topic`, oldest first per partition."""
    name = dlq_topic(topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    try:
        await consumer.start()
        partitions = consumer.partitions_for_topic(name) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(name) or set()
        tps = [TopicPartition(name, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        letters: list[DeadLetter] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=2000)
            if not batch:
                break
            for tp, records in batch.items():
                for r in records:
                    if r.offset < ends[tp]:
                        letters.append(
                            DeadLetter(
                                r.partition, r.offset, r.key, r.value, decode_headers(r.headers)
                            )
                        )
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return sorted(letters, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


async def redrive(bootstrap_servers: str, letters: Sequence[DeadLetter]) -> int:
    """Publish dead letters back to their original topic with their original headers."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    try:
        await producer.start()
        futures = []
        for letter in letters:
            headers = [
                (k, v.encode()) for k, v in letter.headers.items() if not k.startswith("dlq_")
            ]
            futures.append(
                await producer.send(
                    letter.original_topic, value=letter.value, key=letter.key, headers=headers
                )
            )
        for future in futures:
            await future
        return len(futures)
    finally:
        await producer.stop()
