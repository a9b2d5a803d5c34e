"""Pure vendor (penyedia) rules: identifiers, business scale, documents and the state machine.

No I/O here. The declared profile is a pydantic model because its validation *is* the domain
rule set (NIB, NPWP, KBLI, Kemendagri region codes, rupiah amounts); it touches neither the
database nor the web framework. The HTTP bodies in api.py are their own models built from the
field types defined here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
)

from shared.contracts.vendors import (
    BusinessScale,
    KbliEdition,
    LegalForm,
    VendorSnapshot,
    VendorState,
)
from shared.regions import PROVINCES, AddressRegionCode, within
from shared.types import SingleLine, Text, Url, refusal

# ----------------------------------------------------------------------------------- identifiers

_NIB = re.compile(r"[0-9]{13}")
_NPWP_15 = re.compile(r"[0-9]{15}")
_NPWP_16 = re.compile(r"[0-9]{16}")
_NPWP_PUNCTUATED = re.compile(r"[0-9]{2}\.[0-9]{3}\.[0-9]{3}\.[0-9]-[0-9]{3}\.[0-9]{3}")
_KBLI = re.compile(r"[0-9]{5}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9][0-9 \-]{5,19}")

MAX_RUPIAH = 10**18  # far above any real business, and below PostgreSQL's bigint limit
MAX_KBLI_CODES = 50


class BusinessForm(StrEnum):
    """Bentuk usaha: the legal form a vendor registers as.

    Events v1 publish it as `LegalForm`, where a PT Perorangan is a PT (it is one, UU 40/2007
    art. 153A) flagged by `pt_perorangan`.
    """

    PT = "PT"
    PT_PERORANGAN = "PT Perorangan"  # one-person PT for micro and small businesses
    CV = "CV"
    UD = "UD"
    PERORANGAN = "perorangan"
    KOPERASI = "Koperasi"

    @property
    def published(self) -> LegalForm:
        return LegalForm.PT if self is BusinessForm.PT_PERORANGAN else LegalForm(self.value)

    @property
    def is_entity(self) -> bool:
        """Taxed as an entity (badan); perorangan and UD are their owner, a resident individual."""
        return self not in (BusinessForm.PERORANGAN, BusinessForm.UD)


def check_nib(value: str) -> str:
    """NIB (Nomor Induk Berusaha, from OSS) is exactly 13 digits."""
    if not _NIB.fullmatch(value):
        raise refusal("NIB must be exactly 13 digits")
    return value


def npwp_digits(value: str) -> str:
    """An NPWP (tax number) as written, reduced to its digits.

    Accepts the 15-digit form, plain or punctuated as ``99.999.999.9-999.999``, and the 16-digit
    form of PMK 112/2022. Partial punctuation is refused rather than guessed at.
    """
    if _NPWP_15.fullmatch(value) or _NPWP_16.fullmatch(value):
        return value
    if _NPWP_PUNCTUATED.fullmatch(value):
        return value.replace(".", "").replace("-", "")
    raise refusal("NPWP must be 16 digits, or 15 digits (optionally as 99.999.999.9-999.999)")


def canonical_npwp(value: str, form: BusinessForm | None = None) -> str:
    """The one 16-digit form an NPWP is stored, compared and blacklisted in (PMK 112/2022).

    An entity's 16-digit NPWP is `0` followed by its old 15 digits, so the old form is accepted
    and prefixed. A resident individual's NPWP (perorangan, UD owner) is their NIK: 16 digits
    starting with a province code, with no 15-digit form. Without a form (a blacklist entry)
    both are accepted.
    """
    digits = npwp_digits(value)
    if len(digits) == 15:
        if form is not None and not form.is_entity:
            raise refusal("a resident individual's NPWP is their NIK: 16 digits, e.g. 3375...")
        return "0" + digits
    if form is not None and form.is_entity and not digits.startswith("0"):
        raise refusal("an entity's 16-digit NPWP is 0 followed by its 15-digit NPWP")
    if form is not None and not form.is_entity and digits[:2] not in PROVINCES:
        raise refusal("a resident individual's NPWP is their NIK, starting with a province code")
    return digits


def check_kbli(value: str) -> str:
    """KBLI (Klasifikasi Baku Lapangan Usaha Indonesia) business-activity codes have 5 digits."""
    if not _KBLI.fullmatch(value):
        raise refusal("a KBLI code has exactly 5 digits")
    return value


def _pattern_check(pattern: re.Pattern[str], message: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise refusal(message)
        return value

    return AfterValidator(check)


Nib = Annotated[str, SingleLine, AfterValidator(check_nib)]
NpwpText = Annotated[str, Field(max_length=20), SingleLine]  # checked against the legal form
Kbli = Annotated[str, SingleLine, AfterValidator(check_kbli)]
Rupiah = Annotated[StrictInt, Field(ge=0, le=MAX_RUPIAH, description="whole rupiah")]
Email = Annotated[
    str, Field(max_length=254), SingleLine, _pattern_check(_EMAIL, "an e-mail address")
]
Phone = Annotated[str, SingleLine, _pattern_check(_PHONE, "a phone number, digits with optional +")]


def _reject_non_text_date(value: object) -> object:
    # pydantic would read a number as a Unix timestamp; a validity date is only ever ISO text.
    if not isinstance(value, str | date):
        raise refusal("a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_reject_non_text_date)]

# -------------------------------------------------------------------------------------- profile


class DocumentKind(StrEnum):
    """Documents a registration carries as references (URLs to the document store)."""

    NIB_CERTIFICATE = "nib_certificate"  # NIB print-out from OSS
    NPWP_CARD = "npwp_card"
    DEED_OF_ESTABLISHMENT = "deed_of_establishment"  # akta pendirian (PT, CV, Koperasi)
    # PT Perorangan: pernyataan pendirian (the electronic founding statement) or the
    # registration certificate (sertifikat pendaftaran) issued on it, instead of a deed.
    FOUNDING_STATEMENT = "founding_statement"
    REGISTRATION_CERTIFICATE = "registration_certificate"
    KSWP_CERTIFICATE = "kswp_certificate"  # Konfirmasi Status Wajib Pajak result


_ALWAYS_REQUIRED = (DocumentKind.NIB_CERTIFICATE, DocumentKind.NPWP_CARD)
_DEED_REQUIRED = frozenset({BusinessForm.PT, BusinessForm.CV, BusinessForm.KOPERASI})
_PT_PERORANGAN_FOUNDING = (DocumentKind.FOUNDING_STATEMENT, DocumentKind.REGISTRATION_CERTIFICATE)

Documents = Annotated[dict[DocumentKind, Url], Field(max_length=len(DocumentKind))]


class KswpStatus(StrEnum):
    """Result of the tax office's KSWP (Konfirmasi Status Wajib Pajak) check."""

    VALID = "valid"
    INVALID = "invalid"


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Text
    email: Email
    phone: Phone


class KbliCode(BaseModel):
    """One business activity with the KBLI edition its code is from."""

    model_config = ConfigDict(frozen=True)

    code: Kbli
    edition: KbliEdition = KbliEdition.KBLI_2025


def kbli_codes(codes: Iterable[str], editions: Mapping[str, KbliEdition]) -> tuple[KbliCode, ...]:
    """Codes in the current edition unless `editions` marks them (a KBLI 2020 code)."""
    listed = list(codes)
    if len(set(listed)) != len(listed):
        raise refusal("a KBLI code is listed twice")
    stray = sorted(set(editions) - set(listed))
    if stray:
        raise refusal(f"editions given for codes not in kbli: {', '.join(stray)}")
    # A set of activities: listing them in another order changes nothing.
    return tuple(
        KbliCode(code=code, edition=editions.get(code, KbliEdition.KBLI_2025))
        for code in sorted(listed)
    )


# Validation context of a profile read back from storage (see `Declaration.npwp`).
STORED = "stored"


class Declaration(BaseModel):
    """What a vendor (penyedia) declares about itself and may change by itself.

    `capital` is modal usaha excluding land and buildings; `annual_sales` is hasil penjualan
    tahunan; both are whole rupiah. At least one of them is needed to derive the business scale.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    legal_name: Text
    legal_form: BusinessForm
    nib: Nib
    npwp: NpwpText
    kbli: tuple[KbliCode, ...] = Field(min_length=1, max_length=MAX_KBLI_CODES)
    address: Text
    region_code: AddressRegionCode
    capital: Rupiah | None = None
    annual_sales: Rupiah | None = Field(default=None, validate_default=True)
    is_pkp: StrictBool = Field(description="PKP: registered to charge VAT (Pengusaha Kena Pajak)")
    contact: Contact
    documents: Documents = Field(default_factory=dict)

    # Cross-field rules are field validators (defaults validated too) so that the error names
    # the field to fix rather than the whole body.
    @field_validator("npwp")
    @classmethod
    def _npwp_of_the_form(cls, npwp: str, info: ValidationInfo) -> str:
        if info.context and info.context.get(STORED):
            # An individual registered with an old 15-digit NPWP holds it as 0 + 15 digits
            # until a profile update gives the NIK; what was valid when stored stays readable.
            return npwp
        return canonical_npwp(npwp, info.data.get("legal_form"))

    @field_validator("kbli")
    @classmethod
    def _distinct_kbli(
        cls, kbli: tuple[KbliCode, ...], info: ValidationInfo
    ) -> tuple[KbliCode, ...]:
        if info.context and info.context.get(STORED):
            return kbli  # stored as this rule left them: distinct and in code order
        return kbli_codes((k.code for k in kbli), {k.code: k.edition for k in kbli})

    @field_validator("annual_sales")
    @classmethod
    def _some_amount(cls, annual_sales: int | None, info: ValidationInfo) -> int | None:
        if annual_sales is None and "capital" in info.data and info.data["capital"] is None:
            raise refusal("capital or annual_sales is needed to derive the business scale")
        return annual_sales


class Profile(Declaration):
    """The declared profile with the tax compliance (KSWP) the catalogue manager accepted."""

    kswp_status: KswpStatus
    kswp_valid_until: IsoDate | None = Field(default=None, validate_default=True)

    @field_validator("kswp_valid_until")
    @classmethod
    def _dated_if_valid(cls, valid_until: date | None, info: ValidationInfo) -> date | None:
        if valid_until is None and info.data.get("kswp_status") is KswpStatus.VALID:
            raise refusal("required when kswp_status is valid")
        return valid_until

    def kswp_valid_on(self, today: date) -> bool:
        """Tax compliance holds through its validity date, inclusive."""
        return (
            self.kswp_status is KswpStatus.VALID
            and self.kswp_valid_until is not None
            and self.kswp_valid_until >= today
        )

    def declare(self, declaration: Declaration) -> Profile:
        """This profile replaced by what the vendor declares, keeping the accepted KSWP.

        The KSWP certificate goes with the KSWP: a different one is a renewal, not a profile
        change (KswpRenewalRequired).
        """
        kswp = DocumentKind.KSWP_CERTIFICATE
        documents = dict(declaration.documents)
        if documents.get(kswp, self.documents.get(kswp)) != self.documents.get(kswp):
            raise KswpRenewalRequired()
        documents.pop(kswp, None)
        if kswp in self.documents:
            documents[kswp] = self.documents[kswp]
        # Both sides are validated already (the declaration as given, the KSWP as accepted), and
        # no rule ties one to the other: validating them again would only repeat every check.
        return self.model_copy(update={**vars(declaration), "documents": documents})


def missing_documents(profile: Profile) -> list[DocumentKind]:
    """Documents required for the legal form that the registration does not reference.

    NIB certificate and NPWP card always; the deed of establishment (akta) for PT, CV and
    Koperasi; for a PT Perorangan, which has no deed (PP 8/2021), its founding statement or its
    registration certificate; the KSWP certificate whenever the KSWP status is valid.
    """
    required = list(_ALWAYS_REQUIRED)
    if profile.legal_form in _DEED_REQUIRED:
        required.append(DocumentKind.DEED_OF_ESTABLISHMENT)
    if profile.legal_form is BusinessForm.PT_PERORANGAN and not any(
        kind in profile.documents for kind in _PT_PERORANGAN_FOUNDING
    ):
        required.append(DocumentKind.FOUNDING_STATEMENT)
    if profile.kswp_status is KswpStatus.VALID:
        required.append(DocumentKind.KSWP_CERTIFICATE)
    return [kind for kind in required if kind not in profile.documents]


# Changing these sends a verified vendor back to review: they are what the manager checked.
REVIEW_FIELDS = frozenset({"nib", "npwp", "legal_form", "kbli"})


def changed_fields(before: Profile, after: Profile) -> list[str]:
    """Fields whose value differs; an NPWP compares in its canonical form, so moving from the
    old 15-digit form to the 16-digit one of the same number changes nothing."""
    return sorted(
        name for name in Profile.model_fields if getattr(before, name) != getattr(after, name)
    )


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
    """PP 7/2021 class by annual sales when known, by capital only without a sales history.

    Capital classifies a business when it is founded (art. 35(2)); procurement preference and
    the UMK spending target are facilitation and protection, for which art. 35(4)-(5) uses
    annual sales (hasil penjualan tahunan).
    """
    if annual_sales is not None:
        return _classify(annual_sales, _SALES_BOUNDS)
    if capital is not None:
        return _classify(capital, _CAPITAL_BOUNDS)
    raise ValueError("capital or annual sales is needed")


def is_umk(scale: BusinessScale) -> bool:
    """UMK: usaha mikro dan kecil, the class the 40% spending target is for."""
    return scale in (BusinessScale.MIKRO, BusinessScale.KECIL)


# ------------------------------------------------------------------------------ state machine


class Action(StrEnum):
    VERIFY = "verify"
    REJECT = "reject"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    EXPIRE = "expire"
    RENEW = "renew"  # an accepted KSWP renewal brings an expired vendor back to verified
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


class KswpRenewalRequired(VendorError):
    def __init__(self) -> None:
        super().__init__(
            "a new KSWP certificate is submitted as a KSWP renewal, which the catalogue manager"
            " accepts; a profile update keeps the accepted one"
        )


class NoKswpRenewal(VendorError):
    def __init__(self, vendor_id: UUID) -> None:
        super().__init__(f"vendor {vendor_id} has no KSWP renewal awaiting a decision")
        self.vendor_id = vendor_id


def transition(state: VendorState, action: Action) -> VendorState:
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(state, action) from None


def needs_review(state: VendorState, changes: Sequence[str]) -> bool:
    """Whether a profile update changing the fields `changes` (`changed_fields`) sends the
    vendor back to verification (state submitted).

    Yes when a review field changed, or on any change to a rejected registration (a
    resubmission). A suspended vendor may not do this, since it would lift the sanction:
    IllegalTransition.
    """
    if not changes or (state is not S.REJECTED and not REVIEW_FIELDS.intersection(changes)):
        return False
    transition(state, Action.RESUBMIT)
    return True


def lapsed(state: VendorState, profile: Profile, today: date) -> bool:
    """A verified vendor whose tax compliance is no longer valid expires.

    The way back is a KSWP renewal the catalogue manager accepts, never the passing of time or
    a date the vendor typed.
    """
    return state is S.VERIFIED and not profile.kswp_valid_on(today)


def suspension_over(suspended_until: date | None, today: date) -> bool:
    """A suspension with an end date covers that date and ends the day after."""
    return suspended_until is not None and suspended_until < today


class KswpRenewal(BaseModel):
    """A KSWP confirmation the vendor uploaded; it counts once the catalogue manager accepts."""

    model_config = ConfigDict(frozen=True)

    valid_until: date
    certificate: str
    submitted_at: datetime
    submitted_by: str


def renewed(profile: Profile, renewal: KswpRenewal) -> Profile:
    """The profile with an accepted renewal's validity and certificate."""
    documents = {**profile.documents, DocumentKind.KSWP_CERTIFICATE: renewal.certificate}
    return profile.model_copy(
        update={
            "kswp_status": KswpStatus.VALID,
            "kswp_valid_until": renewal.valid_until,
            "documents": documents,
        }
    )


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
    kswp_renewal: KswpRenewal | None = None

    def snapshot(self, city_region_code: str) -> VendorSnapshot:
        """What every event carries, the API shows and the query columns hold.

        `city_region_code` decides `is_local`: inside the city when the vendor's region is the
        city's own or one below it (33.75 covers 33.75.01).
        """
        # A write takes it for its event and again for its answer: it is built once.
        remembered: tuple[str, VendorSnapshot] | None = self.__dict__.get("_snapshot")
        if remembered is not None and remembered[0] == city_region_code:
            return remembered[1]
        p = self.profile
        scale = business_scale(p.capital, p.annual_sales)
        snapshot = VendorSnapshot(
            vendor_id=self.vendor_id,
            version=self.version,
            state=self.state,
            legal_name=p.legal_name,
            legal_form=p.legal_form.published,
            pt_perorangan=p.legal_form is BusinessForm.PT_PERORANGAN,
            nib=p.nib,
            npwp=p.npwp,
            kbli=[k.code for k in p.kbli],
            kbli_editions={k.code: k.edition for k in p.kbli},
            region_code=p.region_code,
            scale=scale,
            is_umk=is_umk(scale),
            is_koperasi=p.legal_form is BusinessForm.KOPERASI,
            is_local=within(p.region_code, city_region_code),
            kswp_valid_until=p.kswp_valid_until,
            is_pkp=p.is_pkp,
            capital=p.capital,
            annual_sales=p.annual_sales,
        )
        object.__setattr__(self, "_snapshot", (city_region_code, snapshot))
        return snapshot


def snapshot_changes(before: Mapping[str, Any], after: VendorSnapshot) -> list[str]:
    """Snapshot fields in `before` (as last published) whose value `after` corrects."""
    now = after.model_dump(mode="json")
    return sorted(name for name, value in before.items() if now.get(name) != value)
