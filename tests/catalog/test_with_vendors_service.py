"""The real vendors service feeds the catalog through its outbox, relay and topic."""

from __future__ import annotations

from typing import Any

from tests.catalog.helpers import (
    MANAGER,
    catalog_app,
    etalase_body,
    product_body,
)
from tests.support import Infra, auth, eventually, running, scratch_database
from tests.vendors.helpers import start_service, vendor_auth


async def test_vendor_lifecycle_drives_the_listing(
    infra: Infra, database: str, topic_prefix: str
) -> None:
    async with (
        start_service(infra, database, topic_prefix) as vendors,
        scratch_database(infra) as catalog_db,
        running(catalog_app(infra, catalog_db, topic_prefix)) as catalog,
    ):
        # A PKP vendor: the product charges VAT.
        vendor = await vendors.verified(is_pkp=True)
        vendor_id = vendor["vendor_id"]
        headers = vendor_auth(vendor_id)
        etalase = (await catalog.post("/etalase", json=etalase_body(), headers=MANAGER)).json()
        await catalog.post(f"/etalase/{etalase['id']}/open", headers=MANAGER)

        async def submitted() -> dict[str, Any]:
            response = await catalog.post(
                "/products", json=product_body(etalase["id"]), headers=headers
            )
            assert response.status_code == 201, response.text
            return response.json()

        product = await eventually(submitted)
        listed = await catalog.post(f"/products/{product['id']}/approve", headers=MANAGER)
        assert listed.json()["state"] == "listed"

        async def state() -> tuple[str, str | None]:
            body = (await catalog.get(f"/products/{product['id']}", headers=auth("auditor"))).json()
            return body["state"], body["taken_down_by"]

        async def becomes(expected: tuple[str, str | None]) -> None:
            async def check() -> bool:
                assert await state() == expected
                return True

            await eventually(check)

        suspended = await vendors.act(
            vendor_id, "suspend", {"reason": "wanprestasi", "until": None}
        )
        assert suspended.status_code == 200, suspended.text
        await becomes(("taken_down", "vendor_status"))
        reinstated = await vendors.act(vendor_id, "reinstate")
        assert reinstated.status_code == 200, reinstated.text
        await becomes(("listed", None))
