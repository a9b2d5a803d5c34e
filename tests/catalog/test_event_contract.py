"""Emitted events match the committed JSON schemas in docs/events, and those match the code."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from shared.contracts.catalog import CATALOG_EVENTS
from shared.events import event_json_schemas
from tests.catalog.helpers import MANAGER, Catalog

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events"


def _committed(event_type: str) -> dict:
    return json.loads((SCHEMAS / f"{event_type}.json").read_text())


def test_committed_schemas_match_the_code() -> None:
    generated = event_json_schemas()
    for event in CATALOG_EVENTS:
        assert _committed(event.type) == json.loads(json.dumps(generated[event.type])), (
            f"{event.type}: run `ekatalog schemas --out docs/events` and commit"
        )


async def test_every_event_type_is_emitted_and_valid(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase(recurate_changes=False)
    await catalog.client.patch(
        f"/etalase/{etalase['id']}", json={"name": "Batik Pekalongan"}, headers=MANAGER
    )
    await catalog.client.post(f"/etalase/{etalase['id']}/close", headers=MANAGER)
    await catalog.client.post(f"/etalase/{etalase['id']}/open", headers=MANAGER)
    _, vendor = await catalog.verified_vendor()
    product = await catalog.listed(vendor, etalase["id"], verify=True)
    path = f"/products/{product['id']}"
    edited = await catalog.client.patch(
        path, json={"price": 740_000, "brand": "Jlamprang Asli"}, headers=vendor
    )
    assert edited.status_code == 200, edited.text
    await catalog.client.put(f"{path}/stock", json={"stock": 4}, headers=vendor)
    await catalog.client.post(f"{path}/take-down", json={"reason": "x"}, headers=vendor)
    other = await catalog.submit(vendor, etalase["id"])
    await catalog.client.post(
        f"/products/{other['id']}/reject", json={"reasons": ["x"]}, headers=MANAGER
    )

    etalase_events = await catalog.events_of("etalase", etalase["id"], 5)
    product_events = await catalog.events_of("products", product["id"], 7)
    rejected = await catalog.events_of("products", other["id"], 2)
    received = etalase_events + product_events + rejected
    assert {e.type for e in received} == {e.type for e in CATALOG_EVENTS}
    for event in received:
        Draft202012Validator(_committed(event.type)).validate(event.data)
        assert event.headers["ce_subject"] == event.key
        assert event.headers["ce_source"] == "/ekatalog/catalog"
    versions = [e.data["version"] for e in product_events]
    assert versions == list(range(1, len(versions) + 1))
    price = next(e.data for e in product_events if e.type.endswith("price_changed.v1"))
    assert (price["previous_price"], price["price"]) == (750_000, 740_000)
    assert isinstance(price["price"], int)
    claims = next(e.data for e in product_events if e.type.endswith("claims_reviewed.v1"))
    assert claims["changed_claims"] == ["bmp", "pdn", "tkdn"]
    assert (claims["tkdn_verified"], claims["bmp_verified"], claims["pdn_verified"]) == (
        True,
        True,
        True,
    )
