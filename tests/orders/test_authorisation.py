"""Who may do what with an order; every refusal says why."""

from __future__ import annotations

from typing import Any

import pytest

from shared.auth import Role
from tests.orders.helpers import AUDITOR, MANAGER, Platform
from tests.support import auth

# action -> the body it takes
ACTIONS: dict[str, Any] = {
    "approve": None,
    "accept": None,
    "reject": {"reason": "tidak sanggup"},
    "ship": {"carrier": "JNE", "tracking_number": "1"},
    "receive": {"bast_number": "BAST/1"},
    "dispute": {"reason": "rusak"},
    "pay": {"payment_reference": "P-1", "amount": 1},
    "cancel": {"reason": "batal"},
    "negotiation/proposals": {"prices": {}},
    "negotiation/agree": None,
}


@pytest.fixture(scope="module")
async def scene(platform: Platform) -> dict[str, Any]:
    buyers, others = platform.buyers(), platform.buyers()
    seller, rival = await platform.seller(), await platform.seller()
    product = await platform.product(seller, stock=50)
    rup = await platform.rup(buyers)
    order = await platform.place(buyers, rup, seller, [(product["id"], 1)])
    await platform.reaches(order["id"], "awaiting_approval")
    return {
        "platform": platform,
        "order": order,
        "buyers": buyers,
        "others": others,
        "seller": seller,
        "rival": rival,
        "rup": rup,
    }


async def test_reading_one_order(scene: dict[str, Any]) -> None:
    platform: Platform = scene["platform"]
    order_id = scene["order"]["id"]
    allowed = [
        scene["buyers"].pp,
        scene["buyers"].ppk,
        scene["buyers"].treasurer,
        scene["seller"].headers,
        AUDITOR,
        MANAGER,
    ]
    for headers in allowed:
        assert (await platform.client.get(f"/orders/{order_id}", headers=headers)).is_success
    refused = [
        (scene["others"].pp, f"belongs to OPD {scene['buyers'].opd_id}"),
        (scene["rival"].headers, "only its own orders"),
        (auth(Role.INTEGRATOR), "may not do this"),
    ]
    for headers, reason in refused:
        response = await platform.client.get(f"/orders/{order_id}", headers=headers)
        assert response.status_code == 403 and reason in response.json()["detail"]
    assert (await platform.client.get(f"/orders/{order_id}")).status_code == 401


async def test_listing_is_scoped(scene: dict[str, Any]) -> None:
    platform: Platform = scene["platform"]
    buyers, others = scene["buyers"], scene["others"]
    own = (await platform.client.get("/orders", headers=buyers.treasurer)).json()
    assert {o["opd_id"] for o in own["items"]} == {buyers.opd_id}
    assert (await platform.client.get("/orders", headers=others.pp)).json()["items"] == []
    peek = await platform.client.get(f"/orders?opd_id={buyers.opd_id}", headers=others.pp)
    assert peek.status_code == 403
    vendor = (await platform.client.get("/orders", headers=scene["seller"].headers)).json()
    assert {o["vendor"]["vendor_id"] for o in vendor["items"]} == {str(scene["seller"].vendor_id)}
    spy = await platform.client.get(
        f"/orders?vendor_id={scene['seller'].vendor_id}", headers=scene["rival"].headers
    )
    assert spy.status_code == 403
    everyone = (await platform.client.get("/orders", headers=AUDITOR)).json()["items"]
    assert scene["order"]["id"] in {o["id"] for o in everyone}


@pytest.mark.parametrize("action", sorted(ACTIONS))
async def test_strangers_cannot_act(scene: dict[str, Any], action: str) -> None:
    platform: Platform = scene["platform"]
    order_id = scene["order"]["id"]
    strangers = [
        scene["others"].pp,
        scene["others"].ppk,
        scene["others"].treasurer,
        scene["rival"].headers,
        AUDITOR,
        MANAGER,
    ]
    for headers in strangers:
        response = await platform.act(order_id, action, headers, ACTIONS[action])
        assert response.status_code in (403, 422), (action, response.text)
        if response.status_code == 403:
            assert response.json()["detail"], response.json()
    order = await platform.order(order_id)
    assert order["state"] == "awaiting_approval" and order["version"] == 2


async def test_each_step_belongs_to_one_role(scene: dict[str, Any]) -> None:
    platform: Platform = scene["platform"]
    buyers, seller = scene["buyers"], scene["seller"]
    order_id = scene["order"]["id"]
    cases = [
        ("approve", buyers.pp, "only the order's PPK"),
        ("approve", buyers.other_ppk, f"the order's PPK is {buyers.ppk_id}"),
        ("approve", buyers.treasurer, "only the order's PPK"),
        ("approve", seller.headers, "only the order's PPK"),
        ("accept", buyers.ppk, "only the order's vendor"),
        ("pay", buyers.ppk, "only the OPD's treasurer"),
        ("cancel", seller.headers, "only a PP or PPK"),
        ("cancel", buyers.treasurer, "only a PP or PPK"),
    ]
    for action, headers, reason in cases:
        response = await platform.act(order_id, action, headers, ACTIONS[action])
        assert response.status_code == 403, (action, response.text)
        assert reason in response.json()["detail"], (action, response.json())
    too_early = await platform.act(order_id, "accept", seller.headers)
    assert too_early.status_code == 409
    assert "awaiting_approval" in too_early.json()["detail"]
    for headers in (seller.headers, buyers.treasurer, AUDITOR):
        body = platform.order_body(buyers, scene["rup"], seller, [])
        assert (
            await platform.client.post("/orders", json=body, headers=headers)
        ).status_code == 403
    elsewhere = platform.order_body(scene["others"], scene["rup"], seller, [])
    elsewhere["lines"] = scene["order"]["lines"][:1]
    elsewhere["lines"] = [{"product_id": elsewhere["lines"][0]["product_id"], "quantity": 1}]
    refused = await platform.client.post("/orders", json=elsewhere, headers=scene["others"].pp)
    assert refused.status_code == 403 and buyers.opd_id in refused.json()["detail"]


async def test_unknown_orders_and_forged_ids(scene: dict[str, Any]) -> None:
    platform: Platform = scene["platform"]
    missing = await platform.client.get(
        "/orders/00000000-0000-0000-0000-000000000000", headers=AUDITOR
    )
    assert missing.status_code == 404
    assert (await platform.client.get("/orders/not-a-uuid", headers=AUDITOR)).status_code == 422
    act = await platform.act("00000000-0000-0000-0000-000000000000", "approve", scene["buyers"].ppk)
    assert act.status_code == 404
