"""The reporting consumer: every event of the other services into the projection."""

from __future__ import annotations

from collections.abc import Sequence

from services.reporting import store
from services.reporting.projection import rows_of
from shared.consumer import EventConsumer
from shared.contracts.catalog import CATALOG_EVENTS
from shared.contracts.orders import ORDER_EVENTS, RUP_EVENTS
from shared.contracts.vendors import VENDOR_EVENTS
from shared.db import Connection
from shared.events import Event, EventMeta
from shared.settings import ServiceSettings

SERVICE = "reporting"

CONSUMED_EVENTS: tuple[type[Event], ...] = (
    *VENDOR_EVENTS,
    *CATALOG_EVENTS,
    *RUP_EVENTS,
    *ORDER_EVENTS,
)


def build_consumer(settings: ServiceSettings) -> EventConsumer:
    """The reporting consumer group on every topic of the other services."""
    consumer = EventConsumer(SERVICE, **settings.consumer_options())

    @consumer.on_batch(*CONSUMED_EVENTS)
    async def on_events(conn: Connection, events: Sequence[tuple[Event, EventMeta]]) -> None:
        # Every event carries its aggregate's snapshot and version: a batch becomes one
        # statement per table, as during a rebuild.
        await store.apply(conn, rows_of(event for event, _ in events))

    return consumer
