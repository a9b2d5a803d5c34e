"""Registration against the real database and broker: validation, checks, derived flags."""

from __future__ import annotations

import uuid
from typing import Any

from shared.auth import Role
from tests.support import auth
from tests.vendors.helpers import MANAGER, Service, assert_problem, profile, vendor_auth


async def test_registration_derives_flags_and_normalises_npwp(service: Service) -> None:
    vendor = await service.register(
        npwp="01.234.567.8-901.000", capital=None, annual_sales=3_000_000_000
    )
    assert vendor["state"] == "submitted"
    assert vendor["version"] == 1
    assert vendor["npwp"] == "0012345678901000"
    assert (vendor["scale"], vendor["is_umk"], vendor["is_koperasi"], vendor["is_local"]) == (
        "kecil",
        True,
        False,
        True,
    )
    koperasi = await service.register(
        legal_form="Koperasi", annual_sales=60_000_000_000, region_code="33.26"
    )
    assert (
        koperasi["scale"],
        koperasi["is_umk"],
        koperasi["is_koperasi"],
        koperasi["is_local"],
    ) == (
        "besar",
        False,
        True,
        False,
    )
    sixteen = await service.register(npwp="0012345678901999")
    assert sixteen["npwp"] == "0012345678901999"
    owner_view = await service.client.get(
        f"/vendors/{vendor['vendor_id']}", headers=vendor_auth(vendor["vendor_id"])
    )
    assert owner_view.status_code == 200
    assert owner_view.json()["history"][0]["event"] == "registered"


BAD_FIELDS: list[tuple[str, Any]] = [
    ("nib", "123456789012"),
    ("nib", "12345678901a3"),
    ("npwp", "01.234.567.8901.000"),
    ("npwp", "12345"),
    ("kbli", ["4771"]),
    ("kbli", "47711"),
    ("region_code", "3375"),
    ("region_code", "33.75.1"),
    ("capital", 1.5),
    ("capital", "100"),
    ("capital", 1e9),
    ("capital", -5),
    ("annual_sales", "2000000000"),
    ("is_pkp", "ya"),
    ("kswp_status", "maybe"),
    ("kswp_valid_until", 20270101),
    ("kswp_valid_until", "31-12-2027"),
    ("legal_form", "Firma"),
    ("legal_name", "\u0000"),
    ("legal_name", ""),
    ("contact", {"name": "X", "email": "not-an-email", "phone": "+62285"}),
    ("documents", {"nib_certificate": "ftp://x"}),
    ("documents", {"passport": "https://x"}),
    ("unexpected", 1),
]


async def test_every_bad_field_is_a_422_naming_it(service: Service) -> None:
    headers = vendor_auth(str(uuid.uuid4()))
    for field, value in BAD_FIELDS:
        response = await service.client.post(
            "/vendors", json=profile(**{field: value}), headers=headers
        )
        body = assert_problem(response, 422, "validation-error")
        fields = [e["field"] for e in body["errors"]]
        assert any(f.split(".")[0] == field for f in fields), (field, value, body)
    both_missing = await service.client.post(
        "/vendors", json=profile(capital=None, annual_sales=None), headers=headers
    )
    assert [e["field"] for e in assert_problem(both_missing, 422)["errors"]] == ["annual_sales"]
    undated = await service.client.post(
        "/vendors", json=profile(kswp_valid_until=None), headers=headers
    )
    assert [e["field"] for e in assert_problem(undated, 422)["errors"]] == ["kswp_valid_until"]
    for raw, status in ((b"{", 422), (b"[]", 422), (b'"x"', 422), (b"\xff", 400)):
        garbage = await service.client.post(
            "/vendors", content=raw, headers={**headers, "content-type": "application/json"}
        )
        assert_problem(garbage, status)


async def test_duplicate_nib_and_second_registration_are_409(service: Service) -> None:
    first = await service.register()
    again = await service.client.post(
        "/vendors", json=profile(nib=first["nib"]), headers=vendor_auth(str(uuid.uuid4()))
    )
    body = assert_problem(again, 409, "duplicate-nib")
    assert body["existing_vendor_id"] == first["vendor_id"]
    assert first["vendor_id"] in body["detail"]
    twice = await service.client.post(
        "/vendors", json=profile(), headers=vendor_auth(first["vendor_id"])
    )
    assert (
        assert_problem(twice, 409, "vendor-already-registered")["vendor_id"] == first["vendor_id"]
    )


async def test_vendor_id_claim_must_be_a_uuid(service: Service) -> None:
    response = await service.client.post(
        "/vendors", json=profile(), headers=auth(Role.VENDOR, vendor_id="vendor-7")
    )
    assert_problem(response, 403, "forbidden")
    # Any spelling of a UUID names the same vendor: stored and owned in canonical form.
    vendor_id = uuid.uuid4()
    upper = auth(Role.VENDOR, vendor_id=str(vendor_id).upper())
    created = await service.client.post("/vendors", json=profile(), headers=upper)
    assert created.status_code == 201, created.text
    assert created.json()["vendor_id"] == str(vendor_id)
    own = await service.client.get(f"/vendors/{vendor_id}", headers=upper)
    assert own.status_code == 200


async def test_blacklisted_npwp_stops_registration_with_the_reason(service: Service) -> None:
    npwp = "02.345.678.9-012.000"
    put = await service.client.put(
        f"/vendor-blacklist/{npwp}", json={"reason": "sanksi daftar hitam LKPP"}, headers=MANAGER
    )
    assert put.status_code == 204, put.text
    listed = await service.client.get("/vendor-blacklist", headers=MANAGER)
    assert [e["npwp"] for e in listed.json()["items"]] == ["0023456789012000"]
    for form in (npwp, "023456789012000", "0023456789012000"):
        response = await service.client.post(
            "/vendors", json=profile(npwp=form), headers=vendor_auth(str(uuid.uuid4()))
        )
        body = assert_problem(response, 422, "npwp-blacklisted")
        assert body["reason"] == "sanksi daftar hitam LKPP"
        assert body["errors"][0]["field"] == "npwp"
    # an update to a blacklisted NPWP is refused in the same way
    vendor = await service.register()
    assert_problem(await service.update(vendor, npwp=npwp), 422, "npwp-blacklisted")

    assert_problem(
        await service.client.put("/vendor-blacklist/123", json={"reason": "x"}, headers=MANAGER),
        422,
        "validation-error",
    )
    deleted = await service.client.delete(f"/vendor-blacklist/{npwp}", headers=MANAGER)
    assert deleted.status_code == 204
    assert_problem(
        await service.client.delete(f"/vendor-blacklist/{npwp}", headers=MANAGER),
        404,
        "not-blacklisted",
    )
    await service.register(npwp=npwp)


async def test_missing_documents_are_listed(service: Service) -> None:
    response = await service.client.post(
        "/vendors",
        json=profile(legal_form="PT", documents={"nib_certificate": "https://d/nib.pdf"}),
        headers=vendor_auth(str(uuid.uuid4())),
    )
    body = assert_problem(response, 422, "missing-documents")
    assert body["missing_documents"] == ["npwp_card", "deed_of_establishment", "kswp_certificate"]
    assert [e["field"] for e in body["errors"]] == [
        "documents.npwp_card",
        "documents.deed_of_establishment",
        "documents.kswp_certificate",
    ]
    # a sole proprietor (perorangan) has no deed of establishment
    await service.register(
        legal_form="perorangan",
        documents={
            "nib_certificate": "https://d/nib.pdf",
            "npwp_card": "https://d/npwp.pdf",
            "kswp_certificate": "https://d/kswp.pdf",
        },
    )
    # an update may not drop a required document either
    vendor = await service.register()
    dropped = await service.update(vendor, documents={"nib_certificate": "https://d/nib.pdf"})
    assert_problem(dropped, 422, "missing-documents")


async def test_the_new_form_of_the_same_npwp_is_no_profile_change(service: Service) -> None:
    vendor = await service.verified(npwp="01.234.567.8-901.777")
    assert vendor["npwp"] == "0012345678901777"
    for form in ("012345678901777", "0012345678901777"):
        same = await service.update(vendor, npwp=form)
        assert same.status_code == 200, same.text
        assert (same.json()["state"], same.json()["version"]) == ("verified", vendor["version"])
    assert len(await service.events(min_count=3, timeout=1)) == 2  # registered, verified
    # an individual's NPWP is the NIK: the 15-digit form is refused for perorangan and UD
    for form in ("perorangan", "UD"):
        response = await service.client.post(
            "/vendors",
            json=profile(legal_form=form, npwp="012345678901888"),
            headers=vendor_auth(str(uuid.uuid4())),
        )
        body = assert_problem(response, 422, "validation-error")
        assert [e["field"] for e in body["errors"]] == ["npwp"]
    nik = "3375011203900001"
    assert (await service.register(legal_form="UD", npwp=nik))["npwp"] == nik


async def test_pt_perorangan_registers_with_its_founding_statement(service: Service) -> None:
    documents = {
        "nib_certificate": "https://d/nib.pdf",
        "npwp_card": "https://d/npwp.pdf",
        "kswp_certificate": "https://d/kswp.pdf",
    }
    no_founding = await service.client.post(
        "/vendors",
        json=profile(legal_form="PT Perorangan", documents=documents),
        headers=vendor_auth(str(uuid.uuid4())),
    )
    body = assert_problem(no_founding, 422, "missing-documents")
    assert body["missing_documents"] == ["founding_statement"]
    vendor = await service.register(
        legal_form="PT Perorangan",
        documents={**documents, "registration_certificate": "https://d/sertifikat.pdf"},
    )
    assert (vendor["legal_form"], vendor["pt_perorangan"]) == ("PT Perorangan", True)
    (registered,) = await service.events(min_count=1)
    assert (registered.data["legal_form"], registered.data["pt_perorangan"]) == ("PT", True)
    # moving to a plain PT is a change of legal form: back to review, and now a deed is needed
    verified = (await service.act(vendor["vendor_id"], "verify")).json()
    assert_problem(await service.update(verified, legal_form="PT"), 422, "missing-documents")


CONTROL_CHARACTERS = ["\x00", "\x1b", "\x7f", "\u0085"]


async def test_control_characters_are_refused_and_nothing_is_stored(service: Service) -> None:
    vendor = await service.verified()
    vid = vendor["vendor_id"]
    headers = vendor_auth(str(uuid.uuid4()))
    for char in CONTROL_CHARACTERS:
        bodies = [
            profile(documents={**profile()["documents"], "npwp_card": f"https://d/{char}.pdf"}),
            profile(legal_name=f"CV {char}Batik"),
            profile(address=f"Jl. {char}Baru"),
            profile(contact={**profile()["contact"], "name": f"Si{char}ti"}),
            profile(nib=f"{char}" + "1" * 12),
        ]
        for body in bodies:
            assert_problem(await service.client.post("/vendors", json=body, headers=headers), 422)
        docs = {**vendor["documents"], "nib_certificate": f"https://d/{char}"}
        assert_problem(await service.update(vendor, documents=docs), 422, "validation-error")
        renewal = await service.client.post(
            f"/vendors/{vid}/kswp-renewal",
            json={"valid_until": "2099-01-01", "certificate": f"https://d/{char}"},
            headers=vendor_auth(vid),
        )
        assert_problem(renewal, 422, "validation-error")
        for action, payload in (
            ("reject", {"reasons": [f"x{char}y"]}),
            ("suspend", {"reason": f"x{char}y"}),
        ):
            assert_problem(await service.act(vid, action, payload), 422, "validation-error")
        blacklist = await service.client.put(
            "/vendor-blacklist/012345678901000", json={"reason": f"x{char}y"}, headers=MANAGER
        )
        assert_problem(blacklist, 422, "validation-error")
    async with service.app.state.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM vendors") == 1
        assert await conn.fetchval("SELECT count(*) FROM npwp_blacklist") == 0
    assert (await service.get(vid))["version"] == vendor["version"]


async def test_wrong_json_types_and_oversized_lists_are_refused(service: Service) -> None:
    headers = vendor_auth(str(uuid.uuid4()))
    for field, value in (
        ("is_pkp", 1),
        ("is_pkp", "true"),
        ("capital", True),
        ("annual_sales", "1500000000"),
        ("kbli", [f"{n:05d}" for n in range(51)]),
        ("kbli_editions", {f"{n:05d}": "2020" for n in range(51)}),
        ("documents", {"nib_certificate": ["https://d/1"]}),
    ):
        response = await service.client.post(
            "/vendors", json=profile(**{field: value}), headers=headers
        )
        body = assert_problem(response, 422, "validation-error")
        assert any(e["field"].split(".")[0] == field for e in body["errors"]), (field, body)
    vendor = await service.register()
    too_many = await service.act(vendor["vendor_id"], "reject", {"reasons": ["x"] * 21})
    assert_problem(too_many, 422, "validation-error")
