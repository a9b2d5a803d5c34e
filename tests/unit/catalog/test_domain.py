"""Pure catalogue rules: eligibility, curation state machine, change versioning, cursors."""

from __future__ import annotations

import uuid
from dataclasses import replace
from types import MappingProxyType

import pytest

from services.catalog import domain
from services.catalog.domain import EtalaseRules, RuleViolation, VendorProfile
from services.catalog.search import (
    SearchQuery,
    Sort,
    apply_collection,
    decode_cursor,
    encode_cursor,
)
from shared.contracts.catalog import (
    CategoryNode,
    CuratedCollection,
    EtalaseState,
    ProductState,
    TakenDownBy,
    VendorType,
)

TREE = [
    CategoryNode(
        code="ATK",
        name="Alat tulis kantor",
        children=[CategoryNode(code="ATK.KERTAS", name="Kertas")],
    )
]
RULES = EtalaseRules(
    state=EtalaseState.OPEN,
    vendor_types=frozenset({VendorType.PRODUCER, VendorType.RESELLER}),
    kbli=frozenset({"47611"}),
    only_local=False,
    only_umk_koperasi=False,
    price_ceiling=100_000,
    category_paths=domain.category_paths(TREE),
)
VENDOR = VendorProfile(
    state="verified", kbli=frozenset({"47611"}), is_umk=True, is_koperasi=False, is_local=True
)


def _rule(call: object) -> tuple[str, int]:
    with pytest.raises(RuleViolation) as refused:
        call()  # type: ignore[operator]
    return refused.value.rule, refused.value.status


class TestEligibility:
    def test_verified_vendor_meeting_the_rules_passes(self) -> None:
        domain.check_vendor_eligible(RULES, VENDOR)

    @pytest.mark.parametrize(
        ("rules", "vendor", "rule"),
        [
            (RULES, None, "vendor_verified"),
            (RULES, replace(VENDOR, state="suspended"), "vendor_verified"),
            (RULES, replace(VENDOR, kbli=frozenset({"10101"})), "kbli"),
            (replace(RULES, only_local=True), replace(VENDOR, is_local=False), "local_vendor"),
            (
                replace(RULES, only_umk_koperasi=True),
                replace(VENDOR, is_umk=False),
                "umkm_koperasi",
            ),
        ],
    )
    def test_vendor_refusals_are_403(
        self, rules: EtalaseRules, vendor: VendorProfile | None, rule: str
    ) -> None:
        assert _rule(lambda: domain.check_vendor_eligible(rules, vendor)) == (rule, 403)

    def test_koperasi_counts_for_umkm_storefronts_and_no_kbli_list_means_any(self) -> None:
        rules = replace(RULES, only_umk_koperasi=True, kbli=frozenset())
        vendor = replace(VENDOR, is_umk=False, is_koperasi=True, kbli=frozenset({"99999"}))
        domain.check_vendor_eligible(rules, vendor)

    def test_offer_returns_the_category_path(self) -> None:
        path = domain.check_offer(
            RULES,
            vendor_type=VendorType.PRODUCER,
            category_code="ATK.KERTAS",
            price=100_000,
            regional_prices={"33.75": 90_000},
        )
        assert path == ["ATK", "ATK.KERTAS"]

    @pytest.mark.parametrize(
        ("rules", "changes", "rule"),
        [
            (replace(RULES, state=EtalaseState.CLOSED), {}, "etalase_open"),
            (RULES, {"vendor_type": VendorType.AGENT}, "vendor_type"),
            (RULES, {"category_code": "ELEKTRONIK"}, "category"),
            (RULES, {"price": 100_001}, "price_ceiling"),
            (RULES, {"regional_prices": {"33.26": 100_001}}, "price_ceiling"),
        ],
    )
    def test_offer_refusals_are_422(
        self, rules: EtalaseRules, changes: dict[str, object], rule: str
    ) -> None:
        offer: dict[str, object] = {
            "vendor_type": VendorType.PRODUCER,
            "category_code": "ATK",
            "price": 50_000,
            "regional_prices": {},
            **changes,
        }
        assert _rule(lambda: domain.check_offer(rules, **offer)) == (rule, 422)  # type: ignore[arg-type]

    def test_category_tree_is_at_most_three_levels_with_unique_codes(self) -> None:
        deep = CategoryNode(
            code="A",
            name="a",
            children=[
                CategoryNode(
                    code="B",
                    name="b",
                    children=[
                        CategoryNode(
                            code="C", name="c", children=[CategoryNode(code="D", name="d")]
                        )
                    ],
                )
            ],
        )
        assert _rule(lambda: domain.category_paths([deep]))[0] == "category_depth"
        twice = [CategoryNode(code="A", name="a"), CategoryNode(code="A", name="again")]
        assert _rule(lambda: domain.category_paths(twice))[0] == "category_unique"
        collections = [CuratedCollection(code="x", name="x")] * 2
        assert _rule(lambda: domain.check_collections(collections))[0] == "collection_unique"


class TestCuration:
    def test_new_rejected_and_taken_down_products_go_to_review(self) -> None:
        assert domain.submit(None, None) is ProductState.SUBMITTED
        assert domain.submit(ProductState.REJECTED, None) is ProductState.SUBMITTED
        relist = domain.submit(ProductState.TAKEN_DOWN, TakenDownBy.MANAGER)
        assert relist is ProductState.SUBMITTED

    def test_what_the_vendor_status_took_down_is_not_relisted_by_hand(self) -> None:
        call = lambda: domain.submit(ProductState.TAKEN_DOWN, TakenDownBy.VENDOR_STATUS)  # noqa: E731
        assert _rule(call) == ("vendor_status", 409)

    @pytest.mark.parametrize("state", [ProductState.SUBMITTED, ProductState.LISTED])
    def test_listed_or_waiting_products_cannot_be_submitted(self, state: ProductState) -> None:
        assert _rule(lambda: domain.submit(state, None)) == ("state", 409)

    def test_review_decides_submitted_products(self) -> None:
        assert domain.curate(ProductState.SUBMITTED, True, False) is ProductState.LISTED
        assert domain.curate(ProductState.SUBMITTED, False, False) is ProductState.REJECTED
        assert domain.curate(ProductState.LISTED, False, True) is ProductState.LISTED

    @pytest.mark.parametrize(
        ("state", "pending"),
        [
            (ProductState.LISTED, False),
            (ProductState.REJECTED, False),
            (ProductState.TAKEN_DOWN, True),
        ],
    )
    def test_nothing_to_review(self, state: ProductState, pending: bool) -> None:
        assert _rule(lambda: domain.curate(state, True, pending)) == ("state", 409)

    def test_only_listed_products_are_taken_down(self) -> None:
        assert domain.take_down(ProductState.LISTED) is ProductState.TAKEN_DOWN
        for state in (ProductState.SUBMITTED, ProductState.REJECTED, ProductState.TAKEN_DOWN):
            assert _rule(lambda s=state: domain.take_down(s)) == ("state", 409)


CURRENT = MappingProxyType(
    {"price": 100, "regional_prices": {}, "name": "Kertas HVS A4", "tkdn": 40.0}
)


class TestVersioning:
    def _decide(
        self, state: ProductState, requested: dict[str, object], **options: bool
    ) -> domain.ChangeDecision:
        settings = {"recurate_changes": True, "has_pending_change": False, **options}
        return domain.decide_change(state, None, CURRENT, requested, **settings)

    def test_listed_edit_waits_for_review_when_the_storefront_asks(self) -> None:
        decision = self._decide(ProductState.LISTED, {"price": 120, "name": "Kertas HVS A4"})
        assert decision.changes == {"price": 120} and not decision.apply_now
        assert decision.price_changes == {"price": 120} and decision.other_changes == {}

    def test_listed_edit_goes_live_when_the_storefront_allows(self) -> None:
        decision = self._decide(
            ProductState.LISTED, {"price": 90, "name": "HVS"}, recurate_changes=False
        )
        assert decision.apply_now and not decision.resubmit
        assert decision.price_changes == {"price": 90}
        assert decision.other_changes == {"name": "HVS"}

    def test_rejected_edit_resubmits_and_submitted_edit_amends(self) -> None:
        assert self._decide(ProductState.REJECTED, {"price": 90}).resubmit
        amended = self._decide(ProductState.SUBMITTED, {"price": 90})
        assert amended.apply_now and not amended.resubmit

    def test_refusals(self) -> None:
        assert _rule(lambda: self._decide(ProductState.LISTED, {"price": 100}))[0] == "no_change"
        pending = lambda: self._decide(  # noqa: E731
            ProductState.LISTED, {"price": 1}, has_pending_change=True
        )
        assert _rule(pending) == ("pending_change", 409)
        down = lambda: domain.decide_change(  # noqa: E731
            ProductState.TAKEN_DOWN,
            TakenDownBy.VENDOR_STATUS,
            CURRENT,
            {"price": 1},
            recurate_changes=False,
            has_pending_change=False,
        )
        assert _rule(down) == ("vendor_status", 409)


class TestSearchParameters:
    def test_cursor_round_trip_and_refusals(self) -> None:
        query = SearchQuery(text="kertas", sort=Sort.PRICE_ASC)
        last = uuid.uuid4()
        cursor = encode_cursor(query, 15_000, last)
        assert decode_cursor(query, cursor).after == (15_000, last)
        other = replace(query, pdn=True)
        assert _rule(lambda: decode_cursor(other, cursor))[0] == "cursor"
        for broken in ("", "!!!", "bnVsbA", encode_cursor(query, 1, last)[:-3]):
            assert _rule(lambda b=broken: decode_cursor(query, b))[0] == "cursor"

    def test_collection_narrows_the_query(self) -> None:
        collection = CuratedCollection(code="tkdn40", name="TKDN", min_tkdn_bmp=40, pdn_only=True)
        narrowed = apply_collection(SearchQuery(min_tkdn_bmp=50), collection)
        assert (narrowed.min_tkdn_bmp, narrowed.pdn) == (50, True)
        assert apply_collection(SearchQuery(), collection).min_tkdn_bmp == 40

    def test_search_words(self) -> None:
        words = domain.search_words("Kertas HVS A4, 80 gr/m²", None, "Sinar-Dunia", "x", "")
        assert words == ["80", "a4", "dunia", "gr", "hvs", "kertas", "sinar"]
