"""Hostile input is refused with a 422 problem naming the field, and nothing is stored."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.catalog.helpers import AUDITOR, MANAGER, Catalog, etalase_body, product_body

NUL = "bad\x00value"


def _refused(response: Any, field: str | None = None) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:
        fields = [e["field"] for e in response.json()["errors"]]
        assert any(f.startswith(field) for f in fields), (field, fields)


PRODUCT_FIELDS_WITH_NUL: list[tuple[dict[str, Any], str]] = [
    ({"name": NUL}, "name"),
    ({"description": NUL}, "description"),
    ({"unit": NUL}, "unit"),
    ({"brand": NUL}, "brand"),
    ({"sni": NUL}, "sni"),
    ({"tkdn_certificate": NUL}, "tkdn_certificate"),
    ({"specification": {NUL: "katun"}}, "specification"),
    ({"specification": {"bahan": NUL}}, "specification"),
    ({"photos": ["https://img.example/a\x00.jpg"]}, "photos"),
    ({"category_code": NUL}, "category_code"),
]


async def _products_of(catalog: Catalog, vendor: dict[str, str]) -> list[Any]:
    response = await catalog.client.get("/products", headers=vendor)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def test_control_characters_in_a_product_are_refused(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    for overrides, field in PRODUCT_FIELDS_WITH_NUL:
        response = await catalog.client.post(
            "/products", json=product_body(etalase["id"], **overrides), headers=vendor
        )
        _refused(response, field)
    # A line break has no place in a name either; a description may hold paragraphs.
    _refused(
        await catalog.client.post(
            "/products", json=product_body(etalase["id"], name="a\nb"), headers=vendor
        ),
        "name",
    )
    assert await _products_of(catalog, vendor) == []

    product = await catalog.listed(vendor, etalase["id"], description="satu\n\ndua")
    path = f"/products/{product['id']}"
    for overrides, field in PRODUCT_FIELDS_WITH_NUL:
        if field == "category_code":
            continue
        _refused(await catalog.client.patch(path, json=overrides, headers=vendor), field)
    _refused(
        await catalog.client.post(f"{path}/take-down", json={"reason": NUL}, headers=vendor),
        "reason",
    )
    other = await catalog.submit(vendor, etalase["id"])
    _refused(
        await catalog.client.post(
            f"/products/{other['id']}/reject", json={"reasons": [NUL]}, headers=MANAGER
        ),
        "reasons",
    )
    stored = {p["id"]: p for p in await _products_of(catalog, vendor)}
    assert stored[product["id"]]["revision"] == 1 and stored[product["id"]]["state"] == "listed"
    assert stored[other["id"]]["state"] == "submitted"


async def test_control_characters_in_a_storefront_are_refused(catalog: Catalog) -> None:
    bodies = [
        (etalase_body(name=NUL), "name"),
        (etalase_body(description="a\x00"), "description"),
        (etalase_body(categories=[{"code": "A", "name": NUL}]), "categories"),
        (
            etalase_body(collections=[{"code": "c", "name": NUL, "min_tkdn_bmp": 40}]),
            "collections",
        ),
    ]
    before = await catalog.client.get("/etalase", headers=AUDITOR)
    for body, field in bodies:
        _refused(await catalog.client.post("/etalase", json=body, headers=MANAGER), field)
    after = await catalog.client.get("/etalase", headers=AUDITOR)
    assert len(after.json()) == len(before.json())
    etalase = await catalog.open_etalase()
    _refused(
        await catalog.client.patch(
            f"/etalase/{etalase['id']}", json={"name": NUL}, headers=MANAGER
        ),
        "name",
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tax_percent": True}, "tax_percent"),
        ({"tax_percent": "11"}, "tax_percent"),
        ({"tkdn": "40"}, "tkdn"),
        ({"bmp": "5"}, "bmp"),
        ({"pdn": "true"}, "pdn"),
        ({"pdn": 1}, "pdn"),
        ({"stock": "10"}, "stock"),
        ({"price": 1.5}, "price"),
        ({"tkdn_valid_until": 1938124800}, "tkdn_valid_until"),
    ],
)
async def test_numbers_and_flags_must_be_json_numbers_and_booleans(
    catalog: Catalog, overrides: dict[str, Any], field: str
) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    response = await catalog.client.post(
        "/products", json=product_body(etalase["id"], **overrides), headers=vendor
    )
    _refused(response, field)
    assert await _products_of(catalog, vendor) == []


async def test_storefront_flags_and_collection_rules_are_strict(catalog: Catalog) -> None:
    for body, field in [
        (etalase_body(only_local="true"), "only_local"),
        (etalase_body(recurate_changes=0), "recurate_changes"),
        (
            etalase_body(collections=[{"code": "c", "name": "c", "min_tkdn_bmp": "40"}]),
            "collections",
        ),
    ]:
        _refused(await catalog.client.post("/etalase", json=body, headers=MANAGER), field)


async def test_collections_and_mappings_are_bounded(catalog: Catalog) -> None:
    etalase = await catalog.open_etalase()
    _, vendor = await catalog.verified_vendor()
    huge_specification = {f"k{i}": "v" * 100 for i in range(100_000)}
    too_many = [
        ({"specification": huge_specification}, "specification"),
        ({"specification": {f"k{i}": "v" for i in range(51)}}, "specification"),
        ({"specification": {"bahan": "v" * 301}}, "specification"),
        ({"delivery_regions": [f"33.{i:02d}" for i in range(101)]}, "delivery_regions"),
        ({"photos": [f"https://img.example/{i}.jpg" for i in range(21)]}, "photos"),
        ({"regional_prices": {f"33.{i:02d}": 1000 for i in range(101)}}, "regional_prices"),
    ]
    for overrides, field in too_many:
        response = await catalog.client.post(
            "/products", json=product_body(etalase["id"], **overrides), headers=vendor
        )
        if response.status_code == 413:  # a body limit in front of validation is as good
            continue
        _refused(response, field)
    assert await _products_of(catalog, vendor) == []

    many_nodes = [{"code": f"C{i}", "name": "c"} for i in range(101)]
    for body, field in [
        (etalase_body(categories=many_nodes), "categories"),
        (etalase_body(kbli=[f"{i:05d}" for i in range(101)]), "kbli"),
        (
            etalase_body(collections=[{"code": f"c{i}", "name": "c"} for i in range(101)]),
            "collections",
        ),
        (
            etalase_body(categories=[{"code": "A", "name": "a", "children": many_nodes}]),
            "categories",
        ),
    ]:
        _refused(await catalog.client.post("/etalase", json=body, headers=MANAGER), field)
    product = await catalog.submit(vendor, etalase["id"])
    response = await catalog.client.post(
        f"/products/{product['id']}/reject", json={"reasons": ["x"] * 101}, headers=MANAGER
    )
    _refused(response, "reasons")


async def test_broken_cursors_and_queries_do_not_echo_internals(catalog: Catalog) -> None:
    not_utf8 = base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode().rstrip("=")
    for cursor in (not_utf8, "W3sieCI6MX0sMSwiMiJd", "!!"):
        response = await catalog.client.get("/search", params={"cursor": cursor})
        _refused(response, "cursor")
        assert response.json()["detail"] == "cursor: not a cursor returned by this listing"
    for params in ({"q": "kertas\x00"}, {"region": "33.75.01.10"}, {"category": "a\x00"}):
        response = await catalog.client.get("/search", params=params)
        _refused(response, next(iter(params)))
