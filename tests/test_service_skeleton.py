"""Every service starts against the real database and broker and serves its operations routes."""

from __future__ import annotations

import importlib

import pytest

from ekatalog.cli import SERVICES
from tests.support import TEST_JWT_SECRET, Infra, eventually, running


@pytest.mark.parametrize("name", list(SERVICES))
async def test_service_starts_and_reports_ready(
    name: str, infra: Infra, database: str, topic_prefix: str
) -> None:
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
    async with running(module.create_app(settings)) as client:
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
