"""Session-wide embedded PostgreSQL and tansu broker; a fresh database and topics per test."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ekatalog.cli import SERVICES
from shared.embedded import EmbeddedPostgres, Tansu, free_port
from tests.support import TEST_CONSUMER_SESSION_TIMEOUT_MS, Infra, scratch_database

# A consumer joins its group after half the session timeout on the embedded broker; a short one
# keeps each test's start-up quick. Real deployments keep the 10 s default.
for _prefix in ("EKATALOG", *(prefix for prefix, _ in SERVICES.values())):
    os.environ.setdefault(
        f"{_prefix}_CONSUMER_SESSION_TIMEOUT_MS", str(TEST_CONSUMER_SESSION_TIMEOUT_MS)
    )


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    with tempfile.TemporaryDirectory(prefix="ekatalog-test-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        broker = Tansu(free_port())
        postgres.start(durable=False)
        broker.start()
        try:
            yield Infra(postgres.admin_dsn, broker.bootstrap_servers)
        finally:
            broker.stop()
            postgres.stop()


@pytest.fixture
async def database(infra: Infra) -> AsyncIterator[str]:
    """DSN of a new, empty database that exists only for this test."""
    async with scratch_database(infra) as dsn:
        yield dsn


@pytest.fixture
def topic_prefix() -> str:
    """A prefix that gives this test its own topics and consumer groups."""
    return f"t{uuid.uuid4().hex[:10]}."
