"""Stock (stok): the vendor's own figure, and the units an order that ended gives back.

The orders saga reserves a batch's stock set-wise in `services.catalog.saga`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from services.catalog import schemas, store
from services.catalog.commands import Db, ensure_owner, now, product_event, record_change
from services.catalog.domain import NotFound, Product, RuleViolation, StateConflict
from shared.auth import Principal
from shared.contracts.catalog import ProductStockChanged
from shared.db import Connection, StaleWrite, optimistically, unit_of_work
from shared.outbox import Outbox


class InsufficientStock(StateConflict):
    """A reservation line asks for more than the product has; names the short line."""

    def __init__(self, product_id: uuid.UUID, requested: int, available: int) -> None:
        super().__init__(
            "stock", f"product {product_id}: {requested} requested, {available} in stock"
        )
        self.product_id = product_id
        self.requested = requested
        self.available = available


@dataclass(frozen=True)
class StockLine:
    """One order line: how many units of which product."""

    product_id: uuid.UUID
    quantity: int


async def set_stock(
    db: Db, outbox: Outbox, principal: Principal, product_id: uuid.UUID, stock: int
) -> Product:
    """The vendor states how many units it has; setting the same number changes nothing.

    The product is read without a lock and written in one statement with its event, guarded on
    the row as read: from the read again while other writes of the product get there first, and
    under its lock once it is contended (`optimistically`).
    """

    async def attempt(conn: Connection, lock: bool) -> Product:
        read = await store.read_product(conn, product_id, lock=lock)
        if read is None:
            raise NotFound(f"product {product_id} does not exist")
        product = read.product
        ensure_owner(principal, product)
        if product.stock == stock:
            return product
        changed = product.model_copy(
            update={"stock": stock, "version": product.version + 1, "updated_at": now()}
        )
        event = product_event(
            ProductStockChanged, changed, previous_stock=product.stock, reason="set_by_vendor"
        )
        view = schemas.render_public_view(changed)
        change = store.saved_stock(read, changed, view, schemas.PUBLIC_VIEW_KEY)
        _, written = await outbox.add_returning(conn, event, change=change)
        if not written["saved"]:
            raise StaleWrite(product_id)
        return changed

    return await optimistically(db, attempt)


def _quantities(lines: Iterable[StockLine]) -> dict[uuid.UUID, int]:
    totals: Counter[uuid.UUID] = Counter()
    for line in lines:
        if line.quantity <= 0:
            raise RuleViolation("quantity", f"product {line.product_id}: quantity must be > 0")
        totals[line.product_id] += line.quantity
    return dict(totals)


async def release_stock(
    db: Db, outbox: Outbox, lines: Iterable[StockLine], reference: str | None = None
) -> list[Product]:
    """Give reserved stock back (an order ended without delivery), one version and one
    `product.stock_changed` per product; joins the caller's transaction when given one."""
    wanted = _quantities(lines)
    async with unit_of_work(db) as conn:
        held = await store.lock_stock(conn, sorted(wanted))
        for product_id in sorted(wanted):
            if product_id not in held:
                raise NotFound(f"product {product_id} does not exist")
        return [
            await record_change(
                conn,
                outbox,
                product_id,
                {"stock": held[product_id].stock + quantity},
                ProductStockChanged,
                previous_stock=held[product_id].stock,
                reason="released",
                reference=reference,
            )
            for product_id, quantity in sorted(wanted.items())
        ]
