"""Pure vendor rules, no I/O: identifiers, business scale, documents, the state machine, and
the request bodies that carry them."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from services.vendors.api import DeclarationBody, RegistrationBody
from services.vendors.domain import (
    TRANSITIONS,
    Action,
    BusinessForm,
    DocumentKind,
    IllegalTransition,
    KswpRenewal,
    KswpRenewalRequired,
    Profile,
    Vendor,
    business_scale,
    canonical_npwp,
    changed_fields,
    lapsed,
    missing_documents,
    needs_review,
    renewed,
    snapshot_changes,
    suspension_over,
    transition,
)
from shared.contracts.vendors import BusinessScale, KbliEdition, LegalForm, VendorState
from tests.unit.vendors.profiles import new_nik, profile

BN = 1_000_000_000
S = VendorState
DAY = date(2026, 11, 26)


def make(**overrides: Any) -> Profile:
    return RegistrationBody.model_validate(profile(**overrides)).profile()


def refused_fields(**overrides: Any) -> list[str]:
    """The fields a registration with `overrides` is refused for, by the body or the domain."""
    try:
        make(**overrides)
    except ValidationError as exc:
        return [str(e["loc"][0]) for e in exc.errors()]
    except RequestValidationError as exc:
        return [str(e["loc"][1]) for e in exc.errors()]
    return []


def vendor(state: VendorState = VendorState.VERIFIED, **overrides: Any) -> Vendor:
    moment = datetime(2026, 11, 26, tzinfo=UTC)
    return Vendor(uuid4(), state, 1, make(**overrides), None, moment, moment)


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
        # annual sales decide whenever they are known (PP 7/2021 art. 35(4)-(5))
        (1 * BN, 60 * BN, BusinessScale.BESAR),
        (20 * BN, 1 * BN, BusinessScale.MIKRO),
        (0, 2 * BN + 1, BusinessScale.KECIL),
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
    ("raw", "form", "canonical"),
    [
        ("012345678901000", BusinessForm.CV, "0012345678901000"),
        ("01.234.567.8-901.000", BusinessForm.PT, "0012345678901000"),
        ("0012345678901000", BusinessForm.KOPERASI, "0012345678901000"),
        ("012345678901000", BusinessForm.PT_PERORANGAN, "0012345678901000"),
        ("3375011203900001", BusinessForm.PERORANGAN, "3375011203900001"),
        ("3375011203900001", BusinessForm.UD, "3375011203900001"),
        # a blacklist entry has no legal form: either form, stored as 16 digits
        ("01.234.567.8-901.000", None, "0012345678901000"),
        ("3375011203900001", None, "3375011203900001"),
    ],
)
def test_npwp_has_one_canonical_16_digit_form(
    raw: str, form: BusinessForm | None, canonical: str
) -> None:
    assert canonical_npwp(raw, form) == canonical


@pytest.mark.parametrize(
    ("raw", "form"),
    [
        ("", None),
        ("01234567890100", None),
        ("01234567890100012", None),
        ("01.234.567.8901.000", None),
        ("01 234 567 8 901 000", None),
        ("01.234.567.8-901.00O", None),
        ("٠١٢٣٤٥٦٧٨٩٠١٠٠٠", None),
        # an individual's NPWP is the NIK: no 15-digit form, a province code first
        ("012345678901000", BusinessForm.PERORANGAN),
        ("01.234.567.8-901.000", BusinessForm.UD),
        ("0012345678901000", BusinessForm.UD),
        ("9912345678901000", BusinessForm.PERORANGAN),
        # an entity's 16-digit NPWP is 0 + its 15 digits
        ("3375011203900001", BusinessForm.PT),
        ("3375011203900001", BusinessForm.CV),
    ],
)
def test_npwp_other_shapes_are_refused(raw: str, form: BusinessForm | None) -> None:
    with pytest.raises(ValueError):
        canonical_npwp(raw, form)


def test_the_old_and_new_form_of_one_npwp_are_no_change() -> None:
    old = make(npwp="01.234.567.8-901.000")
    new = make(npwp="0012345678901000", nib=old.nib)
    assert old.npwp == new.npwp == "0012345678901000"
    assert changed_fields(old, new) == []
    assert not needs_review(S.VERIFIED, changed_fields(old, new))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nib", "123456789012"),
        ("nib", "12345678901234"),
        ("nib", 1234567890123),
        ("nib", "1234567890123\n"),
        ("npwp", "012345678901000\n"),
        ("npwp", "0123456789010\x00"),
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
        ("legal_name", "CV\x1b[31m"),
        ("legal_name", "   "),
        ("address", "Jl. \x00"),
        ("address", "Jl.\nBaru"),
        ("contact", {"name": "S\x00", "email": "s@x.example", "phone": "+62285123"}),
        ("contact", {"name": "S", "email": "s\x00@x.example", "phone": "+62285123"}),
        ("documents", {"nib_certificate": "https://docs.example/\x00.pdf"}),
        ("documents", {"npwp_card": "https://docs.example/a\x7f.pdf"}),
        ("kbli_editions", {"13134": "2017"}),
        ("kbli_editions", {"99999": "2020"}),
        ("kbli", ["13134"] * 51),
        ("is_pkp", 1),
        ("capital", True),
    ],
)
def test_profile_refuses_bad_fields(field: str, value: object) -> None:
    assert field in refused_fields(**{field: value})


def test_profile_needs_capital_or_sales_and_kswp_date_when_valid() -> None:
    assert refused_fields(capital=None, annual_sales=None) == ["annual_sales"]
    assert make(capital=None).annual_sales == 1_500_000_000
    assert refused_fields(kswp_valid_until=None) == ["kswp_valid_until"]
    assert make(kswp_status="invalid", kswp_valid_until=None).kswp_valid_until is None


def test_region_codes_accept_deeper_levels_and_local_flag() -> None:
    for code in ("33.75", "33.75.01", "33.75.01.1001"):
        assert make(region_code=code).region_code == code
    assert refused_fields(region_code="33") == ["region_code"]
    assert refused_fields(region_code="33.75.01.10") == ["region_code"]
    assert vendor(region_code="33.75").snapshot("33.75").is_local
    assert vendor(region_code="33.75.01.1001").snapshot("33.75").is_local
    assert not vendor(region_code="33.26").snapshot("33.75").is_local
    assert vendor(region_code="33.26").snapshot("33").is_local


def test_a_snapshot_is_of_the_city_and_the_version_asked_for() -> None:
    # A vendor remembers its snapshot for the write's event and answer; never across cities or
    # versions.
    v = vendor(region_code="33.75.01")
    assert v.snapshot("33.75").is_local
    assert not v.snapshot("33.26").is_local
    assert v.snapshot("33.75").is_local
    moved = replace(
        v,
        version=v.version + 1,
        profile=v.profile.model_copy(update={"region_code": "33.26.01"}),
    )
    snap = moved.snapshot("33.75")
    assert (snap.version, snap.region_code, snap.is_local) == (v.version + 1, "33.26.01", False)


def test_snapshot_flags() -> None:
    s = vendor(legal_form="Koperasi", capital=3 * BN, annual_sales=None, region_code="33.26")
    snap = s.snapshot("33.75")
    assert (snap.scale, snap.is_umk, snap.is_koperasi, snap.is_local) == (
        BusinessScale.KECIL,
        True,
        True,
        False,
    )
    snap = vendor(capital=20 * BN, annual_sales=None).snapshot("33.75")
    assert (snap.scale, snap.is_umk, snap.is_koperasi, snap.is_local) == (
        BusinessScale.BESAR,
        False,
        False,
        True,
    )
    # a small capital does not make a business with Rp60 bn of sales a UMK
    snap = vendor(capital=1 * BN, annual_sales=60 * BN).snapshot("33.75")
    assert (snap.scale, snap.is_umk) == (BusinessScale.BESAR, False)


def test_pt_perorangan_is_published_as_a_pt() -> None:
    snap = vendor(legal_form="PT Perorangan").snapshot("33.75")
    assert (snap.legal_form, snap.pt_perorangan) == (LegalForm.PT, True)
    assert vendor(legal_form="PT").snapshot("33.75").pt_perorangan is False


def test_kbli_codes_keep_their_edition() -> None:
    p = make(kbli=["47711", "13134"], kbli_editions={"13134": "2020"})
    assert [(k.code, k.edition) for k in p.kbli] == [
        ("13134", KbliEdition.KBLI_2020),
        ("47711", KbliEdition.KBLI_2025),
    ]
    snap = vendor(kbli=["47711", "13134"], kbli_editions={"13134": "2020"}).snapshot("33.75")
    assert snap.kbli == ["13134", "47711"]
    assert snap.kbli_editions == {"13134": "2020", "47711": "2025"}
    # the same code in another edition is another activity: a change the manager reviews
    current = make(kbli=["13134"])
    same = {"nib": current.nib, "npwp": current.npwp, "kbli": ["13134"]}
    assert changed_fields(current, make(**same)) == []
    edition_2020 = make(**same, kbli_editions={"13134": "2020"})
    assert changed_fields(current, edition_2020) == ["kbli"]


def test_required_documents_depend_on_legal_form_and_kswp() -> None:
    docs = {"nib_certificate": "https://d/1", "npwp_card": "https://d/2"}
    assert missing_documents(make(legal_form="UD", documents=docs, kswp_status="invalid")) == []
    assert missing_documents(make(legal_form="perorangan", documents=docs)) == [
        DocumentKind.KSWP_CERTIFICATE
    ]
    # PT Perorangan: no deed (PP 8/2021); its founding statement or registration certificate
    kswp = {**docs, "kswp_certificate": "https://d/3"}
    assert missing_documents(make(legal_form="PT Perorangan", documents=kswp)) == [
        DocumentKind.FOUNDING_STATEMENT
    ]
    for founding in ("founding_statement", "registration_certificate"):
        with_founding = {**kswp, founding: "https://d/4"}
        assert missing_documents(make(legal_form="PT Perorangan", documents=with_founding)) == []
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
    address = before.model_copy(update={"address": "Jl. Baru 2"})
    kbli = make(nib=before.nib, npwp=before.npwp, kbli=["13134"])
    assert changed_fields(before, address) == ["address"]
    reordered = make(nib=before.nib, npwp=before.npwp, kbli=["47711", "13134"])
    assert changed_fields(before, reordered) == []
    assert not needs_review(S.VERIFIED, changed_fields(before, before))
    assert not needs_review(S.REJECTED, changed_fields(before, before))
    assert not needs_review(S.VERIFIED, changed_fields(before, address))
    assert needs_review(S.VERIFIED, changed_fields(before, kbli))
    assert needs_review(S.EXPIRED, changed_fields(before, kbli))
    assert needs_review(S.SUBMITTED, changed_fields(before, kbli))
    assert needs_review(S.REJECTED, changed_fields(before, address))
    assert not needs_review(S.SUSPENDED, changed_fields(before, address))
    with pytest.raises(IllegalTransition):
        needs_review(S.SUSPENDED, changed_fields(before, kbli))


def test_kswp_lapses_and_only_an_accepted_renewal_restores_it() -> None:
    valid = make(kswp_valid_until=DAY.isoformat())
    assert valid.kswp_valid_on(DAY)
    assert not valid.kswp_valid_on(DAY + timedelta(days=1))
    assert not lapsed(S.VERIFIED, valid, DAY)
    assert lapsed(S.VERIFIED, valid, DAY + timedelta(days=1))
    assert not lapsed(S.SUSPENDED, valid, DAY + timedelta(days=1))
    assert lapsed(S.VERIFIED, make(kswp_status="invalid"), DAY)
    renewal = KswpRenewal(
        valid_until=DAY + timedelta(days=90),
        certificate="https://docs.example/kswp-2.pdf",
        submitted_at=datetime(2026, 11, 26, tzinfo=UTC),
        submitted_by="user-1",
    )
    accepted = renewed(make(kswp_status="invalid", kswp_valid_until=None), renewal)
    assert accepted.kswp_valid_on(DAY + timedelta(days=90))
    assert accepted.documents[DocumentKind.KSWP_CERTIFICATE] == renewal.certificate


def test_a_declaration_keeps_the_accepted_kswp() -> None:
    current = make()
    body = {k: v for k, v in profile(nib=current.nib, npwp=current.npwp).items()}
    declared = DeclarationBody.model_validate(
        {k: body[k] for k in DeclarationBody.model_fields if k in body}
    ).declaration()
    assert current.declare(declared) == current
    without = {**body["documents"]}
    del without["kswp_certificate"]
    no_certificate = declared.model_copy(update={"documents": without})
    assert current.declare(no_certificate) == current
    other = {**body["documents"], "kswp_certificate": "https://docs.example/self-made.pdf"}
    with pytest.raises(KswpRenewalRequired):
        current.declare(declared.model_copy(update={"documents": other}))
    with pytest.raises(ValidationError):  # the KSWP is not part of what a vendor declares
        DeclarationBody.model_validate({**body, "kswp_valid_until": "2099-12-31"})


def test_snapshot_changes_name_what_a_correction_changed() -> None:
    snap = vendor(capital=1 * BN, annual_sales=60 * BN).snapshot("33.75")
    before = {"npwp": snap.npwp[1:], "scale": "mikro", "is_umk": True, "kbli_editions": None}
    assert snapshot_changes(before, snap) == ["is_umk", "kbli_editions", "npwp", "scale"]
    same = {"npwp": snap.npwp, "scale": "besar", "is_umk": False}
    assert snapshot_changes(same, snap) == []


def test_individuals_give_their_nik() -> None:
    nik = new_nik()
    assert make(legal_form="perorangan", npwp=nik).npwp == nik
    assert refused_fields(legal_form="UD", npwp="012345678901000") == ["npwp"]


def test_suspension_covers_its_last_day() -> None:
    assert not suspension_over(None, DAY)
    assert not suspension_over(DAY, DAY)
    assert suspension_over(DAY, DAY + timedelta(days=1))
