"""The catalog's side of the orders stock saga.

`order.placed` reserves every line or none and answers `stock.reserved` or
`stock.reservation_rejected` (not listed, price changed, insufficient stock). An order that ends
without delivery (cancelled, rejected, rejected by the vendor, expired) gives its stock back; a
received order keeps it (consumed). One `stock_reservation` row per order records the outcome, so
a redelivered, replayed or late event never reserves or releases twice, and an end that arrives
before its placement (a replay from the middle) stops the placement from reserving.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.catalog import store
from services.catalog.commands import product_event, store_public_views
from services.catalog.domain import Product
from services.catalog.stock import InsufficientStock, StockLine, release_stock
from shared.consumer import EventConsumer
from shared.contracts.catalog import ProductEvent, ProductState, ProductStockChanged
from shared.contracts.orders import (
    ORDER_ENDED_WITHOUT_DELIVERY,
    OrderEvent,
    OrderLine,
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
_CLAIM_MANY = """
WITH claimed AS (
    INSERT INTO stock_reservation (order_id, state, lines)
    SELECT order_id, 'reserved', lines::jsonb
    FROM unnest($1::uuid[], $2::text[]) AS o(order_id, lines)
    ON CONFLICT (order_id) DO NOTHING RETURNING order_id)
SELECT array_agg(order_id) FROM claimed
"""
_REJECT_MANY = """
UPDATE stock_reservation r SET state = 'rejected', reason = o.reason
FROM unnest($1::uuid[], $2::text[]) AS o(order_id, reason) WHERE r.order_id = o.order_id
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


@dataclass
class _Reservation:
    """One order's units taken from one product, in the order the batch took them."""

    order_id: uuid.UUID
    product_id: uuid.UUID
    quantity: int


async def reserve_for_orders(
    conn: Connection, outbox: Outbox, events: Sequence[OrderPlaced]
) -> None:
    """Reserve the stock of a batch of placed orders with a few statements, each order all its
    lines or none, in the batch's order: an order that the stock left by those before it cannot
    cover is refused. An order seen before (in an earlier batch or earlier in this one) is left
    alone."""
    claimed = set(
        await conn.fetchval(
            _CLAIM_MANY,
            [e.order_id for e in events],
            [json.dumps([_line(x) for x in e.lines]) for e in events],
        )
        or []
    )
    todo = []
    for event in events:
        if event.order_id in claimed:
            claimed.discard(event.order_id)  # a second copy in the batch is not new
            todo.append(event)
    if not todo:
        return
    products = await store.lock_products(
        conn, sorted({x.product_id for e in todo for x in e.lines})
    )
    stock = {product_id: product.stock for product_id, product in products.items()}
    answers: dict[uuid.UUID, StockReserved | StockReservationRejected] = {}
    taken: list[_Reservation] = []
    for event in todo:
        refusal = _refusal(event, products) or _short(event, stock)
        if refusal is not None:
            answers[event.order_id] = refusal
            continue
        for product_id, quantity in sorted(_quantities(event).items()):
            stock[product_id] -= quantity
            taken.append(_Reservation(event.order_id, product_id, quantity))
        answers[event.order_id] = StockReserved(
            order_id=event.order_id,
            occurred_at=datetime.now(UTC),
            lines=[ReservedLine(product_id=x.product_id, quantity=x.quantity) for x in event.lines],
        )
    changes = await _stock_changes(conn, products, taken)
    rejected = [a for a in answers.values() if isinstance(a, StockReservationRejected)]
    if rejected:
        await conn.execute(
            _REJECT_MANY, [a.order_id for a in rejected], [a.reason for a in rejected]
        )
    # Per order, its stock changes and then its answer.
    await outbox.add(
        conn,
        *(
            event
            for order in todo
            for event in (*changes.get(order.order_id, ()), answers[order.order_id])
        ),
    )


def _line(line: OrderLine) -> dict[str, object]:
    """A line as the reservation row keeps it, to be released later."""
    return {"product_id": str(line.product_id), "quantity": line.quantity}


def _quantities(event: OrderPlaced) -> Counter[uuid.UUID]:
    wanted: Counter[uuid.UUID] = Counter()
    for line in event.lines:
        wanted[line.product_id] += line.quantity
    return wanted


def _short(event: OrderPlaced, stock: Mapping[uuid.UUID, int]) -> StockReservationRejected | None:
    """The first line (in product order) that the stock left cannot cover."""
    for product_id, quantity in sorted(_quantities(event).items()):
        if stock[product_id] < quantity:
            short = InsufficientStock(product_id, quantity, stock[product_id])
            return _rejected(event, ReservationRefusal.INSUFFICIENT_STOCK, short.detail, product_id)
    return None


async def _stock_changes(
    conn: Connection, products: Mapping[uuid.UUID, Product], taken: Sequence[_Reservation]
) -> dict[uuid.UUID, list[ProductEvent]]:
    """Take the reserved units in one statement and render the products' public views again;
    per order, the `product.stock_changed` events of its lines, one version of the product
    each, as if the reservations ran one by one."""
    if not taken:
        return {}
    per_product: dict[uuid.UUID, tuple[int, int]] = {}
    for item in taken:
        quantity, count = per_product.get(item.product_id, (0, 0))
        per_product[item.product_id] = (quantity + item.quantity, count + 1)
    updated = await store.take_stock(conn, per_product)
    if len(updated) != len(per_product):
        raise RuntimeError("stock moved under the reservation's lock")
    await store_public_views(conn, updated.values())  # once per product, as it is now
    version = {product_id: product.version for product_id, product in products.items()}
    stock = {product_id: product.stock for product_id, product in products.items()}
    changes: dict[uuid.UUID, list[ProductEvent]] = defaultdict(list)
    for item in taken:
        version[item.product_id] += 1
        previous = stock[item.product_id]
        stock[item.product_id] -= item.quantity
        snapshot = updated[item.product_id].model_copy(
            update={"version": version[item.product_id], "stock": stock[item.product_id]}
        )
        changes[item.order_id].append(
            product_event(
                ProductStockChanged,
                snapshot,
                previous_stock=previous,
                reason="reserved",
                reference=str(item.order_id),
            )
        )
    return changes


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

    # A batch's placements are reserved together, after its ends (handled one by one): an end
    # met first leaves the mark that stops its placement from reserving, as in a replay.
    @consumer.on_batch(OrderPlaced)
    async def on_placed(conn: Connection, placed: Sequence[tuple[OrderPlaced, EventMeta]]) -> None:
        await reserve_for_orders(conn, outbox, [event for event, _ in placed])

    @consumer.on(*ORDER_ENDED_WITHOUT_DELIVERY, OrderReceived)
    async def on_ended(conn: Connection, event: OrderEvent, meta: EventMeta) -> None:
        await end_reservation(conn, outbox, event)
