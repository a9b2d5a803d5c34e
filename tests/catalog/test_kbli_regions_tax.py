"""KBLI per category, region codes at every level with prefix delivery, VAT only for PKP."""

from __future__ import annotations

from typing import Any

from shared.contracts.vendors import VendorProfileUpdated
from tests.catalog.helpers import MANAGER, Catalog, product_body


async def _ids(catalog: Catalog, etalase: dict[str, Any], **params: Any) -> set[str]:
    response = await catalog.client.get("/search", params={"etalase_id": etalase["id"], **params})
    assert response.status_code == 200, response.text
    return {p["id"] for p in response.json()["items"]}


async def test_a_category_demands_one_of_its_kbli_codes(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase(
        kbli=[],
        categories=[
            {
                "code": "TEX",
                "name": "Tekstil",
                "children": [
                    {
                        "code": "TEX.BATIK",
                        "name": "Batik",
                        "kbli": ["13134"],
                        "children": [{"code": "TEX.BATIK.TULIS", "name": "Batik tulis"}],
                    },
                    {"code": "TEX.JAHIT", "name": "Jasa jahit", "kbli": ["14111"]},
                ],
            }
        ],
    )
    _, weaver = await catalog.verified_vendor(kbli=["13134"])
    await catalog.submit(weaver, etalase["id"], category_code="TEX.BATIK.TULIS")
    refused = await catalog.client.post(
        "/products",
        json=product_body(etalase["id"], category_code="TEX.JAHIT"),
        headers=weaver,
    )
    assert refused.status_code == 403 and refused.json()["rule"] == "category_kbli"
    assert "14111" in refused.json()["detail"]
    bad_code = await catalog.client.post(
        "/etalase",
        json={
            "code": "X-1",
            "name": "x",
            "categories": [{"code": "A", "name": "a", "kbli": ["1"]}],
        },
        headers=MANAGER,
    )
    assert bad_code.status_code == 422


async def test_region_codes_at_every_level_and_delivery_by_prefix(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    city_wide = await catalog.listed(vendor, etalase["id"], delivery_regions=["33.75"])
    village = await catalog.listed(
        vendor,
        etalase["id"],
        delivery_regions=["33.75.01.1001"],
        regional_prices={"33.75.01.1001": 700_000},
    )
    province = await catalog.listed(vendor, etalase["id"], delivery_regions=["31"])
    assert await _ids(catalog, etalase, region="33.75.01") == {city_wide["id"]}
    assert await _ids(catalog, etalase, region="33.75.01.1001") == {
        city_wide["id"],
        village["id"],
    }
    assert await _ids(catalog, etalase, region="33.75") == {city_wide["id"]}
    assert await _ids(catalog, etalase, region="31.71.02") == {province["id"]}
    for invalid in ("33.75.01.10", "3", "33.7", "33.75.01.1001.1", "99.75"):
        response = await catalog.client.post(
            "/products",
            json=product_body(etalase["id"], delivery_regions=[invalid]),
            headers=vendor,
        )
        assert response.status_code == 422, invalid
        search = await catalog.client.get("/search", params={"region": invalid})
        assert search.status_code == 422, invalid


async def test_only_a_pkp_vendor_charges_vat(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase(recurate_changes=False)
    vendor_id, vendor = await catalog.verified_vendor(is_pkp=False)
    refused = await catalog.client.post(
        "/products", json=product_body(etalase["id"], tax_percent=11), headers=vendor
    )
    assert refused.status_code == 422 and refused.json()["rule"] == "vendor_not_pkp"
    product = await catalog.listed(vendor, etalase["id"], tax_percent=0)
    path = f"/products/{product['id']}"
    vat = await catalog.client.patch(path, json={"tax_percent": 11}, headers=vendor)
    assert vat.status_code == 422 and vat.json()["rule"] == "vendor_not_pkp"

    # The vendor registers as PKP: the projection learns it from the vendor events.
    await catalog.vendor(VendorProfileUpdated, vendor_id, 2, is_pkp=True)
    vat = await catalog.client.patch(path, json={"tax_percent": 11}, headers=vendor)
    assert vat.status_code == 200, vat.text
    assert vat.json()["tax_percent"] == 11
