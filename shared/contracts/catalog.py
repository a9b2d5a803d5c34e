"""Events the catalog service publishes: storefronts on `ekatalog.etalase`, products on
`ekatalog.products` (key = etalase id / product id).

Every event carries the aggregate's full snapshot after the change and a per-aggregate `version`,
so orders and reporting keep their projections from any single event and drop stale ones.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat

from shared.events import Event
from shared.types import MAX_LIST_ITEMS, SingleLine

ETALASE_TOPIC = "ekatalog.etalase"
PRODUCTS_TOPIC = "ekatalog.products"


class EtalaseState(StrEnum):
    """A storefront is prepared as a draft, then opened (accepts products) and closed."""

    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


class VendorType(StrEnum):
    """How a vendor stands to the goods it offers (declared per product offer)."""

    PRODUCER = "producer"
    PRINCIPAL = "principal"
    DISTRIBUTOR = "distributor"
    AGENT = "agent"
    RESELLER = "reseller"


class ProductState(StrEnum):
    """Submitted for review (penelaahan), listed (tayang), rejected, taken down (turun tayang)."""

    SUBMITTED = "submitted"
    LISTED = "listed"
    REJECTED = "rejected"
    TAKEN_DOWN = "taken_down"


class TakenDownBy(StrEnum):
    """Who took a product down; only `vendor_status` take-downs are restored automatically."""

    MANAGER = "manager"
    VENDOR = "vendor"
    VENDOR_STATUS = "vendor_status"


class ClaimStatus(StrEnum):
    """Where the curation of one product claim (TKDN, BMP, PDN, SNI) stands.

    Only a `verified` claim is shown publicly, filters and counts; `expired` is a TKDN claim
    whose certificate passed its validity date.
    """

    PENDING = "pending"
    VERIFIED = "verified"
    REFUSED = "refused"
    EXPIRED = "expired"


Code = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200), SingleLine]
Kbli = Annotated[str, Field(pattern=r"^\d{5}$", description="5-digit KBLI code")]


class CategoryNode(BaseModel):
    """One node of a storefront's category tree (kategori), at most three levels deep."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    name: Name
    children: list[CategoryNode] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    kbli: list[Kbli] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="KBLI codes a vendor needs to offer in this category and below; "
        "empty = the nearest parent's (or any)",
    )


class CuratedCollection(BaseModel):
    """A named rule-based collection inside a storefront, e.g. "TKDN >= 40%"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    name: Name
    min_tkdn_bmp: Annotated[StrictFloat, Field(ge=0, le=200)] | None = None
    min_tkdn: Annotated[StrictFloat, Field(ge=0, le=100)] | None = None
    pdn_only: StrictBool = False
    umkm_koperasi_only: StrictBool = False
    local_only: StrictBool = False


class EtalaseSnapshot(BaseModel):
    """A storefront's published state: the event body and the API view both derive from it."""

    version: int = Field(ge=1, description="per-storefront sequence number, +1 per event")
    code: str
    name: str
    description: str
    state: EtalaseState
    categories: list[CategoryNode]
    vendor_types: list[VendorType]
    kbli: list[str] = Field(description="allowed 5-digit KBLI codes; empty = any")
    only_local: bool
    only_umk_koperasi: bool
    price_ceiling: int | None = Field(description="maximum unit price in rupiah, if any")
    recurate_changes: bool = Field(description="listed products' edits go through review")
    collections: list[CuratedCollection]


class EtalaseEvent(Event, EtalaseSnapshot):
    """A storefront (etalase) as it is after the change."""

    topic: ClassVar[str] = ETALASE_TOPIC
    aggregate_field: ClassVar[str] = "etalase_id"

    etalase_id: UUID
    occurred_at: datetime
    changed_by: str


class EtalaseCreated(EtalaseEvent):
    """The catalogue manager created a storefront (as a draft)."""

    type: ClassVar[str] = "ekatalog.etalase.created.v1"


class EtalaseUpdated(EtalaseEvent):
    """The catalogue manager changed a storefront's definition or rules."""

    type: ClassVar[str] = "ekatalog.etalase.updated.v1"
    changed_fields: list[str]


class EtalaseOpened(EtalaseEvent):
    """The storefront accepts products and its listed products are searchable."""

    type: ClassVar[str] = "ekatalog.etalase.opened.v1"


class EtalaseClosed(EtalaseEvent):
    """The storefront accepts nothing new and its products leave the public search."""

    type: ClassVar[str] = "ekatalog.etalase.closed.v1"


class ProductSnapshot(BaseModel):
    """A product's published state: the event body, the API view and the stored product derive
    from it. Claims (PDN, TKDN, BMP, SNI) count only where their `*_verified` flag is set."""

    version: int = Field(ge=1, description="per-product sequence number, +1 per event")
    etalase_id: UUID
    etalase_code: str
    vendor_id: UUID
    vendor_type: VendorType
    vendor_is_umk: bool
    vendor_is_koperasi: bool
    vendor_is_local: bool
    name: str
    category_code: str
    category_path: list[str] = Field(description="category codes from the root, 1 to 3")
    kbki: str = Field(description="KBKI commodity code")
    unit: str
    price: int = Field(description="maximum unit price in rupiah")
    regional_prices: dict[str, int] = Field(description="region code -> unit price in rupiah")
    tax_percent: float
    pdn: bool = Field(description="domestic product (Produk Dalam Negeri)")
    tkdn: float | None = Field(description="local content %, as claimed")
    bmp: float | None = Field(description="company benefit weight % (Bobot Manfaat Perusahaan)")
    tkdn_verified: bool = Field(description="the TKDN claim passed curation and is in force")
    stock: int
    delivery_regions: list[str]
    state: ProductState
    revision: int = Field(description="specification/price revision now live")
    # Added after v1 (optional, so earlier readers and events stay valid).
    pdn_verified: bool = Field(
        default=False, description="domestic product, verified (a verified TKDN implies it)"
    )
    bmp_verified: bool = Field(default=False, description="the BMP claim passed curation")
    sni_verified: bool = Field(default=False, description="the SNI claim passed curation")
    tkdn_certificate: str | None = Field(default=None, description="TKDN certificate number")
    tkdn_valid_until: date | None = Field(
        default=None, description="last day the TKDN certificate is valid"
    )
    sni: str | None = Field(default=None, description="SNI certificate or mark number")
    brand: str | None = None


class ProductEvent(Event, ProductSnapshot):
    """A product as it is after the change, with its vendor's flags at that moment."""

    topic: ClassVar[str] = PRODUCTS_TOPIC
    aggregate_field: ClassVar[str] = "product_id"

    product_id: UUID
    occurred_at: datetime


class ProductSubmitted(ProductEvent):
    """A product, or a listed product's change (`change_revision`), awaits review."""

    type: ClassVar[str] = "ekatalog.product.submitted.v1"
    change_revision: int | None = Field(
        default=None, description="set when a listed product's change waits for review"
    )


class ProductListed(ProductEvent):
    """The product is listed (tayang); `restored` when its vendor may sell again."""

    type: ClassVar[str] = "ekatalog.product.listed.v1"
    listed_by: str
    restored: bool = False


class ProductRejected(ProductEvent):
    """The review refused the product or its pending change (`change_revision`)."""

    type: ClassVar[str] = "ekatalog.product.rejected.v1"
    reasons: list[str]
    rejected_by: str
    change_revision: int | None = None


class ProductTakenDown(ProductEvent):
    """The product left the listing (turun tayang)."""

    type: ClassVar[str] = "ekatalog.product.taken_down.v1"
    taken_down_by: TakenDownBy
    reason: str


class ProductPriceChanged(ProductEvent):
    """A new price became live; the old one stays in the price history."""

    type: ClassVar[str] = "ekatalog.product.price_changed.v1"
    previous_price: int
    previous_regional_prices: dict[str, int]


class ProductUpdated(ProductEvent):
    """A specification change became live."""

    type: ClassVar[str] = "ekatalog.product.updated.v1"
    changed_fields: list[str]


class ProductStockChanged(ProductEvent):
    """The stock moved: set by the vendor, reserved or released for an order."""

    type: ClassVar[str] = "ekatalog.product.stock_changed.v1"
    previous_stock: int
    reason: str = Field(description="set_by_vendor, reserved or released")
    reference: str | None = Field(default=None, description="order reference, if any")


class ProductClaimsReviewed(ProductEvent):
    """The curation of the product's claims changed: decided by the manager, or a TKDN
    certificate lapsed (`changed_by` = `system:tkdn-expiry`)."""

    type: ClassVar[str] = "ekatalog.product.claims_reviewed.v1"
    changed_claims: list[str] = Field(description="tkdn, bmp, pdn and/or sni")
    changed_by: str
    reason: str | None = None


CATALOG_EVENTS: tuple[type[Event], ...] = (
    EtalaseCreated,
    EtalaseUpdated,
    EtalaseOpened,
    EtalaseClosed,
    ProductSubmitted,
    ProductListed,
    ProductRejected,
    ProductTakenDown,
    ProductPriceChanged,
    ProductUpdated,
    ProductStockChanged,
    ProductClaimsReviewed,
)
