"""Builders and a driver for catalog tests: vendor events in through Kafka, HTTP calls out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.catalog.app import CatalogSettings, create_app
from shared.auth import Role
from shared.contracts.vendors import (
    VendorEvent,
    VendorExpired,
    VendorProfileUpdated,
    VendorRegistered,
    VendorReinstated,
    VendorRejected,
    VendorSuspended,
    VendorVerified,
)
from shared.events import build_headers, encode
from tests.support import (
    TEST_JWT_SECRET,
    Infra,
    ReceivedEvent,
    auth,
    eventually,
    read_topic,
)

_STATE_OF = {
    VendorRegistered: "submitted",
    VendorVerified: "verified",
    VendorRejected: "rejected",
    VendorSuspended: "suspended",
    VendorReinstated: "verified",
    VendorExpired: "expired",
    VendorProfileUpdated: "verified",
}
_EXTRA: dict[type[VendorEvent], dict[str, Any]] = {
    VendorVerified: {"verified_by": "manager-1"},
    VendorRejected: {"reasons": ["incomplete"], "rejected_by": "manager-1"},
    VendorSuspended: {"reason": "sanction", "suspended_by": "manager-1"},
    VendorReinstated: {"reinstated_by": "manager-1"},
    VendorProfileUpdated: {"changed_fields": ["address"], "requires_review": False},
}

MANAGER = auth(Role.CATALOGUE_MANAGER)
AUDITOR = auth(Role.AUDITOR)


def vendor_event(
    cls: type[VendorEvent], vendor_id: uuid.UUID, version: int, **overrides: Any
) -> VendorEvent:
    values: dict[str, Any] = {
        "vendor_id": vendor_id,
        "version": version,
        "occurred_at": datetime.now(UTC),
        "state": _STATE_OF[cls],
        "legal_name": "CV Batik Jaya",
        "legal_form": "CV",
        "nib": "1234567890123",
        "npwp": "012345678901234",
        "kbli": ["13134", "47711"],
        "region_code": "33.75",
        "scale": "kecil",
        "is_umk": True,
        "is_koperasi": False,
        "is_local": True,
        "is_pkp": True,
        **_EXTRA.get(cls, {}),
        **overrides,
    }
    return cls(**values)


def etalase_body(**overrides: Any) -> dict[str, Any]:
    return {
        "code": f"ET-{uuid.uuid4().hex[:8]}",
        "name": "Batik dan Tekstil",
        "categories": [
            {
                "code": "TEX",
                "name": "Tekstil",
                "children": [
                    {
                        "code": "TEX.BATIK",
                        "name": "Batik",
                        "children": [{"code": "TEX.BATIK.TULIS", "name": "Batik tulis"}],
                    },
                    {"code": "TEX.SERAGAM", "name": "Seragam"},
                ],
            }
        ],
        "vendor_types": ["producer", "reseller"],
        "kbli": ["13134"],
        "collections": [
            {"code": "tkdn40", "name": "TKDN >= 40%", "min_tkdn_bmp": 40, "pdn_only": True}
        ],
        **overrides,
    }


def product_body(etalase_id: Any, /, **overrides: Any) -> dict[str, Any]:
    return {
        "etalase_id": str(etalase_id),
        "vendor_type": "producer",
        "category_code": "TEX.BATIK.TULIS",
        "name": "Kain batik tulis motif jlamprang",
        "description": "Batik tulis asli Pekalongan",
        "specification": {"bahan": "katun primisima", "ukuran": "2 x 1,15 m"},
        "kbki": "26290",
        "unit": "lembar",
        "price": 750_000,
        "regional_prices": {"33.75": 700_000},
        "tax_percent": 11,
        "pdn": True,
        "tkdn": 45.5,
        "bmp": 10,
        "tkdn_certificate": "TKDN-2026-0001",
        "tkdn_valid_until": "2031-06-30",
        "brand": "Jlamprang",
        "stock": 10,
        "delivery_regions": ["33.75", "33.26"],
        "photos": ["https://img.example/batik.jpg"],
        **overrides,
    }


@dataclass
class Catalog:
    """A running catalog service with helpers to drive it."""

    client: httpx.AsyncClient
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    bootstrap: str
    prefix: str

    async def send_vendor_event(
        self, event: VendorEvent, event_id: uuid.UUID | None = None
    ) -> uuid.UUID:
        """Produce a vendor event as the vendors service's relay would (CloudEvents headers)."""
        event_id = event_id or uuid.uuid4()
        headers = build_headers(
            event_id=event_id,
            event_type=event.type,
            source="/ekatalog/vendors",
            subject=event.aggregate_id,
            time=datetime.now(UTC),
            correlation_id=None,
        )
        await self.producer.send_and_wait(
            f"{self.prefix}{event.topic}",
            value=encode(event),
            key=event.aggregate_id.encode(),
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
        return event_id

    async def processed(self, event_id: uuid.UUID) -> None:
        """Wait until the catalog's consumer stored the event (applied or dropped as stale)."""

        async def done() -> bool:
            return bool(
                await self.pool.fetchval(
                    "SELECT 1 FROM inbox WHERE consumer = 'catalog' AND event_id = $1", event_id
                )
            )

        await eventually(done, timeout=20)

    async def vendor(
        self, cls: type[VendorEvent], vendor_id: uuid.UUID, version: int, **overrides: Any
    ) -> uuid.UUID:
        event_id = await self.send_vendor_event(vendor_event(cls, vendor_id, version, **overrides))
        await self.processed(event_id)
        return event_id

    async def verified_vendor(self, **overrides: Any) -> tuple[uuid.UUID, dict[str, str]]:
        vendor_id = uuid.uuid4()
        await self.vendor(VendorVerified, vendor_id, 1, **overrides)
        return vendor_id, auth(Role.VENDOR, vendor_id=str(vendor_id))

    async def open_etalase(self, **overrides: Any) -> dict[str, Any]:
        created = await self.client.post(
            "/etalase", json=etalase_body(**overrides), headers=MANAGER
        )
        assert created.status_code == 201, created.text
        opened = await self.client.post(f"/etalase/{created.json()['id']}/open", headers=MANAGER)
        assert opened.status_code == 200, opened.text
        return opened.json()

    async def submit(
        self, vendor: dict[str, str], etalase_id: Any, **overrides: Any
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/products", json=product_body(etalase_id, **overrides), headers=vendor
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def listed(
        self, vendor: dict[str, str], etalase_id: Any, *, verify: bool = False, **overrides: Any
    ) -> dict[str, Any]:
        """Submitted and approved; with `verify`, every claim it makes is verified as well."""
        product = await self.submit(vendor, etalase_id, **overrides)
        claims = {
            claim: "verified"
            for claim, made in (
                ("tkdn", product["tkdn"] is not None),
                ("bmp", product["bmp"] is not None),
                ("pdn", product["pdn"]),
                ("sni", product["sni"] is not None),
            )
            if made and verify
        }
        response = await self.client.post(
            f"/products/{product['id']}/approve", json={"claims": claims}, headers=MANAGER
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def product(self, product_id: Any) -> dict[str, Any]:
        response = await self.client.get(f"/products/{product_id}", headers=AUDITOR)
        assert response.status_code == 200, response.text
        return response.json()

    async def events_of(self, topic: str, key: str, count: int) -> list[ReceivedEvent]:
        """The events of one aggregate on `ekatalog.<topic>`, once `count` of them arrived."""

        async def arrived() -> list[ReceivedEvent]:
            events = await read_topic(self.bootstrap, f"{self.prefix}ekatalog.{topic}", timeout=1)
            mine = [e for e in events if e.key == key]
            assert len(mine) >= count, f"{len(mine)} of {count} events of {key}"
            return mine

        return await eventually(arrived, timeout=20)


def catalog_app(infra: Infra, database: str, topic_prefix: str) -> FastAPI:
    return create_app(
        CatalogSettings(
            database_url=database,
            kafka_bootstrap_servers=infra.bootstrap_servers,
            topic_prefix=topic_prefix,
            jwt_secret=TEST_JWT_SECRET,
            relay_poll_seconds=0.1,
            consumer_backoff_seconds=0.05,
        )
    )
