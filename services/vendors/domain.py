"""Pure vendor (penyedia) rules: identifiers, business scale, documents and the state machine.

No I/O here. The profile is a pydantic model because its validation *is* the domain rule set
(NIB, NPWP, KBLI, Kemendagri region codes, rupiah amounts); it touches neither the database nor
the web framework.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from shared.contracts.vendors import BusinessScale, LegalForm, VendorState

# ----------------------------------------------------------------------------------- identifiers

_NIB = re.compile(r"[0-9]{13}")
_NPWP_PLAIN = re.compile(r"[0-9]{15}([0-9])?")
_NPWP_PUNCTUATED = re.compile(r"[0-9]{2}\.[0-9]{3}\.[0-9]{3}\.[0-9]-[0-9]{3}\.[0-9]{3}")
_KBLI = re.compile(r"[0-9]{5}")
# Kemendagri codes: province.regency[.district[.village]]; a vendor address names at least its
# regency or city (kabupaten/kota), e.g. 33.75 (Kota Pekalongan), 33.75.01, 33.75.01.1001.
_REGION = re.compile(r"[0-9]{2}\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?")
# A city setting may also be a whole province (a provincial catalogue).
_REGION_SETTING = re.compile(r"[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9][0-9 \-]{5,19}")
_URL = re.compile(r"https?://\S+")

MAX_RUPIAH = 10**18  # far above any real business, and below PostgreSQL's bigint limit


def _refused(reason: str) -> PydanticCustomError:
    """A ValueError whose text pydantic reports as is, without a "Value error, " prefix."""
    return PydanticCustomError("vendor_rule", reason)


def check_nib(value: str) -> str:
    """NIB (Nomor Induk Berusaha, from OSS) is exactly 13 digits."""
    if not _NIB.fullmatch(value):
        raise _refused("NIB must be exactly 13 digits")
    return value


def normalise_npwp(value: str) -> str:
    """NPWP (tax number) as digits only.

    Accepts the 15-digit form, plain or punctuated as ``99.999.999.9-999.999``, and the 16-digit
    form introduced in 2024. Partial punctuation is refused rather than guessed at.
    """
    if _NPWP_PLAIN.fullmatch(value):
        return value
    if _NPWP_PUNCTUATED.fullmatch(value):
        return value.replace(".", "").replace("-", "")
    raise _refused("NPWP must be 15 digits (optionally as 99.999.999.9-999.999) or 16 digits")


def npwp_aliases(npwp: str) -> frozenset[str]:
    """The forms one taxpayer may be known by: a 15-digit NPWP is the 16-digit one without its
    leading zero, so a blacklist entry in either form catches both."""
    if len(npwp) == 15:
        return frozenset({npwp, "0" + npwp})
    if npwp.startswith("0"):
        return frozenset({npwp, npwp[1:]})
    return frozenset({npwp})


def check_kbli(value: str) -> str:
    """KBLI (Klasifikasi Baku Lapangan Usaha Indonesia) business-activity codes have 5 digits."""
    if not _KBLI.fullmatch(value):
        raise _refused("a KBLI code has exactly 5 digits")
    return value


def check_region_code(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise _refused(
            "a Kemendagri region code of a regency/city or deeper, e.g. 33.75 or 33.75.01"
        )
    return value


def check_region_setting(value: str) -> str:
    if not _REGION_SETTING.fullmatch(value):
        raise _refused("a Kemendagri region code, e.g. 33 or 33.75")
    return value


def check_no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refusing it here keeps bad input from becoming a 500.
    if "\x00" in value:
        raise _refused("must not contain NUL characters")
    return value


def _pattern_check(pattern: re.Pattern[str], message: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise _refused(message)
        return value

    return AfterValidator(check)


Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    AfterValidator(check_no_nul),
]
Nib = Annotated[str, AfterValidator(check_nib)]
Npwp = Annotated[str, AfterValidator(normalise_npwp)]
Kbli = Annotated[str, AfterValidator(check_kbli)]
RegionCode = Annotated[str, AfterValidator(check_region_code)]
Rupiah = Annotated[StrictInt, Field(ge=0, le=MAX_RUPIAH, description="whole rupiah")]
DocumentUrl = Annotated[
    str, _pattern_check(_URL, "a document reference is an http(s) URL"), Field(max_length=2000)
]


def _reject_float_date(value: object) -> object:
    # pydantic would read a number as a Unix timestamp; a validity date is only ever ISO text.
    if not isinstance(value, str | date):
        raise _refused("a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_reject_float_date)]

# -------------------------------------------------------------------------------------- profile


class DocumentKind(StrEnum):
    """Documents a registration carries as references (URLs to the document store)."""

    NIB_CERTIFICATE = "nib_certificate"  # NIB print-out from OSS
    NPWP_CARD = "npwp_card"
    DEED_OF_ESTABLISHMENT = "deed_of_establishment"  # akta pendirian (PT, CV, Koperasi)
    KSWP_CERTIFICATE = "kswp_certificate"  # Konfirmasi Status Wajib Pajak result


_ALWAYS_REQUIRED = (DocumentKind.NIB_CERTIFICATE, DocumentKind.NPWP_CARD)
_DEED_REQUIRED = frozenset({LegalForm.PT, LegalForm.CV, LegalForm.KOPERASI})


class KswpStatus(StrEnum):
    """Result of the tax office's KSWP (Konfirmasi Status Wajib Pajak) check."""

    VALID = "valid"
    INVALID = "invalid"


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text
    email: Annotated[str, _pattern_check(_EMAIL, "an e-mail address"), Field(max_length=254)]
    phone: Annotated[str, _pattern_check(_PHONE, "a phone number, digits with optional +")]


class Profile(BaseModel):
    """What a vendor (penyedia) declares when registering or updating its profile.

    `capital` is modal usaha excluding land and buildings; `annual_sales` is hasil penjualan
    tahunan; both are whole rupiah. At least one of them is needed to derive the business scale.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    legal_name: Text
    legal_form: LegalForm
    nib: Nib
    npwp: Npwp
    kbli: list[Kbli] = Field(min_length=1, max_length=50)
    address: Text
    region_code: RegionCode
    capital: Rupiah | None = None
    annual_sales: Rupiah | None = Field(default=None, validate_default=True)
    kswp_status: KswpStatus
    kswp_valid_until: IsoDate | None = Field(default=None, validate_default=True)
    is_pkp: StrictBool = Field(description="PKP: registered to charge VAT (Pengusaha Kena Pajak)")
    contact: Contact
    documents: dict[DocumentKind, DocumentUrl] = Field(default_factory=dict)

    # Cross-field rules are field validators (defaults validated too) so that the error names
    # the field to fix rather than the whole body.
    @field_validator("kbli")
    @classmethod
    def _distinct_kbli(cls, kbli: list[str]) -> list[str]:
        if len(set(kbli)) != len(kbli):
            raise _refused("a KBLI code is listed twice")
        return sorted(kbli)  # a set of activities: listing them in another order changes nothing

    @field_validator("annual_sales")
    @classmethod
    def _some_amount(cls, annual_sales: int | None, info: ValidationInfo) -> int | None:
        if annual_sales is None and "capital" in info.data and info.data["capital"] is None:
            raise _refused("capital or annual_sales is needed to derive the business scale")
        return annual_sales

    @field_validator("kswp_valid_until")
    @classmethod
    def _dated_if_valid(cls, valid_until: date | None, info: ValidationInfo) -> date | None:
        if valid_until is None and info.data.get("kswp_status") is KswpStatus.VALID:
            raise _refused("required when kswp_status is valid")
        return valid_until

    def kswp_valid_on(self, today: date) -> bool:
        """Tax compliance holds through its validity date, inclusive."""
        return (
            self.kswp_status is KswpStatus.VALID
            and self.kswp_valid_until is not None
            and self.kswp_valid_until >= today
        )


def missing_documents(profile: Profile) -> list[DocumentKind]:
    """Documents required for the legal form that the registration does not reference.

    NIB certificate and NPWP card always; the deed of establishment (akta) for PT, CV and
    Koperasi; the KSWP certificate whenever the vendor declares a valid KSWP status.
    """
    required = list(_ALWAYS_REQUIRED)
    if profile.legal_form in _DEED_REQUIRED:
        required.append(DocumentKind.DEED_OF_ESTABLISHMENT)
    if profile.kswp_status is KswpStatus.VALID:
        required.append(DocumentKind.KSWP_CERTIFICATE)
    return [kind for kind in required if kind not in profile.documents]


# Changing these sends a verified vendor back to review: they are what the manager checked.
REVIEW_FIELDS = frozenset({"nib", "npwp", "legal_form", "kbli"})


def changed_fields(before: Profile, after: Profile) -> list[str]:
    old, new = before.model_dump(), after.model_dump()
    return sorted(name for name in Profile.model_fields if old[name] != new[name])


# --------------------------------------------------------------------------- business scale


_MILLIARD = 1_000_000_000
# PP 7/2021 art. 35: upper bounds (inclusive) of mikro, kecil and menengah.
_CAPITAL_BOUNDS = (1 * _MILLIARD, 5 * _MILLIARD, 10 * _MILLIARD)
_SALES_BOUNDS = (2 * _MILLIARD, 15 * _MILLIARD, 50 * _MILLIARD)
_CLASSES = (BusinessScale.MIKRO, BusinessScale.KECIL, BusinessScale.MENENGAH)


def _classify(amount: int, bounds: tuple[int, int, int]) -> BusinessScale:
    for bound, scale in zip(bounds, _CLASSES, strict=True):
        if amount <= bound:
            return scale
    return BusinessScale.BESAR


def business_scale(capital: int | None, annual_sales: int | None) -> BusinessScale:
    """PP 7/2021 class from capital (modal usaha), or from annual sales when capital is absent."""
    if capital is not None:
        return _classify(capital, _CAPITAL_BOUNDS)
    if annual_sales is not None:
        return _classify(annual_sales, _SALES_BOUNDS)
    raise ValueError("capital or annual sales is needed")


def is_umk(scale: BusinessScale) -> bool:
    """UMK: usaha mikro dan kecil, the class the 40% spending target is for."""
    return scale in (BusinessScale.MIKRO, BusinessScale.KECIL)


def is_local(region_code: str, city_region_code: str) -> bool:
    """Inside the city when the code is the city's own or one below it (33.75 covers 33.75.01)."""
    return region_code == city_region_code or region_code.startswith(city_region_code + ".")


@dataclass(frozen=True)
class Classification:
    """Flags derived from a profile that travel in every event."""

    scale: BusinessScale
    is_umk: bool
    is_koperasi: bool
    is_local: bool


def classify(profile: Profile, city_region_code: str) -> Classification:
    scale = business_scale(profile.capital, profile.annual_sales)
    return Classification(
        scale=scale,
        is_umk=is_umk(scale),
        is_koperasi=profile.legal_form is LegalForm.KOPERASI,
        is_local=is_local(profile.region_code, city_region_code),
    )


# ------------------------------------------------------------------------------ state machine


class Action(StrEnum):
    VERIFY = "verify"
    REJECT = "reject"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    EXPIRE = "expire"
    RENEW = "renew"  # a new KSWP validity brings an expired vendor back to verified
    RESUBMIT = "resubmit"  # a profile change that needs review


S = VendorState
TRANSITIONS: dict[tuple[VendorState, Action], VendorState] = {
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


class VendorError(Exception):
    """A rule refused the request; the API maps each kind to its problem+json."""


class IllegalTransition(VendorError):
    def __init__(self, state: VendorState, action: Action) -> None:
        super().__init__(f"cannot {action.value} a vendor in state {state.value}")
        self.state = state
        self.action = action


class VendorNotFound(VendorError):
    def __init__(self, vendor_id: UUID) -> None:
        super().__init__(f"no vendor {vendor_id}")
        self.vendor_id = vendor_id


class AlreadyRegistered(VendorError):
    def __init__(self, vendor_id: UUID) -> None:
        super().__init__(f"vendor {vendor_id} is already registered")
        self.vendor_id = vendor_id


class DuplicateNib(VendorError):
    def __init__(self, nib: str, existing: UUID) -> None:
        super().__init__(f"NIB {nib} is already registered as vendor {existing}")
        self.nib = nib
        self.existing = existing


class NpwpBlacklisted(VendorError):
    def __init__(self, npwp: str, reason: str) -> None:
        super().__init__(f"NPWP {npwp} is blacklisted: {reason}")
        self.npwp = npwp
        self.reason = reason


class MissingDocuments(VendorError):
    def __init__(self, kinds: list[DocumentKind]) -> None:
        super().__init__("missing documents: " + ", ".join(k.value for k in kinds))
        self.kinds = kinds


class KswpNotValid(VendorError):
    def __init__(self, today: date) -> None:
        super().__init__(f"tax compliance (KSWP) is not valid on {today.isoformat()}")
        self.today = today


def transition(state: VendorState, action: Action) -> VendorState:
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(state, action) from None


def needs_review(state: VendorState, before: Profile, after: Profile) -> bool:
    """Whether a profile update sends the vendor back to verification (state submitted).

    Yes when a review field changed, or on any change to a rejected registration (a
    resubmission). A suspended vendor may not do this, since it would lift the sanction:
    IllegalTransition. KSWP renewal and lapse are applied afterwards by `kswp_action`.
    """
    changes = changed_fields(before, after)
    if not changes or (state is not S.REJECTED and not REVIEW_FIELDS.intersection(changes)):
        return False
    transition(state, Action.RESUBMIT)
    return True


def kswp_action(state: VendorState, profile: Profile, today: date) -> Action | None:
    """Expire a verified vendor whose tax compliance lapsed; renew an expired one that is valid."""
    valid = profile.kswp_valid_on(today)
    if state is S.VERIFIED and not valid:
        return Action.EXPIRE
    if state is S.EXPIRED and valid:
        return Action.RENEW
    return None


def suspension_over(suspended_until: date | None, today: date) -> bool:
    """A suspension with an end date covers that date and ends the day after."""
    return suspended_until is not None and suspended_until < today


@dataclass(frozen=True)
class Vendor:
    """The vendor aggregate as stored."""

    vendor_id: UUID
    state: VendorState
    version: int
    profile: Profile
    suspended_until: date | None
    registered_at: datetime
    updated_at: datetime
