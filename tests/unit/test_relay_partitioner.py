"""The relay's partitioner puts every key where Kafka's default partitioner does."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner

from shared.outbox import default_partition


def test_each_key_goes_to_the_default_partitioners_partition_every_time() -> None:
    default = DefaultPartitioner()
    for partitions in ([0], list(range(3)), list(range(6)), list(range(12))):
        for _ in range(200):
            key = str(uuid.uuid4()).encode()
            expected = default(key, partitions, partitions)
            assert default_partition(key, partitions) == expected
            assert default_partition(key, partitions) == expected  # remembered
