"""One catalog and one orders service per test module, on shared topics, each with its own
database; the vendor events come in through Kafka as the vendors service would send them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from tests.catalog.helpers import Catalog, catalog_app
from tests.orders.helpers import Clock, Platform, orders_app, start_of_working_week
from tests.support import Infra, running, scratch_database


@pytest.fixture(scope="module")
async def platform(infra: Infra) -> AsyncIterator[Platform]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    clock = Clock(start_of_working_week())
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    await producer.start()
    try:
        async with (
            scratch_database(infra) as catalog_db,
            scratch_database(infra) as orders_db,
        ):
            catalog = catalog_app(infra, catalog_db, prefix)
            orders = orders_app(infra, orders_db, prefix, clock)
            async with running(catalog) as catalog_client, running(orders) as client:
                yield Platform(
                    Catalog(
                        catalog_client,
                        catalog.state.pool,
                        producer,
                        infra.bootstrap_servers,
                        prefix,
                    ),
                    client,
                    orders.state.pool,
                    clock,
                    orders.state.orders,
                )
    finally:
        await producer.stop()
