"""How `ekatalog demo` dates its orders over the fiscal year (pure: the plan and the calendar)."""

from __future__ import annotations

from collections import Counter
from datetime import date

from ekatalog.demo import FISCAL_YEAR, WAITING, by_month, make_plan, past_months


def test_finished_orders_go_to_the_months_before_this_one() -> None:
    assert past_months(date(FISCAL_YEAR, 11, 27)) == list(range(1, 11))
    assert past_months(date(FISCAL_YEAR, 1, 5)) == []
    assert past_months(date(FISCAL_YEAR + 1, 2, 1)) == list(range(1, 13))
    assert past_months(date(FISCAL_YEAR - 1, 12, 1)) == []


def test_every_order_is_dated_once_and_none_is_left_waiting_in_the_past() -> None:
    orders = make_plan(1).orders
    batches = by_month(orders, list(range(1, 11)))
    assert sorted(map(id, (o for batch in batches.values() for o in batch))) == sorted(
        map(id, orders)
    )
    for month, batch in batches.items():
        if month is not None:
            assert batch and not any(o.target in WAITING for o in batch), month
    assert {o.target for o in orders if o.target in WAITING} <= {o.target for o in batches[None]}
    spread = Counter(len(batch) for month, batch in batches.items() if month is not None)
    assert max(spread) - min(spread) <= 1  # evenly
    assert by_month(orders, []) == {
        None: [o for o in orders if o.target not in WAITING]
        + [o for o in orders if o.target in WAITING]
    }
