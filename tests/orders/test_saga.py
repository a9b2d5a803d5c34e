"""The stock saga in both outcomes, and what redelivered, replayed, out-of-order and racing
events do to it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from services.orders import commands, store
from shared.contracts.orders import OrderCancelled, OrderPlaced, OrderStockConfirmed
from tests.orders.helpers import AUDITOR, Platform, events_on, send
from tests.support import eventually


async def placed_event(platform: Platform, order_id: str) -> dict[str, Any]:
    event = (await events_on(platform, "orders", order_id, 1))[0]
    assert event.type == OrderPlaced.type
    return event.data


async def reservation(platform: Platform, order_id: Any) -> str | None:
    state = await platform.catalog.pool.fetchval(
        "SELECT state FROM stock_reservation WHERE order_id = $1::uuid", str(order_id)
    )
    return str(state) if state is not None else None


async def test_insufficient_stock_rejects_the_order_with_the_catalogs_reason(
    platform: Platform,
) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=1)
    rup = await platform.rup(buyers, pagu=10 * product["price"])
    placed = await platform.place(buyers, rup, seller, [(product["id"], 2)])
    order = await platform.reaches(placed["id"], "rejected")
    assert order["timeline"][-1]["actor"] == "system:stock-saga"
    details = order["timeline"][-1]["details"]
    assert details["reason_code"] == "insufficient_stock"
    assert f"product {product['id']}: 2 requested, 1 in stock" in details["reason"]
    assert await platform.stock(product["id"]) == 1
    rup_view = (await platform.client.get(f"/rup/{rup}", headers=AUDITOR)).json()
    assert rup_view["committed"] == 0


async def test_a_changed_price_or_an_unlisted_product_is_refused_by_the_catalog(
    platform: Platform,
) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=5)
    rup = await platform.rup(buyers)
    placed = await platform.place(buyers, rup, seller, [(product["id"], 1)])
    data = await placed_event(platform, placed["id"])

    cheaper = str(uuid.uuid4())
    line = {**data["lines"][0], "listed_price": product["price"] - 1}
    await send(platform, OrderPlaced.model_validate({**data, "order_id": cheaper, "lines": [line]}))
    (answer,) = await events_on(platform, "stock", cheaper, 1)
    assert answer.type == "ekatalog.stock.reservation_rejected.v1"
    assert answer.data["reason_code"] == "price_changed"
    assert answer.data["product_id"] == product["id"]

    unknown = str(uuid.uuid4())
    line = {**data["lines"][0], "product_id": str(uuid.uuid4())}
    await send(platform, OrderPlaced.model_validate({**data, "order_id": unknown, "lines": [line]}))
    (answer,) = await events_on(platform, "stock", unknown, 1)
    assert answer.data["reason_code"] == "not_listed"
    # Only the real order reserved anything.
    await platform.reaches(placed["id"], "awaiting_approval")
    assert await platform.stock(product["id"]) == 4


async def test_redelivered_and_replayed_placements_never_reserve_twice(platform: Platform) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=10)
    rup = await platform.rup(buyers)
    placed = await platform.place(buyers, rup, seller, [(product["id"], 3)])
    await platform.reaches(placed["id"], "awaiting_approval")
    original = (await events_on(platform, "orders", placed["id"], 1))[0]
    event = OrderPlaced.model_validate(original.data)
    # The same record again (same event id), then a replay under a new id; both are keyed by
    # the order, so once the replay is stored the redelivery was read before it.
    await send(platform, event, uuid.UUID(original.headers["ce_id"]))
    replay = await send(platform, event)
    await eventually(lambda: platform.handled("catalog", replay))
    assert await platform.stock(product["id"]) == 7
    answers = await events_on(platform, "stock", placed["id"], 1)
    assert [a.type for a in answers] == ["ekatalog.stock.reserved.v1"]
    order = await platform.order(placed["id"])
    assert order["version"] == 2  # placed, stock confirmed: nothing applied twice


async def test_an_end_that_arrives_before_its_placement_stops_the_reservation(
    platform: Platform,
) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=6)
    rup = await platform.rup(buyers)
    placed = await platform.place(buyers, rup, seller, [(product["id"], 1)])
    data = await placed_event(platform, placed["id"])
    await platform.reaches(placed["id"], "awaiting_approval")

    order_id = str(uuid.uuid4())
    lines = [{**data["lines"][0], "quantity": 2}]
    body = {**data, "order_id": order_id, "lines": lines}
    await send(
        platform, OrderCancelled.model_validate({**body, "state": "cancelled", "reason": "x"})
    )
    await eventually(lambda: _reservation_is(platform, order_id, "released"))
    placement = await send(platform, OrderPlaced.model_validate(body))
    await eventually(lambda: platform.handled("catalog", placement))
    assert await reservation(platform, order_id) == "released"
    assert await platform.stock(product["id"]) == 5  # only the real order's unit


async def _reservation_is(platform: Platform, order_id: str, state: str) -> bool:
    return await reservation(platform, order_id) == state


async def test_orders_racing_for_the_last_units_never_oversell(platform: Platform) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=3)
    rup = await platform.rup(buyers)
    orders = await asyncio.gather(
        *(platform.place(buyers, rup, seller, [(product["id"], 1)]) for _ in range(7))
    )

    async def settled() -> list[str]:
        states = [(await platform.order(o["id"]))["state"] for o in orders]
        assert "placed" not in states, states
        return states

    states = await eventually(settled, timeout=30)
    assert sorted(states) == ["awaiting_approval"] * 3 + ["rejected"] * 4
    assert await platform.stock(product["id"]) == 0


async def test_concurrent_orders_never_overspend_the_pagu(platform: Platform) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=100)
    rup = await platform.rup(buyers, pagu=5 * product["price"])
    body = platform.order_body(buyers, rup, seller, [(product["id"], 1)])
    responses = await asyncio.gather(
        *(platform.client.post("/orders", json=body, headers=buyers.pp) for _ in range(12))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 5 + [422] * 7
    refusal = next(r.json() for r in responses if r.status_code == 422)
    assert refusal["rule"] == "pagu_exceeded" and refusal["remaining"] == 0
    rup_view = (await platform.client.get(f"/rup/{rup}", headers=buyers.pp)).json()
    assert rup_view["committed"] == rup_view["pagu"] and rup_view["remaining"] == 0
    # A refused order's event, written in the same statement, rolled back with it.
    logged = await platform.pool.fetchval(
        "SELECT count(*) FROM event_log WHERE event_type = $1"
        " AND convert_from(payload, 'UTF8')::jsonb ->> 'rup_code' = $2",
        OrderPlaced.type,
        rup,
    )
    assert logged == 5


async def test_a_batch_of_stock_answers_moves_each_placed_order_once(platform: Platform) -> None:
    scene = await platform.scene(stock=10)
    product_id = uuid.UUID(scene.product["id"])
    line = [(product_id, 1)]
    # The catalog's consumer waits for this lock on the product, so the orders stay placed
    # until the batch below has moved them.
    async with platform.catalog.pool.acquire() as hold, hold.transaction():
        await hold.execute("SELECT 1 FROM product WHERE id = $1 FOR UPDATE", product_id)
        direct = await platform.place(scene.buyers, scene.rup, scene.seller, line)
        negotiated = await platform.place(
            scene.buyers, scene.rup, scene.seller, line, method="negotiation"
        )
        cancelled = await platform.place(scene.buyers, scene.rup, scene.seller, line)
        response = await platform.act(
            cancelled["id"], "cancel", scene.buyers.pp, {"reason": "salah pesan"}
        )
        assert response.status_code == 200, response.text
        ids = [uuid.UUID(o["id"]) for o in (direct, negotiated, cancelled)]
        async with platform.pool.acquire() as conn, conn.transaction():
            # Repeated answers in one batch, and one for an order that ended meanwhile.
            moved = await commands.confirm_stock(conn, platform.ctx, [ids[1], *ids, ids[0]])
        assert sorted(row["id"] for row in moved) == sorted(ids[:2])

    orders = [await platform.order(i) for i in ids]
    assert [o["state"] for o in orders] == ["awaiting_approval", "negotiating", "cancelled"]
    assert orders[0]["next_deadline"] is not None and orders[1]["next_deadline"] is None
    for order in orders[:2]:
        entries = [(e["version"], e["event_type"], e["actor"]) for e in order["timeline"]]
        assert entries[-1] == (2, OrderStockConfirmed.type, "system:stock-saga")
        events = await events_on(platform, "orders", order["id"], 2)
        assert [(e.type, e.data["version"]) for e in events] == [
            (OrderPlaced.type, 1),
            (OrderStockConfirmed.type, 2),
        ]
        assert events[1].data["state"] == order["state"]
        assert events[1].data["next_deadline"] == order["next_deadline"]

    # The catalog's own answers, once the lock is gone, change nothing more. The cancelled
    # order gets one only when its placement reached the catalog in an earlier batch than its
    # cancellation; either way its stock is not held.
    answers = [(await events_on(platform, "stock", str(i), 1))[0] for i in ids[:2]]

    async def only_live_orders_hold_stock() -> bool:
        stock = await platform.catalog.pool.fetchval(
            "SELECT stock FROM product WHERE id = $1", product_id
        )
        return bool(stock == 8)

    await eventually(only_live_orders_hold_stock, timeout=20)

    async def all_handled() -> bool:
        return all(
            [await platform.handled("orders", uuid.UUID(a.headers["ce_id"])) for a in answers]
        )

    await eventually(all_handled, timeout=20)
    again = [await platform.order(i) for i in ids]
    assert [len(o["timeline"]) for o in again] == [len(o["timeline"]) for o in orders]


async def _committed_is_what_live_orders_hold(platform: Platform, rup: str) -> int:
    row = await platform.pool.fetchrow(
        """SELECT r.committed, (SELECT coalesce(sum(total), 0) FROM orders
                                 WHERE live AND rup_code = r.rup_code) AS held
           FROM rup_package r WHERE rup_code = $1""",
        rup,
    )
    assert row is not None and row["committed"] == row["held"], dict(row or {})
    return int(row["committed"])


async def test_what_a_package_holds_follows_every_change_of_its_orders(
    platform: Platform,
) -> None:
    """The package's `committed` moves with each order: placed, refused by the saga,
    cancelled, negotiated to a lower total; what is released can be ordered again."""
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, price=100_000, stock=5)
    rup = await platform.rup(buyers, pagu=1_000_000)
    line = [(product["id"], 2)]
    kept = await platform.place(buyers, rup, seller, line)
    negotiated = await platform.place(buyers, rup, seller, line, method="negotiation")
    cancelled = await platform.place(buyers, rup, seller, [(product["id"], 1)])
    await platform.reaches(cancelled["id"], "awaiting_approval")
    await platform.reaches(negotiated["id"], "negotiating")
    short = await platform.place(buyers, rup, seller, [(product["id"], 3)])  # stock runs out
    await _committed_is_what_live_orders_hold(platform, rup)
    await platform.reaches(short["id"], "rejected")
    assert await _committed_is_what_live_orders_hold(platform, rup) == 500_000
    cancel = await platform.act(cancelled["id"], "cancel", buyers.pp, {"reason": "salah pesan"})
    assert cancel.status_code == 200, cancel.text
    assert await _committed_is_what_live_orders_hold(platform, rup) == 400_000
    proposal = {"prices": {product["id"]: 60_000}}
    offered = await platform.act(negotiated["id"], "negotiation/proposals", buyers.pp, proposal)
    assert offered.status_code == 200, offered.text
    agreed = await platform.act(negotiated["id"], "negotiation/agree", seller.headers)
    assert agreed.status_code == 200, agreed.text
    assert await _committed_is_what_live_orders_hold(platform, rup) == 320_000
    view = (await platform.client.get(f"/rup/{rup}", headers=buyers.pp)).json()
    assert (view["committed"], view["remaining"]) == (320_000, 680_000)
    assert (await platform.order(kept["id"]))["state"] == "awaiting_approval"
    # What the package has left, to the rupiah, can be ordered; a rupiah more cannot.
    other = await platform.product(seller, price=680_000, stock=5)
    over = await platform.product(seller, price=680_001, stock=5)
    refused = await platform.client.post(
        "/orders",
        json=platform.order_body(buyers, rup, seller, [(over["id"], 1)]),
        headers=buyers.ppk,
    )
    assert refused.status_code == 422 and refused.json()["remaining"] == 680_000
    await platform.place(buyers, rup, seller, [(other["id"], 1)], headers=buyers.ppk)
    assert await _committed_is_what_live_orders_hold(platform, rup) == 1_000_000


@pytest.mark.parametrize("races", [1, 10])
async def test_an_order_whose_package_changed_while_it_was_placed_is_built_again(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, races: int
) -> None:
    """The package is renamed (a new version) after the order read it and before it is written:
    the write does not apply to the old version, and the order is placed from a new read; a
    package renamed after every read without its lock is read under the lock after three."""
    scene = await platform.scene()
    read = store.order_inputs
    locks: list[bool] = []

    async def then_renamed(*args: Any) -> store.OrderInputs:
        inputs = await read(*args)
        locks.append(args[-1])
        if len(locks) <= races and not args[-1]:
            await platform.pool.execute(
                "UPDATE rup_package SET package_name = 'Seragam baru', version = version + 1"
                " WHERE rup_code = $1",
                scene.rup,
            )
        return inputs

    monkeypatch.setattr(store, "order_inputs", then_renamed)
    placed = await platform.place(scene.buyers, scene.rup, scene.seller, [(scene.product["id"], 1)])
    assert locks == ([False, False] if races == 1 else [False, False, False, True])
    assert await _committed_is_what_live_orders_hold(platform, scene.rup) == placed["total"]
    logged = await platform.pool.fetchval(
        "SELECT count(*) FROM event_log WHERE aggregate_id = $1", placed["id"]
    )
    assert logged == 1
