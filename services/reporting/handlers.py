"""The reporting consumer: every event of the other services into the projection."""

from __future__ import annotations

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

    @consumer.on(*CONSUMED_EVENTS)
    async def on_event(conn: Connection, event: Event, meta: EventMeta) -> None:
        # Every event carries its aggregate's snapshot and version: the same code stores one
        # event here and a whole batch during a rebuild.
        await store.apply(conn, rows_of([event]))

    return consumer
