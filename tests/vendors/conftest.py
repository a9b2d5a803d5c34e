from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import Infra
from tests.vendors.helpers import Service, start_service


@pytest.fixture
async def service(infra: Infra, database: str, topic_prefix: str) -> AsyncIterator[Service]:
    """The vendors service on this test's own database and topics."""
    async with start_service(infra, database, topic_prefix) as service:
        yield service
