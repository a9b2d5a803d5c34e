"""An orders service stopped while its orders wait for the catalog picks the saga up again
after a restart: nothing is lost, nothing is applied twice."""

from __future__ import annotations

from tests.orders.helpers import (
    Clock,
    Platform,
    catalog_beside_orders,
    orders_app,
    start_of_working_week,
)
from tests.support import Infra, eventually, running


async def test_a_restarted_orders_service_finishes_the_saga(infra: Infra) -> None:
    clock = Clock(start_of_working_week())
    async with catalog_beside_orders(infra) as (catalog, orders_db):
        first = orders_app(infra, orders_db, catalog.prefix, clock)
        async with running(first) as client:
            platform = Platform(catalog, client, first.state.pool, clock, first.state.orders)
            buyers = platform.buyers()
            seller = await platform.seller()
            product = await platform.product(seller, stock=10)
            rup = await platform.rup(buyers)
            placed = [
                await platform.place(buyers, rup, seller, [(product["id"], 1)]) for _ in range(5)
            ]
        # Stopped right after the checkouts: answers are still on their way.
        second = orders_app(infra, orders_db, catalog.prefix, clock)
        async with running(second) as client:
            platform.client, platform.pool = client, second.state.pool
            for order in placed:
                confirmed = await platform.reaches(order["id"], "awaiting_approval", timeout=60)
                assert confirmed["version"] == 2

            async def reserved_once() -> bool:
                return await platform.stock(product["id"]) == 5

            await eventually(reserved_once)
