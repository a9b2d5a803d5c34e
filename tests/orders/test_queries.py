"""Order queries (filters, keyset pages, forged cursors) and what duplicate or stale events
do to the orders service's own state."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.contracts.stock import StockReserved
from shared.contracts.vendors import VendorProfileUpdated, VendorVerified
from tests.catalog.helpers import vendor_event
from tests.orders.helpers import AUDITOR, Platform, send
from tests.support import eventually


async def all_pages(platform: Platform, query: str, headers: dict[str, str]) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        url = f"/orders?{query}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        response = await platform.client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        pages.append([o["id"] for o in response.json()["items"]])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


async def ids(platform: Platform, query: str, headers: dict[str, str]) -> list[str]:
    return [order_id for page in await all_pages(platform, query, headers) for order_id in page]


async def test_filters_and_keyset_pages(platform: Platform) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=100)
    rup_a, rup_b = await platform.rup(buyers), await platform.rup(buyers)
    placed: list[dict[str, Any]] = []
    for day, rup in enumerate([rup_a, rup_a, rup_b, rup_a, rup_b]):
        platform.clock.set(datetime(2026, 7, 6 + day, 3, 0, tzinfo=UTC))
        placed.append(await platform.place(buyers, rup, seller, [(product["id"], 1)]))
    newest_first = [o["id"] for o in reversed(placed)]

    pages = await all_pages(platform, f"opd_id={buyers.opd_id}", AUDITOR)
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5]]
    assert await ids(platform, f"rup_code={rup_b}", buyers.pp) == [
        placed[4]["id"],
        placed[2]["id"],
    ]
    window = "placed_from=2026-07-07T00:00:00%2B00:00&placed_to=2026-07-09T00:00:00%2B00:00"
    assert await ids(platform, window, buyers.ppk) == [
        placed[2]["id"],
        placed[1]["id"],
    ]
    await platform.reaches(placed[0]["id"], "awaiting_approval")
    assert (await platform.act(placed[0]["id"], "approve", buyers.ppk)).is_success
    approved = await ids(platform, "state=awaiting_vendor", buyers.treasurer)
    assert approved == [placed[0]["id"]]
    assert await ids(platform, f"vendor_id={seller.vendor_id}", seller.headers) == newest_first


async def test_forged_cursors_and_bad_filters_are_refused(platform: Platform) -> None:
    forged = [
        "not-base64!",
        base64.urlsafe_b64encode(b'["yesterday", "nobody"]').decode(),
        base64.urlsafe_b64encode(f'["2026-07-06T03:00:00", "{uuid.uuid4()}"]'.encode()).decode(),
        base64.urlsafe_b64encode(b'["2026-07-06T03:00:00+00:00"]').decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        "A" * 600,
    ]
    for cursor in forged:
        response = await platform.client.get(f"/orders?cursor={cursor}", headers=AUDITOR)
        assert response.status_code == 422, (cursor, response.text)
        assert response.json()["errors"][0]["field"] == "cursor"
    for query in ("state=lost", "limit=0", "limit=1000", "placed_from=2026-07-06T00:00:00"):
        assert (await platform.client.get(f"/orders?{query}", headers=AUDITOR)).status_code == 422
    # Control characters, bytes that are not UTF-8, wrong types, a huge value: each a 422
    # problem naming the parameter.
    for query, field in (
        ("opd_id=DIS%00DIK", "opd_id"),
        ("rup_code=%FF%FE", "rup_code"),
        ("vendor_id=1", "vendor_id"),
        ("limit=ten", "limit"),
        ("limit=1&limit=1e3", "limit"),
        ("opd_id=" + "A" * 5000, "opd_id"),
    ):
        response = await platform.client.get(f"/orders?{query}", headers=AUDITOR)
        assert response.status_code == 422, (query, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == [field], query


async def test_duplicate_and_stale_events_change_nothing(platform: Platform) -> None:
    scene = await platform.scene()
    seller = scene.seller
    placed = await platform.confirmed(scene, 1)
    assert (await platform.act(placed["id"], "approve", scene.buyers.ppk)).is_success

    # A late or replayed reservation answer for an order that moved on.
    late = StockReserved(order_id=placed["id"], occurred_at=datetime.now(UTC), lines=[])
    late_id = await send(platform, late)
    # A vendor snapshot older than the one the orders service holds.
    stale = vendor_event(
        VendorProfileUpdated, seller.vendor_id, 1, legal_name="CV Lama", is_umk=False
    )
    stale_id = await send(platform, stale)

    await eventually(lambda: platform.handled("orders", late_id))
    await eventually(lambda: platform.handled("orders", stale_id))
    order = await platform.order(placed["id"])
    assert order["state"] == "awaiting_vendor" and order["version"] == 3
    vendor = await platform.pool.fetchrow(
        "SELECT legal_name, version FROM vendor_projection WHERE vendor_id = $1", seller.vendor_id
    )
    assert vendor is not None and vendor["legal_name"] != "CV Lama" and vendor["version"] == 1

    newer_id = await send(
        platform, vendor_event(VendorVerified, seller.vendor_id, 5, legal_name="CV Baru")
    )
    await eventually(lambda: platform.handled("orders", newer_id))
    assert (
        await platform.pool.fetchval(
            "SELECT legal_name FROM vendor_projection WHERE vendor_id = $1", seller.vendor_id
        )
        == "CV Baru"
    )
    # An order keeps the vendor as it was at order time.
    assert (await platform.order(placed["id"]))["vendor"]["legal_name"] != "CV Baru"
