"""A running reporting service per test module, fed the seeded city out of order."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from tests.reporting.helpers import Reporting, reporting_app
from tests.support import Infra, running, scratch_database


@pytest.fixture(scope="module")
async def reporting(infra: Infra) -> AsyncIterator[Reporting]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    await producer.start()
    try:
        async with scratch_database(infra) as database:
            app = reporting_app(infra, database, prefix)
            async with running(app) as client:
                yield Reporting(client, app.state.pool, producer, prefix, app.state.settings)
    finally:
        await producer.stop()
