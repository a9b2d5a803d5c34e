"""Listing with filters and keyset pagination."""

from __future__ import annotations

import base64
import json
import uuid

import httpx

from services.vendors.store import LATEST_HISTORY
from tests.vendors.helpers import AUDITOR, MANAGER, Service, assert_problem, vendor_auth


async def test_filters_and_pagination(service: Service) -> None:
    batik = await service.verified(legal_name="CV Batik Pesisir", kbli=["13134"])
    koperasi = await service.register(
        legal_name="Koperasi Batik Setono", legal_form="Koperasi", kbli=["13134", "47711"]
    )
    besar = await service.register(
        legal_name="PT Konstruksi Jaya 100%",
        legal_form="PT",
        capital=2_000_000_000,
        annual_sales=60_000_000_000,
        kbli=["41011"],
        region_code="33.26",
    )
    perorangan = await service.register(
        legal_name="Toko_Ani",
        legal_form="UD",
        capital=None,
        annual_sales=16_000_000_000,
        kbli=["47711"],
        kbli_editions={"47711": "2020"},
        region_code="33.75",
    )

    async def ids(**params: object) -> list[str]:
        response = await service.client.get("/vendors", params=params, headers=AUDITOR)
        assert response.status_code == 200, response.text
        return [v["vendor_id"] for v in response.json()["items"]]

    everyone = [batik, koperasi, besar, perorangan]
    assert await ids() == [v["vendor_id"] for v in everyone]
    assert await ids(state="verified") == [batik["vendor_id"]]
    assert await ids(state="submitted", scale="mikro") == [koperasi["vendor_id"]]
    assert await ids(scale="menengah") == [perorangan["vendor_id"]]
    assert await ids(koperasi="true") == [koperasi["vendor_id"]]
    assert await ids(koperasi="false", local="false") == [besar["vendor_id"]]
    assert await ids(local="true", kbli="47711") == [
        koperasi["vendor_id"],
        perorangan["vendor_id"],
    ]
    # a code matches in either edition; the edition filter tells them apart
    assert await ids(kbli="47711", kbli_edition="2020") == [perorangan["vendor_id"]]
    assert await ids(kbli="47711", kbli_edition="2025") == [koperasi["vendor_id"]]
    assert await ids(kbli_edition="2020") == [perorangan["vendor_id"]]
    assert await ids(q="batik") == [batik["vendor_id"], koperasi["vendor_id"]]
    # LIKE wildcards in the search text match themselves only
    assert await ids(q="100%") == [besar["vendor_id"]]
    assert await ids(q="o_a") == [perorangan["vendor_id"]]
    assert await ids(q="%") == [besar["vendor_id"]]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await service.client.get("/vendors", params=params, headers=MANAGER)).json()
        seen += [v["vendor_id"] for v in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == ([v["vendor_id"] for v in everyone], 2)

    for bad in (
        {"state": "pending"},
        {"scale": "huge"},
        {"kbli": "4771"},
        {"kbli": "٤٧٧١١"},
        {"limit": 0},
        {"limit": 1000},
        {"local": "maybe"},
        {"cursor": "bm90IGEgY3Vyc29y"},
        {"cursor": "%%%"},
        {"q": "a\x00b"},
        {"q": "a\x1bb"},
        {"kbli_edition": "2017"},
    ):
        response = await service.client.get("/vendors", params=bad, headers=MANAGER)
        assert_problem(response, 422, "validation-error")


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


FORGED_CURSORS = [
    _cursor(b"7"),
    _cursor(b"1.5"),
    _cursor(b"true"),
    _cursor(b"null"),
    _cursor(b'{"a": 1}'),
    _cursor(b"[1, 2]"),
    _cursor(b'["2026-01-01T00:00:00+00:00", 7]'),
    _cursor(b'["2026-01-01T00:00:00+00:00", 1.5]'),
    _cursor(b'["2026-01-01T00:00:00+00:00", true]'),
    _cursor(b'["2026-01-01T00:00:00+00:00", ["x"]]'),
    _cursor(b'[["2026-01-01"], "9b2a8c58-7f43-4d6b-9c3e-0d7c5d9b9f10"]'),
    _cursor(b'["2026-01-01T00:00:00+00:00"]'),
    _cursor(b'["x", "y", "z"]'),
    _cursor(b"\xff\xfe\xfd"),
    _cursor(b"[" * 150 + b"]" * 150),
    "bm90IGEgY3Vyc29y",
    "%%%",
    "ä",
]


async def test_forged_cursors_are_422_without_internals(service: Service) -> None:
    for cursor in FORGED_CURSORS:
        response = await service.client.get("/vendors", params={"cursor": cursor}, headers=MANAGER)
        body = assert_problem(response, 422, "validation-error")
        assert body["errors"] == [
            {"field": "cursor", "reason": "not a cursor returned by this listing"}
        ], cursor


async def test_hostile_filters_are_422_naming_the_parameter(service: Service) -> None:
    for query, field in (
        ("q=CV%00Batik", "q"),
        ("q=CV%0ABatik", "q"),
        ("q=" + "a" * 101, "q"),
        ("koperasi=maybe", "koperasi"),
        ("scale=raksasa", "scale"),
        ("kbli=1234%FF", "kbli"),
        ("limit=-1", "limit"),
    ):
        response = await service.client.get(f"/vendors?{query}", headers=MANAGER)
        body = assert_problem(response, 422, "validation-error")
        assert [e["field"] for e in body["errors"]] == [field], query


async def test_history_is_bounded_in_the_view_and_paged_in_full(service: Service) -> None:
    vendor = await service.verified()
    vendor_id = vendor["vendor_id"]
    for n in range(LATEST_HISTORY + 5):
        response = await service.update(vendor, address=f"Jl. Hayam Wuruk {n}, Pekalongan")
        assert response.status_code == 200, response.text
    versions = list(range(1, LATEST_HISTORY + 8))  # registered, verified, 25 updates
    embedded = (await service.get(vendor_id))["history"]
    assert [h["version"] for h in embedded] == versions[-LATEST_HISTORY:]
    assert embedded[-1]["event"] == "profile_updated"

    async def page(headers: dict[str, str], **params: object) -> httpx.Response:
        return await service.client.get(
            f"/vendors/{vendor_id}/history", params=params, headers=headers
        )

    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        response = await page(MANAGER, limit=10, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        seen += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert [h["version"] for h in seen] == versions
    assert [h["event"] for h in seen[:2]] == ["registered", "verified"]
    assert seen[-LATEST_HISTORY:] == embedded
    owner = await page(vendor_auth(vendor_id))
    assert owner.status_code == 200 and len(owner.json()["items"]) == len(versions)
    other = await service.register()
    assert_problem(await page(vendor_auth(other["vendor_id"])), 403)
    missing = await service.client.get(f"/vendors/{uuid.uuid4()}/history", headers=MANAGER)
    assert_problem(missing, 404)
    for forged in (["2147483648"], ["-1"], ["x"], ["1", "2"]):
        cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        assert_problem(await page(MANAGER, cursor=cursor), 422)
