from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.vendors.app import VendorsSettings, create_app
from tests.support import TEST_JWT_SECRET, Infra, running
from tests.vendors.helpers import Service


@pytest.fixture
async def service(infra: Infra, database: str, topic_prefix: str) -> AsyncIterator[Service]:
    """The vendors service on this test's own database and topics."""
    settings = VendorsSettings(
        database_url=database,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=topic_prefix,
        jwt_secret=TEST_JWT_SECRET,
        relay_poll_seconds=0.05,
    )
    app = create_app(settings)
    async with running(app) as client:
        yield Service(app, client, settings)
