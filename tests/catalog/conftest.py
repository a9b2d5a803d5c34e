"""One running catalog service per test module (fresh database and topics); tests isolate
themselves with their own vendors and storefronts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from tests.catalog.helpers import Catalog, catalog_app
from tests.support import Infra, running, scratch_database


@pytest.fixture(scope="module")
async def catalog(infra: Infra) -> AsyncIterator[Catalog]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    await producer.start()
    try:
        async with scratch_database(infra) as database:
            app = catalog_app(infra, database, prefix)
            async with running(app) as client:
                yield Catalog(client, app.state.pool, producer, infra.bootstrap_servers, prefix)
    finally:
        await producer.stop()
