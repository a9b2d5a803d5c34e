"""Users' journeys through the running platform (`ekatalog up`, processes), over HTTP and Kafka
only: what each user does, what the dashboard shows after it, what an integrator receives."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from tests.journeys.helpers import (
    CATALOG,
    Users,
    act,
    dashboard_agrees,
    order,
    order_events,
    place,
    reaches,
    scene,
    stock,
)
from tests.processes import Platform
from tests.support import eventually

pytestmark = pytest.mark.slow


async def test_a_vendor_sells_to_a_pp_from_registration_to_payment(
    platform: Platform, users: Users
) -> None:
    before = await dashboard_agrees(users)
    seller, buyers, code = await scene(users, "DISDIK", 100_000_000, price=400_000)

    placed = await place(users, buyers, code, seller, 40, method="negotiation")
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    await reaches(users, order_id, "negotiating")
    product_id = seller.product["id"]
    await act(
        users, order_id, "negotiation/proposals", buyers.pp, {"prices": {product_id: 350_000}}
    )
    countered = await act(
        users, order_id, "negotiation/proposals", seller.headers, {"prices": {product_id: 380_000}}
    )
    assert countered["state"] == "negotiating"
    agreed = await act(users, order_id, "negotiation/agree", buyers.pp)
    assert agreed["state"] == "awaiting_approval" and agreed["total"] == 40 * 380_000
    approved = await act(users, order_id, "approve", buyers.ppk)
    assert approved["sp_number"] and approved["state"] == "awaiting_vendor"
    await act(users, order_id, "accept", seller.headers)
    await act(users, order_id, "ship", seller.headers, {"carrier": "JNE", "tracking_number": "J1"})
    await act(users, order_id, "receive", buyers.ppk, {"bast_number": f"BAST/{order_id[:8]}"})
    paid = await act(
        users,
        order_id,
        "pay",
        buyers.treasurer,
        {"payment_reference": f"SP2D-{order_id[:8]}", "amount": 40 * 380_000},
    )
    assert paid["state"] == "completed"
    assert await stock(users, product_id) == 60

    after = await dashboard_agrees(users)
    assert after == replace(
        before,
        orders=before.orders + 1,
        spend_sp=before.spend_sp + 15_200_000,
        spend_completed=before.spend_completed + 15_200_000,
        pagu=before.pagu + 100_000_000,
    )

    events = await order_events(platform, order_id, "ekatalog.order.completed.v1")
    assert [e["type"].split(".")[2] for e in events] == [
        "placed",
        "stock_confirmed",
        "negotiation_proposed",
        "negotiation_proposed",
        "negotiation_agreed",
        "approved",
        "accepted_by_vendor",
        "shipped",
        "received",
        "paid",
        "completed",
    ]
    assert [e["version"] for e in events] == list(range(1, 12))
    assert events[-1]["state"] == "completed" and events[-1]["total"] == 15_200_000
    assert events[0]["lines"][0]["tkdn_verified"] is True


async def test_a_vendor_suspended_before_the_sp_loses_its_order(
    platform: Platform, users: Users
) -> None:
    seller, buyers, code = await scene(users, "DINKES", 50_000_000, stock=10)
    placed = await place(users, buyers, code, seller, 4)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    await reaches(users, order_id, "awaiting_approval")
    assert await stock(users, seller.product["id"]) == 6

    async with users.client(0) as vendors:
        suspended = await vendors.post(
            f"/vendors/{seller.vendor_id}/suspend",
            json={"reason": "wanprestasi kontrak 2025"},
            headers=users.manager,
        )
    assert suspended.status_code == 200, suspended.text
    rejected = await reaches(users, order_id, "rejected")
    # The orders service learns it from the suspension itself or, when the catalog's take-down
    # of the vendor's products arrives first, from that: either way the vendor is the reason.
    said = json.dumps(rejected)
    assert "wanprestasi" in said or "vendor suspended" in said, said

    async def released() -> bool:
        return await stock(users, seller.product["id"]) == 10

    await eventually(released, timeout=30)
    again = await place(users, buyers, code, seller, 1)
    assert again.status_code == 422 and again.json()["rule"] == "vendor_not_selling", again.text
    await dashboard_agrees(users)


async def test_an_exhausted_pagu_refuses_the_next_order_until_one_is_cancelled(
    platform: Platform, users: Users
) -> None:
    seller, buyers, code = await scene(users, "DPUPR", 5_000_000, price=1_000_000)
    first = await place(users, buyers, code, seller, 5)
    assert first.status_code == 201, first.text
    refused = await place(users, buyers, code, seller, 1)
    assert refused.status_code == 422 and refused.json()["rule"] == "pagu_exceeded"
    assert refused.json()["remaining"] == 0
    await reaches(users, first.json()["id"], "awaiting_approval")
    await act(users, first.json()["id"], "cancel", buyers.pp, {"reason": "anggaran digeser"})
    second = await place(users, buyers, code, seller, 5)
    assert second.status_code == 201, second.text


async def test_orders_racing_for_the_last_units_never_oversell(
    platform: Platform, users: Users
) -> None:
    seller, buyers, code = await scene(users, "SETDA", 100_000_000, stock=5)
    first = await place(users, buyers, code, seller, 1)  # the orders service knows the product
    assert first.status_code == 201, first.text
    rest = await asyncio.gather(*(place(users, buyers, code, seller, 1) for _ in range(7)))
    ids = [first.json()["id"], *(r.json()["id"] for r in rest)]

    async def settled() -> list[str]:
        states = [(await order(users, i))["state"] for i in ids]
        assert "placed" not in states
        return states

    states = await eventually(settled, timeout=30)
    assert sorted(states) == ["awaiting_approval"] * 5 + ["rejected"] * 3
    assert await stock(users, seller.product["id"]) == 0
    async with users.client(CATALOG) as catalog:
        hits = (await catalog.get("/search", params={"in_stock": "true", "q": "batik"})).json()
    assert seller.product["id"] not in [h["id"] for h in hits["items"]]
