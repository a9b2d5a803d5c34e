"""Stock: the vendor's figure set optimistically, and the units an ended order gives back."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from services.catalog import store
from services.catalog.commands import NotFound
from services.catalog.domain import NotOwner, Product, RuleViolation
from services.catalog.stock import StockLine, release_stock, set_stock
from shared.auth import Principal, Role
from shared.db import Connection
from shared.outbox import Outbox
from tests.catalog.helpers import Catalog


async def _stocks(catalog: Catalog, *ids: str) -> list[int]:
    return [(await catalog.product(i))["stock"] for i in ids]


async def test_a_release_gives_the_units_back_with_their_events(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    a = await catalog.listed(vendor, etalase["id"], stock=5)
    b = await catalog.listed(vendor, etalase["id"], stock=0)
    outbox = Outbox.for_service("catalog", catalog.prefix)
    a_id, b_id = uuid.UUID(a["id"]), uuid.UUID(b["id"])

    async with catalog.pool.acquire() as conn, conn.transaction():
        # Two lines of one product count together: one version, one event.
        rows = await release_stock(
            conn, outbox, [StockLine(a_id, 2), StockLine(b_id, 2), StockLine(a_id, 1)], "SP-2"
        )
    assert {p.id: p.stock for p in rows} == {a_id: 8, b_id: 2}
    assert await _stocks(catalog, a["id"], b["id"]) == [8, 2]
    events = await _stock_events(catalog, a_id)
    assert [(e["previous_stock"], e["stock"], e["reason"], e["reference"]) for e in events] == [
        (5, 8, "released", "SP-2")
    ]

    # A refused release writes nothing, the lines before the bad one included.
    async with catalog.pool.acquire() as conn:
        with pytest.raises(NotFound):
            await release_stock(conn, outbox, [StockLine(a_id, 1), StockLine(uuid.uuid4(), 1)])
        with pytest.raises(RuleViolation):
            await release_stock(conn, outbox, [StockLine(a_id, 1), StockLine(b_id, 0)])
    assert await _stocks(catalog, a["id"], b["id"]) == [8, 2]
    assert len(await _stock_events(catalog, a_id)) == 1


async def _listed(catalog: Catalog, vendor: dict[str, str], etalase_id: str, stock: int) -> Product:
    listed = await catalog.listed(vendor, etalase_id, stock=stock)
    async with catalog.pool.acquire() as conn:
        product = await store.get_product(conn, uuid.UUID(listed["id"]))
    assert product is not None
    return product


async def _stock_events(catalog: Catalog, product_id: uuid.UUID) -> list[dict[str, object]]:
    rows = await catalog.pool.fetch(
        "SELECT payload FROM event_log WHERE aggregate_id = $1 AND event_type = $2"
        " ORDER BY position",
        str(product_id),
        "ekatalog.product.stock_changed.v1",
    )
    return [json.loads(r["payload"]) for r in rows]


async def test_concurrent_stock_sets_each_take_one_version(catalog: Catalog) -> None:
    """Twenty stock sets of one product at once, each read without a lock and written on the
    version it read: every one applies, on consecutive versions, each with its event, and each
    event's previous stock is the stock the one before it set (no update lost)."""
    etalase = await catalog.open_etalase()
    vendor_id, vendor = await catalog.verified_vendor()
    product = await _listed(catalog, vendor, etalase["id"], stock=1000)
    outbox = Outbox.for_service("catalog", catalog.prefix)
    owner = Principal("vendor", Role.VENDOR, vendor_id=str(vendor_id))

    written = await asyncio.gather(
        *(set_stock(catalog.pool, outbox, owner, product.id, n) for n in range(20))
    )

    first = product.version + 1
    assert sorted(p.version for p in written) == list(range(first, first + 20))
    events = await _stock_events(catalog, product.id)
    assert [e["version"] for e in events] == list(range(first, first + 20))
    assert [e["previous_stock"] for e in events] == [1000] + [e["stock"] for e in events[:-1]]
    assert sorted(e["stock"] for e in events) == list(range(20))  # type: ignore[type-var]
    stored = await catalog.product(product.id)
    assert (stored["stock"], stored["version"]) == (events[-1]["stock"], first + 19)
    public = await catalog.client.get(f"/products/{product.id}")
    assert public.json()["stock"] == stored["stock"]


async def test_a_stale_stock_set_reads_again_and_applies(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another write lands between the read and the write: the write changes nothing, reads
    again and applies over the other one."""
    etalase = await catalog.open_etalase()
    vendor_id, vendor = await catalog.verified_vendor()
    product = await _listed(catalog, vendor, etalase["id"], stock=7)
    outbox = Outbox.for_service("catalog", catalog.prefix)
    owner = Principal("vendor", Role.VENDOR, vendor_id=str(vendor_id))
    reads = 0
    read_product = store.read_product

    async def read_then_overtaken(
        conn: Connection, product_id: uuid.UUID, *, lock: bool = False
    ) -> store.ReadProduct:
        nonlocal reads
        reads += 1
        read = await read_product(conn, product_id, lock=lock)
        assert read is not None
        if reads == 1:
            async with catalog.pool.acquire() as other, other.transaction():
                await release_stock(other, outbox, [StockLine(product_id, 2)], "SP-overtake")
        return read

    monkeypatch.setattr(store, "read_product", read_then_overtaken)
    written = await set_stock(catalog.pool, outbox, owner, product.id, 4)
    assert reads == 2
    assert (written.stock, written.version) == (4, product.version + 2)
    events = await _stock_events(catalog, product.id)
    assert [(e["previous_stock"], e["stock"], e["version"]) for e in events] == [
        (7, 9, product.version + 1),
        (9, 4, product.version + 2),
    ]


async def test_a_contended_stock_set_takes_the_lock(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overtaken on every read without a lock, the set reads under the lock and applies."""
    etalase = await catalog.open_etalase()
    vendor_id, vendor = await catalog.verified_vendor()
    product = await _listed(catalog, vendor, etalase["id"], stock=7)
    outbox = Outbox.for_service("catalog", catalog.prefix)
    owner = Principal("vendor", Role.VENDOR, vendor_id=str(vendor_id))
    read_product = store.read_product
    locks: list[bool] = []

    async def overtaken_unless_locked(
        conn: Connection, product_id: uuid.UUID, *, lock: bool = False
    ) -> store.ReadProduct | None:
        locks.append(lock)
        read = await read_product(conn, product_id, lock=lock)
        if not lock:
            async with catalog.pool.acquire() as other:
                await other.execute(
                    "UPDATE product SET updated_at = now() WHERE id = $1", product_id
                )
        return read

    monkeypatch.setattr(store, "read_product", overtaken_unless_locked)
    written = await set_stock(catalog.pool, outbox, owner, product.id, 9)
    assert locks == [False, False, False, True]
    assert (written.stock, written.version) == (9, product.version + 1)
    events = await _stock_events(catalog, product.id)
    assert [(e["previous_stock"], e["stock"], e["version"]) for e in events] == [
        (7, 9, product.version + 1)
    ]


async def test_a_refused_stock_set_writes_nothing(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    product = await _listed(catalog, vendor, etalase["id"], stock=7)
    outbox = Outbox.for_service("catalog", catalog.prefix)
    stranger = Principal("other", Role.VENDOR, vendor_id=str(uuid.uuid4()))
    with pytest.raises(NotOwner):
        await set_stock(catalog.pool, outbox, stranger, product.id, 9)
    with pytest.raises(NotFound):
        await set_stock(catalog.pool, outbox, stranger, uuid.uuid4(), 9)
    assert await _stock_events(catalog, product.id) == []
    stored = await catalog.product(product.id)
    assert (stored["stock"], stored["version"]) == (7, product.version)


async def test_a_stock_set_joins_the_callers_transaction(catalog: Catalog) -> None:
    """Composed in a caller's transaction the set commits or rolls back with it."""
    etalase = await catalog.open_etalase()
    vendor_id, vendor = await catalog.verified_vendor()
    product = await _listed(catalog, vendor, etalase["id"], stock=7)
    outbox = Outbox.for_service("catalog", catalog.prefix)
    owner = Principal("vendor", Role.VENDOR, vendor_id=str(vendor_id))
    with pytest.raises(RuntimeError, match="abandoned"):
        async with catalog.pool.acquire() as conn, conn.transaction():
            await set_stock(conn, outbox, owner, product.id, 9)
            raise RuntimeError("abandoned")
    assert await _stock_events(catalog, product.id) == []
    async with catalog.pool.acquire() as conn, conn.transaction():
        await set_stock(conn, outbox, owner, product.id, 9)
        written = await set_stock(conn, outbox, owner, product.id, 8)
    assert (written.stock, written.version) == (8, product.version + 2)
    assert [e["stock"] for e in await _stock_events(catalog, product.id)] == [9, 8]
