"""Pure catalogue rules: eligibility, offers, claims, curation, versioning, search words,
cursor positions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.catalog import domain
from services.catalog.domain import (
    Etalase,
    NotEligible,
    Product,
    RuleViolation,
    StateConflict,
    VendorProfile,
)
from services.catalog.search import (
    SearchQuery,
    Sort,
    apply_collection,
    continue_after,
    cursor_parts,
)
from shared.contracts.catalog import (
    CategoryNode,
    ClaimStatus,
    CuratedCollection,
    EtalaseState,
    ProductState,
    TakenDownBy,
    VendorType,
)
from shared.contracts.vendors import VendorState

NOW = datetime(2026, 11, 27, tzinfo=UTC)
TODAY = date(2026, 11, 27)
TREE = [
    CategoryNode(
        code="ATK",
        name="Alat tulis kantor",
        children=[
            CategoryNode(code="ATK.KERTAS", name="Kertas"),
            CategoryNode(code="ATK.CETAK", name="Percetakan", kbli=["18111"]),
        ],
    )
]
VENDOR = VendorProfile(
    vendor_id=uuid.uuid4(),
    version=1,
    state=VendorState.VERIFIED,
    kbli=frozenset({"47611"}),
    is_umk=True,
    is_koperasi=False,
    is_local=True,
    is_pkp=True,
)


def etalase(**overrides: Any) -> Etalase:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "version": 1,
        "code": "ATK",
        "name": "Alat tulis kantor",
        "description": "",
        "state": EtalaseState.OPEN,
        "categories": TREE,
        "vendor_types": [VendorType.PRODUCER, VendorType.RESELLER],
        "kbli": ["47611"],
        "only_local": False,
        "only_umk_koperasi": False,
        "price_ceiling": 100_000,
        "recurate_changes": True,
        "collections": [],
        "created_at": NOW,
        "updated_at": NOW,
        **overrides,
    }
    return Etalase(**values)


def product(**overrides: Any) -> Product:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "version": 1,
        "etalase_id": uuid.uuid4(),
        "etalase_code": "ATK",
        "vendor_id": VENDOR.vendor_id,
        "vendor_type": VendorType.PRODUCER,
        "vendor_is_umk": True,
        "vendor_is_koperasi": False,
        "vendor_is_local": True,
        "name": "Kertas HVS A4",
        "description": "",
        "specification": {"gramatur": "80"},
        "category_code": "ATK.KERTAS",
        "category_path": ["ATK", "ATK.KERTAS"],
        "kbki": "32141",
        "unit": "rim",
        "price": 100,
        "regional_prices": {},
        "tax_percent": 11.0,
        "pdn": True,
        "tkdn": 40.0,
        "bmp": 5.0,
        "tkdn_certificate": "TKDN-1",
        "tkdn_valid_until": date(2030, 1, 1),
        "tkdn_verified": False,
        "sni": None,
        "brand": "Sinar",
        "stock": 10,
        "delivery_regions": ["33.75"],
        "photos": [],
        "state": ProductState.LISTED,
        "revision": 1,
        "tkdn_status": ClaimStatus.PENDING,
        "bmp_status": ClaimStatus.PENDING,
        "pdn_status": ClaimStatus.PENDING,
        "sni_status": ClaimStatus.PENDING,
        "taken_down_by": None,
        "state_reasons": [],
        "etalase_open": True,
        "search_words": [],
        "search_version": domain.SEARCH_VERSION,
        "created_at": NOW,
        "updated_at": NOW,
        **overrides,
    }
    return Product(**values)


def _refusal(call: Callable[[], object]) -> tuple[str, type[RuleViolation]]:
    with pytest.raises(RuleViolation) as refused:
        call()
    return refused.value.rule, type(refused.value)


def _offer(shop: Etalase, vendor: VendorProfile = VENDOR, **changes: Any) -> list[str]:
    offer: dict[str, Any] = {
        "vendor_type": VendorType.PRODUCER,
        "category_code": "ATK",
        "price": 50_000,
        "regional_prices": {},
        "tax_percent": 11.0,
        **changes,
    }
    return domain.check_offer(shop, vendor, **offer)


class TestEligibility:
    def test_verified_vendor_meeting_the_rules_passes(self) -> None:
        assert domain.check_vendor_eligible(etalase(), VENDOR) is VENDOR

    @pytest.mark.parametrize(
        ("shop", "vendor", "rule"),
        [
            (etalase(), None, "vendor_verified"),
            (etalase(), replace(VENDOR, state=VendorState.SUSPENDED), "vendor_verified"),
            (etalase(), replace(VENDOR, kbli=frozenset({"10101"})), "kbli"),
            (etalase(only_local=True), replace(VENDOR, is_local=False), "local_vendor"),
            (
                etalase(only_umk_koperasi=True),
                replace(VENDOR, is_umk=False),
                "umkm_koperasi",
            ),
        ],
    )
    def test_who_the_vendor_is_makes_it_not_eligible(
        self, shop: Etalase, vendor: VendorProfile | None, rule: str
    ) -> None:
        refusal = _refusal(lambda: domain.check_vendor_eligible(shop, vendor))
        assert refusal == (rule, NotEligible)

    def test_koperasi_counts_for_umkm_storefronts_and_no_kbli_list_means_any(self) -> None:
        vendor = replace(VENDOR, is_umk=False, is_koperasi=True, kbli=frozenset({"99999"}))
        domain.check_vendor_eligible(etalase(only_umk_koperasi=True, kbli=[]), vendor)


class TestOffer:
    def test_offer_returns_the_category_path(self) -> None:
        path = _offer(etalase(), category_code="ATK.KERTAS", regional_prices={"33.75": 90_000})
        assert path == ["ATK", "ATK.KERTAS"]

    @pytest.mark.parametrize(
        ("shop", "changes", "rule"),
        [
            (etalase(state=EtalaseState.CLOSED), {}, "etalase_open"),
            (etalase(), {"vendor_type": VendorType.AGENT}, "vendor_type"),
            (etalase(), {"category_code": "ELEKTRONIK"}, "category"),
            (etalase(), {"price": 100_001}, "price_ceiling"),
            (etalase(), {"regional_prices": {"33.26": 100_001}}, "price_ceiling"),
        ],
    )
    def test_what_is_offered_is_refused(
        self, shop: Etalase, changes: dict[str, Any], rule: str
    ) -> None:
        assert _refusal(lambda: _offer(shop, **changes)) == (rule, RuleViolation)

    def test_a_category_with_kbli_codes_needs_one_of_them(self) -> None:
        refusal = _refusal(lambda: _offer(etalase(kbli=[]), category_code="ATK.CETAK"))
        assert refusal == ("category_kbli", NotEligible)
        printer = replace(VENDOR, kbli=frozenset({"18111"}))
        assert _offer(etalase(kbli=[]), printer, category_code="ATK.CETAK")[-1] == "ATK.CETAK"
        # Categories without codes inherit their parent's (here none: any vendor).
        assert _offer(etalase(kbli=[]), category_code="ATK.KERTAS")[-1] == "ATK.KERTAS"

    def test_kbli_of_a_parent_category_covers_its_children(self) -> None:
        tree = [
            CategoryNode(
                code="K", name="k", kbli=["47611"], children=[CategoryNode(code="K.1", name="1")]
            )
        ]
        index = domain.category_index(tree)
        assert index["K.1"].kbli == frozenset({"47611"})
        assert index["K.1"].path == ["K", "K.1"]

    def test_only_a_pkp_vendor_charges_vat(self) -> None:
        for is_pkp in (False, None):
            vendor = replace(VENDOR, is_pkp=is_pkp)
            assert _refusal(lambda v=vendor: _offer(etalase(), v))[0] == "vendor_not_pkp"
            assert _offer(etalase(), vendor, tax_percent=0.0) == ["ATK"]

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
        assert _refusal(lambda: domain.category_index([deep]))[0] == "category_depth"
        twice = [CategoryNode(code="A", name="a"), CategoryNode(code="A", name="again")]
        assert _refusal(lambda: domain.category_index(twice))[0] == "category_unique"
        collections = [CuratedCollection(code="x", name="x")] * 2
        assert _refusal(lambda: domain.check_collections(collections))[0] == "collection_unique"


class TestClaims:
    @pytest.mark.parametrize(
        ("values", "rule"),
        [
            ({"tkdn": 40.0, "pdn": True}, "tkdn_certificate"),
            ({"tkdn": 40.0, "pdn": True, "tkdn_certificate": "T"}, "tkdn_certificate"),
            (
                {"tkdn": 40.0, "pdn": False, "tkdn_certificate": "T", "tkdn_valid_until": TODAY},
                "tkdn_implies_pdn",
            ),
            ({"bmp": 5.0, "pdn": True}, "bmp_requires_tkdn"),
        ],
    )
    def test_claims_need_their_backing(self, values: dict[str, Any], rule: str) -> None:
        assert _refusal(lambda: domain.check_claims(values))[0] == rule

    def test_each_claim_is_decided_on_its_own(self) -> None:
        changed = domain.review_claims(
            product(),
            {"tkdn": ClaimStatus.VERIFIED, "bmp": ClaimStatus.REFUSED},
            TODAY,
        )
        assert changed == {"tkdn": ClaimStatus.VERIFIED, "bmp": ClaimStatus.REFUSED}
        # Deciding what is already decided changes nothing.
        same = product(tkdn_status=ClaimStatus.VERIFIED)
        assert domain.review_claims(same, {"tkdn": ClaimStatus.VERIFIED}, TODAY) == {}

    def test_bmp_is_verified_only_with_tkdn(self) -> None:
        call = lambda: domain.review_claims(product(), {"bmp": ClaimStatus.VERIFIED}, TODAY)  # noqa: E731
        assert _refusal(call)[0] == "bmp_requires_tkdn"

    def test_an_expired_certificate_cannot_be_verified(self) -> None:
        old = product(tkdn_valid_until=date(2026, 11, 26))
        call = lambda: domain.review_claims(old, {"tkdn": ClaimStatus.VERIFIED}, TODAY)  # noqa: E731
        assert _refusal(call)[0] == "tkdn_expired"
        last_day = product(tkdn_valid_until=TODAY)
        assert domain.review_claims(last_day, {"tkdn": ClaimStatus.VERIFIED}, TODAY)

    def test_only_claims_made_can_be_decided_and_none_expires_by_decision(self) -> None:
        call = lambda: domain.review_claims(product(), {"sni": ClaimStatus.VERIFIED}, TODAY)  # noqa: E731
        assert _refusal(call)[0] == "no_claim"
        expire = lambda: domain.review_claims(product(), {"pdn": ClaimStatus.EXPIRED}, TODAY)  # noqa: E731
        assert _refusal(expire)[0] == "claim_decision"

    def test_edits_send_the_claims_they_touch_back_to_review(self) -> None:
        assert domain.claims_touched(["price", "tkdn_valid_until", "sni"]) == ["tkdn", "sni"]

    def test_the_public_sees_verified_claims_only(self) -> None:
        shown = product(
            tkdn_verified=True, bmp_verified=False, pdn_verified=True, sni="SNI 8179"
        ).public_view()
        assert (shown.tkdn, shown.bmp, shown.pdn, shown.sni) == (40.0, None, True, None)
        hidden = product().public_view()
        assert (hidden.tkdn, hidden.tkdn_certificate, hidden.pdn) == (None, None, False)


class TestCuration:
    def test_new_rejected_and_taken_down_products_go_to_review(self) -> None:
        assert domain.submit(None, None) is ProductState.SUBMITTED
        assert domain.submit(ProductState.REJECTED, None) is ProductState.SUBMITTED
        relist = domain.submit(ProductState.TAKEN_DOWN, TakenDownBy.MANAGER)
        assert relist is ProductState.SUBMITTED

    def test_what_the_vendor_status_took_down_is_not_relisted_by_hand(self) -> None:
        call = lambda: domain.submit(ProductState.TAKEN_DOWN, TakenDownBy.VENDOR_STATUS)  # noqa: E731
        assert _refusal(call) == ("vendor_status", StateConflict)

    @pytest.mark.parametrize("state", [ProductState.SUBMITTED, ProductState.LISTED])
    def test_listed_or_waiting_products_cannot_be_submitted(self, state: ProductState) -> None:
        assert _refusal(lambda: domain.submit(state, None)) == ("state", StateConflict)

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
        assert _refusal(lambda: domain.curate(state, True, pending)) == ("state", StateConflict)

    def test_only_listed_products_are_taken_down(self) -> None:
        assert domain.take_down(ProductState.LISTED) is ProductState.TAKEN_DOWN
        for state in (ProductState.SUBMITTED, ProductState.REJECTED, ProductState.TAKEN_DOWN):
            assert _refusal(lambda s=state: domain.take_down(s)) == ("state", StateConflict)


class TestVersioning:
    def _decide(
        self, requested: dict[str, Any], *, recurate: bool = True, **fields: Any
    ) -> domain.ChangeDecision:
        return domain.decide_change(product(**fields), requested, recurate_changes=recurate)

    def test_listed_edit_waits_for_review_when_the_storefront_asks(self) -> None:
        decision = self._decide({"price": 120, "name": "Kertas HVS A4"})
        assert decision.changes == {"price": 120} and not decision.apply_now

    def test_listed_edit_goes_live_when_the_storefront_allows(self) -> None:
        decision = self._decide({"price": 90, "name": "HVS"}, recurate=False)
        assert decision.apply_now and not decision.resubmit
        assert domain.split_prices(decision.changes) == ({"price": 90}, {"name": "HVS"})

    def test_rejected_edit_resubmits_and_submitted_edit_amends(self) -> None:
        assert self._decide({"price": 90}, state=ProductState.REJECTED).resubmit
        amended = self._decide({"price": 90}, state=ProductState.SUBMITTED)
        assert amended.apply_now and not amended.resubmit

    def test_refusals(self) -> None:
        assert _refusal(lambda: self._decide({"price": 100}))[0] == "no_change"
        pending = lambda: self._decide({"price": 1}, pending_revision=2)  # noqa: E731
        assert _refusal(pending) == ("pending_change", StateConflict)
        down = lambda: self._decide(  # noqa: E731
            {"price": 1},
            state=ProductState.TAKEN_DOWN,
            taken_down_by=TakenDownBy.VENDOR_STATUS,
        )
        assert _refusal(down) == ("vendor_status", StateConflict)


class TestSearchWords:
    def test_words_are_folded_the_same_way_for_products_and_queries(self) -> None:
        words = domain.search_words("Kertas HVS A4, 80 gr/m²", None, "Sinar-Dunia", "x", "")
        assert words == ["80", "a4", "dunia", "gr", "hvs", "kertas", "m2", "sinar"]
        assert domain.search_words("Señor Café") == ["cafe", "senor"]
        assert domain.search_words("senor") == ["senor"]
        assert domain.search_words("ŁÓDŹ") == domain.search_words("łódź") == ["lodz"]
        assert domain.search_words("Straße") == ["strasse"]

    def test_letters_of_any_script_are_words(self) -> None:
        assert domain.search_words("батик ผ้า 蜡染") == ["батик", "ผา", "蜡染"]

    def test_region_and_the_regions_containing_it(self) -> None:
        assert domain.region_and_parents("33.75.01.1001") == [
            "33",
            "33.75",
            "33.75.01",
            "33.75.01.1001",
        ]


class TestSearchParameters:
    def test_cursor_round_trip_and_refusals(self) -> None:
        query = SearchQuery(text="kertas", sort=Sort.PRICE_ASC)
        last = uuid.uuid4()
        parts = cursor_parts(query, 15_000, last)
        assert continue_after(query, parts).after == (15_000, last)
        relevance = SearchQuery(text="kertas")
        assert continue_after(relevance, cursor_parts(relevance, 0.37, last)).after == (0.37, last)
        fingerprint = query.fingerprint()
        for broken in (
            cursor_parts(replace(query, pdn=True), 15_000, last),
            [fingerprint, "1.5", str(last)],
            [fingerprint, str(2**70), str(last)],
            [fingerprint, "inf", str(last)],
            [fingerprint, "1", "not-a-uuid"],
            [fingerprint, "1"],
        ):
            with pytest.raises(ValueError):
                continue_after(query, broken)
        with pytest.raises(ValueError):
            continue_after(relevance, [relevance.fingerprint(), "nan", str(last)])

    def test_collection_narrows_the_query(self) -> None:
        collection = CuratedCollection(code="tkdn40", name="TKDN", min_tkdn_bmp=40, pdn_only=True)
        narrowed = apply_collection(SearchQuery(min_tkdn_bmp=50), collection)
        assert (narrowed.min_tkdn_bmp, narrowed.pdn) == (50, True)
        assert apply_collection(SearchQuery(), collection).min_tkdn_bmp == 40
