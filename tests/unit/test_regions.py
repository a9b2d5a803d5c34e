"""Kemendagri region codes: every level accepted, malformed and unknown-province codes refused."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.regions import AddressRegionCode, RegionCode, level, within

ANY_LEVEL = TypeAdapter(RegionCode)
ADDRESS = TypeAdapter(AddressRegionCode)


@pytest.mark.parametrize("code", ["33", "33.75", "33.75.01", "33.75.01.1001", "96.01"])
def test_every_level_is_a_region_code(code: str) -> None:
    assert ANY_LEVEL.validate_python(code) == code


@pytest.mark.parametrize(
    "code",
    ["33.75.01.10", "33.7", "3375", "33.75.1", "33.75\n", "00.75", "99", "٣٣.٧٥", "", 33.75],
)
def test_malformed_codes_are_refused(code: object) -> None:
    with pytest.raises(ValidationError):
        ANY_LEVEL.validate_python(code)


def test_an_address_names_at_least_a_regency() -> None:
    assert ADDRESS.validate_python("33.75.01.1001") == "33.75.01.1001"
    with pytest.raises(ValidationError, match="regency/city or deeper"):
        ADDRESS.validate_python("33")


def test_within_is_a_prefix_on_whole_levels() -> None:
    assert within("33.75", "33.75")
    assert within("33.75.01.1001", "33.75")
    assert within("33.75.01.1001", "33")
    assert not within("33.751", "33.75")
    assert not within("33.26", "33.75")
    assert [level(c) for c in ("33", "33.75", "33.75.01", "33.75.01.1001")] == [1, 2, 3, 4]
