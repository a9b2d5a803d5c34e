"""What an order is refused or rejected for, and that each refusal says why."""

from __future__ import annotations

import json
import uuid

from shared.contracts.vendors import VendorSuspended
from tests.orders.helpers import MANAGER, Platform, events_on
from tests.support import eventually


async def test_a_suspended_vendor_loses_its_orders_before_the_sp_and_gets_no_new_ones(
    platform: Platform,
) -> None:
    scene = await platform.scene()
    buyers, seller, product, rup = scene.buyers, scene.seller, scene.product, scene.rup
    before_sp = await platform.confirmed(scene, 1)
    after_sp = await platform.confirmed(scene, 2)
    assert (await platform.act(after_sp["id"], "approve", buyers.ppk)).is_success

    await platform.catalog.vendor(
        VendorSuspended, seller.vendor_id, 2, reason="dokumen palsu", suspended_by="ukpbj"
    )
    rejected = await platform.reaches(before_sp["id"], "rejected")
    details = rejected["timeline"][-1]["details"]
    assert details["reason_code"] in ("vendor_not_selling", "product_taken_down")
    assert "suspended" in details["reason"]
    assert (await platform.order(after_sp["id"]))["state"] == "awaiting_vendor"

    await platform.known("vendor_projection", "vendor_id", seller.vendor_id, "suspended")
    refused = await platform.client.post(
        "/orders",
        json=platform.order_body(buyers, rup, seller, [(product["id"], 1)]),
        headers=buyers.pp,
    )
    assert refused.status_code == 422
    assert refused.json()["rule"] in ("vendor_not_selling", "product_not_listed")
    assert "suspended" in refused.json()["detail"] or "taken_down" in refused.json()["detail"]


async def test_a_taken_down_product_rejects_orders_before_their_sp_only(
    platform: Platform,
) -> None:
    scene = await platform.scene()
    buyers, seller, product, rup = scene.buyers, scene.seller, scene.product, scene.rup
    before_sp = await platform.confirmed(scene, 3)
    after_sp = await platform.confirmed(scene, 2)
    assert (await platform.act(after_sp["id"], "approve", buyers.ppk)).is_success

    taken = await platform.catalog.client.post(
        f"/products/{product['id']}/take-down",
        json={"reason": "spesifikasi palsu"},
        headers=MANAGER,
    )
    assert taken.status_code == 200, taken.text
    rejected = await platform.reaches(before_sp["id"], "rejected")
    details = rejected["timeline"][-1]["details"]
    assert details == {
        "reason_code": "product_taken_down",
        "reason": f"product {product['id']}: spesifikasi palsu",
    }
    events = await events_on(platform, "orders", before_sp["id"], 3)
    assert events[-1].data["reason_code"] == "product_taken_down"

    async def released() -> bool:
        return await platform.stock(product["id"]) == 8  # the approved order keeps its 2

    await eventually(released)
    assert (await platform.order(after_sp["id"]))["state"] == "awaiting_vendor"
    refused = await platform.client.post(
        "/orders",
        json=platform.order_body(buyers, rup, seller, [(product["id"], 1)]),
        headers=buyers.pp,
    )
    assert refused.status_code == 422 and refused.json()["rule"] == "product_not_listed"
    assert "spesifikasi palsu" in refused.json()["detail"]


async def test_a_pp_orders_up_to_its_limit_and_a_ppk_above_it(platform: Platform) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=1000, price=1_000_000)
    rup = await platform.rup(buyers)
    body = platform.order_body(buyers, rup, seller, [(product["id"], 201)])
    refused = await platform.client.post("/orders", json=body, headers=buyers.pp)
    assert refused.status_code == 422
    assert refused.json()["rule"] == "pp_limit" and refused.json()["limit"] == 200_000_000
    assert "Rp201.000.000" in refused.json()["detail"]
    assert (await platform.client.post("/orders", json=body, headers=buyers.ppk)).status_code == 201
    within = platform.order_body(buyers, rup, seller, [(product["id"], 200)])
    assert (
        await platform.client.post("/orders", json=within, headers=buyers.pp)
    ).status_code == 201


async def test_skipping_a_higher_tkdn_alternative_needs_a_justification(
    platform: Platform,
) -> None:
    category = f"C{uuid.uuid4().hex[:6]}"
    buyers = platform.buyers()
    imported_seller = await platform.seller(category)
    local_seller = await platform.seller(category)
    imported = await platform.product(
        imported_seller,
        category_code=f"{category}.X",
        pdn=False,
        tkdn=None,
        bmp=None,
        tkdn_certificate=None,
    )
    await platform.product(local_seller, category_code=f"{category}.X")
    rup = await platform.rup(buyers)
    body = platform.order_body(buyers, rup, imported_seller, [(imported["id"], 1)])
    refused = await platform.client.post("/orders", json=body, headers=buyers.pp)
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["rule"] == "domestic_priority"
    assert problem["tier"] == "none" and problem["best_available"] == "tkdn_bmp_40"
    assert "Perpres 46/2025" in problem["detail"]

    body["lines"][0]["justification"] = "Suku cadang hanya tersedia dari pabrikan asli"
    placed = await platform.client.post("/orders", json=body, headers=buyers.pp)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["priority_compliant"] is False
    line = order["lines"][0]
    assert line["priority_compliant"] is False and line["pdn"] is False
    assert line["priority_justification"].startswith("Suku cadang")
    event = (await events_on(platform, "orders", order["id"], 1))[0].data
    assert event["priority_compliant"] is False
    assert event["lines"][0]["best_available_tier"] == "tkdn_bmp_40"


async def test_one_vendor_per_order_and_one_line_per_product(platform: Platform) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    other = await platform.seller()
    mine = await platform.product(seller)
    theirs = await platform.product(other)
    rup = await platform.rup(buyers)
    mixed = platform.order_body(buyers, rup, seller, [(mine["id"], 1), (theirs["id"], 1)])
    refused = await platform.client.post("/orders", json=mixed, headers=buyers.pp)
    assert refused.status_code == 422 and refused.json()["rule"] == "one_vendor_per_order"
    twice = platform.order_body(buyers, rup, seller, [(mine["id"], 1), (mine["id"], 2)])
    refused = await platform.client.post("/orders", json=twice, headers=buyers.pp)
    assert refused.status_code == 422 and refused.json()["rule"] == "repeated_line"
    unknown = platform.order_body(buyers, "RUP-NOPE", seller, [(mine["id"], 1)])
    refused = await platform.client.post("/orders", json=unknown, headers=buyers.pp)
    assert refused.status_code == 422 and refused.json()["rule"] == "rup_unknown"
    stranger = platform.order_body(buyers, rup, seller, [(mine["id"], 1)])
    stranger["vendor_id"] = str(uuid.uuid4())
    refused = await platform.client.post("/orders", json=stranger, headers=buyers.pp)
    assert refused.status_code == 422 and refused.json()["rule"] == "vendor_unknown"


async def test_hostile_order_bodies_get_field_errors(platform: Platform) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller)
    rup = await platform.rup(buyers)
    good = platform.order_body(buyers, rup, seller, [(product["id"], 1)])
    cases = [
        ({"delivery_address": "Jl. Mataram\x00"}, "delivery_address"),
        ({"lines": [{"product_id": product["id"], "quantity": "1"}]}, "lines.0.quantity"),
        ({"lines": [{"product_id": product["id"], "quantity": 0}]}, "lines.0.quantity"),
        ({"lines": [{"product_id": "not-a-uuid", "quantity": 1}]}, "lines.0.product_id"),
        ({"lines": [{"product_id": product["id"], "quantity": 1}] * 101}, "lines"),
        ({"lines": []}, "lines"),
        ({"method": "mini_competition"}, "method"),
        ({"rup_code": "x" * 500}, "rup_code"),
        ({"surprise": True}, "surprise"),
    ]
    for change, field in cases:
        response = await platform.client.post("/orders", json={**good, **change}, headers=buyers.pp)
        assert response.status_code == 422, (change, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    deep = json.dumps({**good, "lines": "X"}).replace('"X"', "[" * 5000 + "]" * 5000)
    response = await platform.client.post(
        "/orders", content=deep, headers={**buyers.pp, "Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
