"""Order and RUP rules: the order state machine, pagu, buyer limits, negotiation, domestic
priority (Perpres 46/2025 art. 66). Pure: no I/O, no HTTP."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.auth import Principal, Role
from shared.contracts.orders import OrderState, Party, PriorityTier, ProcurementType


class Refused(Exception):
    """A rule refused the request. `code` names the rule; `status` is how HTTP answers;
    `extra` carries figures the caller needs (e.g. the remaining pagu)."""

    def __init__(self, code: str, detail: str, *, status: int = 422, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.extra = extra


class NotFound(Exception):
    """The order or RUP package does not exist."""


def forbidden(detail: str) -> Refused:
    return Refused("forbidden", detail, status=403)


# --------------------------------------------------------------------------- state machine

S = OrderState
PRE_SP = frozenset({S.PLACED, S.NEGOTIATING, S.AWAITING_APPROVAL})
ENDED_WITHOUT_DELIVERY = frozenset({S.REJECTED, S.REJECTED_BY_VENDOR, S.CANCELLED, S.EXPIRED})

# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[OrderState], OrderState | None]] = {
    # the target depends on the purchase method (negotiating or awaiting approval)
    "confirm_stock": (frozenset({S.PLACED}), None),
    "reject": (PRE_SP, S.REJECTED),
    "propose": (frozenset({S.NEGOTIATING}), S.NEGOTIATING),
    "agree": (frozenset({S.NEGOTIATING}), S.AWAITING_APPROVAL),
    "approve": (frozenset({S.AWAITING_APPROVAL}), S.AWAITING_VENDOR),
    "accept": (frozenset({S.AWAITING_VENDOR}), S.ACCEPTED),
    "vendor_reject": (frozenset({S.AWAITING_VENDOR}), S.REJECTED_BY_VENDOR),
    "ship": (frozenset({S.ACCEPTED, S.DELIVERY_DISPUTED}), S.SHIPPED),
    "receive": (frozenset({S.SHIPPED}), S.RECEIVED),
    "dispute": (frozenset({S.SHIPPED}), S.DELIVERY_DISPUTED),
    "pay": (frozenset({S.RECEIVED}), S.PAID),
    "complete": (frozenset({S.PAID}), S.COMPLETED),
    "cancel": (PRE_SP | {S.AWAITING_VENDOR}, S.CANCELLED),
    "expire": (frozenset({S.AWAITING_APPROVAL, S.AWAITING_VENDOR}), S.EXPIRED),
}


def check_transition(state: OrderState, action: str) -> OrderState | None:
    """The state `action` leads to from `state`; refuses (409) when it is not allowed there."""
    sources, target = TRANSITIONS[action]
    if state not in sources:
        allowed = ", ".join(sorted(s.value for s in sources))
        raise Refused(
            "invalid_transition",
            f"an order in state {state.value} cannot {action.replace('_', ' ')}; "
            f"only an order in {allowed} can",
            status=409,
            state=state.value,
        )
    return target


def counts_against_pagu(state: OrderState) -> bool:
    """Live orders hold budget; orders that ended without delivery give it back."""
    return state not in ENDED_WITHOUT_DELIVERY


# --------------------------------------------------------------------------- buyers and money

DEFAULT_PP_LIMIT = 200_000_000


def rupiah(amount: int) -> str:
    """Rp1.500.000 as Indonesians write it."""
    return "Rp" + f"{amount:,}".replace(",", ".")


def check_buyer_limit(
    role: Role, procurement_type: ProcurementType, total: int, limits: Mapping[str, int]
) -> None:
    """A PP orders up to its limit per procurement type; a PPK has no limit."""
    if role is not Role.PP:
        return
    limit = limits.get(procurement_type.value, DEFAULT_PP_LIMIT)
    if total > limit:
        raise Refused(
            "pp_limit",
            f"a PP may order up to {rupiah(limit)} for {procurement_type.value}; this order "
            f"totals {rupiah(total)}, so the PPK must place it",
            limit=limit,
            total=total,
        )


def check_pagu(pagu: int, committed: int, total: int) -> None:
    """Refuses an order the package's remaining pagu cannot cover."""
    remaining = pagu - committed
    if total > remaining:
        raise Refused(
            "pagu_exceeded",
            f"the order totals {rupiah(total)} but only {rupiah(remaining)} of the package's "
            f"pagu {rupiah(pagu)} remains",
            remaining=remaining,
            total=total,
        )


def check_payment(amount: int, total: int) -> None:
    if amount != total:
        raise Refused(
            "payment_amount",
            f"the payment of {rupiah(amount)} must equal the agreed total {rupiah(total)}",
            total=total,
        )


# --------------------------------------------------------------------------- negotiation


@dataclass(frozen=True)
class Proposal:
    round: int
    by: Party
    prices: dict[str, int]


def next_proposer(last: Proposal | None) -> Party:
    """The buyer opens; then the sides take turns."""
    if last is None:
        return Party.BUYER
    return Party.VENDOR if last.by is Party.BUYER else Party.BUYER


def check_proposal(
    party: Party, last: Proposal | None, prices: Mapping[str, int], listed: Mapping[str, int]
) -> None:
    """A proposal names a unit price for every line, none above the listed price."""
    if party is not next_proposer(last):
        raise Refused(
            "negotiation_turn",
            f"the {party.value} cannot propose now: it is the {next_proposer(last).value}'s turn",
            status=409,
        )
    missing = sorted(set(listed) - set(prices))
    unknown = sorted(set(prices) - set(listed))
    if missing or unknown:
        raise Refused(
            "negotiation_lines",
            "a proposal names a price for exactly the order's products"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not in the order: {', '.join(unknown)}" if unknown else ""),
        )
    for product_id, price in sorted(prices.items()):
        if price < 1 or price > listed[product_id]:
            raise Refused(
                "negotiation_price",
                f"product {product_id}: the price must be between Rp1 and the listed price "
                f"{rupiah(listed[product_id])}",
            )


def check_agreement(party: Party, last: Proposal | None) -> Proposal:
    """Only the side that received the last proposal can agree to it."""
    if last is None:
        raise Refused("negotiation_empty", "there is no proposal to agree to yet", status=409)
    if last.by is party:
        raise Refused(
            "negotiation_turn",
            f"the {party.value} made the last proposal; the other side agrees to it",
            status=409,
        )
    return last


# --------------------------------------------------------------------------- domestic priority

TIER_RANK = {
    PriorityTier.TKDN_BMP_40: 1,
    PriorityTier.TKDN_25: 2,
    PriorityTier.TKDN_LOWER: 3,
    PriorityTier.PDN: 4,
    PriorityTier.NONE: 5,
}


@dataclass(frozen=True)
class DomesticClaims:
    """What a product claims about domestic content, and which claims were verified."""

    pdn: bool
    tkdn: float | None
    bmp: float | None
    tkdn_verified: bool
    # None where the catalog did not say: a PDN claim then stands as made, and a BMP claim
    # counts with its TKDN.
    pdn_verified: bool | None = None
    bmp_verified: bool | None = None


def priority_tier(claims: DomesticClaims) -> PriorityTier:
    """Perpres 46/2025 art. 66, verified claims only."""
    tkdn = (claims.tkdn or 0.0) if claims.tkdn_verified else 0.0
    bmp_counts = claims.tkdn_verified if claims.bmp_verified is None else claims.bmp_verified
    bmp = (claims.bmp or 0.0) if bmp_counts else 0.0
    if tkdn >= 25 and tkdn + bmp >= 40:
        return PriorityTier.TKDN_BMP_40
    if tkdn >= 25:
        return PriorityTier.TKDN_25
    if tkdn > 0:
        return PriorityTier.TKDN_LOWER
    if claims.pdn and claims.pdn_verified is not False:
        return PriorityTier.PDN
    return PriorityTier.NONE


def best_tier(tiers: Iterable[PriorityTier]) -> PriorityTier:
    return min(tiers, key=TIER_RANK.__getitem__, default=PriorityTier.NONE)


@dataclass(frozen=True)
class PriorityCheck:
    tier: PriorityTier
    best_available: PriorityTier
    compliant: bool


def check_priority(
    product_id: str,
    tier: PriorityTier,
    alternatives: Iterable[PriorityTier],
    justification: str | None,
) -> PriorityCheck:
    """A line that skips a higher-priority listed alternative needs a written justification."""
    best = best_tier([tier, *alternatives])
    compliant = TIER_RANK[tier] <= TIER_RANK[best]
    if not compliant and not justification:
        raise Refused(
            "domestic_priority",
            f"product {product_id} is {tier.value} but a {best.value} product is listed in the "
            "same category; choose it or give a justification (Perpres 46/2025 art. 66)",
            product_id=product_id,
            tier=tier.value,
            best_available=best.value,
        )
    return PriorityCheck(tier, best, compliant)


# --------------------------------------------------------------------------- who may act

READ_ALL = frozenset({Role.CATALOGUE_MANAGER, Role.AUDITOR})
BUYERS = frozenset({Role.PP, Role.PPK})


def ensure_can_read(principal: Principal, opd_id: str, vendor_id: str) -> None:
    """Auditors and the catalogue manager read all; OPD staff their OPD's; a vendor its own."""
    if principal.role in READ_ALL:
        return
    if principal.role is Role.VENDOR:
        if principal.vendor_id != vendor_id:
            raise forbidden("a vendor sees only its own orders")
        return
    if principal.opd_id is None or principal.role is Role.INTEGRATOR:
        raise forbidden(f"role {principal.role.value} may not read orders")
    if principal.opd_id != opd_id:
        raise forbidden(f"this order belongs to OPD {opd_id}, not to {principal.opd_id}")


def ensure_buyer(principal: Principal, opd_id: str) -> None:
    """A PP or PPK of the OPD that owns the order (or the RUP package)."""
    if principal.role not in BUYERS:
        raise forbidden(f"only a PP or PPK may do this, not a {principal.role.value}")
    if principal.opd_id != opd_id:
        raise forbidden(f"this belongs to OPD {opd_id}, not to {principal.opd_id}")


def ensure_chosen_ppk(principal: Principal, opd_id: str, ppk_id: str) -> None:
    """The PPK chosen at checkout approves, signs the SP and the BAST."""
    if principal.role is not Role.PPK:
        raise forbidden(f"only the order's PPK may do this, not a {principal.role.value}")
    ensure_buyer(principal, opd_id)
    if principal.subject != ppk_id:
        raise forbidden(f"the order's PPK is {ppk_id}; {principal.subject} is not")


def ensure_order_vendor(principal: Principal, vendor_id: str) -> None:
    if principal.role is not Role.VENDOR:
        raise forbidden(f"only the order's vendor may do this, not a {principal.role.value}")
    if principal.vendor_id != vendor_id:
        raise forbidden("a vendor acts only on its own orders")


def ensure_treasurer(principal: Principal, opd_id: str) -> None:
    if principal.role is not Role.TREASURER:
        raise forbidden(f"only the OPD's treasurer records payment, not a {principal.role.value}")
    if principal.opd_id != opd_id:
        raise forbidden(f"this order belongs to OPD {opd_id}, not to {principal.opd_id}")


def ensure_rup_registrar(principal: Principal, opd_id: str) -> None:
    """The catalogue manager registers any OPD's packages; OPD staff only their own OPD's."""
    if principal.role is Role.CATALOGUE_MANAGER:
        return
    if principal.role not in BUYERS:
        raise forbidden(f"a {principal.role.value} may not register RUP packages")
    if principal.opd_id != opd_id:
        raise forbidden(f"the package belongs to OPD {opd_id}, not to {principal.opd_id}")
