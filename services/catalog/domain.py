"""Pure catalogue rules: storefront (etalase) eligibility, curation (kurasi) of products and of
their claims, price versioning and search words.

No I/O and no HTTP here. The commands load aggregates, ask these rules what is allowed, and store
the answer; api.py maps the errors below to problem+json.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from shared.contracts.catalog import (
    CategoryNode,
    ClaimStatus,
    CuratedCollection,
    EtalaseSnapshot,
    EtalaseState,
    ProductSnapshot,
    ProductState,
    TakenDownBy,
    VendorType,
)
from shared.contracts.vendors import VendorState

MAX_CATEGORY_DEPTH = 3


class RuleViolation(Exception):
    """A catalogue rule refused what was asked; `rule` is a stable machine-readable name."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


class NotEligible(RuleViolation):
    """Who the vendor is does not allow it (not verified, KBLI, domicile, scale)."""


class StateConflict(RuleViolation):
    """The aggregate's current state does not allow the action (already open, nothing to review)."""


class NotOwner(Exception):
    """A vendor acted on another vendor's product."""


class NotFound(Exception):
    """The storefront or product does not exist (or is not visible to the caller)."""


# --------------------------------------------------------------------------- vendors


@dataclass(frozen=True)
class VendorProfile:
    """The catalogue's projection of a vendor (penyedia), from the vendor events."""

    vendor_id: uuid.UUID
    version: int
    state: VendorState
    kbli: frozenset[str]
    is_umk: bool
    is_koperasi: bool
    is_local: bool
    is_pkp: bool | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> VendorProfile:
        return cls(
            vendor_id=row["vendor_id"],
            version=row["version"],
            state=VendorState(row["state"]),
            kbli=frozenset(row["kbli"]),
            is_umk=row["is_umk"],
            is_koperasi=row["is_koperasi"],
            is_local=row["is_local"],
            is_pkp=row["is_pkp"],
        )

    @property
    def may_sell(self) -> bool:
        return self.state is VendorState.VERIFIED


# --------------------------------------------------------------------------- storefronts


@dataclass(frozen=True)
class Category:
    """Where a category code sits in its storefront's tree, and the KBLI codes it demands."""

    path: list[str]
    kbli: frozenset[str]


def category_index(tree: Iterable[CategoryNode]) -> dict[str, Category]:
    """Every category code with its path from the root and the KBLI codes of its nearest node
    that names any; refuses repeated codes and trees deeper than three levels."""
    index: dict[str, Category] = {}

    def walk(nodes: Iterable[CategoryNode], parent: list[str], kbli: frozenset[str]) -> None:
        for node in nodes:
            path = [*parent, node.code]
            if len(path) > MAX_CATEGORY_DEPTH:
                raise RuleViolation(
                    "category_depth",
                    f"category {node.code} is deeper than {MAX_CATEGORY_DEPTH} levels",
                )
            if node.code in index:
                raise RuleViolation("category_unique", f"category code {node.code} is repeated")
            own = frozenset(node.kbli) or kbli
            index[node.code] = Category(path, own)
            walk(node.children, path, own)

    walk(tree, [], frozenset())
    return index


def check_collections(collections: Iterable[CuratedCollection]) -> None:
    codes = [c.code for c in collections]
    if len(set(codes)) != len(codes):
        raise RuleViolation("collection_unique", "collection codes must be unique")


class Etalase(EtalaseSnapshot):
    """A storefront with its rules: what it demands of vendors and of products."""

    id: uuid.UUID
    created_at: datetime
    updated_at: datetime

    @cached_property
    def categories_by_code(self) -> dict[str, Category]:
        return category_index(self.categories)


def check_vendor_eligible(etalase: Etalase, vendor: VendorProfile | None) -> VendorProfile:
    """Who the vendor is: verified, KBLI, domicile and scale rules."""
    if vendor is None or not vendor.may_sell:
        state = "unknown" if vendor is None else vendor.state
        raise NotEligible("vendor_verified", f"the vendor is not verified (state: {state})")
    if etalase.kbli and not (set(etalase.kbli) & vendor.kbli):
        raise NotEligible(
            "kbli",
            "none of the vendor's KBLI codes is allowed in this storefront "
            f"(allowed: {', '.join(sorted(etalase.kbli))})",
        )
    if etalase.only_local and not vendor.is_local:
        raise NotEligible("local_vendor", "this storefront accepts local vendors only")
    if etalase.only_umk_koperasi and not (vendor.is_umk or vendor.is_koperasi):
        raise NotEligible(
            "umkm_koperasi",
            "this storefront accepts micro/small businesses and cooperatives only",
        )
    return vendor


def check_offer(
    etalase: Etalase,
    vendor: VendorProfile,
    *,
    vendor_type: VendorType,
    category_code: str,
    price: int,
    regional_prices: Mapping[str, int],
    tax_percent: float,
) -> list[str]:
    """What is offered: open storefront, vendor type, category (and its KBLI), price ceiling,
    VAT. Returns the category path of the product."""
    if etalase.state is not EtalaseState.OPEN:
        raise RuleViolation("etalase_open", f"the storefront is {etalase.state}, not open")
    if vendor_type not in etalase.vendor_types:
        allowed = ", ".join(sorted(etalase.vendor_types))
        raise RuleViolation(
            "vendor_type", f"vendor type {vendor_type} is not allowed here (allowed: {allowed})"
        )
    category = etalase.categories_by_code.get(category_code)
    if category is None:
        raise RuleViolation("category", f"category {category_code} is not in this storefront")
    if category.kbli and not (category.kbli & vendor.kbli):
        raise NotEligible(
            "category_kbli",
            f"none of the vendor's KBLI codes covers category {category_code} "
            f"(needs one of: {', '.join(sorted(category.kbli))})",
        )
    check_price_ceiling(etalase, price, regional_prices)
    check_tax(vendor, tax_percent)
    return category.path


def check_price_ceiling(etalase: Etalase, price: int, regional_prices: Mapping[str, int]) -> None:
    if etalase.price_ceiling is None:
        return
    for where, amount in [("price", price), *regional_prices.items()]:
        if amount > etalase.price_ceiling:
            raise RuleViolation(
                "price_ceiling",
                f"{where}: Rp{amount} is above the storefront's ceiling of "
                f"Rp{etalase.price_ceiling} per unit",
            )


def check_tax(vendor: VendorProfile, tax_percent: float) -> None:
    """Only a PKP (Pengusaha Kena Pajak) may charge VAT (UU 42/2009 PPN art. 3A, 14)."""
    if tax_percent > 0 and not vendor.is_pkp:
        raise RuleViolation(
            "vendor_not_pkp",
            "the vendor is not registered as PKP and may not charge VAT: tax_percent must be 0",
        )


# --------------------------------------------------------------------------- products

CLAIMS = ("tkdn", "bmp", "pdn", "sni")
# Which fields back each claim: changing one sends that claim back to review.
CLAIM_FIELDS: Mapping[str, frozenset[str]] = {
    "tkdn": frozenset({"tkdn", "tkdn_certificate", "tkdn_valid_until"}),
    "bmp": frozenset({"bmp"}),
    "pdn": frozenset({"pdn"}),
    "sni": frozenset({"sni"}),
}
# BMP (Bobot Manfaat Perusahaan) is at most 15% and only exists with a TKDN.
MAX_BMP = 15.0


class ProductDetails(BaseModel):
    """What a product shows beyond its published snapshot."""

    id: uuid.UUID
    description: str
    specification: dict[str, str]
    photos: list[str]
    created_at: datetime
    updated_at: datetime


class CurationStatus(BaseModel):
    """Where a product's review stands: each claim's curation, take-down, a pending change."""

    tkdn_status: ClaimStatus
    bmp_status: ClaimStatus
    pdn_status: ClaimStatus
    sni_status: ClaimStatus
    taken_down_by: TakenDownBy | None
    state_reasons: list[str]
    pending_revision: int | None = None


class Product(ProductSnapshot, ProductDetails, CurationStatus):
    """A product as stored: snapshot, details, curation, and the search columns."""

    etalase_open: bool
    search_words: list[str]
    search_version: int

    def claim_statuses(self) -> dict[str, ClaimStatus]:
        return {
            "tkdn": self.tkdn_status,
            "bmp": self.bmp_status,
            "pdn": self.pdn_status,
            "sni": self.sni_status,
        }

    def public_view(self) -> Product:
        """The product as the public catalogue shows it: unverified claims are left out."""
        return self.model_copy(
            update={
                "pdn": self.pdn_verified,
                "tkdn": self.tkdn if self.tkdn_verified else None,
                "tkdn_certificate": self.tkdn_certificate if self.tkdn_verified else None,
                "tkdn_valid_until": self.tkdn_valid_until if self.tkdn_verified else None,
                "bmp": self.bmp if self.bmp_verified else None,
                "sni": self.sni if self.sni_verified else None,
            }
        )


def check_claims(values: Mapping[str, Any]) -> None:
    """What a product's claims need before they can be reviewed: a TKDN claim its certificate
    number and validity date and a domestic product (a product with TKDN is PDN); BMP only
    exists with a TKDN."""
    tkdn = values.get("tkdn")
    if tkdn is not None:
        if not values.get("tkdn_certificate") or values.get("tkdn_valid_until") is None:
            raise RuleViolation(
                "tkdn_certificate",
                "a TKDN claim needs tkdn_certificate and tkdn_valid_until",
            )
        if not values.get("pdn"):
            raise RuleViolation("tkdn_implies_pdn", "a product with TKDN is a domestic product")
    if values.get("bmp") is not None and tkdn is None:
        raise RuleViolation("bmp_requires_tkdn", "a BMP claim needs a TKDN claim")


def claims_touched(changes: Iterable[str]) -> list[str]:
    changed = set(changes)
    return [claim for claim in CLAIMS if CLAIM_FIELDS[claim] & changed]


def review_claims(
    product: Product, decisions: Mapping[str, ClaimStatus], today: date
) -> dict[str, ClaimStatus]:
    """The claim statuses after the manager's decisions; only claims the product makes can be
    decided, an expired certificate cannot be verified, and BMP is verified only with TKDN."""
    claimed = {
        "tkdn": product.tkdn is not None,
        "bmp": product.bmp is not None,
        "pdn": product.pdn,
        "sni": product.sni is not None,
    }
    before = product.claim_statuses()
    statuses = dict(before)
    for claim, decision in decisions.items():
        if not claimed[claim]:
            raise RuleViolation("no_claim", f"the product makes no {claim.upper()} claim")
        if decision is ClaimStatus.EXPIRED:
            raise RuleViolation("claim_decision", "a claim expires by itself, not by decision")
        statuses[claim] = decision
    expired = product.tkdn_valid_until is not None and product.tkdn_valid_until < today
    if decisions.get("tkdn") is ClaimStatus.VERIFIED and expired:
        raise RuleViolation(
            "tkdn_expired", f"the TKDN certificate expired on {product.tkdn_valid_until}"
        )
    if statuses["bmp"] is ClaimStatus.VERIFIED and statuses["tkdn"] is not ClaimStatus.VERIFIED:
        raise RuleViolation("bmp_requires_tkdn", "BMP can be verified only with a verified TKDN")
    return {claim: status for claim, status in statuses.items() if status is not before[claim]}


# --------------------------------------------------------------------------- curation


def submit(state: ProductState | None, taken_down_by: TakenDownBy | None) -> ProductState:
    """A new product, a rejected one edited, or a taken-down one relisted goes to review."""
    if state is None or state in (ProductState.REJECTED, ProductState.TAKEN_DOWN):
        if taken_down_by is TakenDownBy.VENDOR_STATUS:
            raise StateConflict(
                "vendor_status",
                "taken down because the vendor may not sell; it returns when the vendor does",
            )
        return ProductState.SUBMITTED
    raise StateConflict("state", f"a {state} product cannot be submitted")


def curate(state: ProductState, approve: bool, has_pending_change: bool) -> ProductState:
    """The manager's review: a submitted product, or a listed product's pending change."""
    if state is ProductState.SUBMITTED:
        return ProductState.LISTED if approve else ProductState.REJECTED
    if state is ProductState.LISTED and has_pending_change:
        return ProductState.LISTED
    raise StateConflict("state", f"nothing to review: the product is {state}")


def take_down(state: ProductState) -> ProductState:
    if state is not ProductState.LISTED:
        raise StateConflict("state", f"only a listed product can be taken down ({state})")
    return ProductState.TAKEN_DOWN


# --------------------------------------------------------------------------- versioning

PRICE_FIELDS = frozenset({"price", "regional_prices"})
SEARCH_FIELDS = frozenset({"name", "brand", "specification"})


@dataclass(frozen=True)
class ChangeDecision:
    """How a vendor's edit is handled: applied now, held for review, or refused."""

    changes: dict[str, Any]
    apply_now: bool
    resubmit: bool


def split_prices(changes: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A change's price part and the rest: they go live as two events."""
    prices = {k: v for k, v in changes.items() if k in PRICE_FIELDS}
    return prices, {k: v for k, v in changes.items() if k not in PRICE_FIELDS}


def decide_change(
    product: Product,
    requested: Mapping[str, Any],
    *,
    recurate_changes: bool,
) -> ChangeDecision:
    """Keep only real changes; a listed product's edit waits for review if the storefront says so.

    A rejected product that is edited goes back to review; a submitted one is simply amended.
    """
    if product.taken_down_by is TakenDownBy.VENDOR_STATUS:
        # It comes back listed without review when the vendor may sell again, so it must not
        # change in between.
        raise StateConflict("vendor_status", "the product is down while the vendor may not sell")
    changes = {k: v for k, v in requested.items() if getattr(product, k) != v}
    if not changes:
        raise RuleViolation("no_change", "the request changes nothing")
    if product.state is ProductState.LISTED:
        if product.pending_revision is not None:
            raise StateConflict("pending_change", "a change is already waiting for review")
        return ChangeDecision(changes, apply_now=not recurate_changes, resubmit=False)
    return ChangeDecision(changes, apply_now=True, resubmit=product.state is ProductState.REJECTED)


# --------------------------------------------------------------------------- collections


def collection_filters(collection: CuratedCollection) -> dict[str, Any]:
    """The search filters that select a curated collection's products."""
    filters: dict[str, Any] = {}
    if collection.min_tkdn_bmp is not None:
        filters["min_tkdn_bmp"] = collection.min_tkdn_bmp
    if collection.min_tkdn is not None:
        filters["min_tkdn"] = collection.min_tkdn
    if collection.pdn_only:
        filters["pdn"] = True
    if collection.umkm_koperasi_only:
        filters["umkm_koperasi"] = True
    if collection.local_only:
        filters["local_vendor"] = True
    return filters


# --------------------------------------------------------------------------- regions


def region_and_parents(code: str) -> list[str]:
    """A region code and every region containing it: a product delivering to any of them
    delivers there (33.75.01 -> 33, 33.75, 33.75.01)."""
    parts = code.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


# --------------------------------------------------------------------------- search words

# Bumped whenever `search_words` changes, so stored products are re-indexed with the new rule.
SEARCH_VERSION = 2
# Letters NFKD does not decompose into a base letter and a mark.
_FOLD = str.maketrans({"ł": "l", "đ": "d", "ø": "o", "ħ": "h", "ı": "i", "ŧ": "t"})
# Runs of letters or digits of any script.
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Case and accents folded: `Señor` -> `senor`, `Łódź` -> `lodz`; other scripts kept."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def search_words(*texts: str | None) -> list[str]:
    """The distinct folded words (letters and digits, two or more) that search matches; the
    same function indexes products and reads queries.

    No stemming: Indonesian affixes (me-, di-, -kan) are left alone; typos and variants are
    caught by trigram similarity against the catalogue's own words instead.
    """
    words = {w for text in texts if text for w in _WORD.findall(fold(text)) if len(w) > 1}
    return sorted(words)


def product_search_words(
    name: str, brand: str | None, specification: Mapping[str, str]
) -> list[str]:
    """What a product is found by: its name, brand and specification values."""
    return search_words(name, brand, *specification.values())
