"""Events the vendors service publishes (topic `ekatalog.vendors`, key = vendor id).

Every event carries the vendor's full snapshot and a per-vendor `version`, so a consumer keeps
its own projection from any one event and drops a stale one that arrives late.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import Field

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


class VendorEvent(Event):
    """Fields common to every vendor event: the vendor as it is after the change."""

    topic: ClassVar[str] = TOPIC
    aggregate_field: ClassVar[str] = "vendor_id"

    vendor_id: UUID
    version: int = Field(ge=1, description="per-vendor sequence number, +1 per event")
    occurred_at: datetime
    state: VendorState
    legal_name: str
    legal_form: LegalForm
    nib: str = Field(pattern=r"^\d{13}$")
    npwp: str = Field(pattern=r"^\d{15,16}$", description="digits only")
    kbli: list[str] = Field(description="5-digit KBLI codes")
    region_code: str = Field(description="Kemendagri region code, e.g. 33.75")
    scale: BusinessScale
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


class VendorRegistered(VendorEvent):
    """A vendor submitted its registration; it awaits verification."""

    type: ClassVar[str] = "ekatalog.vendor.registered.v1"


class VendorVerified(VendorEvent):
    """The catalogue manager verified the vendor (or it was renewed after expiry)."""

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
    """The tax-compliance (KSWP) validity passed; the vendor may not sell until renewed."""

    type: ClassVar[str] = "ekatalog.vendor.expired.v1"


class VendorProfileUpdated(VendorEvent):
    """The vendor changed its profile; `requires_review` when it went back to verification."""

    type: ClassVar[str] = "ekatalog.vendor.profile_updated.v1"
    changed_fields: list[str]
    requires_review: bool


VENDOR_EVENTS: tuple[type[VendorEvent], ...] = (
    VendorRegistered,
    VendorVerified,
    VendorRejected,
    VendorSuspended,
    VendorReinstated,
    VendorExpired,
    VendorProfileUpdated,
)
