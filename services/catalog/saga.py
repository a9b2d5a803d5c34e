"""The catalog's side of the orders stock saga.

`order.placed` reserves every line or none and answers `stock.reserved` or
`stock.reservation_rejected` (not listed, price changed, insufficient stock). An order that ends
without delivery (cancelled, rejected, rejected by the vendor, expired) gives its stock back; a
received order keeps it (consumed). One `stock_reservation` row per order records the outcome, so
a redelivered, replayed or late event never reserves or releases twice, and an end that arrives
before its placement (a replay from the middle) stops the placement from reserving.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from services.catalog import store
from services.catalog.domain import Product
from services.catalog.stock import InsufficientStock, StockLine, release_stock, reserve_stock
from shared.consumer import EventConsumer
from shared.contracts.catalog import ProductState
from shared.contracts.orders import (
    ORDER_ENDED_WITHOUT_DELIVERY,
    OrderEvent,
    OrderPlaced,
    OrderReceived,
)
from shared.contracts.stock import (
    ReservationRefusal,
    ReservedLine,
    StockReservationRejected,
    StockReserved,
)
from shared.db import Connection
from shared.events import EventMeta
from shared.outbox import Outbox

# The saga's own table; kept here so the saga stays one file beside the catalog's store.
_CLAIM = """
INSERT INTO stock_reservation (order_id, state, lines, reason) VALUES ($1, $2, $3, $4)
ON CONFLICT (order_id) DO NOTHING RETURNING order_id
"""
_LOCK = "SELECT state, lines FROM stock_reservation WHERE order_id = $1 FOR UPDATE"
_SET_STATE = "UPDATE stock_reservation SET state = $2, updated_at = now() WHERE order_id = $1"


def _refusal(
    event: OrderPlaced, products: Mapping[uuid.UUID, Product]
) -> StockReservationRejected | None:
    """Why the order's lines cannot be reserved as ordered, before looking at quantities."""
    for line in event.lines:
        product = products.get(line.product_id)
        if (
            product is None
            or product.state != ProductState.LISTED
            or not product.etalase_open
            or product.vendor_id != event.vendor.vendor_id
        ):
            return _rejected(
                event,
                ReservationRefusal.NOT_LISTED,
                f"product {line.product_id} is not listed",
                line.product_id,
            )
        if product.price != line.listed_price:
            return _rejected(
                event,
                ReservationRefusal.PRICE_CHANGED,
                f"product {line.product_id} now costs {product.price}, not {line.listed_price}",
                line.product_id,
            )
    return None


def _rejected(
    event: OrderPlaced, code: ReservationRefusal, reason: str, product_id: uuid.UUID | None
) -> StockReservationRejected:
    return StockReservationRejected(
        order_id=event.order_id,
        occurred_at=datetime.now(UTC),
        reason_code=code,
        reason=reason,
        product_id=product_id,
    )


async def reserve_for_order(conn: Connection, outbox: Outbox, event: OrderPlaced) -> None:
    lines = [{"product_id": str(x.product_id), "quantity": x.quantity} for x in event.lines]
    if not await conn.fetchval(_CLAIM, event.order_id, "reserved", lines, None):
        return  # this order was already reserved, refused or ended
    products = await store.lock_products(conn, sorted({x.product_id for x in event.lines}))
    answer: StockReserved | StockReservationRejected | None = _refusal(event, products)
    if answer is None:
        try:
            await reserve_stock(
                conn,
                outbox,
                [StockLine(x.product_id, x.quantity) for x in event.lines],
                reference=str(event.order_id),
            )
            answer = StockReserved(
                order_id=event.order_id,
                occurred_at=datetime.now(UTC),
                lines=[
                    ReservedLine(product_id=x.product_id, quantity=x.quantity) for x in event.lines
                ],
            )
        except InsufficientStock as exc:
            answer = _rejected(
                event, ReservationRefusal.INSUFFICIENT_STOCK, exc.detail, exc.product_id
            )
    if isinstance(answer, StockReservationRejected):
        await conn.execute(
            "UPDATE stock_reservation SET state = 'rejected', reason = $2 WHERE order_id = $1",
            event.order_id,
            answer.reason,
        )
    await outbox.add(conn, answer)


async def end_reservation(conn: Connection, outbox: Outbox, event: OrderEvent) -> None:
    """Release the stock of an order that ended without delivery; keep it for a received one."""
    received = isinstance(event, OrderReceived)
    row = await conn.fetchrow(_LOCK, event.order_id)
    if row is None:
        # The end came first: remember it so the placement never reserves.
        await conn.execute(_CLAIM, event.order_id, "consumed" if received else "released", [], None)
        return
    if row["state"] != "reserved":
        return
    if not received:
        await release_stock(
            conn,
            outbox,
            [StockLine(uuid.UUID(x["product_id"]), x["quantity"]) for x in row["lines"]],
            reference=str(event.order_id),
        )
    await conn.execute(_SET_STATE, event.order_id, "consumed" if received else "released")


def register(consumer: EventConsumer, outbox: Outbox) -> None:
    """Subscribe the catalog's consumer group to the order events the saga answers."""

    @consumer.on(OrderPlaced)
    async def on_placed(conn: Connection, event: OrderPlaced, meta: EventMeta) -> None:
        await reserve_for_order(conn, outbox, event)

    @consumer.on(*ORDER_ENDED_WITHOUT_DELIVERY, OrderReceived)
    async def on_ended(conn: Connection, event: OrderEvent, meta: EventMeta) -> None:
        await end_reservation(conn, outbox, event)
