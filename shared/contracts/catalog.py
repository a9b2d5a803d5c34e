"""Events the catalog service publishes: storefronts on `ekatalog.etalase`, products on
`ekatalog.products` (key = etalase id / product id).

Every event carries the aggregate's full snapshot after the change and a per-aggregate `version`,
so orders and reporting keep their projections from any single event and drop stale ones.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Event

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


class CategoryNode(BaseModel):
    """One node of a storefront's category tree (kategori), at most three levels deep."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=200)
    children: list[CategoryNode] = Field(default_factory=list)


class CuratedCollection(BaseModel):
    """A named rule-based collection inside a storefront, e.g. "TKDN >= 40%"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=200)
    min_tkdn_bmp: float | None = Field(default=None, ge=0, le=200)
    min_tkdn: float | None = Field(default=None, ge=0, le=100)
    pdn_only: bool = False
    umkm_koperasi_only: bool = False
    local_only: bool = False


class EtalaseEvent(Event):
    """A storefront (etalase) as it is after the change."""

    topic: ClassVar[str] = ETALASE_TOPIC
    aggregate_field: ClassVar[str] = "etalase_id"

    etalase_id: UUID
    version: int = Field(ge=1, description="per-storefront sequence number, +1 per event")
    occurred_at: datetime
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


class ProductEvent(Event):
    """A product as it is after the change, with its vendor's flags at that moment."""

    topic: ClassVar[str] = PRODUCTS_TOPIC
    aggregate_field: ClassVar[str] = "product_id"

    product_id: UUID
    version: int = Field(ge=1, description="per-product sequence number, +1 per event")
    occurred_at: datetime
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
    tkdn_verified: bool = Field(description="the TKDN/BMP claim passed curation")
    stock: int
    delivery_regions: list[str]
    state: ProductState
    revision: int = Field(description="specification/price revision now live")


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
)
