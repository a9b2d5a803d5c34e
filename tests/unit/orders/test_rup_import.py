"""RUP CSV files as spreadsheets export them: `;`, Indonesian amounts, BOM, CRLF."""

from __future__ import annotations

import pytest

from services.orders.rup_import import ImportRefused, parse_amount, parse_rup_csv
from shared.contracts.orders import ProcurementType

SPREADSHEET_EXPORT = (
    "\ufeffKode RUP;Nama Paket;Kode OPD;Tahun Anggaran;Jenis Pengadaan;Pagu (Rp);Sumber Dana;"
    "Metode Pemilihan\r\n"
    "RUP-001;Belanja ATK Dinas Pendidikan;DISDIK;2026;Barang;1.500.000.000;APBD;"
    "e-Purchasing\r\n"
    '"RUP-002";"Seragam batik; guru SD";DISDIK;2026;Jasa Lainnya;"Rp 250.000.000,00";;\r\n'
    ";;;;;;;\r\n"
).encode()


def test_a_spreadsheet_export_is_read() -> None:
    rows = parse_rup_csv(SPREADSHEET_EXPORT)
    assert [r.row for r in rows] == [2, 3]
    first, second = (r.values for r in rows)
    assert first == {
        "rup_code": "RUP-001",
        "package_name": "Belanja ATK Dinas Pendidikan",
        "opd_id": "DISDIK",
        "fiscal_year": 2026,
        "procurement_type": ProcurementType.BARANG,
        "pagu": 1_500_000_000,
        "funding_source": "APBD",
        "method": "e-Purchasing",
    }
    assert second["package_name"] == "Seragam batik; guru SD"
    assert second["pagu"] == 250_000_000
    assert second["procurement_type"] is ProcurementType.JASA_LAINNYA
    assert second["funding_source"] == "APBD"  # an empty optional cell takes the default


def test_a_comma_separated_file_with_plain_amounts_is_read() -> None:
    data = (
        b"kode_rup,nama_paket,opd,tahun_anggaran,jenis_pengadaan,pagu\n"
        b"R-9,Jalan,PU,2026,pekerjaan konstruksi,400000000\n"
    )
    (row,) = parse_rup_csv(data)
    assert row.values["pagu"] == 400_000_000
    assert row.values["procurement_type"] is ProcurementType.PEKERJAAN_KONSTRUKSI


def test_a_windows_code_page_file_is_read() -> None:
    data = (
        "Kode RUP;Nama Paket;OPD;TA;Jenis Pengadaan;Pagu\n"
        "R-1;Kursi café;DISDIK;2026;Barang;10.000\n"
    )
    (row,) = parse_rup_csv(data.encode("cp1252"))
    assert row.values["package_name"] == "Kursi café"


def test_every_bad_cell_is_reported_with_its_row() -> None:
    data = (
        b"Kode RUP;Nama Paket;OPD;Tahun Anggaran;Jenis Pengadaan;Pagu\r\n"
        b"R-1;Baik;DISDIK;2026;Barang;1.000.000\r\n"
        b"R-2;;DISDIK;26;Sembako;1.000,50\r\n"
        b"R-1;Kembar;DISDIK;2026;Barang;1.000\r\n"
        b"R 4;Tab\tdi nama;DISDIK;2026;Barang;-5\r\n"
    )
    with pytest.raises(ImportRefused) as refused:
        parse_rup_csv(data)
    errors = {(e["row"], e["field"]) for e in refused.value.errors}
    assert errors == {
        (3, "package_name"),
        (3, "fiscal_year"),
        (3, "procurement_type"),
        (3, "pagu"),
        (4, "rup_code"),
        (5, "rup_code"),
        (5, "package_name"),
        (5, "pagu"),
    }
    duplicate = next(e for e in refused.value.errors if e["row"] == 4)
    assert duplicate["reason"] == "R-1 already appears in row 2"


def test_missing_columns_are_named() -> None:
    with pytest.raises(ImportRefused) as refused:
        parse_rup_csv(b"Kode RUP;Nama Paket\nR-1;x\n")
    assert {e["field"] for e in refused.value.errors} == {
        "opd_id",
        "fiscal_year",
        "procurement_type",
        "pagu",
    }


@pytest.mark.parametrize(
    "data", [b"", b"\x00\x01\x02", b"Kode RUP;Nama Paket;OPD;TA;Jenis Pengadaan;Pagu\r\n"]
)
def test_empty_or_binary_files_are_refused(data: bytes) -> None:
    with pytest.raises(ImportRefused):
        parse_rup_csv(data)


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("1.500.000.000", 1_500_000_000),
        ("Rp 1.500.000.000,00", 1_500_000_000),
        ("Rp.25.000", 25_000),
        ("2500000", 2_500_000),
        ("2500000,0", 2_500_000),
    ],
)
def test_amounts_in_indonesian_notation(text: str, amount: int) -> None:
    assert parse_amount(text) == amount


@pytest.mark.parametrize("text", ["1,500,000", "1.50", "12.34.567", "1.000,5", "0", "abc", ""])
def test_amounts_that_are_not_whole_rupiah_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)
