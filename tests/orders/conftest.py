"""One catalog and one orders service per test module, on shared topics, each with its own
database; the vendor events come in through Kafka as the vendors service would send them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.orders.helpers import (
    Clock,
    Platform,
    catalog_beside_orders,
    orders_app,
    start_of_working_week,
)
from tests.support import Infra, running


@pytest.fixture(scope="module")
async def platform(infra: Infra) -> AsyncIterator[Platform]:
    clock = Clock(start_of_working_week())
    async with catalog_beside_orders(infra) as (catalog, orders_db):
        orders = orders_app(infra, orders_db, catalog.prefix, clock)
        async with running(orders) as client:
            yield Platform(catalog, client, orders.state.pool, clock, orders.state.orders)
