"""Events the vendors service publishes (topic `ekatalog.vendors`, key = vendor id).

Every event carries the vendor's full snapshot and a per-vendor `version`, so a consumer keeps
its own projection from any one event and drops a stale one that arrives late.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Event

TOPIC = "ekatalog.vendors"


class VendorState(StrEnum):
    SUBMITTED = "submitted"
    VERIFIED = "verified"
    REJECTED = "rejected"
    SUSPENDED = "suspended"
    EXPIRED = "expired"


class BusinessScale(StrEnum):
    """PP 7/2021 art. 35 classes."""

    MIKRO = "mikro"
    KECIL = "kecil"
    MENENGAH = "menengah"
    BESAR = "besar"


class LegalForm(StrEnum):
    PT = "PT"
    CV = "CV"
    UD = "UD"
    PERORANGAN = "perorangan"
    KOPERASI = "Koperasi"


class KbliEdition(StrEnum):
    """Edition of the KBLI classification a code is from (codes are 5 digits in both)."""

    KBLI_2020 = "2020"
    KBLI_2025 = "2025"  # Peraturan BPS 7/2025, the edition in force


class VendorSnapshot(BaseModel):
    """The vendor as it is after a change: what every event carries and the API shows."""

    model_config = ConfigDict(frozen=True)

    vendor_id: UUID
    version: int = Field(ge=1, description="per-vendor sequence number, +1 per event")
    state: VendorState
    legal_name: str
    legal_form: LegalForm = Field(description="a PT Perorangan is a PT; see `pt_perorangan`")
    nib: str = Field(pattern=r"^\d{13}$")
    npwp: str = Field(
        pattern=r"^\d{15,16}$",
        description="digits only; 16 digits (PMK 112/2022) since events carry the canonical form",
    )
    kbli: list[str] = Field(description="5-digit KBLI codes")
    region_code: str = Field(description="Kemendagri region code, e.g. 33.75")
    scale: BusinessScale = Field(
        description="PP 7/2021 art. 35: by annual sales when known, else by capital"
    )
    is_umk: bool = Field(description="micro or small business (mikro/kecil)")
    is_koperasi: bool
    is_local: bool = Field(description="region code inside the city's configured region")
    kswp_valid_until: date | None = None
    is_pkp: bool | None = Field(
        default=None, description="PKP: registered to charge VAT (Pengusaha Kena Pajak)"
    )
    capital: int | None = Field(
        default=None, description="modal usaha in whole rupiah, excluding land and buildings"
    )
    annual_sales: int | None = Field(default=None, description="annual sales in whole rupiah")
    pt_perorangan: bool | None = Field(
        default=None,
        description="a PT Perorangan (one-person PT, UU 40/2007 art. 153A); legal_form is PT",
    )
    kbli_editions: dict[str, KbliEdition] | None = Field(
        default=None, description="the KBLI edition of each code in `kbli`"
    )


class VendorEvent(Event, VendorSnapshot):
    """Fields common to every vendor event: the vendor as it is after the change."""

    topic: ClassVar[str] = TOPIC
    aggregate_field: ClassVar[str] = "vendor_id"

    occurred_at: datetime


class VendorRegistered(VendorEvent):
    """A vendor submitted its registration; it awaits verification."""

    type: ClassVar[str] = "ekatalog.vendor.registered.v1"


class VendorVerified(VendorEvent):
    """The catalogue manager verified the vendor."""

    type: ClassVar[str] = "ekatalog.vendor.verified.v1"
    verified_by: str


class VendorRejected(VendorEvent):
    """The catalogue manager rejected the registration."""

    type: ClassVar[str] = "ekatalog.vendor.rejected.v1"
    reasons: list[str]
    rejected_by: str


class VendorSuspended(VendorEvent):
    """A sanction: the vendor may not sell until reinstated or until `until`."""

    type: ClassVar[str] = "ekatalog.vendor.suspended.v1"
    reason: str
    until: date | None = None
    suspended_by: str


class VendorReinstated(VendorEvent):
    """A suspension ended; the vendor is verified again."""

    type: ClassVar[str] = "ekatalog.vendor.reinstated.v1"
    reinstated_by: str


class VendorExpired(VendorEvent):
    """The tax-compliance (KSWP) validity passed; the vendor may not sell until the catalogue
    manager accepts a renewal."""

    type: ClassVar[str] = "ekatalog.vendor.expired.v1"


class VendorProfileUpdated(VendorEvent):
    """The vendor changed its profile; `requires_review` when it went back to verification."""

    type: ClassVar[str] = "ekatalog.vendor.profile_updated.v1"
    changed_fields: list[str]
    requires_review: bool


class VendorKswpRenewalSubmitted(VendorEvent):
    """The vendor uploaded a new KSWP confirmation; nothing changes until it is accepted."""

    type: ClassVar[str] = "ekatalog.vendor.kswp_renewal_submitted.v1"
    renewal_valid_until: date


class VendorKswpRenewalAccepted(VendorEvent):
    """The catalogue manager accepted a KSWP renewal; an expired vendor is verified again."""

    type: ClassVar[str] = "ekatalog.vendor.kswp_renewal_accepted.v1"
    accepted_by: str


class VendorKswpRenewalRejected(VendorEvent):
    """The catalogue manager refused a KSWP renewal; the accepted validity stays as it was."""

    type: ClassVar[str] = "ekatalog.vendor.kswp_renewal_rejected.v1"
    reasons: list[str]
    rejected_by: str


class VendorSnapshotCorrected(VendorEvent):
    """A corrected rule changed derived or canonical fields (business scale, NPWP form); the
    vendor itself changed nothing. `corrected_fields` names what differs from before."""

    type: ClassVar[str] = "ekatalog.vendor.snapshot_corrected.v1"
    corrected_fields: list[str]


VENDOR_EVENTS: tuple[type[VendorEvent], ...] = (
    VendorRegistered,
    VendorVerified,
    VendorRejected,
    VendorSuspended,
    VendorReinstated,
    VendorExpired,
    VendorProfileUpdated,
    VendorKswpRenewalSubmitted,
    VendorKswpRenewalAccepted,
    VendorKswpRenewalRejected,
    VendorSnapshotCorrected,
)
