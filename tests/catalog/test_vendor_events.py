"""Vendor events drive the catalogue: take-down on suspension/expiry, restore, stale events."""

from __future__ import annotations

import uuid

from shared.auth import Role
from shared.contracts.vendors import (
    VendorExpired,
    VendorProfileUpdated,
    VendorReinstated,
    VendorSuspended,
    VendorVerified,
)
from tests.catalog.helpers import MANAGER, Catalog, product_body, vendor_event
from tests.support import auth


async def _states(catalog: Catalog, *products: dict) -> list[tuple[str, str | None]]:
    result = []
    for product in products:
        body = await catalog.product(product["id"])
        result.append((body["state"], body["taken_down_by"]))
    return result


async def test_suspension_takes_down_and_reinstatement_restores(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    vendor_id, vendor = await catalog.verified_vendor()
    kept = await catalog.listed(vendor, etalase["id"])
    own_choice = await catalog.listed(vendor, etalase["id"])
    by_manager = await catalog.listed(vendor, etalase["id"])
    waiting = await catalog.submit(vendor, etalase["id"])
    await catalog.client.post(
        f"/products/{own_choice['id']}/take-down", json={"reason": "libur"}, headers=vendor
    )
    await catalog.client.post(
        f"/products/{by_manager['id']}/take-down", json={"reason": "foto"}, headers=MANAGER
    )

    await catalog.vendor(VendorSuspended, vendor_id, 2)
    assert await _states(catalog, kept, own_choice, by_manager, waiting) == [
        ("taken_down", "vendor_status"),
        ("taken_down", "vendor"),
        ("taken_down", "manager"),
        ("submitted", None),
    ]
    assert (await catalog.client.get(f"/products/{kept['id']}")).status_code == 404
    # A suspended vendor can neither submit nor get its waiting product listed, nor edit or
    # relist what its status took down.
    refused = await catalog.client.post(
        "/products", json=product_body(etalase["id"]), headers=vendor
    )
    assert refused.status_code == 403 and refused.json()["rule"] == "vendor_verified"
    approve = await catalog.client.post(f"/products/{waiting['id']}/approve", headers=MANAGER)
    assert approve.status_code == 409 and approve.json()["rule"] == "vendor_verified"
    edit = await catalog.client.patch(
        f"/products/{kept['id']}", json={"price": 1_000}, headers=vendor
    )
    assert edit.status_code == 409 and edit.json()["rule"] == "vendor_status"
    relist = await catalog.client.post(f"/products/{kept['id']}/relist", headers=vendor)
    assert relist.status_code == 409

    await catalog.vendor(VendorReinstated, vendor_id, 3)
    assert await _states(catalog, kept, own_choice, by_manager, waiting) == [
        ("listed", None),
        ("taken_down", "vendor"),
        ("taken_down", "manager"),
        ("submitted", None),
    ]
    assert (await catalog.client.get(f"/products/{kept['id']}")).status_code == 200


async def test_expiry_and_verification_again(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    vendor_id, vendor = await catalog.verified_vendor()
    product = await catalog.listed(vendor, etalase["id"])
    await catalog.vendor(VendorExpired, vendor_id, 2)
    assert await _states(catalog, product) == [("taken_down", "vendor_status")]
    # Still not allowed: a profile change that needs review keeps it down.
    await catalog.vendor(
        VendorProfileUpdated, vendor_id, 3, state="submitted", requires_review=True
    )
    assert await _states(catalog, product) == [("taken_down", "vendor_status")]
    await catalog.vendor(VendorVerified, vendor_id, 4)
    assert await _states(catalog, product) == [("listed", None)]


async def test_duplicate_and_stale_events_are_dropped(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    vendor_id, vendor = await catalog.verified_vendor()
    product = await catalog.listed(vendor, etalase["id"])

    # The same event twice (a re-publish keeps its id): processed once.
    suspended = vendor_event(VendorSuspended, vendor_id, 2)
    event_id = await catalog.send_vendor_event(suspended)
    await catalog.send_vendor_event(suspended, event_id)
    await catalog.processed(event_id)
    # Out of order: version 4 (reinstated) arrives before version 3 (suspended again).
    await catalog.vendor(VendorReinstated, vendor_id, 4)
    await catalog.vendor(VendorSuspended, vendor_id, 3)
    # A copy of an old event under a new id is stale too.
    await catalog.vendor(VendorSuspended, vendor_id, 2)

    assert await _states(catalog, product) == [("listed", None)]
    vendor_row = await catalog.pool.fetchrow(
        "SELECT version, state FROM vendor_projection WHERE vendor_id = $1", vendor_id
    )
    assert (vendor_row["version"], vendor_row["state"]) == (4, "verified")
    events = await catalog.events_of("products", product["id"], 4)
    # submitted, listed, one take-down for the one applied suspension, one restore.
    assert [e.type for e in events] == [
        "ekatalog.product.submitted.v1",
        "ekatalog.product.listed.v1",
        "ekatalog.product.taken_down.v1",
        "ekatalog.product.listed.v1",
    ]
    assert [e.data["version"] for e in events] == [1, 2, 3, 4]


async def test_vendor_flags_follow_profile_changes(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    vendor_id, vendor = await catalog.verified_vendor()
    product = await catalog.listed(vendor, etalase["id"])
    await catalog.vendor(
        VendorProfileUpdated, vendor_id, 2, scale="menengah", is_umk=False, is_local=False
    )
    body = await catalog.product(product["id"])
    assert body["state"] == "listed"
    assert (body["vendor_is_umk"], body["vendor_is_local"]) == (False, False)


async def test_unknown_vendor_token_sees_nothing_private(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    product = await catalog.submit(vendor, etalase["id"])
    stranger = auth(Role.VENDOR, vendor_id=str(uuid.uuid4()))
    response = await catalog.client.get(f"/products/{product['id']}", headers=stranger)
    assert response.status_code == 404
