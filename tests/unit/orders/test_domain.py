"""Order rules without I/O: the state machine, pagu, PP limits, negotiation, domestic priority."""

from __future__ import annotations

import pytest

from services.orders import domain
from services.orders.domain import DomesticClaims, Proposal, Refused
from shared.auth import Principal, Role
from shared.contracts.orders import OrderState, Party, PriorityTier, ProcurementType


def test_every_action_is_refused_outside_its_states_with_the_reason() -> None:
    for action, (sources, _) in domain.TRANSITIONS.items():
        for state in OrderState:
            if state in sources:
                continue
            with pytest.raises(Refused) as refused:
                domain.check_transition(state, action)
            assert refused.value.status == 409
            assert state.value in refused.value.detail


def test_cancellation_is_possible_until_the_vendor_accepts() -> None:
    assert domain.check_transition(OrderState.AWAITING_VENDOR, "cancel") is OrderState.CANCELLED
    with pytest.raises(Refused):
        domain.check_transition(OrderState.ACCEPTED, "cancel")


def test_a_disputed_delivery_goes_back_to_the_vendor_who_ships_again() -> None:
    assert domain.check_transition(OrderState.SHIPPED, "dispute") is OrderState.DELIVERY_DISPUTED
    assert domain.check_transition(OrderState.DELIVERY_DISPUTED, "ship") is OrderState.SHIPPED


def test_orders_that_ended_without_delivery_give_their_pagu_back() -> None:
    assert not domain.counts_against_pagu(OrderState.EXPIRED)
    assert not domain.counts_against_pagu(OrderState.CANCELLED)
    assert domain.counts_against_pagu(OrderState.COMPLETED)
    assert domain.counts_against_pagu(OrderState.PLACED)


def test_pagu_refusal_names_the_remaining_amount() -> None:
    domain.check_pagu(1_000_000, 400_000, 600_000)
    with pytest.raises(Refused) as refused:
        domain.check_pagu(1_000_000, 400_001, 600_000)
    assert refused.value.extra["remaining"] == 599_999
    assert "Rp599.999" in refused.value.detail


def test_a_pp_is_limited_per_procurement_type_and_a_ppk_is_not() -> None:
    limits = {"barang": 200_000_000, "pekerjaan_konstruksi": 400_000_000}
    domain.check_buyer_limit(Role.PP, ProcurementType.BARANG, 200_000_000, limits)
    domain.check_buyer_limit(Role.PP, ProcurementType.PEKERJAAN_KONSTRUKSI, 400_000_000, limits)
    domain.check_buyer_limit(Role.PPK, ProcurementType.BARANG, 10**12, limits)
    with pytest.raises(Refused, match="PPK must place it"):
        domain.check_buyer_limit(Role.PP, ProcurementType.BARANG, 200_000_001, limits)


def test_negotiation_turns_start_with_the_buyer() -> None:
    listed = {"a": 100, "b": 50}
    domain.check_proposal(Party.BUYER, None, {"a": 90, "b": 50}, listed)
    with pytest.raises(Refused, match="buyer's turn"):
        domain.check_proposal(Party.VENDOR, None, {"a": 90, "b": 50}, listed)
    last = Proposal(1, Party.BUYER, {"a": 90, "b": 50})
    with pytest.raises(Refused, match="vendor's turn"):
        domain.check_proposal(Party.BUYER, last, {"a": 80, "b": 50}, listed)
    domain.check_proposal(Party.VENDOR, last, {"a": 95, "b": 50}, listed)
    assert domain.check_agreement(Party.VENDOR, last) is last
    with pytest.raises(Refused, match="made the last proposal"):
        domain.check_agreement(Party.BUYER, last)
    with pytest.raises(Refused, match="no proposal"):
        domain.check_agreement(Party.VENDOR, None)


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"a": 90}, "missing: b"),
        ({"a": 90, "b": 50, "c": 1}, "not in the order: c"),
        ({"a": 101, "b": 50}, "listed price"),
        ({"a": 0, "b": 50}, "between Rp1"),
    ],
)
def test_a_proposal_prices_exactly_the_lines_within_the_listed_price(
    prices: dict[str, int], message: str
) -> None:
    with pytest.raises(Refused, match=message):
        domain.check_proposal(Party.BUYER, None, prices, {"a": 100, "b": 50})


@pytest.mark.parametrize(
    ("claims", "tier"),
    [
        (DomesticClaims(True, 30, 10, True), PriorityTier.TKDN_BMP_40),
        (DomesticClaims(True, 20, 15, True), PriorityTier.TKDN_LOWER),
        (DomesticClaims(True, 30, 5, True), PriorityTier.TKDN_25),
        (DomesticClaims(True, 60, 10, False), PriorityTier.PDN),  # unverified TKDN
        (DomesticClaims(True, None, None, False), PriorityTier.PDN),
        (DomesticClaims(True, None, None, False, pdn_verified=False), PriorityTier.NONE),
        (DomesticClaims(True, None, None, False, pdn_verified=True), PriorityTier.PDN),
        (DomesticClaims(False, None, None, False), PriorityTier.NONE),
        (DomesticClaims(True, 30, 10, True, bmp_verified=False), PriorityTier.TKDN_25),
        (DomesticClaims(True, 30, 10, True, bmp_verified=True), PriorityTier.TKDN_BMP_40),
    ],
)
def test_priority_tiers_count_verified_claims_only(
    claims: DomesticClaims, tier: PriorityTier
) -> None:
    assert domain.priority_tier(claims) is tier


def test_skipping_a_better_domestic_alternative_needs_a_justification() -> None:
    alternatives = [PriorityTier.NONE, PriorityTier.TKDN_25]
    with pytest.raises(Refused, match="justification") as refused:
        domain.check_priority("p", PriorityTier.PDN, alternatives, None)
    assert refused.value.extra["best_available"] == "tkdn_25"
    check = domain.check_priority("p", PriorityTier.PDN, alternatives, "only size in stock")
    assert not check.compliant and check.best_available is PriorityTier.TKDN_25
    assert domain.check_priority("p", PriorityTier.TKDN_25, alternatives, None).compliant


def _principal(role: Role, **kwargs: str) -> Principal:
    return Principal(subject=kwargs.pop("subject", "someone"), role=role, **kwargs)


def test_only_the_chosen_ppk_of_the_opd_signs() -> None:
    domain.ensure_chosen_ppk(_principal(Role.PPK, opd_id="A", subject="ppk-1"), "A", "ppk-1")
    for principal, reason in [
        (_principal(Role.PP, opd_id="A", subject="ppk-1"), "not a pp"),
        (_principal(Role.PPK, opd_id="B", subject="ppk-1"), "OPD A, not to B"),
        (_principal(Role.PPK, opd_id="A", subject="ppk-2"), "PPK is ppk-1"),
    ]:
        with pytest.raises(Refused, match=reason):
            domain.ensure_chosen_ppk(principal, "A", "ppk-1")


def test_readers() -> None:
    domain.ensure_can_read(_principal(Role.AUDITOR), "A", "v")
    domain.ensure_can_read(_principal(Role.CATALOGUE_MANAGER), "A", "v")
    domain.ensure_can_read(_principal(Role.TREASURER, opd_id="A"), "A", "v")
    domain.ensure_can_read(_principal(Role.VENDOR, vendor_id="v"), "A", "v")
    for principal in [
        _principal(Role.PP, opd_id="B"),
        _principal(Role.VENDOR, vendor_id="w"),
        _principal(Role.INTEGRATOR),
    ]:
        with pytest.raises(Refused):
            domain.ensure_can_read(principal, "A", "v")
