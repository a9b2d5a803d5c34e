"""Request and response bodies of the catalog API (money is always `int` rupiah).

Every string is a `shared.types` text (no control characters, bounded), every list and mapping is
bounded, and numbers and booleans must be JSON numbers and booleans: `1.5`, `"1500"`, `true` for a
price, `"40"` for a percentage and `"true"` for a flag are refused with a field error. The views
derive from the published snapshots in `shared.contracts.catalog`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    model_validator,
)
from pydantic_core import to_json

from services.catalog.domain import MAX_BMP, CurationStatus, Product, ProductDetails
from services.catalog.search import Sort
from shared.contracts.catalog import (
    CategoryNode,
    ClaimStatus,
    Code,
    CuratedCollection,
    EtalaseSnapshot,
    Kbli,
    ProductSnapshot,
    VendorType,
)
from shared.cursor import MAX_CURSOR_LENGTH
from shared.query import QueryModel
from shared.regions import RegionCode
from shared.types import (
    MAX_LIST_ITEMS,
    MAX_MAPPING_ENTRIES,
    Flag,
    Integer,
    LongText,
    Percent,
    Reason,
    ShortText,
    Text,
    Url,
    refusal,
)

MAX_RUPIAH = 1_000_000_000_000
Rupiah = Annotated[Integer, Field(gt=0, le=MAX_RUPIAH, description="rupiah, integer")]
Quantity = Annotated[Integer, Field(ge=0, le=2_000_000_000)]
Bmp = Annotated[StrictFloat, Field(ge=0, le=MAX_BMP, description="BMP %, at most 15")]
Kbki = Annotated[str, Field(pattern=r"^\d{4,12}$")]


def _day_as_text(value: object) -> object:
    if isinstance(value, int | float):
        raise refusal("a date as YYYY-MM-DD, not a number")
    return value


# A calendar day as an ISO string ("2031-06-30"), not a timestamp number.
Day = Annotated[date, BeforeValidator(_day_as_text)]
# A specification is shown on every search hit, so it stays small: 50 short entries.
MAX_SPECIFICATION_ENTRIES = 50
MAX_PHOTOS = 20
Specification = Annotated[dict[ShortText, Text], Field(max_length=MAX_SPECIFICATION_ENTRIES)]
RegionalPrices = Annotated[dict[RegionCode, Rupiah], Field(max_length=MAX_MAPPING_ENTRIES)]
Regions = Annotated[list[RegionCode], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
Photos = Annotated[list[Url], Field(max_length=MAX_PHOTOS)]
Categories = Annotated[list[CategoryNode], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
VendorTypes = Annotated[list[VendorType], Field(min_length=1, max_length=len(VendorType))]
KbliCodes = Annotated[list[Kbli], Field(max_length=MAX_LIST_ITEMS)]
Collections = Annotated[list[CuratedCollection], Field(max_length=MAX_LIST_ITEMS)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EtalaseFields(_Body):
    name: Text | None = None
    description: LongText | None = None
    categories: Categories | None = None
    vendor_types: VendorTypes | None = None
    kbli: KbliCodes | None = None
    only_local: Flag | None = None
    only_umk_koperasi: Flag | None = None
    price_ceiling: Rupiah | None = None
    recurate_changes: Flag | None = None
    collections: Collections | None = None


class EtalaseCreate(EtalaseFields):
    """A new storefront; the rules default to "anyone verified may offer anything"."""

    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{2,40}$")]
    name: Text
    description: LongText = ""
    categories: Categories
    vendor_types: VendorTypes = Field(default_factory=lambda: list(VendorType))
    kbli: KbliCodes = Field(default_factory=list)
    only_local: Flag = False
    only_umk_koperasi: Flag = False
    price_ceiling: Rupiah | None = None
    recurate_changes: Flag = True
    collections: Collections = Field(default_factory=list)


class EtalasePatch(EtalaseFields):
    """Only the fields sent are changed; `price_ceiling: null` removes the ceiling."""

    @model_validator(mode="after")
    def _only_the_ceiling_may_be_cleared(self) -> EtalasePatch:
        _refuse_null(self, self.model_fields_set - {"price_ceiling"})
        return self


def _refuse_null(model: BaseModel, fields: Iterable[str]) -> None:
    cleared = sorted(f for f in fields if getattr(model, f) is None)
    if cleared:
        raise ValueError(f"{', '.join(cleared)} may not be null")


class EtalaseOut(EtalaseSnapshot):
    """A storefront as the API shows it: its snapshot with id and timestamps."""

    id: UUID
    created_at: datetime
    updated_at: datetime


class ProductFields(_Body):
    """What a vendor may change after submission (each edit is a revision)."""

    name: Text | None = None
    description: LongText | None = None
    specification: Specification | None = None
    kbki: Kbki | None = None
    unit: ShortText | None = None
    price: Rupiah | None = None
    regional_prices: RegionalPrices | None = None
    tax_percent: Percent | None = None
    pdn: Flag | None = None
    tkdn: Percent | None = None
    bmp: Bmp | None = None
    tkdn_certificate: ShortText | None = None
    tkdn_valid_until: Day | None = Field(
        default=None, description="last day the TKDN certificate is valid"
    )
    sni: ShortText | None = None
    brand: Text | None = None
    delivery_regions: Regions | None = None
    photos: Photos | None = None


class ProductCreate(ProductFields):
    etalase_id: UUID
    vendor_type: VendorType = Field(description="the vendor's role for this offer")
    category_code: ShortText
    name: Text
    description: LongText = ""
    specification: Specification = Field(default_factory=dict)
    kbki: Kbki
    unit: ShortText
    price: Rupiah
    regional_prices: RegionalPrices = Field(default_factory=dict)
    tax_percent: Percent
    pdn: Flag
    stock: Quantity = 0
    delivery_regions: Regions
    photos: Photos = Field(default_factory=list)


class ProductPatch(ProductFields):
    """Only the fields sent are changed; optional claims (TKDN, SNI, brand) may be cleared."""

    @model_validator(mode="after")
    def _required_fields_stay(self) -> ProductPatch:
        _refuse_null(self, _REQUIRED_PRODUCT_FIELDS & self.model_fields_set)
        return self


# Claims and the brand may be withdrawn; everything else a product always has.
_REQUIRED_PRODUCT_FIELDS = frozenset(ProductFields.model_fields) - {
    "tkdn",
    "bmp",
    "tkdn_certificate",
    "tkdn_valid_until",
    "sni",
    "brand",
}


class ClaimDecisions(_Body):
    """The manager's decision on each claim it reviews; claims left out stay as they are."""

    tkdn: ClaimStatus | None = None
    bmp: ClaimStatus | None = None
    pdn: ClaimStatus | None = None
    sni: ClaimStatus | None = None

    def decided(self) -> dict[str, ClaimStatus]:
        claims = {c: getattr(self, c) for c in ClaimDecisions.model_fields}
        return {claim: status for claim, status in claims.items() if status is not None}


class ClaimReview(ClaimDecisions):
    reason: Reason | None = None


class Approval(_Body):
    """Optional with an approval: decide claims while listing (the others stay pending)."""

    claims: ClaimDecisions = Field(default_factory=ClaimDecisions)


class Reasons(_Body):
    reasons: Annotated[list[Reason], Field(min_length=1, max_length=MAX_LIST_ITEMS)]


class TakeDown(_Body):
    reason: Reason


class StockSet(_Body):
    stock: Quantity


class ProductPublic(ProductSnapshot, ProductDetails):
    """A product as the public catalogue shows it (unverified claims left out)."""


class ProductOut(ProductPublic, CurationStatus):
    """A product with its review status, for the manager, auditor and owning vendor."""


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None


class SearchHit(ProductPublic):
    score: float | None = Field(default=None, description="text relevance, 0..1")


class SearchPage(BaseModel):
    items: list[SearchHit]
    next_cursor: str | None


# What a stored rendering was made with: the view's schema (a field added, removed or retyped)
# and the rule of `Product.public_view` (bump `_PUBLIC_VIEW_RULE` when what it hides changes).
# Renderings with another key are made again at start and are not served meanwhile.
_PUBLIC_VIEW_RULE = 1
PUBLIC_VIEW_KEY = hashlib.blake2s(
    json.dumps([_PUBLIC_VIEW_RULE, ProductPublic.model_json_schema()], sort_keys=True).encode(),
    digest_size=8,
).hexdigest()


def render_public_view(product: Product) -> str:
    """The product's `ProductPublic` JSON, as the product page and each search hit show it; it is
    stored with the product whenever the product changes, and pages are served from it."""
    view = ProductPublic.model_validate(product.public_view(), from_attributes=True)
    return view.model_dump_json()


def search_page_json(hits: Sequence[tuple[str, float | None]], next_cursor: str | None) -> bytes:
    """A `SearchPage` from stored renderings and scores, without decoding them: a `SearchHit` is
    its `ProductPublic` with `score` as the last field."""
    items = b",".join(
        view.encode()[:-1] + b',"score":' + to_json(score) + b"}" for view, score in hits
    )
    return b'{"items":[' + items + b'],"next_cursor":' + to_json(next_cursor) + b"}"


class Revision(BaseModel):
    revision: int
    changes: dict[str, Any]
    status: str
    reasons: list[str]
    created_by: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None


class PricePoint(BaseModel):
    revision: int
    price: int
    regional_prices: dict[str, int]
    effective_from: datetime


class ProductHistory(BaseModel):
    revisions: list[Revision]
    prices: list[PricePoint]


class SearchParams(QueryModel):
    """The public search's query string (`GET /search`)."""

    q: Annotated[str, Field(min_length=2, max_length=200)] | None = None
    etalase_id: UUID | None = None
    category: Code | None = None
    collection: Code | None = Field(None, description="a curated collection code; needs etalase_id")
    pdn: bool | None = None
    min_tkdn_bmp: Annotated[float, Field(ge=0, le=200)] | None = None
    min_price: Annotated[int, Field(ge=0, le=MAX_RUPIAH)] | None = None
    max_price: Annotated[int, Field(ge=0, le=MAX_RUPIAH)] | None = None
    umkm_koperasi: bool | None = None
    local_vendor: bool | None = None
    region: RegionCode | None = Field(
        None, description="delivers there: to this region or to one that contains it"
    )
    in_stock: bool | None = None
    sort: Sort = Sort.RELEVANCE
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, Field(max_length=MAX_CURSOR_LENGTH)] | None = None
