"""Vendor events into the catalogue: the vendor projection and automatic take-down/restore."""

from __future__ import annotations

import asyncpg

from services.catalog import commands
from services.vendors.events import VENDOR_EVENTS, VendorEvent
from shared.consumer import EventConsumer
from shared.events import EventMeta
from shared.logging import get_logger
from shared.outbox import Outbox
from shared.settings import ServiceSettings

log = get_logger(__name__)


def build_consumer(settings: ServiceSettings, outbox: Outbox) -> EventConsumer:
    consumer = EventConsumer(
        "catalog",
        topic_prefix=settings.topic_prefix,
        batch_size=settings.consumer_batch_size,
        max_attempts=settings.consumer_max_attempts,
        backoff_seconds=settings.consumer_backoff_seconds,
    )

    @consumer.on(*VENDOR_EVENTS)
    async def on_vendor(conn: asyncpg.Connection, event: VendorEvent, meta: EventMeta) -> None:
        # Every vendor event carries the whole snapshot, so one handler serves all types;
        # the per-vendor version drops what arrives late.
        if not await commands.apply_vendor_event(conn, outbox, event):
            log.info(
                "stale vendor event dropped",
                vendor_id=str(event.vendor_id),
                version=event.version,
            )

    return consumer
