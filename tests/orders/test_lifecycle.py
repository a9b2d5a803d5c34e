"""Every step of an order, through the real catalog saga: each a command, an event and a
timeline entry with who and when."""

from __future__ import annotations

from typing import Any

from tests.orders.helpers import AUDITOR, Platform, events_on
from tests.support import eventually


async def order_events(platform: Platform, order_id: str, count: int) -> list[dict[str, Any]]:
    return [
        {"type": e.type, **e.data} for e in await events_on(platform, "orders", order_id, count)
    ]


async def test_a_direct_purchase_walks_every_step(platform: Platform) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=10)
    rup = await platform.rup(buyers)
    placed = await platform.place(buyers, rup, seller, [(product["id"], 2)])
    assert placed["state"] == "placed" and placed["total"] == 2 * product["price"]
    # The answer is built from the values written, not read back: a read agrees with it, and
    # the event carries the same vendor and lines (the saga may have moved the order on).
    moving = {"state", "version", "updated_at", "next_deadline", "deadline_kind", "timeline"}
    stored = await platform.order(placed["id"], buyers.pp)
    assert {k: v for k, v in stored.items() if k not in moving} == {
        k: v for k, v in placed.items() if k not in moving
    }
    event = (await order_events(platform, placed["id"], 1))[0]
    assert event["type"] == "ekatalog.order.placed.v1" and event["version"] == 1
    assert (event["vendor"], event["lines"]) == (placed["vendor"], placed["lines"])
    assert event["occurred_at"] == placed["placed_at"] == stored["placed_at"]

    order = await platform.reaches(placed["id"], "awaiting_approval")
    assert order["deadline_kind"] == "ppk_approval" and order["next_deadline"]
    assert await platform.stock(product["id"]) == 8

    approved = await platform.act(placed["id"], "approve", buyers.ppk)
    assert approved.status_code == 200, approved.text
    assert approved.json()["sp_number"].startswith(f"SP/2026/{buyers.opd_id}/")
    assert approved.json()["sp_signed_at"] and approved.json()["deadline_kind"] == "vendor_answer"
    steps: list[tuple[str, dict[str, str], Any]] = [
        ("accept", seller.headers, None),
        ("ship", seller.headers, {"carrier": "JNE", "tracking_number": "JNE-1"}),
        ("dispute", buyers.ppk, {"reason": "dua lembar warnanya salah"}),
        ("ship", seller.headers, {"carrier": "JNE", "tracking_number": "JNE-2"}),
        ("receive", buyers.ppk, {"bast_number": "BAST/001"}),
    ]
    for action, headers, body in steps:
        response = await platform.act(placed["id"], action, headers, body)
        assert response.status_code == 200, (action, response.text)
    wrong = await platform.act(
        placed["id"], "pay", buyers.treasurer, {"payment_reference": "P-1", "amount": 1}
    )
    assert wrong.status_code == 422 and wrong.json()["rule"] == "payment_amount"
    paid = await platform.act(
        placed["id"],
        "pay",
        buyers.treasurer,
        {"payment_reference": "SP2D-0001", "amount": placed["total"]},
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["state"] == "completed" and paid.json()["next_deadline"] is None

    detail = await platform.order(placed["id"], buyers.pp)
    timeline = [(e["event_type"].split(".")[2], e["actor"]) for e in detail["timeline"]]
    assert timeline == [
        ("placed", f"pp-{buyers.opd_id}"),
        ("stock_confirmed", "system:stock-saga"),
        ("approved", buyers.ppk_id),
        ("accepted_by_vendor", timeline[3][1]),
        ("shipped", timeline[3][1]),
        ("delivery_disputed", buyers.ppk_id),
        ("shipped", timeline[3][1]),
        ("received", buyers.ppk_id),
        ("paid", f"bend-{buyers.opd_id}"),
        ("completed", f"bend-{buyers.opd_id}"),
    ]
    assert detail["timeline"][5]["details"] == {"reason": "dua lembar warnanya salah"}
    assert all(e["at"] for e in detail["timeline"])

    events = await order_events(platform, placed["id"], 10)
    assert [e["version"] for e in events] == list(range(1, 11))
    assert events[-1]["type"] == "ekatalog.order.completed.v1"
    first = events[0]
    assert first["vendor"]["vendor_id"] == str(seller.vendor_id)
    assert first["vendor"]["is_umk"] is True and first["vendor"]["is_local"] is True
    assert first["rup_code"] == rup and first["procurement_type"] == "barang"
    line = first["lines"][0]
    assert line["category_code"] == product["category_code"] and line["quantity"] == 2
    assert line["tkdn"] == product["tkdn"] and line["pdn"] is True
    assert events[8]["payment_reference"] == "SP2D-0001"

    # The received order keeps its stock: the reservation was consumed, not released.
    assert await platform.stock(product["id"]) == 8

    async def consumed() -> bool:
        state = await platform.catalog.pool.fetchval(
            "SELECT state FROM stock_reservation WHERE order_id = $1::uuid", placed["id"]
        )
        return bool(state == "consumed")

    await eventually(consumed)
    assert await platform.stock(product["id"]) == 8


async def test_negotiation_rounds_set_the_agreed_prices(platform: Platform) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    a = await platform.product(seller, price=100_000)
    b = await platform.product(seller, price=50_000)
    rup = await platform.rup(buyers)
    placed = await platform.place(
        buyers, rup, seller, [(a["id"], 10), (b["id"], 4)], method="negotiation"
    )
    order = await platform.reaches(placed["id"], "negotiating")
    assert order["next_deadline"] is None

    def prices(x: int, y: int) -> dict[str, Any]:
        return {"prices": {a["id"]: x, b["id"]: y}}

    proposals = "negotiation/proposals"
    early = await platform.act(placed["id"], proposals, seller.headers, prices(90_000, 45_000))
    assert early.status_code == 409 and "buyer's turn" in early.json()["detail"]
    too_high = await platform.act(placed["id"], proposals, buyers.pp, prices(100_001, 45_000))
    assert too_high.status_code == 422 and too_high.json()["rule"] == "negotiation_price"
    nothing = await platform.act(placed["id"], "negotiation/agree", buyers.pp)
    assert nothing.status_code == 409
    assert (
        await platform.act(placed["id"], proposals, buyers.pp, prices(80_000, 40_000))
    ).is_success
    assert (
        await platform.act(placed["id"], proposals, seller.headers, prices(90_000, 45_000))
    ).is_success
    own = await platform.act(placed["id"], "negotiation/agree", seller.headers)
    assert own.status_code == 409
    assert (
        await platform.act(placed["id"], proposals, buyers.pp, prices(85_000, 42_000))
    ).is_success
    agreed = await platform.act(placed["id"], "negotiation/agree", seller.headers)
    assert agreed.status_code == 200, agreed.text
    body = agreed.json()
    assert body["state"] == "awaiting_approval" and body["deadline_kind"] == "ppk_approval"
    assert body["total"] == 10 * 85_000 + 4 * 42_000
    assert [line["unit_price"] for line in body["lines"]] == [85_000, 42_000]
    assert [line["listed_price"] for line in body["lines"]] == [100_000, 50_000]
    assert [r["by"] for r in body["negotiation"]] == ["buyer", "vendor", "buyer"]
    events = await order_events(platform, placed["id"], 6)
    proposed = [e for e in events if e["type"] == "ekatalog.order.negotiation_proposed.v1"]
    assert [(e["round"], e["proposed_by"]) for e in proposed] == [
        (1, "buyer"),
        (2, "vendor"),
        (3, "buyer"),
    ]
    assert proposed[1]["proposed_total"] == 10 * 90_000 + 4 * 45_000
    assert events[-1]["type"] == "ekatalog.order.negotiation_agreed.v1"
    assert events[-1]["agreed_by"] == "vendor" and events[-1]["round"] == 3
    # Only the negotiated total counts against the pagu now.
    rup_view = (await platform.client.get(f"/rup/{rup}", headers=AUDITOR)).json()
    assert rup_view["committed"] == body["total"]


async def test_cancelling_before_the_vendor_accepts_gives_stock_and_pagu_back(
    platform: Platform,
) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=5)
    rup = await platform.rup(buyers, pagu=10 * product["price"])
    placed = await platform.place(buyers, rup, seller, [(product["id"], 5)])
    await platform.reaches(placed["id"], "awaiting_approval")
    assert (await platform.act(placed["id"], "approve", buyers.ppk)).is_success
    cancelled = await platform.act(
        placed["id"], "cancel", buyers.pp, {"reason": "anggaran digeser"}
    )
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"

    async def released() -> bool:
        return await platform.stock(product["id"]) == 5

    await eventually(released)
    rup_view = (await platform.client.get(f"/rup/{rup}", headers=AUDITOR)).json()
    assert rup_view["remaining"] == rup_view["pagu"]

    accepted = await platform.place(buyers, rup, seller, [(product["id"], 1)])
    await platform.reaches(accepted["id"], "awaiting_approval")
    assert (await platform.act(accepted["id"], "approve", buyers.ppk)).is_success
    assert (await platform.act(accepted["id"], "accept", seller.headers)).is_success
    late = await platform.act(accepted["id"], "cancel", buyers.pp, {"reason": "terlambat"})
    assert late.status_code == 409
    assert "accepted" in late.json()["detail"]


async def test_a_vendor_rejecting_the_sp_releases_the_stock(platform: Platform) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=4)
    rup = await platform.rup(buyers)
    placed = await platform.place(buyers, rup, seller, [(product["id"], 3)], headers=buyers.ppk)
    await platform.reaches(placed["id"], "awaiting_approval")
    assert (await platform.act(placed["id"], "approve", buyers.ppk)).is_success
    no_reason = await platform.act(placed["id"], "reject", seller.headers, {})
    assert no_reason.status_code == 422
    rejected = await platform.act(placed["id"], "reject", seller.headers, {"reason": "stok rusak"})
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected_by_vendor"

    async def released() -> bool:
        return await platform.stock(product["id"]) == 4

    await eventually(released)
