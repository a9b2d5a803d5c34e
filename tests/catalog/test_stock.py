"""Stock reservation for the orders saga: all lines or none, in the caller's transaction."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.catalog.commands import NotFound
from services.catalog.domain import RuleViolation
from services.catalog.stock import InsufficientStock, StockLine, release_stock, reserve_stock
from shared.outbox import Outbox
from tests.catalog.helpers import Catalog


async def _stocks(catalog: Catalog, *ids: str) -> list[int]:
    return [(await catalog.product(i))["stock"] for i in ids]


async def test_reserve_all_lines_or_none(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    a = await catalog.listed(vendor, etalase["id"], stock=5)
    b = await catalog.listed(vendor, etalase["id"], stock=2)
    outbox = Outbox.for_service("catalog", catalog.prefix)
    a_id, b_id = uuid.UUID(a["id"]), uuid.UUID(b["id"])

    with pytest.raises(InsufficientStock) as short:
        async with catalog.pool.acquire() as conn, conn.transaction():
            await reserve_stock(conn, outbox, [StockLine(a_id, 3), StockLine(b_id, 3)], "SP-1")
    assert short.value.product_id == b_id
    assert (short.value.requested, short.value.available) == (3, 2)
    assert str(b_id) in str(short.value)
    assert await _stocks(catalog, a["id"], b["id"]) == [5, 2]

    async with catalog.pool.acquire() as conn, conn.transaction():
        # Two lines of one product count together.
        rows = await reserve_stock(
            conn, outbox, [StockLine(a_id, 2), StockLine(b_id, 2), StockLine(a_id, 1)], "SP-2"
        )
    assert {p.id: p.stock for p in rows} == {a_id: 2, b_id: 0}
    assert await _stocks(catalog, a["id"], b["id"]) == [2, 0]

    async with catalog.pool.acquire() as conn, conn.transaction():
        await release_stock(conn, outbox, [StockLine(b_id, 2)], "SP-2")
    assert await _stocks(catalog, a["id"], b["id"]) == [2, 2]

    events = await catalog.events_of("products", b["id"], 4)
    stock_events = [e.data for e in events if e.type == "ekatalog.product.stock_changed.v1"]
    assert [(e["previous_stock"], e["stock"], e["reason"]) for e in stock_events] == [
        (2, 0, "reserved"),
        (0, 2, "released"),
    ]
    assert stock_events[0]["reference"] == "SP-2"

    async with catalog.pool.acquire() as conn, conn.transaction():
        with pytest.raises(NotFound):
            await reserve_stock(conn, outbox, [StockLine(uuid.uuid4(), 1)])
        with pytest.raises(RuleViolation):
            await reserve_stock(conn, outbox, [StockLine(a_id, 0)])


async def test_concurrent_reservations_cannot_oversell(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    products = [await catalog.listed(vendor, etalase["id"], stock=3) for _ in range(2)]
    ids = sorted(uuid.UUID(p["id"]) for p in products)
    outbox = Outbox.for_service("catalog", catalog.prefix)

    async def order(lines: list[StockLine]) -> str:
        try:
            async with catalog.pool.acquire() as conn, conn.transaction():
                await reserve_stock(conn, outbox, lines)
                await asyncio.sleep(0.05)  # hold the locks while the others queue
            return "reserved"
        except InsufficientStock:
            return "short"

    # Lines in both orders: locking in id order is what keeps this free of deadlocks.
    orders = [[StockLine(ids[0], 1), StockLine(ids[1], 1)] for _ in range(4)]
    orders += [[StockLine(ids[1], 1), StockLine(ids[0], 1)] for _ in range(4)]
    results = await asyncio.gather(*(order(lines) for lines in orders))
    assert sorted(results) == ["reserved"] * 3 + ["short"] * 5
    assert await _stocks(catalog, *(p["id"] for p in products)) == [0, 0]
