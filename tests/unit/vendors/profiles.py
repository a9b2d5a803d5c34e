"""Valid vendor registrations to start tests from; pure data, no I/O."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

TODAY = date.today()
INDIVIDUAL_FORMS = ("UD", "perorangan")


def digits(count: int) -> str:
    return "".join(random.choice("0123456789") for _ in range(count))


def new_nib() -> str:
    return digits(13)


def new_npwp() -> str:
    """An entity's NPWP in the old 15-digit form (stored as 0 + these 15 digits)."""
    return digits(15)


def new_nik() -> str:
    """A resident individual's NPWP: the NIK, here of someone from Kota Pekalongan (33.75)."""
    return "3375" + digits(12)


def profile(**overrides: Any) -> dict[str, Any]:
    """A valid registration of a small local CV; override any field (an individual form gets
    a NIK as its NPWP unless one is given)."""
    body: dict[str, Any] = {
        "legal_name": "CV Batik Pesisir",
        "legal_form": "CV",
        "nib": new_nib(),
        "npwp": new_npwp(),
        "kbli": ["13134", "47711"],
        "address": "Jl. Hayam Wuruk 1, Pekalongan",
        "region_code": "33.75.01",
        "capital": 800_000_000,
        "annual_sales": 1_500_000_000,
        "kswp_status": "valid",
        "kswp_valid_until": (TODAY + timedelta(days=180)).isoformat(),
        "is_pkp": False,
        "contact": {"name": "Siti Aminah", "email": "siti@batik.example", "phone": "+62285123456"},
        "documents": {
            "nib_certificate": "https://docs.example/nib.pdf",
            "npwp_card": "https://docs.example/npwp.pdf",
            "deed_of_establishment": "https://docs.example/akta.pdf",
            "kswp_certificate": "https://docs.example/kswp.pdf",
        },
    }
    if overrides.get("legal_form") in INDIVIDUAL_FORMS:
        body["npwp"] = new_nik()
    body.update(overrides)
    return body
