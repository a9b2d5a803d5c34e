"""Kemendagri region codes (kode wilayah administrasi pemerintahan), one type for every service.

A code names a province (`33`), a regency or city (`33.75`, Kota Pekalongan), a district
(kecamatan, `33.75.01`) or a village (desa/kelurahan, `33.75.01.1001`): two digits, then two,
two and four, joined by dots. The first two digits are one of the provinces; a code below a
region starts with that region's code and a dot, so `within` is a prefix test.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from shared.types import refusal

_CODE = re.compile(r"[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?")

# Province codes in use (Kemendagri, after the 2022 Papua provinces).
PROVINCES = frozenset(
    {
        "11", "12", "13", "14", "15", "16", "17", "18", "19", "21",
        "31", "32", "33", "34", "35", "36",
        "51", "52", "53",
        "61", "62", "63", "64", "65",
        "71", "72", "73", "74", "75", "76",
        "81", "82",
        "91", "92", "93", "94", "95", "96",
    }
)  # fmt: skip

PROVINCE, REGENCY, DISTRICT, VILLAGE = 1, 2, 3, 4
_LEVEL_NAMES = {PROVINCE: "province", REGENCY: "regency/city", DISTRICT: "district"}


def level(code: str) -> int:
    """1 for a province, 2 for a regency or city, 3 for a district, 4 for a village."""
    return code.count(".") + 1


def check_region_code(value: str, min_level: int = PROVINCE) -> str:
    """`value` if it is a Kemendagri code of at least `min_level`; a field error otherwise."""
    if not _CODE.fullmatch(value) or value[:2] not in PROVINCES:
        raise refusal(
            "a Kemendagri region code: province 33, regency/city 33.75, district 33.75.01 "
            "or village 33.75.01.1001"
        )
    if level(value) < min_level:
        raise refusal(f"a region code of a {_LEVEL_NAMES[min_level]} or deeper, e.g. 33.75")
    return value


def within(code: str, area: str) -> bool:
    """Whether `code` is `area` itself or lies inside it (33.75.01.1001 lies in 33.75)."""
    return code == area or code.startswith(area + ".")


def _regency_or_deeper(value: str) -> str:
    return check_region_code(value, REGENCY)


_EXAMPLES = ["33.75", "33.75.01", "33.75.01.1001"]

# Any level: a province, regency/city, district or village.
RegionCode = Annotated[
    str,
    Field(max_length=13, examples=["33", *_EXAMPLES]),
    AfterValidator(check_region_code),
]
# An address names at least its regency or city (kabupaten/kota).
AddressRegionCode = Annotated[
    str, Field(max_length=13, examples=_EXAMPLES), AfterValidator(_regency_or_deeper)
]
