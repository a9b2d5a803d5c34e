"""Pure vendor rules, no I/O: identifiers, business scale, documents, the state machine."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.vendors.domain import (
    TRANSITIONS,
    Action,
    DocumentKind,
    IllegalTransition,
    Profile,
    business_scale,
    changed_fields,
    classify,
    is_local,
    kswp_action,
    missing_documents,
    needs_review,
    normalise_npwp,
    npwp_aliases,
    suspension_over,
    transition,
)
from shared.contracts.vendors import BusinessScale, VendorState
from tests.vendors.helpers import profile

BN = 1_000_000_000
S = VendorState
DAY = date(2026, 11, 26)


def make(**overrides: Any) -> Profile:
    return Profile.model_validate(profile(**overrides))


@pytest.mark.parametrize(
    ("capital", "sales", "scale"),
    [
        (0, None, BusinessScale.MIKRO),
        (1 * BN, None, BusinessScale.MIKRO),
        (1 * BN + 1, None, BusinessScale.KECIL),
        (5 * BN, None, BusinessScale.KECIL),
        (5 * BN + 1, None, BusinessScale.MENENGAH),
        (10 * BN, None, BusinessScale.MENENGAH),
        (10 * BN + 1, None, BusinessScale.BESAR),
        # capital decides even when sales would say otherwise
        (1 * BN, 60 * BN, BusinessScale.MIKRO),
        (None, 2 * BN, BusinessScale.MIKRO),
        (None, 2 * BN + 1, BusinessScale.KECIL),
        (None, 15 * BN, BusinessScale.KECIL),
        (None, 15 * BN + 1, BusinessScale.MENENGAH),
        (None, 50 * BN, BusinessScale.MENENGAH),
        (None, 50 * BN + 1, BusinessScale.BESAR),
    ],
)
def test_business_scale_pp_7_2021(capital: int | None, sales: int | None, scale: str) -> None:
    assert business_scale(capital, sales) is scale


def test_business_scale_needs_an_amount() -> None:
    with pytest.raises(ValueError):
        business_scale(None, None)


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("012345678901000", "012345678901000"),
        ("01.234.567.8-901.000", "012345678901000"),
        ("0012345678901000", "0012345678901000"),
        ("3375011203900001", "3375011203900001"),
    ],
)
def test_npwp_is_normalised_to_digits(raw: str, digits: str) -> None:
    assert normalise_npwp(raw) == digits


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "01234567890100",
        "01234567890100012",
        "01.234.567.8901.000",
        "01 234 567 8 901 000",
        "01.234.567.8-901.00O",
        "٠١٢٣٤٥٦٧٨٩٠١٠٠٠",
    ],
)
def test_npwp_other_shapes_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_npwp(raw)


def test_npwp_aliases_join_15_and_16_digit_forms() -> None:
    assert npwp_aliases("012345678901000") == {"012345678901000", "0012345678901000"}
    assert npwp_aliases("0012345678901000") == {"0012345678901000", "012345678901000"}
    assert npwp_aliases("3375011203900001") == {"3375011203900001"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nib", "123456789012"),
        ("nib", "12345678901234"),
        ("nib", 1234567890123),
        ("nib", "1234567890123\n"),
        ("npwp", "012345678901000\n"),
        ("kbli", ["1313"]),
        ("kbli", ["131340"]),
        ("kbli", []),
        ("kbli", ["13134", "13134"]),
        ("region_code", "33"),
        ("region_code", "3375"),
        ("region_code", "33.7"),
        ("region_code", "33.75.1"),
        ("region_code", "33.75\n"),
        ("capital", 1.5),
        ("capital", "100"),
        ("capital", -1),
        ("capital", 10**19),
        ("annual_sales", 2.0),
        ("is_pkp", "yes"),
        ("kswp_valid_until", 1767225600),
        ("legal_form", "Firma"),
        ("legal_name", "CV \x00"),
        ("legal_name", "   "),
    ],
)
def test_profile_refuses_bad_fields(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        make(**{field: value})
    assert any(e["loc"][0] == field for e in info.value.errors()), info.value.errors()


def test_profile_needs_capital_or_sales_and_kswp_date_when_valid() -> None:
    with pytest.raises(ValidationError, match="capital or annual_sales"):
        make(capital=None, annual_sales=None)
    assert make(capital=None).annual_sales == 1_500_000_000
    with pytest.raises(ValidationError, match="kswp_valid_until"):
        make(kswp_valid_until=None)
    assert make(kswp_status="invalid", kswp_valid_until=None).kswp_valid_until is None


def test_region_codes_accept_deeper_levels_and_local_flag() -> None:
    for code in ("33.75", "33.75.01", "33.75.01.1001"):
        assert make(region_code=code).region_code == code
    assert is_local("33.75", "33.75")
    assert is_local("33.75.01.1001", "33.75")
    assert not is_local("33.751", "33.75")
    assert not is_local("33.26", "33.75")
    assert is_local("33.26", "33")


def test_classification_flags() -> None:
    c = classify(make(legal_form="Koperasi", capital=3 * BN, region_code="33.26"), "33.75")
    assert (c.scale, c.is_umk, c.is_koperasi, c.is_local) == (
        BusinessScale.KECIL,
        True,
        True,
        False,
    )
    c = classify(make(capital=20 * BN), "33.75")
    assert (c.scale, c.is_umk, c.is_koperasi, c.is_local) == (
        BusinessScale.BESAR,
        False,
        False,
        True,
    )


def test_required_documents_depend_on_legal_form_and_kswp() -> None:
    docs = {"nib_certificate": "https://d/1", "npwp_card": "https://d/2"}
    assert missing_documents(make(legal_form="UD", documents=docs, kswp_status="invalid")) == []
    assert missing_documents(make(legal_form="perorangan", documents=docs)) == [
        DocumentKind.KSWP_CERTIFICATE
    ]
    for form in ("PT", "CV", "Koperasi"):
        assert missing_documents(make(legal_form=form, documents={})) == [
            DocumentKind.NIB_CERTIFICATE,
            DocumentKind.NPWP_CARD,
            DocumentKind.DEED_OF_ESTABLISHMENT,
            DocumentKind.KSWP_CERTIFICATE,
        ]


ALLOWED = {
    (S.SUBMITTED, Action.VERIFY): S.VERIFIED,
    (S.SUBMITTED, Action.REJECT): S.REJECTED,
    (S.SUBMITTED, Action.RESUBMIT): S.SUBMITTED,
    (S.REJECTED, Action.RESUBMIT): S.SUBMITTED,
    (S.VERIFIED, Action.RESUBMIT): S.SUBMITTED,
    (S.EXPIRED, Action.RESUBMIT): S.SUBMITTED,
    (S.VERIFIED, Action.SUSPEND): S.SUSPENDED,
    (S.SUSPENDED, Action.REINSTATE): S.VERIFIED,
    (S.VERIFIED, Action.EXPIRE): S.EXPIRED,
    (S.EXPIRED, Action.RENEW): S.VERIFIED,
}


@pytest.mark.parametrize(("state", "action"), list(itertools.product(S, Action)))
def test_state_machine(state: VendorState, action: Action) -> None:
    expected = ALLOWED.get((state, action))
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            transition(state, action)
        assert info.value.state is state
    else:
        assert transition(state, action) is expected


def test_state_machine_table_is_the_documented_one() -> None:
    assert TRANSITIONS == ALLOWED


def test_profile_update_effects() -> None:
    before = make()
    address = Profile.model_validate({**before.model_dump(), "address": "Jl. Baru 2"})
    kbli = Profile.model_validate({**before.model_dump(), "kbli": ["13134"]})
    assert changed_fields(before, address) == ["address"]
    reordered = Profile.model_validate({**before.model_dump(), "kbli": before.kbli[::-1]})
    assert changed_fields(before, reordered) == []
    assert not needs_review(S.VERIFIED, before, before)
    assert not needs_review(S.REJECTED, before, before)
    assert not needs_review(S.VERIFIED, before, address)
    assert needs_review(S.VERIFIED, before, kbli)
    assert needs_review(S.EXPIRED, before, kbli)
    assert needs_review(S.SUBMITTED, before, kbli)
    assert needs_review(S.REJECTED, before, address)
    assert not needs_review(S.SUSPENDED, before, address)
    with pytest.raises(IllegalTransition):
        needs_review(S.SUSPENDED, before, kbli)


def test_kswp_lapse_and_renewal() -> None:
    valid = make(kswp_valid_until=DAY.isoformat())
    assert valid.kswp_valid_on(DAY)
    assert not valid.kswp_valid_on(DAY + timedelta(days=1))
    assert kswp_action(S.VERIFIED, valid, DAY) is None
    assert kswp_action(S.VERIFIED, valid, DAY + timedelta(days=1)) is Action.EXPIRE
    assert kswp_action(S.EXPIRED, valid, DAY) is Action.RENEW
    assert kswp_action(S.SUSPENDED, valid, DAY + timedelta(days=1)) is None
    invalid = make(kswp_status="invalid")
    assert kswp_action(S.VERIFIED, invalid, DAY) is Action.EXPIRE


def test_suspension_covers_its_last_day() -> None:
    assert not suspension_over(None, DAY)
    assert not suspension_over(DAY, DAY)
    assert suspension_over(DAY, DAY + timedelta(days=1))
