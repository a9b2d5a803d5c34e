"""Print e-Katalog order changes as they happen: a plain aiokafka subscriber for integrators.

    python examples/subscriber.py --bootstrap 127.0.0.1:9092 --group finance-sipd

Reads `ekatalog.orders` as a consumer group and commits the group's offsets after each batch it
has printed, so a restart carries on where the last run stopped (the first run reads from the
beginning). The producer may publish an event again (same `ce_id`) or late: the subscriber prints
an order's change only when its `version` is newer than the last one it printed in this run.
Needs only `aiokafka`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any

from aiokafka import AIOKafkaConsumer


def describe(event_type: str, order: dict[str, Any]) -> str:
    """One line per change: when, which order, what happened, the state, the total."""
    what = event_type.removeprefix("ekatalog.order.").rsplit(".v", 1)[0]
    details = {
        key: order[key]
        for key in ("reason", "reason_code", "sp_number", "tracking_number", "amount")
        if order.get(key)
    }
    total = f"{order['total']:,}".replace(",", ".")
    return (
        f"{order['occurred_at']} order {order['order_id']} v{order['version']} {what}: "
        f"{order['state']}, OPD {order['opd_id']}, vendor {order['vendor']['legal_name']}, "
        f"total Rp{total}" + (f" {json.dumps(details, ensure_ascii=False)}" if details else "")
    )


async def run(bootstrap: str, topic: str, group: str, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    printed: dict[str, int] = {}
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    event_type = headers.get("ce_type", "")
                    if not event_type.startswith("ekatalog.order."):
                        continue
                    try:
                        order = json.loads(record.value)
                    except (TypeError, ValueError):
                        print(f"skipped a record that is not JSON at offset {record.offset}")
                        continue
                    if order.get("version", 0) <= printed.get(order.get("order_id", ""), 0):
                        continue  # a re-publish or a late copy of a change already printed
                    printed[order["order_id"]] = order["version"]
                    print(describe(event_type, order), flush=True)
            if batches:
                await consumer.commit()  # only after the batch was printed
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    parser.add_argument("--topic", default="ekatalog.orders")
    parser.add_argument("--group", default="order-printer", help="consumer group to commit in")
    args = parser.parse_args()

    async def start() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(args.bootstrap, args.topic, args.group, stop)

    asyncio.run(start())


if __name__ == "__main__":
    main()
