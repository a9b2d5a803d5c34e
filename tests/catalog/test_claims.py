"""Claims (TKDN, BMP, PDN, SNI) are curated one by one; only verified ones are shown, filtered
and counted; TKDN certificates lapse by themselves."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.catalog import commands
from shared.outbox import Outbox
from tests.catalog.helpers import MANAGER, Catalog, product_body


async def _ids(catalog: Catalog, etalase: dict[str, Any], **params: Any) -> set[str]:
    response = await catalog.client.get("/search", params={"etalase_id": etalase["id"], **params})
    assert response.status_code == 200, response.text
    return {p["id"] for p in response.json()["items"]}


async def test_a_product_is_listed_while_claims_are_refused_or_postponed(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    product = await catalog.submit(vendor, etalase["id"], sni="SNI 8179:2016")
    path = f"/products/{product['id']}"
    listed = await catalog.client.post(
        f"{path}/approve",
        json={"claims": {"tkdn": "verified", "bmp": "refused", "sni": "pending"}},
        headers=MANAGER,
    )
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["state"] == "listed"
    assert (body["tkdn_status"], body["bmp_status"], body["sni_status"], body["pdn_status"]) == (
        "verified",
        "refused",
        "pending",
        "pending",
    )
    # A verified TKDN makes it a domestic product; a refused BMP does not count.
    assert body["tkdn_verified"] and body["pdn_verified"] and not body["bmp_verified"]

    public = (await catalog.client.get(path)).json()
    assert (public["tkdn"], public["bmp"], public["sni"], public["pdn"]) == (45.5, None, None, True)
    hit = (await catalog.client.get("/search", params={"etalase_id": etalase["id"]})).json()
    assert hit["items"][0]["bmp"] is None and hit["items"][0]["sni"] is None
    # TKDN + BMP counts TKDN only: 45.5 reaches 40 but not 50 (45.5 + 10 would).
    assert await _ids(catalog, etalase, min_tkdn_bmp=40) == {product["id"]}
    assert await _ids(catalog, etalase, min_tkdn_bmp=50) == set()

    later = await catalog.client.post(
        f"{path}/claims",
        json={"sni": "verified", "reason": "sertifikat SNI diperiksa"},
        headers=MANAGER,
    )
    assert later.status_code == 200, later.text
    assert later.json()["sni_verified"]
    assert (await catalog.client.get(path)).json()["sni"] == "SNI 8179:2016"
    bmp = await catalog.client.post(f"{path}/claims", json={"bmp": "verified"}, headers=MANAGER)
    assert bmp.json()["bmp_verified"]
    assert await _ids(catalog, etalase, min_tkdn_bmp=50) == {product["id"]}

    events = await catalog.events_of("products", product["id"], 5)
    reviewed = [e.data for e in events if e.type == "ekatalog.product.claims_reviewed.v1"]
    assert [r["changed_claims"] for r in reviewed] == [["bmp", "tkdn"], ["sni"], ["bmp"]]
    assert reviewed[-1]["bmp_verified"] and reviewed[-1]["pdn_verified"]
    assert reviewed[1]["reason"] == "sertifikat SNI diperiksa"


async def test_unverified_claims_do_not_filter(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    # A PDN claim without TKDN, still pending: it is not a domestic product for the search.
    product = await catalog.listed(
        vendor, etalase["id"], tkdn=None, bmp=None, tkdn_certificate=None, tkdn_valid_until=None
    )
    assert await _ids(catalog, etalase, pdn=True) == set()
    assert await _ids(catalog, etalase, pdn=False) == {product["id"]}
    await catalog.client.post(
        f"/products/{product['id']}/claims", json={"pdn": "verified"}, headers=MANAGER
    )
    assert await _ids(catalog, etalase, pdn=True) == {product["id"]}
    refused = await catalog.client.post(
        f"/products/{product['id']}/claims", json={"tkdn": "verified"}, headers=MANAGER
    )
    assert refused.status_code == 422 and refused.json()["rule"] == "no_claim"


async def test_claim_rules_on_submission_and_review(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    for overrides, rule in [
        ({"pdn": False}, "tkdn_implies_pdn"),
        ({"tkdn": None}, "bmp_requires_tkdn"),
        ({"tkdn_valid_until": None}, "tkdn_certificate"),
    ]:
        response = await catalog.client.post(
            "/products",
            json=product_body(etalase["id"], **overrides),
            headers=vendor,
        )
        assert response.status_code == 422 and response.json()["rule"] == rule, response.text
    product = await catalog.submit(vendor, etalase["id"])
    only_bmp = await catalog.client.post(
        f"/products/{product['id']}/approve", json={"claims": {"bmp": "verified"}}, headers=MANAGER
    )
    assert only_bmp.status_code == 422 and only_bmp.json()["rule"] == "bmp_requires_tkdn"
    # Nothing of the refused approval stayed.
    assert (await catalog.product(product["id"]))["state"] == "submitted"


async def test_an_edit_sends_the_claims_it_touches_back_to_review(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase(recurate_changes=False)
    _, vendor = await catalog.verified_vendor()
    product = await catalog.listed(vendor, etalase["id"], verify=True)
    assert product["tkdn_verified"] and product["pdn_verified"]
    edited = await catalog.client.patch(
        f"/products/{product['id']}", json={"tkdn_valid_until": "2032-01-31"}, headers=vendor
    )
    body = edited.json()
    assert (body["tkdn_status"], body["bmp_status"], body["pdn_status"]) == (
        "pending",
        "verified",
        "verified",
    )
    # BMP stays decided but cannot count without a verified TKDN.
    assert not body["tkdn_verified"] and not body["bmp_verified"] and body["pdn_verified"]


async def test_tkdn_certificates_lapse_by_themselves(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    lapsing = await catalog.listed(
        vendor, etalase["id"], verify=True, tkdn_valid_until="2027-03-31"
    )
    lasting = await catalog.listed(vendor, etalase["id"], verify=True)
    assert await _ids(catalog, etalase, min_tkdn_bmp=40) == {lapsing["id"], lasting["id"]}
    outbox = Outbox.for_service("catalog", catalog.prefix)

    assert await commands.lapse_tkdn_claims(catalog.pool, outbox, date(2027, 3, 31)) == 0
    assert await commands.lapse_tkdn_claims(catalog.pool, outbox, date(2027, 4, 1)) == 1
    assert await commands.lapse_tkdn_claims(catalog.pool, outbox, date(2027, 4, 1)) == 0

    expired = await catalog.product(lapsing["id"])
    assert expired["tkdn_status"] == "expired"
    assert not expired["tkdn_verified"] and not expired["bmp_verified"]
    # Its PDN claim was verified on its own, so the product stays domestic.
    assert expired["pdn_verified"]
    assert await _ids(catalog, etalase, min_tkdn_bmp=40) == {lasting["id"]}
    events = await catalog.events_of("products", lapsing["id"], 4)
    assert events[-1].type == "ekatalog.product.claims_reviewed.v1"
    assert events[-1].data["changed_by"] == "system:tkdn-expiry"
