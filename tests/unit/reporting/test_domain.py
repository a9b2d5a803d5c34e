"""Pure rules of reporting: shares, CSV safety, the funnel, and how a batch becomes rows."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal

from services.reporting import domain
from services.reporting.projection import ORDER, ORDER_CHANGE, ORDER_STEP, VENDOR, rows_of
from shared.contracts import orders as o
from tests.reporting.helpers import Order, line, vendor
from tests.reporting.scenario import at


def test_percent_rounds_and_knows_nothing_to_divide_by() -> None:
    assert domain.percent(1, 3) == 33.33
    assert domain.percent(2, 3) == 66.67
    assert domain.percent(5, 0) is None


def test_share_meets_its_target_only_when_known() -> None:
    totals = dict.fromkeys(
        {s.numerator for s in domain.SHARES} | {s.denominator for s in domain.SHARES}, 0
    )
    totals.update(pagu=100, spend_sp=30, spend_completed=29)
    figures = {f["id"]: f for f in domain.share_figures(totals, {"ekatalog_share_target": 30.0})}
    assert figures["ekatalog_share"]["meets_target"] is True
    assert figures["ekatalog_share_completed"]["meets_target"] is False
    assert figures["local_share"]["target"] is None
    assert figures["local_share"]["meets_target"] is None


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    rows = [
        {"a": '=HYPERLINK("http://x")', "b": "+1", "c": "-2"},
        {"a": "@SUM(A1)", "b": "\tx", "c": -3},
        {"a": "plain", "b": None, "c": 4},
    ]
    parsed = list(csv.reader(io.StringIO(domain.to_csv(("a", "b", "c"), rows))))
    assert parsed == [
        ["a", "b", "c"],
        ['\'=HYPERLINK("http://x")', "'+1", "'-2"],
        ["'@SUM(A1)", "'\tx", "-3"],
        ["plain", "", "4"],
    ]


def test_funnel_counts_how_far_each_order_came() -> None:
    stages = domain.funnel_stages(
        [("paid", True, 2), ("rejected", False, 1), ("rejected_by_vendor", True, 2)]
    )
    assert {s["stage"]: s["orders"] for s in stages} == {
        "placed": 5,
        "approved": 4,
        "accepted": 2,
        "received": 2,
        "paid": 2,
        "expired": 0,
        "rejected": 3,
        "cancelled": 0,
    }
    assert stages[0]["stage"] == "placed"
    assert domain.funnel_reached("delivery_disputed", True) == ["placed", "approved", "accepted"]


def test_safe_filename() -> None:
    assert domain.safe_filename('opds-2026-"a/b\r\n.csv') == "opds-2026-_a_b__.csv"


def test_a_batch_keeps_the_newest_snapshot_and_the_earliest_step() -> None:
    supplier = vendor(uuid.uuid4(), scale="mikro")
    order = Order(
        uuid.uuid4(), "dinkes", "R1", "barang", 2026, supplier, [line(uuid.uuid4(), 1, 5)]
    )
    placed = order.step(o.OrderPlaced, at(3, 1))
    shipped = order.step(o.OrderShipped, at(3, 2))
    again = order.step(o.OrderShipped, at(3, 5))
    rows = rows_of(
        [
            again,
            placed,
            shipped,
            placed,
            supplier,
            vendor(supplier.vendor_id, scale="kecil", version=2),
        ]
    )
    assert [ORDER.named(r)["version"] for r in rows[ORDER]] == [3]
    steps = {s["step"]: s["version"] for s in map(ORDER_STEP.named, rows[ORDER_STEP])}
    assert steps == {"placed": 1, "shipped": 2}
    assert sorted(ORDER_CHANGE.named(r)["version"] for r in rows[ORDER_CHANGE]) == [1, 2, 3]
    vendors = [VENDOR.named(r) for r in rows[VENDOR]]
    assert [(v["version"], v["scale"]) for v in vendors] == [(2, "kecil")]


def test_an_order_is_spent_from_its_sp_until_it_is_undone() -> None:
    assert domain.is_spent("awaiting_vendor", "SP-1")
    assert domain.is_spent("completed", "SP-1")
    assert not domain.is_spent("awaiting_approval", None)
    for undone in ("rejected_by_vendor", "cancelled", "expired"):
        assert not domain.is_spent(undone, "SP-1")


def test_content_class_counts_verified_claims_only() -> None:
    assert domain.content_class(True, 30, 10, True) == "tkdn_bmp_40"
    assert domain.content_class(True, 24, 16, True) == "tkdn_lower"  # TKDN below 25%
    assert domain.content_class(True, 30, None, True) == "tkdn_25"
    assert domain.content_class(True, 45, 5, False) == "pdn"  # unverified TKDN
    assert domain.content_class(False, 45, 5, False) == "none"
    assert domain.content_class(False, 10, None, True) == "tkdn_lower"  # TKDN makes it domestic


def test_tkdn_weighting_is_exact() -> None:
    assert domain.tkdn_weighted(333, 45.5, True) == Decimal("151.515")
    assert domain.tkdn_weighted(333, 45.5, False) == 0
    assert domain.tkdn_weighted(333, None, True) == 0


def test_a_target_stays_in_force_until_a_later_year_replaces_it() -> None:
    targets = {2023: 95.0, 2027: 97.5}
    assert domain.target_in_force(targets, 2022) is None
    assert domain.target_in_force(targets, 2023) == 95.0
    assert domain.target_in_force(targets, 2026) == 95.0
    assert domain.target_in_force(targets, 2028) == 97.5
    assert domain.target_in_force({}, 2026) is None
