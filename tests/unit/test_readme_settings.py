"""The README's configuration table names every setting each service reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ekatalog.cli import SERVICES, _settings_class

README = Path(__file__).resolve().parents[2] / "README.md"


def _documented() -> set[str]:
    text = README.read_text()
    start = text.index("| variable (after the prefix)")
    table = text[start : text.index("\n\n", start)]
    return set(re.findall(r"`([A-Z0-9_]+)`", table))


@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_of_the_service_is_in_the_readme(service: str) -> None:
    fields = {name.upper() for name in _settings_class(service).model_fields}
    assert fields - _documented() == set()
