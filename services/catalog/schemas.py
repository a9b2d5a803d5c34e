"""Request and response bodies of the catalog API (money is always `int` rupiah)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from services.catalog.domain import RuleViolation, check_tkdn_claim
from shared.contracts.catalog import (
    CategoryNode,
    CuratedCollection,
    EtalaseState,
    ProductState,
    TakenDownBy,
    VendorType,
)

# Strict: 1.5, "1500" and true are refused with a field error instead of being coerced.
MAX_RUPIAH = 1_000_000_000_000
Rupiah = Annotated[StrictInt, Field(gt=0, le=MAX_RUPIAH, description="rupiah, integer")]
Quantity = Annotated[StrictInt, Field(ge=0, le=2_000_000_000)]
RegionCode = Annotated[str, Field(pattern=r"^\d{2}(\.\d{2}){0,3}$", description="e.g. 33.75")]
Kbli = Annotated[str, Field(pattern=r"^\d{5}$")]
Percent = Annotated[float, Field(ge=0, le=100)]
Text = Annotated[str, Field(min_length=1, max_length=300)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EtalaseFields(_Body):
    name: Text | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    categories: Annotated[list[CategoryNode], Field(min_length=1)] | None = None
    vendor_types: Annotated[list[VendorType], Field(min_length=1)] | None = None
    kbli: list[Kbli] | None = None
    only_local: bool | None = None
    only_umk_koperasi: bool | None = None
    price_ceiling: Rupiah | None = None
    recurate_changes: bool | None = None
    collections: list[CuratedCollection] | None = None


class EtalaseCreate(EtalaseFields):
    """A new storefront; the rules default to "anyone verified may offer anything"."""

    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{2,40}$")]
    name: Text
    description: Annotated[str, Field(max_length=5000)] = ""
    categories: Annotated[list[CategoryNode], Field(min_length=1)]
    vendor_types: Annotated[list[VendorType], Field(min_length=1)] = Field(
        default_factory=lambda: list(VendorType)
    )
    kbli: list[Kbli] = Field(default_factory=list)
    only_local: bool = False
    only_umk_koperasi: bool = False
    price_ceiling: Rupiah | None = None
    recurate_changes: bool = True
    collections: list[CuratedCollection] = Field(default_factory=list)


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


class EtalaseOut(BaseModel):
    id: UUID
    code: str
    name: str
    description: str
    state: EtalaseState
    categories: list[CategoryNode]
    vendor_types: list[VendorType]
    kbli: list[str]
    only_local: bool
    only_umk_koperasi: bool
    price_ceiling: int | None
    recurate_changes: bool
    collections: list[CuratedCollection]
    version: int
    created_at: datetime
    updated_at: datetime


class ProductFields(_Body):
    """What a vendor may change after submission (each edit is a revision)."""

    name: Text | None = None
    description: Annotated[str, Field(max_length=20_000)] | None = None
    specification: dict[Annotated[str, Field(max_length=100)], str] | None = None
    kbki: Annotated[str, Field(pattern=r"^\d{4,12}$")] | None = None
    unit: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    price: Rupiah | None = None
    regional_prices: dict[RegionCode, Rupiah] | None = None
    tax_percent: Percent | None = None
    pdn: bool | None = None
    tkdn: Percent | None = None
    bmp: Annotated[float, Field(ge=0, le=15)] | None = None
    tkdn_certificate: Annotated[str, Field(max_length=100)] | None = None
    sni: Annotated[str, Field(max_length=100)] | None = None
    brand: Annotated[str, Field(max_length=200)] | None = None
    delivery_regions: Annotated[list[RegionCode], Field(min_length=1)] | None = None
    photos: list[Annotated[str, Field(pattern=r"^https?://", max_length=2000)]] | None = None


class ProductCreate(ProductFields):
    etalase_id: UUID
    vendor_type: VendorType = Field(description="the vendor's role for this offer")
    category_code: str
    name: Text
    description: Annotated[str, Field(max_length=20_000)] = ""
    specification: dict[Annotated[str, Field(max_length=100)], str] = Field(default_factory=dict)
    kbki: Annotated[str, Field(pattern=r"^\d{4,12}$")]
    unit: Annotated[str, Field(min_length=1, max_length=40)]
    price: Rupiah
    regional_prices: dict[RegionCode, Rupiah] = Field(default_factory=dict)
    tax_percent: Percent
    pdn: bool
    stock: Quantity = 0
    delivery_regions: Annotated[list[RegionCode], Field(min_length=1)]
    photos: list[Annotated[str, Field(pattern=r"^https?://", max_length=2000)]] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _certificate_backs_the_claim(self) -> ProductCreate:
        try:
            check_tkdn_claim(self.tkdn, self.bmp, self.tkdn_certificate)
        except RuleViolation as exc:
            raise ValueError(exc.detail) from None
        return self


class ProductPatch(ProductFields):
    """Only the fields sent are changed; optional claims (TKDN, SNI, brand) may be cleared."""

    @model_validator(mode="after")
    def _required_fields_stay(self) -> ProductPatch:
        _refuse_null(self, _REQUIRED_PRODUCT_FIELDS & self.model_fields_set)
        return self


_REQUIRED_PRODUCT_FIELDS = frozenset(
    {
        "name",
        "description",
        "specification",
        "kbki",
        "unit",
        "price",
        "regional_prices",
        "tax_percent",
        "pdn",
        "delivery_regions",
        "photos",
    }
)


class Reasons(_Body):
    reasons: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class TakeDown(_Body):
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class StockSet(_Body):
    stock: Quantity


class ProductPublic(BaseModel):
    """A product as the public catalogue shows it."""

    id: UUID
    etalase_id: UUID
    etalase_code: str
    vendor_id: UUID
    vendor_type: VendorType
    vendor_is_umk: bool
    vendor_is_koperasi: bool
    vendor_is_local: bool
    name: str
    description: str
    specification: dict[str, str]
    category_code: str
    category_path: list[str]
    kbki: str
    unit: str
    price: int
    regional_prices: dict[str, int]
    tax_percent: float
    pdn: bool
    tkdn: float | None
    bmp: float | None
    tkdn_certificate: str | None
    tkdn_verified: bool = Field(description="the TKDN/BMP claim passed curation")
    sni: str | None
    brand: str | None
    stock: int
    delivery_regions: list[str]
    photos: list[str]
    state: ProductState
    revision: int
    version: int
    created_at: datetime
    updated_at: datetime


class ProductOut(ProductPublic):
    """A product with its review status, for the manager, auditor and owning vendor."""

    taken_down_by: TakenDownBy | None
    state_reasons: list[str]
    pending_revision: int | None


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None


class SearchHit(ProductPublic):
    score: float | None = Field(default=None, description="text relevance, 0..1")


class SearchPage(BaseModel):
    items: list[SearchHit]
    next_cursor: str | None


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
