"""Vendor events into the catalogue: the vendor projection and automatic take-down/restore."""

from __future__ import annotations

from services.catalog import commands, saga, store
from shared.consumer import EventConsumer
from shared.contracts.catalog import ProductListed, ProductState, ProductTakenDown, TakenDownBy
from shared.contracts.vendors import VENDOR_EVENTS, VendorEvent
from shared.db import Connection
from shared.events import EventMeta
from shared.logging import get_logger
from shared.outbox import Outbox
from shared.settings import ServiceSettings

log = get_logger(__name__)

SERVICE = "catalog"


# Who lists a product again when its vendor may sell again: the vendor events, not a person.
VENDOR_STATUS_ACTOR = "system:vendor-status"


async def apply_vendor_event(conn: Connection, outbox: Outbox, event: VendorEvent) -> bool:
    """Keep the vendor projection; take listed products down or restore them as the vendor's
    right to sell comes and goes. Returns False for a stale event (version not newer).

    Runs in the consumer's transaction without a savepoint of its own (two round trips per
    event): a failure rolls the consumer's batch back, which then applies its events one by
    one, each under its own savepoint.
    """
    before = await store.lock_vendor(conn, event.vendor_id)
    if before is not None and before.version >= event.version:
        return False
    after = await store.upsert_vendor(conn, event.model_dump())
    await commands.copy_vendor_flags(
        conn, event.vendor_id, event.is_umk, event.is_koperasi, event.is_local
    )
    could_sell = before is not None and before.may_sell
    can_sell = after.may_sell
    if could_sell and not can_sell:
        reason = f"vendor {event.state}"
        for product_id in await store.lock_vendor_products(conn, event.vendor_id, "listed"):
            await commands.record_change(
                conn,
                outbox,
                product_id,
                {
                    "state": ProductState.TAKEN_DOWN,
                    "taken_down_by": TakenDownBy.VENDOR_STATUS,
                    "state_reasons": [reason],
                },
                ProductTakenDown,
                taken_down_by=TakenDownBy.VENDOR_STATUS,
                reason=reason,
            )
    elif can_sell and not could_sell:
        restorable = await store.lock_vendor_products(
            conn, event.vendor_id, "taken_down", TakenDownBy.VENDOR_STATUS
        )
        for product_id in restorable:
            await commands.record_change(
                conn,
                outbox,
                product_id,
                {"state": ProductState.LISTED, "taken_down_by": None, "state_reasons": []},
                ProductListed,
                listed_by=VENDOR_STATUS_ACTOR,
                restored=True,
            )
    return True


def build_consumer(settings: ServiceSettings) -> EventConsumer:
    """The catalog's consumer group on the vendor events."""
    outbox = Outbox.for_service(SERVICE, settings.topic_prefix)
    consumer = EventConsumer(SERVICE, **settings.consumer_options())

    @consumer.on(*VENDOR_EVENTS)
    async def on_vendor(conn: Connection, event: VendorEvent, meta: EventMeta) -> None:
        # Every vendor event carries the whole snapshot, so one handler serves all types;
        # the per-vendor version drops what arrives late.
        if not await apply_vendor_event(conn, outbox, event):
            log.info(
                "stale vendor event dropped",
                vendor_id=str(event.vendor_id),
                version=event.version,
            )

    saga.register(consumer, outbox)
    return consumer
