"""The saga's reservation of a batch of placed orders: each order all its lines or none, in the
batch's order, never below zero, and never twice for one order."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from services.catalog.saga import reserve_for_orders
from shared.contracts.orders import OrderPlaced
from shared.outbox import Outbox
from tests.catalog.helpers import Catalog


def placed(vendor_id: uuid.UUID, lines: list[tuple[dict[str, Any], int]]) -> OrderPlaced:
    """An `order.placed` of this vendor's products (product, quantity) at their listed price."""
    return OrderPlaced(
        order_id=uuid.uuid4(),
        version=1,
        occurred_at=datetime.now(UTC),
        state="placed",
        opd_id="DISDIK",
        rup_code="RUP-1",
        procurement_type="barang",
        fiscal_year=2026,
        method="direct",
        vendor={
            "vendor_id": vendor_id,
            "legal_name": "CV Kertas",
            "scale": "kecil",
            "is_umk": True,
            "is_koperasi": False,
            "is_local": True,
        },
        lines=[
            {
                "product_id": product["id"],
                "name": product["name"],
                "category_code": product["category_code"],
                "unit": product["unit"],
                "quantity": quantity,
                "listed_price": product["price"],
                "unit_price": product["price"],
                "line_total": quantity * product["price"],
                "pdn": False,
                "tkdn": None,
                "bmp": None,
                "tkdn_verified": False,
                "priority_tier": "none",
                "best_available_tier": "none",
                "priority_compliant": True,
            }
            for product, quantity in lines
        ],
        total=sum(quantity * product["price"] for product, quantity in lines),
        delivery_address="Jl. Mataram 1",
        placed_by="ppk-1",
        ppk_id="ppk-1",
        priority_compliant=True,
        actor="ppk-1",
    )


async def reserve(catalog: Catalog, *events: OrderPlaced) -> None:
    outbox = Outbox.for_service("catalog", catalog.prefix)
    async with catalog.pool.acquire() as conn, conn.transaction():
        await reserve_for_orders(conn, outbox, events)


async def outcomes(catalog: Catalog, *orders: OrderPlaced) -> list[tuple[str, str | None]]:
    rows = {
        r["order_id"]: (r["state"], r["reason"])
        for r in await catalog.pool.fetch(
            "SELECT order_id, state, reason FROM stock_reservation WHERE order_id = ANY($1)",
            [o.order_id for o in orders],
        )
    }
    return [rows[o.order_id] for o in orders]


async def logged(catalog: Catalog, event_type: str, aggregate_id: Any) -> list[dict[str, Any]]:
    """The payloads this service wrote for one aggregate, in the order it wrote them."""
    rows = await catalog.pool.fetch(
        "SELECT payload FROM event_log WHERE event_type = $1 AND aggregate_id = $2"
        " ORDER BY position",
        event_type,
        str(aggregate_id),
    )
    return [json.loads(r["payload"]) for r in rows]


async def stock(catalog: Catalog, product: dict[str, Any]) -> int:
    return int((await catalog.product(product["id"]))["stock"])


async def test_a_batch_reserves_in_order_and_a_second_copy_of_an_order_is_not_new(
    catalog: Catalog,
) -> None:
    etalase = await catalog.open_etalase()
    vendor_id, vendor = await catalog.verified_vendor()
    paper = await catalog.listed(vendor, etalase["id"], stock=3)
    pens = await catalog.listed(vendor, etalase["id"], stock=2)
    first = placed(vendor_id, [(paper, 2)])
    second = placed(vendor_id, [(paper, 1), (pens, 3)])  # pens short: takes no paper either
    third = placed(vendor_id, [(paper, 1), (pens, 2)])  # the last paper and all the pens
    fourth = placed(vendor_id, [(paper, 1)])  # nothing left

    await reserve(catalog, first, first, second, third, fourth, third)

    assert await outcomes(catalog, first, second, third, fourth) == [
        ("reserved", None),
        ("rejected", f"product {pens['id']}: 3 requested, 2 in stock"),
        ("reserved", None),
        ("rejected", f"product {paper['id']}: 1 requested, 0 in stock"),
    ]
    assert [await stock(catalog, p) for p in (paper, pens)] == [0, 0]
    # One stock change per reservation and product, numbered as if one at a time.
    changes = await logged(catalog, "ekatalog.product.stock_changed.v1", paper["id"])
    steps = [(c["version"] - paper["version"], c["previous_stock"], c["stock"]) for c in changes]
    assert steps == [(1, 3, 1), (2, 1, 0)]
    assert [c["reference"] for c in changes] == [str(first.order_id), str(third.order_id)]
    # The public page (a stored rendering) shows the product as the batch left it.
    public = (await catalog.client.get(f"/products/{paper['id']}")).json()
    assert (public["stock"], public["version"]) == (0, paper["version"] + 2)
    answers = {
        o.order_id: [
            *await logged(catalog, "ekatalog.stock.reserved.v1", o.order_id),
            *await logged(catalog, "ekatalog.stock.reservation_rejected.v1", o.order_id),
        ]
        for o in (first, second, third, fourth)
    }
    assert [len(a) for a in answers.values()] == [1, 1, 1, 1]
    assert answers[fourth.order_id][0]["reason_code"] == "insufficient_stock"

    # Redelivered, alone or in another batch: nothing is reserved or answered twice.
    await reserve(catalog, third, first)
    assert [await stock(catalog, p) for p in (paper, pens)] == [0, 0]
    assert len(await logged(catalog, "ekatalog.stock.reserved.v1", first.order_id)) == 1
    assert len(await logged(catalog, "ekatalog.product.stock_changed.v1", paper["id"])) == 2


async def test_batches_racing_for_the_last_units_never_oversell(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    vendor_id, vendor = await catalog.verified_vendor()
    products = [await catalog.listed(vendor, etalase["id"], stock=3) for _ in range(2)]
    # Lines in both orders of the products in every batch.
    batches = [
        [placed(vendor_id, [(products[n % 2], 1), (products[1 - n % 2], 1)]) for _ in range(2)]
        for n in range(4)
    ]
    await asyncio.gather(*(reserve(catalog, *batch) for batch in batches))
    states = await outcomes(catalog, *(o for batch in batches for o in batch))
    assert sorted(state for state, _ in states) == ["rejected"] * 5 + ["reserved"] * 3
    assert [await stock(catalog, p) for p in products] == [0, 0]
