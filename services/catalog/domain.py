"""Pure catalogue rules: storefront (etalase) eligibility, curation (kurasi) and price versioning.

No I/O here. The commands load rows, ask these functions what is allowed, and store the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.contracts.catalog import (
    CategoryNode,
    CuratedCollection,
    EtalaseState,
    ProductState,
    TakenDownBy,
    VendorType,
)

MAX_CATEGORY_DEPTH = 3
_WORD = re.compile(r"[0-9a-z]+")


class RuleViolation(Exception):
    """A catalogue rule refused the action; `rule` is a stable machine-readable name."""

    def __init__(self, rule: str, detail: str, *, status: int = 422) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail
        self.status = status


def category_paths(tree: Iterable[CategoryNode]) -> dict[str, list[str]]:
    """Map every category code to its path from the root; refuses duplicates and depth > 3."""
    paths: dict[str, list[str]] = {}

    def walk(nodes: Iterable[CategoryNode], parent: list[str]) -> None:
        for node in nodes:
            path = [*parent, node.code]
            if len(path) > MAX_CATEGORY_DEPTH:
                raise RuleViolation(
                    "category_depth",
                    f"category {node.code} is deeper than {MAX_CATEGORY_DEPTH} levels",
                )
            if node.code in paths:
                raise RuleViolation("category_unique", f"category code {node.code} is repeated")
            paths[node.code] = path
            walk(node.children, path)

    walk(tree, [])
    return paths


def check_collections(collections: Iterable[CuratedCollection]) -> None:
    codes = [c.code for c in collections]
    if len(set(codes)) != len(codes):
        raise RuleViolation("collection_unique", "collection codes must be unique")


@dataclass(frozen=True)
class EtalaseRules:
    """What a storefront demands of vendors and products."""

    state: EtalaseState
    vendor_types: frozenset[VendorType]
    kbli: frozenset[str]
    only_local: bool
    only_umk_koperasi: bool
    price_ceiling: int | None
    category_paths: Mapping[str, list[str]]


@dataclass(frozen=True)
class VendorProfile:
    """The catalogue's projection of a vendor (penyedia), from the vendor events."""

    state: str
    kbli: frozenset[str]
    is_umk: bool
    is_koperasi: bool
    is_local: bool

    @property
    def may_sell(self) -> bool:
        return self.state == "verified"


def check_vendor_eligible(rules: EtalaseRules, vendor: VendorProfile | None) -> None:
    """Who the vendor is: verified, KBLI, domicile and scale rules (403 when refused)."""
    if vendor is None or not vendor.may_sell:
        state = "unknown" if vendor is None else vendor.state
        raise RuleViolation(
            "vendor_verified", f"the vendor is not verified (state: {state})", status=403
        )
    if rules.kbli and not (rules.kbli & vendor.kbli):
        raise RuleViolation(
            "kbli",
            "none of the vendor's KBLI codes is allowed in this storefront "
            f"(allowed: {', '.join(sorted(rules.kbli))})",
            status=403,
        )
    if rules.only_local and not vendor.is_local:
        raise RuleViolation(
            "local_vendor", "this storefront accepts local vendors only", status=403
        )
    if rules.only_umk_koperasi and not (vendor.is_umk or vendor.is_koperasi):
        raise RuleViolation(
            "umkm_koperasi",
            "this storefront accepts micro/small businesses and cooperatives only",
            status=403,
        )


def check_offer(
    rules: EtalaseRules,
    *,
    vendor_type: VendorType,
    category_code: str,
    price: int,
    regional_prices: Mapping[str, int],
) -> list[str]:
    """What is offered: open storefront, vendor type, category, price ceiling (422 when refused).

    Returns the category path of the product.
    """
    if rules.state is not EtalaseState.OPEN:
        raise RuleViolation("etalase_open", f"the storefront is {rules.state}, not open")
    if vendor_type not in rules.vendor_types:
        allowed = ", ".join(sorted(rules.vendor_types))
        raise RuleViolation(
            "vendor_type", f"vendor type {vendor_type} is not allowed here (allowed: {allowed})"
        )
    path = rules.category_paths.get(category_code)
    if path is None:
        raise RuleViolation("category", f"category {category_code} is not in this storefront")
    check_price_ceiling(rules, price, regional_prices)
    return path


def check_price_ceiling(
    rules: EtalaseRules, price: int, regional_prices: Mapping[str, int]
) -> None:
    if rules.price_ceiling is None:
        return
    for where, amount in [("price", price), *regional_prices.items()]:
        if amount > rules.price_ceiling:
            raise RuleViolation(
                "price_ceiling",
                f"{where}: Rp{amount} is above the storefront's ceiling of "
                f"Rp{rules.price_ceiling} per unit",
            )


def check_tkdn_claim(tkdn: float | None, bmp: float | None, certificate: str | None) -> None:
    """A local-content claim (TKDN/BMP) is only reviewable with its certificate number."""
    if (tkdn is not None or bmp is not None) and not certificate:
        raise RuleViolation("tkdn_certificate", "a TKDN/BMP claim needs tkdn_certificate")


# --------------------------------------------------------------------------- curation


def submit(state: ProductState | None, taken_down_by: TakenDownBy | None) -> ProductState:
    """A new product, a rejected one edited, or a taken-down one relisted goes to review."""
    if state is None or state in (ProductState.REJECTED, ProductState.TAKEN_DOWN):
        if taken_down_by is TakenDownBy.VENDOR_STATUS:
            raise RuleViolation(
                "vendor_status",
                "taken down because the vendor may not sell; it returns when the vendor does",
                status=409,
            )
        return ProductState.SUBMITTED
    raise RuleViolation("state", f"a {state} product cannot be submitted", status=409)


def curate(state: ProductState, approve: bool, has_pending_change: bool) -> ProductState:
    """The manager's review: a submitted product, or a listed product's pending change."""
    if state is ProductState.SUBMITTED:
        return ProductState.LISTED if approve else ProductState.REJECTED
    if state is ProductState.LISTED and has_pending_change:
        return ProductState.LISTED
    raise RuleViolation("state", f"nothing to review: the product is {state}", status=409)


def take_down(state: ProductState) -> ProductState:
    if state is not ProductState.LISTED:
        raise RuleViolation(
            "state", f"only a listed product can be taken down ({state})", status=409
        )
    return ProductState.TAKEN_DOWN


# --------------------------------------------------------------------------- versioning

PRICE_FIELDS = frozenset({"price", "regional_prices"})
TKDN_FIELDS = frozenset({"tkdn", "bmp", "tkdn_certificate"})
SEARCH_FIELDS = frozenset({"name", "brand", "specification"})


@dataclass(frozen=True)
class ChangeDecision:
    """How a vendor's edit is handled: applied now, held for review, or refused."""

    changes: dict[str, Any]
    apply_now: bool
    resubmit: bool

    @property
    def price_changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.changes.items() if k in PRICE_FIELDS}

    @property
    def other_changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.changes.items() if k not in PRICE_FIELDS}


def decide_change(
    state: ProductState,
    taken_down_by: TakenDownBy | None,
    current: Mapping[str, Any],
    requested: Mapping[str, Any],
    *,
    recurate_changes: bool,
    has_pending_change: bool,
) -> ChangeDecision:
    """Keep only real changes; a listed product's edit waits for review if the storefront says so.

    A rejected product that is edited goes back to review; a submitted one is simply amended.
    TKDN claims always lose their verified mark until a manager reviews them again.
    """
    if taken_down_by is TakenDownBy.VENDOR_STATUS:
        # It comes back listed without review when the vendor may sell again, so it must not
        # change in between.
        raise RuleViolation(
            "vendor_status", "the product is down while the vendor may not sell", status=409
        )
    changes = {k: v for k, v in requested.items() if current.get(k) != v}
    if not changes:
        raise RuleViolation("no_change", "the request changes nothing", status=422)
    if state is ProductState.LISTED:
        if has_pending_change:
            raise RuleViolation(
                "pending_change", "a change is already waiting for review", status=409
            )
        return ChangeDecision(changes, apply_now=not recurate_changes, resubmit=False)
    return ChangeDecision(changes, apply_now=True, resubmit=state is ProductState.REJECTED)


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


def search_words(*texts: str | None) -> list[str]:
    """The distinct lower-case words (letters and digits, two or more) that search matches.

    No stemming: Indonesian affixes (me-, di-, -kan) are left alone; typos and variants are
    caught by trigram similarity against the catalogue's own words instead.
    """
    words = {w for text in texts if text for w in _WORD.findall(text.lower()) if len(w) > 1}
    return sorted(words)
