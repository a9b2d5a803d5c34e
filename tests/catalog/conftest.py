"""One running catalog service per test module (fresh database and topics); tests isolate
themselves with their own vendors and storefronts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from services.catalog.app import CatalogSettings, create_app
from tests.catalog.helpers import Catalog
from tests.support import TEST_JWT_SECRET, Infra, running


@pytest.fixture(scope="module")
async def catalog(infra: Infra) -> AsyncIterator[Catalog]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infra.admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = CatalogSettings(
        database_url=infra.dsn(name),
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=prefix,
        jwt_secret=TEST_JWT_SECRET,
        relay_poll_seconds=0.1,
        consumer_backoff_seconds=0.05,
    )
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    await producer.start()
    try:
        app = create_app(settings)
        async with running(app) as client:
            yield Catalog(client, app.state.pool, producer, infra.bootstrap_servers, prefix)
    finally:
        await producer.stop()
        admin = await asyncpg.connect(infra.admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
