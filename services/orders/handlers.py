"""Events into the orders service: vendor and product projections, the catalog's stock replies,
and the rejections they cause before an order's SP."""

from __future__ import annotations

from collections.abc import Sequence

from services.orders import commands, store
from services.orders.commands import Context
from shared.consumer import EventConsumer
from shared.contracts.catalog import (
    CATALOG_EVENTS,
    ProductEvent,
    ProductRejected,
    ProductState,
    ProductStockChanged,
    ProductTakenDown,
)
from shared.contracts.stock import StockReservationRejected, StockReserved
from shared.contracts.vendors import (
    VENDOR_EVENTS,
    VendorEvent,
    VendorRejected,
    VendorState,
    VendorSuspended,
)
from shared.db import Connection
from shared.events import EventMeta
from shared.logging import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)

SERVICE = "orders"

# Stock changes are left out: orders never read the stock figure (the catalog checks it in the
# saga), and each reservation makes one, so reading them would double this consumer's work.
PRODUCT_EVENTS = tuple(
    event
    for event in CATALOG_EVENTS
    if issubclass(event, ProductEvent) and event is not ProductStockChanged
)


def _vendor_reason(event: VendorEvent) -> str | None:
    """Why the vendor may not sell (a suspension's reason, a rejection's reasons)."""
    if isinstance(event, VendorSuspended):
        return event.reason
    if isinstance(event, VendorRejected):
        return "; ".join(event.reasons)
    return None


async def apply_vendor_event(conn: Connection, ctx: Context, event: VendorEvent) -> bool:
    """Keep the vendor projection; a vendor that may no longer sell has its orders before the
    SP rejected. Returns False for a stale event."""
    stored = await store.upsert_vendor(
        conn,
        {
            "vendor_id": event.vendor_id,
            "version": event.version,
            "state": event.state.value,
            "state_reason": _vendor_reason(event),
            "legal_name": event.legal_name,
            "scale": event.scale.value,
            "is_umk": event.is_umk,
            "is_koperasi": event.is_koperasi,
            "is_local": event.is_local,
        },
    )
    if stored and event.state is not VendorState.VERIFIED:
        reason = f"vendor {event.state.value}" + (
            f": {_vendor_reason(event)}" if _vendor_reason(event) else ""
        )
        await commands.reject_orders_of_vendor(conn, ctx, event.vendor_id, reason)
    return stored


async def apply_product_event(conn: Connection, ctx: Context, event: ProductEvent) -> bool:
    """Keep the product projection; a take-down rejects the orders holding it before the SP."""
    reason = None
    if isinstance(event, ProductTakenDown):
        reason = event.reason
    elif isinstance(event, ProductRejected):
        reason = "; ".join(event.reasons)
    stored = await store.upsert_product(
        conn,
        {
            "product_id": event.product_id,
            "version": event.version,
            "vendor_id": event.vendor_id,
            "name": event.name,
            "category_code": event.category_code,
            "unit": event.unit,
            "price": event.price,
            "pdn": event.pdn,
            "pdn_verified": event.pdn_verified,
            "tkdn": event.tkdn,
            "bmp": event.bmp,
            "tkdn_verified": event.tkdn_verified,
            "bmp_verified": event.bmp_verified,
            "state": event.state.value,
            "state_reason": reason or None,
        },
    )
    if stored and isinstance(event, ProductTakenDown) and event.state is ProductState.TAKEN_DOWN:
        await commands.reject_orders_with_product(conn, ctx, event.product_id, event.reason)
    return stored


def build_consumer(settings: ServiceSettings, ctx: Context) -> EventConsumer:
    """The orders consumer group on vendor, product and stock events."""
    consumer = EventConsumer(SERVICE, **settings.consumer_options())

    @consumer.on(*VENDOR_EVENTS)
    async def on_vendor(conn: Connection, event: VendorEvent, meta: EventMeta) -> None:
        if not await apply_vendor_event(conn, ctx, event):
            log.info("stale vendor event dropped", vendor_id=str(event.vendor_id))

    @consumer.on(*PRODUCT_EVENTS)
    async def on_product(conn: Connection, event: ProductEvent, meta: EventMeta) -> None:
        if not await apply_product_event(conn, ctx, event):
            log.info("stale product event dropped", product_id=str(event.product_id))

    @consumer.on_batch(StockReserved)
    async def on_reserved(
        conn: Connection, reserved: Sequence[tuple[StockReserved, EventMeta]]
    ) -> None:
        await commands.confirm_stock(conn, ctx, [event.order_id for event, _ in reserved])

    @consumer.on(StockReservationRejected)
    async def on_refused(
        conn: Connection, event: StockReservationRejected, meta: EventMeta
    ) -> None:
        await commands.reject_order(
            conn,
            ctx,
            event.order_id,
            event.reason_code.value,
            event.reason,
            commands.STOCK_SAGA,
            only_if_placed=True,
        )

    return consumer
