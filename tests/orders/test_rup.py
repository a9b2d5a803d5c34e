"""RUP packages by API and by the CSV file an OPD's spreadsheet exports."""

from __future__ import annotations

import uuid

from tests.orders.helpers import AUDITOR, MANAGER, Platform, events_on


def spreadsheet(opd: str, codes: list[str], pagu: str = "1.500.000.000") -> bytes:
    header = (
        "\ufeffKode RUP;Nama Paket;Kode OPD;Tahun Anggaran;Jenis Pengadaan;Pagu;Sumber Dana\r\n"
    )
    rows = "".join(
        f"{code};Belanja seragam {i};{opd};2026;Barang;{pagu};APBD\r\n"
        for i, code in enumerate(codes)
    )
    return (header + rows + ";;;;;;\r\n").encode()


async def upload(platform: Platform, data: bytes, headers: dict[str, str]) -> dict[str, object]:
    response = await platform.client.post(
        "/rup/import", content=data, headers={**headers, "Content-Type": "text/csv"}
    )
    return {"status": response.status_code, **response.json()}


async def test_a_spreadsheet_export_imports_once(platform: Platform) -> None:
    buyers = platform.buyers()
    codes = [f"R-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    first = await upload(platform, spreadsheet(buyers.opd_id, codes), buyers.pp)
    assert first == {"status": 200, "created": codes, "updated": [], "unchanged": []}
    again = await upload(platform, spreadsheet(buyers.opd_id, codes), buyers.pp)
    assert again == {"status": 200, "created": [], "updated": [], "unchanged": codes}
    raised = await upload(platform, spreadsheet(buyers.opd_id, codes[:1], "2.000.000.000"), MANAGER)
    assert raised == {"status": 200, "created": [], "updated": codes[:1], "unchanged": []}

    package = (await platform.client.get(f"/rup/{codes[0]}", headers=buyers.ppk)).json()
    assert package["pagu"] == 2_000_000_000 and package["version"] == 2
    assert package["remaining"] == 2_000_000_000
    events = await events_on(platform, "rup", codes[0], 2)
    assert [e.type for e in events] == ["ekatalog.rup.registered.v1", "ekatalog.rup.updated.v1"]
    assert events[1].data["changed_fields"] == ["pagu"] and events[1].data["version"] == 2
    listed = (await platform.client.get("/rup", headers=buyers.pp)).json()
    assert [p["rup_code"] for p in listed["items"]] == sorted(codes)


async def test_a_file_with_a_bad_row_imports_nothing(platform: Platform) -> None:
    buyers = platform.buyers()
    good, bad = f"R-{uuid.uuid4().hex[:8]}", f"R-{uuid.uuid4().hex[:8]}"
    data = spreadsheet(buyers.opd_id, [good]) + (
        f"{bad};Paket;{buyers.opd_id};2026;Sembako;1.000.000;APBD\r\n".encode()
    )
    refused = await upload(platform, data, MANAGER)
    assert refused["status"] == 422
    assert refused["errors"] == [
        {
            "row": 4,
            "field": "procurement_type",
            "reason": "'Sembako' is not a procurement type (Barang, Pekerjaan Konstruksi, "
            "Jasa Konsultansi, Jasa Lainnya)",
        }
    ]
    assert "row 4: procurement_type" in str(refused["detail"])
    missing = await platform.client.get(f"/rup/{good}", headers=MANAGER)
    assert missing.status_code == 404


async def test_opd_staff_import_only_their_own_opds_packages(platform: Platform) -> None:
    buyers, others = platform.buyers(), platform.buyers()
    code = f"R-{uuid.uuid4().hex[:8]}"
    data = spreadsheet(buyers.opd_id, [f"R-{uuid.uuid4().hex[:8]}"]) + (
        f"{code};Paket;{others.opd_id};2026;Barang;1.000.000;APBD\r\n".encode()
    )
    refused = await upload(platform, data, buyers.pp)
    assert refused["status"] == 422
    assert [(e["row"], e["field"]) for e in refused["errors"]] == [(4, "opd_id")]  # type: ignore[union-attr]
    for role in (buyers.treasurer, AUDITOR):
        assert (await upload(platform, data, role))["status"] == 403


async def test_a_package_cannot_move_opd_or_drop_below_its_live_orders(
    platform: Platform,
) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=10, price=1_000_000)
    code = await platform.rup(buyers, pagu=10_000_000)
    await platform.place(buyers, code, seller, [(product["id"], 4)])
    body = {
        "rup_code": code,
        "opd_id": buyers.opd_id,
        "package_name": "Pengadaan seragam batik",
        "fiscal_year": 2026,
        "procurement_type": "barang",
    }
    lower = await platform.client.post("/rup", json={**body, "pagu": 3_000_000}, headers=MANAGER)
    assert lower.status_code == 422
    assert lower.json()["errors"] == [
        {"field": "pagu", "reason": "live orders already hold Rp4.000.000 of this package"}
    ]
    moved = await platform.client.post(
        "/rup", json={**body, "pagu": 10_000_000, "opd_id": "ELSEWHERE"}, headers=MANAGER
    )
    assert moved.status_code == 422 and moved.json()["errors"][0]["field"] == "opd_id"
    same = await platform.client.post("/rup", json={**body, "pagu": 10_000_000}, headers=MANAGER)
    assert same.status_code == 200
    assert same.json()["version"] == 1 and same.json()["remaining"] == 6_000_000


async def test_rup_reads_are_scoped_to_the_opd(platform: Platform) -> None:
    buyers, others = platform.buyers(), platform.buyers()
    code = await platform.rup(buyers)
    assert (await platform.client.get(f"/rup/{code}", headers=others.pp)).status_code == 403
    assert (await platform.client.get(f"/rup/{code}", headers=AUDITOR)).status_code == 200
    scoped = await platform.client.get(f"/rup?opd_id={buyers.opd_id}", headers=others.ppk)
    assert scoped.status_code == 403 and others.opd_id in scoped.json()["detail"]
    vendor = (await platform.seller()).headers
    assert (await platform.client.get("/rup", headers=vendor)).status_code == 403
    bad = await platform.client.post(
        "/rup",
        json={
            "rup_code": "R-1",
            "opd_id": buyers.opd_id,
            "package_name": "x",
            "fiscal_year": "2026",
            "procurement_type": "barang",
            "pagu": 1.5,
        },
        headers=MANAGER,
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"fiscal_year", "pagu"}


async def test_an_oversized_upload_is_refused_before_it_is_read_whole(platform: Platform) -> None:
    buyers = platform.buyers()
    row = f"R-1;Paket;{buyers.opd_id};2026;Barang;1.000;APBD\r\n".encode()
    data = spreadsheet(buyers.opd_id, []) + row * (2_200_000 // len(row))
    refused = await upload(platform, data, MANAGER)
    assert refused["status"] == 413 and refused["limit"] == 2 * 1024 * 1024
