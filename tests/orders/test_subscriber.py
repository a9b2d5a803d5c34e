"""examples/subscriber.py prints order changes and, restarted, carries on from its committed
offset instead of printing everything again."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer

from tests.support import Infra, eventually

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "subscriber.py"


def order(order_id: str, version: int, state: str) -> bytes:
    return (
        f'{{"order_id": "{order_id}", "version": {version}, "state": "{state}", '
        f'"occurred_at": "2026-06-08T02:15:00Z", "opd_id": "DISDIK", "total": 1500000, '
        f'"vendor": {{"legal_name": "CV Batik Jaya"}}}}'
    ).encode()


async def publish(
    producer: AIOKafkaProducer, topic: str, order_id: str, version: int, state: str
) -> None:
    headers = [
        ("ce_type", f"ekatalog.order.{state}.v1".encode()),
        ("ce_id", uuid.uuid4().hex.encode()),
    ]
    await producer.send_and_wait(
        topic, order(order_id, version, state), key=order_id.encode(), headers=headers
    )


class Subscriber:
    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.args = [
            sys.executable,
            str(SCRIPT),
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--group",
            group,
        ]
        self.lines: list[str] = []

    async def __aenter__(self) -> Subscriber:
        self.process = await asyncio.create_subprocess_exec(
            *self.args, stdout=asyncio.subprocess.PIPE
        )
        self.reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode().strip())

    async def __aexit__(self, *exc: object) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.process.wait(), 20)
        await self.reader


async def test_the_subscriber_prints_changes_and_resumes_after_a_restart(infra: Infra) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}.ekatalog.orders"
    group = f"g{uuid.uuid4().hex[:8]}"
    order_id = str(uuid.uuid4())
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    await producer.start()
    try:
        await publish(producer, topic, order_id, 1, "placed")
        await publish(producer, topic, order_id, 2, "stock_confirmed")
        await publish(producer, topic, order_id, 2, "stock_confirmed")  # a re-publish
        async with Subscriber(infra.bootstrap_servers, topic, group) as first:

            async def printed_two() -> bool:
                return len(first.lines) >= 2

            await eventually(printed_two, timeout=30)
        assert len(first.lines) == 2
        assert f"order {order_id} v1 placed: placed, OPD DISDIK" in first.lines[0]
        assert "total Rp1.500.000" in first.lines[0]
        assert " v2 stock_confirmed" in first.lines[1]

        await publish(producer, topic, order_id, 3, "approved")
        async with Subscriber(infra.bootstrap_servers, topic, group) as second:

            async def printed_new() -> bool:
                return len(second.lines) >= 1

            await eventually(printed_new, timeout=30)
        assert len(second.lines) == 1 and " v3 approved" in second.lines[0]
    finally:
        await producer.stop()
