"""Storefronts, submission rules, curation, versioned edits and stock, over HTTP."""

from __future__ import annotations

import uuid

from shared.auth import Role
from shared.contracts.vendors import VendorRegistered
from tests.catalog.helpers import AUDITOR, MANAGER, Catalog, etalase_body, product_body
from tests.support import auth


async def test_storefront_lifecycle(catalog: Catalog) -> None:
    body = etalase_body()
    created = await catalog.client.post("/etalase", json=body, headers=MANAGER)
    assert created.status_code == 201, created.text
    etalase = created.json()
    assert etalase["state"] == "draft" and etalase["version"] == 1
    again = await catalog.client.post("/etalase", json=body, headers=MANAGER)
    assert again.status_code == 409 and again.json()["rule"] == "code_unique"

    # A draft is not public.
    assert (await catalog.client.get(f"/etalase/{etalase['id']}")).status_code == 404
    seen = await catalog.client.get(f"/etalase/{etalase['id']}", headers=AUDITOR)
    assert seen.status_code == 200

    patched = await catalog.client.patch(
        f"/etalase/{etalase['id']}",
        json={"price_ceiling": 1_000_000, "only_local": True},
        headers=MANAGER,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["price_ceiling"] == 1_000_000 and patched.json()["version"] == 2
    for cleared in ({"name": None}, {"only_local": None}, {"code": "NEW"}):
        response = await catalog.client.patch(
            f"/etalase/{etalase['id']}", json=cleared, headers=MANAGER
        )
        assert response.status_code == 422, cleared
    opened = await catalog.client.post(f"/etalase/{etalase['id']}/open", headers=MANAGER)
    assert opened.json()["state"] == "open"
    twice = await catalog.client.post(f"/etalase/{etalase['id']}/open", headers=MANAGER)
    assert twice.status_code == 409
    public = await catalog.client.get("/etalase")
    assert etalase["id"] in [e["id"] for e in public.json()]
    closed = await catalog.client.post(f"/etalase/{etalase['id']}/close", headers=MANAGER)
    assert closed.json()["state"] == "closed" and closed.json()["version"] == 4


async def test_storefront_refuses_bad_definitions(catalog: Catalog) -> None:
    deep = etalase_body(
        categories=[
            {
                "code": "A",
                "name": "a",
                "children": [
                    {
                        "code": "B",
                        "name": "b",
                        "children": [
                            {"code": "C", "name": "c", "children": [{"code": "D", "name": "d"}]}
                        ],
                    }
                ],
            }
        ]
    )
    response = await catalog.client.post("/etalase", json=deep, headers=MANAGER)
    assert response.status_code == 422 and response.json()["rule"] == "category_depth"
    for ceiling in (1.5, "1000", True):
        response = await catalog.client.post(
            "/etalase", json=etalase_body(price_ceiling=ceiling), headers=MANAGER
        )
        assert response.status_code == 422, (ceiling, response.text)
        assert response.json()["errors"][0]["field"] == "price_ceiling"
    response = await catalog.client.patch(
        f"/etalase/{uuid.uuid4()}", json={"name": "x"}, headers=MANAGER
    )
    assert response.status_code == 404


async def test_submission_rules(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase(only_local=True, price_ceiling=1_000_000)
    _, vendor = await catalog.verified_vendor()

    async def refused(headers: dict[str, str], status: int, rule: str, **overrides: object) -> None:
        response = await catalog.client.post(
            "/products", json=product_body(etalase["id"], **overrides), headers=headers
        )
        assert response.status_code == status, response.text
        assert response.json()["rule"] == rule, response.text

    unknown = auth(Role.VENDOR, vendor_id=str(uuid.uuid4()))
    await refused(unknown, 403, "vendor_verified")
    pending_id = uuid.uuid4()
    await catalog.vendor(VendorRegistered, pending_id, 1)
    await refused(auth(Role.VENDOR, vendor_id=str(pending_id)), 403, "vendor_verified")
    _, wrong_kbli = await catalog.verified_vendor(kbli=["62010"])
    await refused(wrong_kbli, 403, "kbli")
    _, remote = await catalog.verified_vendor(is_local=False, region_code="31.71")
    await refused(remote, 403, "local_vendor")
    await refused(vendor, 422, "vendor_type", vendor_type="distributor")
    await refused(vendor, 422, "category", category_code="NOPE")
    await refused(vendor, 422, "price_ceiling", price=1_000_001)
    await refused(vendor, 422, "price_ceiling", regional_prices={"33.75": 2_000_000})

    umkm_only = await catalog.open_etalase(only_umk_koperasi=True)
    _, big = await catalog.verified_vendor(scale="besar", is_umk=False)
    response = await catalog.client.post(
        "/products", json=product_body(umkm_only["id"]), headers=big
    )
    assert response.status_code == 403 and response.json()["rule"] == "umkm_koperasi"
    _, koperasi = await catalog.verified_vendor(
        scale="menengah", is_umk=False, is_koperasi=True, legal_form="Koperasi"
    )
    await catalog.submit(koperasi, umkm_only["id"])

    draft = (await catalog.client.post("/etalase", json=etalase_body(), headers=MANAGER)).json()
    await refused(vendor, 422, "etalase_open", etalase_id=draft["id"])


async def test_money_and_bad_input_are_field_errors(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    cases = [
        ({"price": 750000.0}, "price"),
        ({"price": "750000"}, "price"),
        ({"price": 0}, "price"),
        ({"regional_prices": {"33.75": 1.5}}, "regional_prices.33.75"),
        ({"stock": -1}, "stock"),
        ({"tkdn": 120}, "tkdn"),
        ({"etalase_id": "not-a-uuid"}, "etalase_id"),
        ({"unexpected": 1}, "unexpected"),
    ]
    for overrides, field in cases:
        response = await catalog.client.post(
            "/products", json=product_body(etalase["id"], **overrides), headers=vendor
        )
        assert response.status_code == 422, (overrides, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]], response.text
    no_certificate = product_body(etalase["id"], tkdn_certificate=None)
    response = await catalog.client.post("/products", json=no_certificate, headers=vendor)
    assert response.status_code == 422
    broken = await catalog.client.post(
        "/products", content=b"{not json", headers={**vendor, "content-type": "application/json"}
    )
    assert broken.status_code == 422


async def test_curation_lists_and_leaves_claims_pending(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    product = await catalog.submit(vendor, etalase["id"])
    assert product["state"] == "submitted" and not product["tkdn_verified"]
    assert product["category_path"] == ["TEX", "TEX.BATIK", "TEX.BATIK.TULIS"]
    # Not public before curation.
    assert (await catalog.client.get(f"/products/{product['id']}")).status_code == 404
    queue = await catalog.client.get(
        "/products", params={"state": "submitted", "etalase_id": etalase["id"]}, headers=MANAGER
    )
    assert [p["id"] for p in queue.json()["items"]] == [product["id"]]

    listed = await catalog.client.post(f"/products/{product['id']}/approve", headers=MANAGER)
    assert listed.status_code == 200
    assert listed.json()["state"] == "listed" and not listed.json()["tkdn_verified"]
    assert listed.json()["tkdn_status"] == "pending" and listed.json()["tkdn"] == 45.5
    public = await catalog.client.get(f"/products/{product['id']}")
    assert public.status_code == 200 and not public.json()["tkdn_verified"]
    assert public.json()["tkdn"] is None and "tkdn_status" not in public.json()
    again = await catalog.client.post(f"/products/{product['id']}/approve", headers=MANAGER)
    assert again.status_code == 409

    other = await catalog.submit(vendor, etalase["id"])
    no_reason = await catalog.client.post(
        f"/products/{other['id']}/reject", json={"reasons": []}, headers=MANAGER
    )
    assert no_reason.status_code == 422
    rejected = await catalog.client.post(
        f"/products/{other['id']}/reject",
        json={"reasons": ["foto tidak jelas"]},
        headers=MANAGER,
    )
    assert rejected.json()["state"] == "rejected"
    assert rejected.json()["state_reasons"] == ["foto tidak jelas"]
    # Editing a rejected product sends it back to review.
    edited = await catalog.client.patch(
        f"/products/{other['id']}",
        json={"photos": ["https://img.example/batik-2.jpg"]},
        headers=vendor,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["state"] == "submitted" and edited.json()["revision"] == 2


async def test_take_down_and_relist(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    product = await catalog.listed(vendor, etalase["id"])
    path = f"/products/{product['id']}"
    down = await catalog.client.post(
        f"{path}/take-down", json={"reason": "stok habis"}, headers=vendor
    )
    assert down.json()["state"] == "taken_down" and down.json()["taken_down_by"] == "vendor"
    assert (await catalog.client.get(path)).status_code == 404
    twice = await catalog.client.post(f"{path}/take-down", json={"reason": "x"}, headers=MANAGER)
    assert twice.status_code == 409
    relisted = await catalog.client.post(f"{path}/relist", headers=vendor)
    assert relisted.json()["state"] == "submitted"
    await catalog.client.post(f"{path}/approve", headers=MANAGER)
    down = await catalog.client.post(
        f"{path}/take-down", json={"reason": "melanggar ketentuan"}, headers=MANAGER
    )
    assert down.json()["taken_down_by"] == "manager"


async def test_price_change_is_reviewed_when_the_storefront_says_so(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase(recurate_changes=True)
    _, vendor = await catalog.verified_vendor()
    product = await catalog.listed(vendor, etalase["id"])
    path = f"/products/{product['id']}"

    pending = await catalog.client.patch(
        path, json={"price": 800_000, "name": "Batik tulis jlamprang premium"}, headers=vendor
    )
    assert pending.status_code == 200, pending.text
    live = pending.json()
    assert live["price"] == 750_000 and live["pending_revision"] == 2 and live["state"] == "listed"
    blocked = await catalog.client.patch(path, json={"price": 900_000}, headers=vendor)
    assert blocked.status_code == 409 and blocked.json()["rule"] == "pending_change"

    rejected = await catalog.client.post(
        f"{path}/reject", json={"reasons": ["harga di atas pasar"]}, headers=MANAGER
    )
    assert rejected.json()["price"] == 750_000 and rejected.json()["pending_revision"] is None
    await catalog.client.patch(path, json={"price": 780_000, "tkdn": 50.0}, headers=vendor)
    approved = await catalog.client.post(
        f"{path}/approve", json={"claims": {"tkdn": "verified"}}, headers=MANAGER
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["price"] == 780_000 and approved.json()["revision"] == 3
    assert approved.json()["tkdn"] == 50.0 and approved.json()["tkdn_verified"]

    history = (await catalog.client.get(f"{path}/history", headers=vendor)).json()
    assert [p["price"] for p in history["prices"]] == [750_000, 780_000]
    assert [r["status"] for r in history["revisions"]] == ["applied", "rejected", "applied"]
    assert history["revisions"][1]["reasons"] == ["harga di atas pasar"]
    same = await catalog.client.patch(path, json={"price": 780_000}, headers=vendor)
    assert same.status_code == 422 and same.json()["rule"] == "no_change"
    uncertified = await catalog.client.patch(path, json={"tkdn_certificate": None}, headers=vendor)
    assert uncertified.status_code == 422 and uncertified.json()["rule"] == "tkdn_certificate"

    # Taking the product down withdraws a waiting change; edits then apply directly.
    await catalog.client.patch(path, json={"price": 790_000}, headers=vendor)
    await catalog.client.post(f"{path}/take-down", json={"reason": "revisi"}, headers=vendor)
    edited = await catalog.client.patch(path, json={"price": 795_000}, headers=vendor)
    assert edited.status_code == 200, edited.text
    assert edited.json()["price"] == 795_000 and edited.json()["pending_revision"] is None
    history = (await catalog.client.get(f"{path}/history", headers=MANAGER)).json()
    assert [r["status"] for r in history["revisions"]][3:] == ["withdrawn", "applied"]


async def test_price_change_goes_live_without_review_when_allowed(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase(recurate_changes=False)
    _, vendor = await catalog.verified_vendor()
    product = await catalog.listed(vendor, etalase["id"])
    path = f"/products/{product['id']}"
    changed = await catalog.client.patch(
        path, json={"price": 700_000, "tkdn": 60.0}, headers=vendor
    )
    body = changed.json()
    assert body["price"] == 700_000 and body["state"] == "listed" and body["revision"] == 2
    # The new TKDN claim has not been reviewed.
    assert body["tkdn"] == 60.0 and not body["tkdn_verified"]
    history = (await catalog.client.get(f"{path}/history", headers=MANAGER)).json()
    assert [p["price"] for p in history["prices"]] == [750_000, 700_000]
    for cleared in ({"price": None}, {"name": None}, {"delivery_regions": []}):
        response = await catalog.client.patch(path, json=cleared, headers=vendor)
        assert response.status_code == 422, cleared


async def test_stock_is_set_by_its_vendor(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    product = await catalog.listed(vendor, etalase["id"])
    path = f"/products/{product['id']}/stock"
    response = await catalog.client.put(path, json={"stock": 0}, headers=vendor)
    assert response.json()["stock"] == 0 and response.json()["version"] == product["version"] + 1
    same = await catalog.client.put(path, json={"stock": 0}, headers=vendor)
    assert same.json()["version"] == product["version"] + 1
    for bad in (-1, 2.5, "3"):
        response = await catalog.client.put(path, json={"stock": bad}, headers=vendor)
        assert response.status_code == 422, bad
    _, stranger = await catalog.verified_vendor()
    response = await catalog.client.put(path, json={"stock": 5}, headers=stranger)
    assert response.status_code == 403


async def test_edits_and_relisting_meet_todays_rules(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase(price_ceiling=1_000_000)
    _, vendor = await catalog.verified_vendor(is_local=False, region_code="31.71")
    product = await catalog.listed(vendor, etalase["id"])
    path = f"/products/{product['id']}"
    above = await catalog.client.patch(path, json={"price": 1_000_001}, headers=vendor)
    assert above.status_code == 422 and above.json()["rule"] == "price_ceiling"
    await catalog.client.post(f"{path}/take-down", json={"reason": "x"}, headers=MANAGER)
    await catalog.client.patch(
        f"/etalase/{etalase['id']}", json={"only_local": True}, headers=MANAGER
    )
    relist = await catalog.client.post(f"{path}/relist", headers=MANAGER)
    assert relist.status_code == 403 and relist.json()["rule"] == "local_vendor"
    await catalog.client.post(f"/etalase/{etalase['id']}/close", headers=MANAGER)
    await catalog.client.patch(
        f"/etalase/{etalase['id']}", json={"only_local": False}, headers=MANAGER
    )
    closed = await catalog.client.post(f"{path}/relist", headers=vendor)
    assert closed.status_code == 422 and closed.json()["rule"] == "etalase_open"
