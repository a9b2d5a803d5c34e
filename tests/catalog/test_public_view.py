"""The public view stored with each product: rendered again by every change it shows, equal to
the model's rendering, and made at start for products stored without one."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx

from services.catalog import store
from services.catalog.schemas import (
    PUBLIC_VIEW_KEY,
    ProductPublic,
    SearchHit,
    SearchPage,
    render_public_view,
    search_page_json,
)
from shared.auth import Role
from shared.contracts.vendors import VendorProfileUpdated, VendorReinstated, VendorSuspended
from tests.catalog.helpers import MANAGER, Catalog, catalog_app, etalase_body, product_body
from tests.support import Infra, auth, eventually, running


async def _stored_equals_model(pool: asyncpg.Pool, product_id: Any) -> str:
    """The stored rendering, after checking it is the model's rendering of the product now."""
    async with pool.acquire() as conn:
        product = await store.get_product(conn, uuid.UUID(product_id))
        row = await conn.fetchrow(
            "SELECT public_view, public_view_key FROM product WHERE id = $1", product.id
        )
    assert row["public_view_key"] == PUBLIC_VIEW_KEY
    assert row["public_view"] == render_public_view(product)
    return str(row["public_view"])


async def _public(
    client: httpx.AsyncClient, pool: asyncpg.Pool, etalase_id: Any, product_id: Any
) -> dict[str, Any] | None:
    """The product as the public sees it (None when it is not shown): its search hit and its
    page must agree with each other and with the stored rendering."""
    stored = json.loads(await _stored_equals_model(pool, product_id))
    search = await client.get("/search", params={"etalase_id": etalase_id})
    assert search.status_code == 200, search.text
    hits = [h for h in search.json()["items"] if h["id"] == product_id]
    page = await client.get(f"/products/{product_id}")
    if not hits:
        assert page.status_code == 404
        return None
    assert page.status_code == 200 and page.headers["content-type"] == "application/json"
    assert hits[0] == {**stored, "score": None}
    assert page.json() == stored
    ProductPublic.model_validate(page.json())
    return stored


async def test_every_change_the_view_shows_renders_it_again(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase(recurate_changes=False)
    vendor_id, vendor = await catalog.verified_vendor()
    product = await catalog.listed(vendor, etalase["id"])
    pid, eid = product["id"], etalase["id"]
    before = await _public(catalog.client, catalog.pool, eid, pid)
    assert before is not None and before["tkdn"] is None  # claims not verified yet

    async def changed(method: str, path: str, headers: dict[str, str], **body: Any) -> None:
        response = await catalog.client.request(method, path, json=body or None, headers=headers)
        assert response.status_code == 200, response.text

    await changed("PATCH", f"/products/{pid}", vendor, price=720_000)
    assert (await _public(catalog.client, catalog.pool, eid, pid))["price"] == 720_000  # type: ignore[index]
    await changed("PUT", f"/products/{pid}/stock", vendor, stock=3)
    assert (await _public(catalog.client, catalog.pool, eid, pid))["stock"] == 3  # type: ignore[index]
    await changed("PATCH", f"/products/{pid}", vendor, name="Kain batik cap")
    assert (await _public(catalog.client, catalog.pool, eid, pid))["name"] == "Kain batik cap"  # type: ignore[index]
    await changed("POST", f"/products/{pid}/claims", MANAGER, tkdn="verified", bmp="verified")
    shown = await _public(catalog.client, catalog.pool, eid, pid)
    assert shown is not None and (shown["tkdn"], shown["bmp"]) == (45.5, 10.0)

    await changed("POST", f"/etalase/{eid}/close", MANAGER)
    assert await _public(catalog.client, catalog.pool, eid, pid) is None
    await changed("POST", f"/etalase/{eid}/open", MANAGER)
    assert await _public(catalog.client, catalog.pool, eid, pid) == shown

    await catalog.vendor(VendorSuspended, vendor_id, 2)
    assert await _public(catalog.client, catalog.pool, eid, pid) is None
    await catalog.vendor(VendorReinstated, vendor_id, 3)
    restored = await _public(catalog.client, catalog.pool, eid, pid)
    assert restored is not None and restored["state"] == "listed"
    assert restored["version"] > shown["version"]

    await catalog.vendor(VendorProfileUpdated, vendor_id, 4, is_umk=False, is_local=False)
    flags = await _public(catalog.client, catalog.pool, eid, pid)
    assert flags is not None and (flags["vendor_is_umk"], flags["vendor_is_local"]) == (
        False,
        False,
    )
    assert {**flags, "vendor_is_umk": True, "vendor_is_local": True} == restored


async def test_the_page_of_renderings_is_the_documented_search_page(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    for n in range(3):
        await catalog.listed(vendor, etalase["id"], verify=n == 0, name=f"Batik tulis {n}")
    response = await catalog.client.get(
        "/search", params={"etalase_id": etalase["id"], "q": "batik", "limit": 2}
    )
    assert response.status_code == 200
    page = SearchPage.model_validate_json(response.content)
    assert len(page.items) == 2 and page.next_cursor is not None
    assert all(hit.score is not None for hit in page.items)
    # Byte for byte what serialising the validated models would give.
    assert response.content == page.model_dump_json().encode()
    views = [
        (ProductPublic.model_validate(h.model_dump()).model_dump_json(), h.score)
        for h in page.items
    ]
    assert search_page_json(views, page.next_cursor) == response.content
    assert SearchHit.model_fields.keys() - ProductPublic.model_fields.keys() == {"score"}


async def _listed(client: httpx.AsyncClient, etalase_id: str, vendor: dict[str, str]) -> str:
    submitted = await client.post("/products", json=product_body(etalase_id), headers=vendor)
    assert submitted.status_code == 201, submitted.text
    pid = submitted.json()["id"]
    approved = await client.post(f"/products/{pid}/approve", headers=MANAGER)
    assert approved.status_code == 200, approved.text
    return str(pid)


async def test_products_without_a_rendering_are_served_and_rendered_at_start(
    infra: Infra, database: str, topic_prefix: str
) -> None:
    app = catalog_app(infra, database, topic_prefix)
    async with running(app) as client:
        pool = app.state.pool
        created = await client.post("/etalase", json=etalase_body(), headers=MANAGER)
        eid = created.json()["id"]
        assert (await client.post(f"/etalase/{eid}/open", headers=MANAGER)).status_code == 200
        # The vendor as the catalog's projection knows it from the vendors' events.
        vendor_id = uuid.uuid4()
        await pool.execute(
            """INSERT INTO vendor_projection (vendor_id, version, state, legal_name, kbli,
                   region_code, scale, is_umk, is_koperasi, is_local, is_pkp)
               VALUES ($1, 1, 'verified', 'CV Batik', '{13134}', '33.75', 'kecil',
                       true, false, true, true)""",
            vendor_id,
        )
        vendor = auth(Role.VENDOR, vendor_id=str(vendor_id))
        ids = [await _listed(client, eid, vendor) for _ in range(3)]
        rendered = {pid: await _public(client, pool, eid, pid) for pid in ids}
        # As stored before the column existed, or by an earlier version of the view.
        await pool.execute(
            "UPDATE product SET public_view = NULL, public_view_key = NULL WHERE id = $1::uuid",
            ids[0],
        )
        await pool.execute(
            "UPDATE product SET public_view = '{}', public_view_key = 'old' WHERE id = $1::uuid",
            ids[1],
        )
        # Still served, rendered on the read, until the start-up job reaches them.
        search = (await client.get("/search", params={"etalase_id": eid})).json()
        assert {h["id"]: h for h in search["items"]} == {
            pid: {**view, "score": None} for pid, view in rendered.items()
        }
        for pid in ids[:2]:
            assert (await client.get(f"/products/{pid}")).json() == rendered[pid]

    again = catalog_app(infra, database, topic_prefix)
    async with running(again) as client:

        async def all_rendered() -> bool:
            keys = await again.state.pool.fetch("SELECT public_view_key FROM product")
            return {r["public_view_key"] for r in keys} == {PUBLIC_VIEW_KEY}

        await eventually(all_rendered, timeout=20)
        for pid in ids:
            assert await _public(client, again.state.pool, eid, pid) == rendered[pid]
