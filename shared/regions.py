"""Kemendagri region codes (kode wilayah administrasi, Permendagri 72/2019 and its updates).

A code has one to four levels: province `33`, regency or city `33.75`, district (kecamatan)
`33.75.01`, village (kelurahan/desa) `33.75.01.1001`. Each level lies inside the one above it,
so "inside" is a prefix match on whole levels.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

REGION_CODE_PATTERN = r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$"

RegionCode = Annotated[
    str,
    StringConstraints(pattern=REGION_CODE_PATTERN),
    Field(description="Kemendagri region code, e.g. 33.75 or 33.75.01.1001", examples=["33.75"]),
]


def within(code: str, area: str) -> bool:
    """Whether region `code` lies inside `area` (the same region or one of its sub-regions)."""
    return code == area or code.startswith(f"{area}.")
