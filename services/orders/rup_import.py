"""Reading RUP packages from the CSV file an OPD's spreadsheet exports.

Spreadsheets in the Indonesian locale write `;` between fields, `1.500.000.000` or
`Rp 1.500.000.000,00` for amounts, a byte-order mark before the header and CRLF line ends;
headers come in several spellings ("Kode RUP", "kode_rup"). Every bad cell is reported with its
spreadsheet row number (the header is row 1); a file with any bad row imports nothing.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from shared.contracts.orders import ProcurementType
from shared.types import single_line

MAX_ROWS = 5000
MAX_BYTES = 2 * 1024 * 1024

OPD_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
RUP_CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$")

# Normalised header -> field. Headers are compared lower-cased with anything but letters and
# digits collapsed to "_".
HEADERS = {
    "kode_rup": "rup_code",
    "rup_code": "rup_code",
    "kode_paket": "rup_code",
    "nama_paket": "package_name",
    "package_name": "package_name",
    "opd": "opd_id",
    "kode_opd": "opd_id",
    "opd_id": "opd_id",
    "kode_satker": "opd_id",
    "satuan_kerja": "opd_id",
    "tahun_anggaran": "fiscal_year",
    "ta": "fiscal_year",
    "fiscal_year": "fiscal_year",
    "jenis_pengadaan": "procurement_type",
    "procurement_type": "procurement_type",
    "pagu": "pagu",
    "pagu_rp": "pagu",
    "total_pagu": "pagu",
    "sumber_dana": "funding_source",
    "funding_source": "funding_source",
    "metode": "method",
    "metode_pemilihan": "method",
    "metode_pengadaan": "method",
    "method": "method",
}
REQUIRED = ("rup_code", "package_name", "opd_id", "fiscal_year", "procurement_type", "pagu")
OPTIONAL_DEFAULTS = {"funding_source": "APBD", "method": "e-Purchasing"}

_PROCUREMENT_TYPES = {re.sub(r"[^a-z]+", "", t.value): t for t in ProcurementType} | {
    "jasalain": ProcurementType.JASA_LAINNYA,
    "konstruksi": ProcurementType.PEKERJAAN_KONSTRUKSI,
}

# 1.500.000.000 / 1500000000, optionally ",00" cents and an "Rp" prefix.
_AMOUNT = re.compile(r"^(?:rp\.?)?\s*(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d+))?$", re.IGNORECASE)


@dataclass(frozen=True)
class RupRow:
    row: int | None  # the spreadsheet row; None for a package sent through the API
    values: dict[str, Any]


class ImportRefused(Exception):
    """The file has errors: one entry per bad cell, `{"row", "field", "reason"}`."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} error(s) in the file")
        self.errors = errors


def _header_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Older spreadsheet versions save "CSV" in the Windows code page.
        return data.decode("cp1252", errors="replace")


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (";", ",", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ";"


def parse_amount(text: str) -> int:
    """A whole-rupiah amount in Indonesian notation; cents must be zero."""
    match = _AMOUNT.match(text.strip().replace(" ", ""))
    if not match:
        raise ValueError(f"{text!r} is not an amount in rupiah (e.g. 1.500.000.000)")
    whole, cents = match.groups()
    if cents and int(cents) != 0:
        raise ValueError(f"{text!r}: pagu is in whole rupiah")
    amount = int(whole.replace(".", ""))
    if amount <= 0:
        raise ValueError("pagu must be more than zero")
    return amount


def parse_procurement_type(text: str) -> ProcurementType:
    key = re.sub(r"[^a-z]+", "", text.lower())
    if key not in _PROCUREMENT_TYPES:
        names = "Barang, Pekerjaan Konstruksi, Jasa Konsultansi, Jasa Lainnya"
        raise ValueError(f"{text!r} is not a procurement type ({names})")
    return _PROCUREMENT_TYPES[key]


def parse_fiscal_year(text: str) -> int:
    if not re.fullmatch(r"\d{4}", text.strip()) or not 2000 <= int(text) <= 2100:
        raise ValueError(f"{text!r} is not a fiscal year")
    return int(text)


def _text(limit: int, pattern: re.Pattern[str] | None = None) -> Any:
    def parse(text: str) -> str:
        value = single_line(text.strip())
        if not value:
            raise ValueError("must not be empty")
        if len(value) > limit:
            raise ValueError(f"at most {limit} characters")
        if pattern is not None and not pattern.match(value):
            raise ValueError(f"{value!r} has characters a code may not contain")
        return value

    return parse


PARSERS: dict[str, Any] = {
    "rup_code": _text(40, RUP_CODE_PATTERN),
    "package_name": _text(300),
    "opd_id": _text(40, OPD_PATTERN),
    "fiscal_year": parse_fiscal_year,
    "procurement_type": parse_procurement_type,
    "pagu": parse_amount,
    "funding_source": _text(100),
    "method": _text(100),
}


def parse_rup_csv(data: bytes) -> list[RupRow]:
    """The packages in the file, or `ImportRefused` listing every bad cell."""
    if len(data) > MAX_BYTES:
        raise ImportRefused(
            [{"row": None, "field": "file", "reason": f"at most {MAX_BYTES} bytes"}]
        )
    text = _decode(data)
    if "\x00" in text:
        raise ImportRefused([{"row": None, "field": "file", "reason": "not a text file"}])
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise ImportRefused(
            [{"row": 1, "field": "header", "reason": "the file is empty"}]
        ) from None
    columns = [HEADERS.get(_header_key(h)) for h in header]
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        raise ImportRefused(
            [{"row": 1, "field": f, "reason": "no column for this field"} for f in missing]
        )
    errors: list[dict[str, Any]] = []
    rows: list[RupRow] = []
    seen: dict[str, int] = {}
    try:
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue  # blank rows spreadsheets leave at the end
            if len(rows) >= MAX_ROWS:
                errors.append(
                    {"row": number, "field": "file", "reason": f"at most {MAX_ROWS} rows"}
                )
                break
            values: dict[str, Any] = dict(OPTIONAL_DEFAULTS)
            for column, cell in zip(columns, cells, strict=False):
                if column is None:
                    continue
                if not cell.strip() and column in OPTIONAL_DEFAULTS:
                    continue
                try:
                    values[column] = PARSERS[column](cell)
                except ValueError as exc:
                    errors.append({"row": number, "field": column, "reason": str(exc)})
            for column in REQUIRED:
                if column not in values and not any(
                    e["row"] == number and e["field"] == column for e in errors
                ):
                    errors.append({"row": number, "field": column, "reason": "missing"})
            code = values.get("rup_code")
            if code in seen:
                errors.append(
                    {
                        "row": number,
                        "field": "rup_code",
                        "reason": f"{code} already appears in row {seen[code]}",
                    }
                )
            elif code is not None:
                seen[code] = number
            rows.append(RupRow(number, values))
    except csv.Error as exc:
        errors.append({"row": reader.line_num, "field": "file", "reason": str(exc)})
    if errors:
        raise ImportRefused(errors)
    if not rows:
        raise ImportRefused([{"row": 2, "field": "file", "reason": "no packages in the file"}])
    return rows
