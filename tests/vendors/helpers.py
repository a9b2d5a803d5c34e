"""A running vendors service per test, and the requests most tests make."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from fastapi import FastAPI

from services.vendors.api import DeclarationBody, commands_for
from services.vendors.app import VendorsSettings, create_app
from services.vendors.commands import VendorCommands
from shared.auth import Role
from shared.contracts.vendors import TOPIC
from tests.support import TEST_JWT_SECRET, Infra, ReceivedEvent, auth, read_topic, running
from tests.unit.vendors.profiles import profile as profile  # re-exported for other suites

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events"
MANAGER = auth(Role.CATALOGUE_MANAGER, subject="ukpbj-1")
AUDITOR = auth(Role.AUDITOR, subject="auditor-1")


def vendor_auth(vendor_id: str) -> dict[str, str]:
    return auth(Role.VENDOR, vendor_id=vendor_id, subject=f"user-{vendor_id[:8]}")


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    settings: VendorsSettings

    @property
    def commands(self) -> VendorCommands:
        return commands_for(self.app)

    async def register(self, **overrides: Any) -> dict[str, Any]:
        vendor_id = str(uuid.uuid4())
        response = await self.client.post(
            "/vendors", json=profile(**overrides), headers=vendor_auth(vendor_id)
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def act(self, vendor_id: str, action: str, body: Any = None) -> httpx.Response:
        return await self.client.post(f"/vendors/{vendor_id}/{action}", json=body, headers=MANAGER)

    async def verified(self, **overrides: Any) -> dict[str, Any]:
        vendor = await self.register(**overrides)
        response = await self.act(vendor["vendor_id"], "verify")
        assert response.status_code == 200, response.text
        return response.json()

    async def update(self, vendor: dict[str, Any], **changes: Any) -> httpx.Response:
        """PUT what the vendor declares now with `changes`, as its owner."""
        body = {k: vendor[k] for k in DeclarationBody.model_fields}
        if "kbli" in changes:  # editions of the codes that stay
            body["kbli_editions"] = {
                code: edition
                for code, edition in vendor["kbli_editions"].items()
                if code in changes["kbli"] and vendor["kbli_editions"][code] != "2025"
            }
        body.update(changes)
        return await self.client.put(
            f"/vendors/{vendor['vendor_id']}", json=body, headers=vendor_auth(vendor["vendor_id"])
        )

    async def renew_kswp(self, vendor_id: str, valid_until: date) -> dict[str, Any]:
        """The vendor submits a KSWP renewal with a new validity date."""
        response = await self.client.post(
            f"/vendors/{vendor_id}/kswp-renewal",
            json={
                "valid_until": valid_until.isoformat(),
                "certificate": f"https://docs.example/kswp-{valid_until}.pdf",
            },
            headers=vendor_auth(vendor_id),
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def get(self, vendor_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/vendors/{vendor_id}", headers=MANAGER)
        assert response.status_code == 200, response.text
        return response.json()

    async def events(self, min_count: int, timeout: float = 15.0) -> list[ReceivedEvent]:
        """What the service published, each checked against its committed JSON Schema."""
        events = await read_topic(
            self.settings.kafka_bootstrap_servers,
            f"{self.settings.topic_prefix}{TOPIC}",
            min_count=min_count,
            timeout=timeout,
        )
        for event in events:
            schema = json.loads((SCHEMAS / f"{event.type}.json").read_text())
            jsonschema.validate(event.data, schema)
        return events


@asynccontextmanager
async def start_service(
    infra: Infra, database: str, topic_prefix: str, **overrides: Any
) -> AsyncIterator[Service]:
    settings = VendorsSettings(
        database_url=database,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=topic_prefix,
        jwt_secret=TEST_JWT_SECRET,
        relay_poll_seconds=0.05,
        **overrides,
    )
    app = create_app(settings)
    async with running(app) as client:
        yield Service(app, client, settings)


def assert_problem(response: httpx.Response, status: int, type_: str | None = None) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    if type_ is not None:
        assert body["type"] == f"/problems/{type_}", body
    return body
