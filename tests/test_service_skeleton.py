"""Every service starts against the real database and broker and serves its operations routes."""

from __future__ import annotations

import asyncio
import importlib
import time

import asyncpg
import pytest
from fastapi import FastAPI

from ekatalog.cli import SERVICES
from shared import service
from tests.support import TEST_JWT_SECRET, Infra, eventually, running


def service_app(name: str, infra: Infra, database: str, topic_prefix: str) -> FastAPI:
    module = importlib.import_module(f"services.{name}.app")
    settings_cls = next(
        v for k, v in vars(module).items() if k.endswith("Settings") and k != "ServiceSettings"
    )
    settings = settings_cls(
        database_url=database,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=topic_prefix,
        jwt_secret=TEST_JWT_SECRET,
    )
    return module.create_app(settings)  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", list(SERVICES))
async def test_service_starts_and_reports_ready(
    name: str, infra: Infra, database: str, topic_prefix: str
) -> None:
    async with running(service_app(name, infra, database, topic_prefix)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok", "service": name}

        async def ready() -> bool:
            # The broker is connected in the background once HTTP is served.
            response = await client.get("/readyz")
            assert response.status_code == 200, response.text
            return bool(response.json()["checks"]["database"] == "ok")

        await eventually(ready, timeout=15)
        metrics = await client.get("/metrics")
        assert "ekatalog_outbox_backlog" in metrics.text
        spec = (await client.get("/asyncapi")).json()
        assert spec["asyncapi"].startswith("3.")
        assert (await client.get("/openapi.json")).status_code == 200
        missing = await client.get("/no-such-route")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


async def test_a_service_stops_even_when_a_connection_is_never_given_back(
    infra: Infra, database: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool waits for every lent connection before it closes: one held for ever (a stuck
    handler) must not keep the service from stopping; its connections are closed instead."""
    monkeypatch.setattr(service, "STOP_STEP_SECONDS", 0.5)
    app = service_app("vendors", infra, database, topic_prefix)
    async with asyncio.timeout(10), running(app):
        held = await app.state.pool.acquire()
        backend = await held.fetchval("SELECT pg_backend_pid()")
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5
    admin = await asyncpg.connect(infra.admin_dsn)
    try:

        async def gone() -> bool:
            return not await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", backend
            )

        await eventually(gone)
    finally:
        await admin.close()
