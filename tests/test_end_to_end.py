"""The services as separate processes (`ekatalog up`), driven only over HTTP and Kafka."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.auth import Role, mint_token
from tests.catalog.helpers import etalase_body, product_body
from tests.processes import Platform
from tests.support import eventually, read_topic
from tests.vendors.helpers import profile


@pytest.mark.slow
async def test_a_vendor_verified_in_one_service_sells_in_another(tmp_path: Path) -> None:
    platform = Platform(tmp_path / "data", "vendors", "catalog")
    try:
        await asyncio.to_thread(platform.wait_for, "all services ready", 90)
        secret = (tmp_path / "data" / "jwt-secret").read_text().strip()

        def bearer(role: Role, **claims: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {mint_token(secret, role=role, **claims)}"}

        manager = bearer(Role.CATALOGUE_MANAGER)
        vendor_id = str(uuid.uuid4())
        vendor = bearer(Role.VENDOR, vendor_id=vendor_id)
        async with (
            httpx.AsyncClient(base_url=platform.url(0)) as vendors,
            httpx.AsyncClient(base_url=platform.url(1)) as catalog,
        ):
            # A PKP vendor: the product it offers charges VAT.
            registered = await vendors.post("/vendors", json=profile(is_pkp=True), headers=vendor)
            assert registered.status_code == 201, registered.text
            verified = await vendors.post(f"/vendors/{vendor_id}/verify", headers=manager)
            assert verified.status_code == 200, verified.text

            etalase = (await catalog.post("/etalase", json=etalase_body(), headers=manager)).json()
            opened = await catalog.post(f"/etalase/{etalase['id']}/open", headers=manager)
            assert opened.status_code == 200, opened.text

            async def submitted() -> dict[str, Any]:
                # 403 until the catalog has consumed `vendor.verified`.
                response = await catalog.post(
                    "/products", json=product_body(etalase["id"]), headers=vendor
                )
                assert response.status_code == 201, response.text
                return response.json()

            product = await eventually(submitted, timeout=30)
            approved = await catalog.post(f"/products/{product['id']}/approve", headers=manager)
            assert approved.json()["state"] == "listed"

            async def found() -> list[str]:
                page = (await catalog.get("/search", params={"q": "batik jlamprang"})).json()
                return [hit["id"] for hit in page["items"]]

            assert product["id"] in await found()

            suspended = await vendors.post(
                f"/vendors/{vendor_id}/suspend",
                json={"reason": "wanprestasi"},
                headers={**manager, "X-Correlation-ID": "e2e-suspension"},
            )
            assert suspended.status_code == 200, suspended.text

            async def gone() -> bool:
                return product["id"] not in await found()

            await eventually(gone, timeout=30)

        # The take-down the suspension caused carries the suspension request's correlation id.
        events = await read_topic(platform.bootstrap_servers, "ekatalog.products", min_count=3)
        taken_down = [e for e in events if e.type == "ekatalog.product.taken_down.v1"]
        assert [e.headers["ce_correlationid"] for e in taken_down] == ["e2e-suspension"]
        assert taken_down[0].key == product["id"]
    finally:
        assert await asyncio.to_thread(platform.stop, signal.SIGINT) == 0
