"""Working-day deadlines on the running platform: the operator shifts the orders service's clock
(its clock file, `ORDERS_CLOCK_FILE`) across the Idul Fitri 2026 holidays and cuti bersama; an
order whose PPK or vendor did not act expires only after its last working day, giving back its
stock and its pagu."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.journeys.helpers import (
    Users,
    act,
    dashboard_agrees,
    order,
    order_events,
    place,
    reaches,
    scene,
    stock,
)
from tests.processes import Platform
from tests.support import eventually

pytestmark = pytest.mark.slow

WIB = timezone(timedelta(hours=7))


def wib(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A time in March 2026, Pekalongan's local time."""
    return datetime(2026, 3, day, hour, minute, second, tzinfo=WIB)


def deadline_of(found: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(found["next_deadline"]))


async def test_orders_left_waiting_over_lebaran_expire_after_their_last_working_day(
    platform: Platform, users: Users
) -> None:
    price = 1_000_000
    orders_clock = users.orders_clock
    try:
        orders_clock.shift_to(wib(13, 10))  # Friday 13 March
        seller, buyers, code = await scene(users, "DISHUB", 6 * price, stock=10, price=price)
        placed = await place(users, buyers, code, seller, 2)
        assert placed.status_code == 201, placed.text
        waiting_ppk = placed.json()["id"]
        found = await reaches(users, waiting_ppk, "awaiting_approval")
        # The PPK has 3 working days: Mon 16, Tue 17, then (18-24 March are Nyepi, Idul Fitri,
        # the weekend and cuti bersama) Wed 25; the deadline is the start of Thursday 26.
        assert deadline_of(found) == wib(26)

        orders_clock.shift_to(wib(17, 10))  # Tuesday 17 March
        placed = await place(users, buyers, code, seller, 4)
        assert placed.status_code == 201, placed.text
        waiting_vendor = placed.json()["id"]
        await reaches(users, waiting_vendor, "awaiting_approval")
        approved = await act(users, waiting_vendor, "approve", buyers.ppk)
        assert approved["state"] == "awaiting_vendor" and approved["sp_number"]
        # The vendor has 3 working days from the SP: Wed 25, Thu 26, Fri 27.
        assert deadline_of(approved) == wib(28)
        product_id = seller.product["id"]
        assert await stock(users, product_id) == 4
        refused = await place(users, buyers, code, seller, 1)
        assert refused.status_code == 422 and refused.json()["rule"] == "pagu_exceeded"

        # Friday 27 March, noon: the PPK's deadline passed, the vendor's last working day runs.
        orders_clock.shift_to(wib(27, 12))
        await reaches(users, waiting_ppk, "expired")
        # The pass that expired the first order ran at this time and left the second alone.
        assert (await order(users, waiting_vendor))["state"] == "awaiting_vendor"

        async def released(expected: int) -> bool:
            return await stock(users, product_id) == expected

        await eventually(lambda: released(6), timeout=30)

        orders_clock.shift_to(wib(28, 0, 0, 1))  # just into Saturday 28 March
        expired = await reaches(users, waiting_vendor, "expired")
        assert expired["sp_number"] == approved["sp_number"]
        await eventually(lambda: released(10), timeout=30)
        again = await place(users, buyers, code, seller, 6)  # the whole pagu is free again
        assert again.status_code == 201, again.text
        await reaches(users, again.json()["id"], "awaiting_approval")
    finally:
        orders_clock.real_time()

    for order_id, kinds in (
        (waiting_ppk, ["placed", "stock_confirmed", "expired"]),
        (waiting_vendor, ["placed", "stock_confirmed", "approved", "expired"]),
    ):
        events = await order_events(platform, order_id, "ekatalog.order.expired.v1")
        assert [e["type"].split(".")[2] for e in events] == kinds
        assert [e["version"] for e in events] == list(range(1, len(kinds) + 1))
    assert events[-1]["missed"] == "vendor_answer"
    assert datetime.fromisoformat(events[-1]["missed_deadline"]) == wib(28)
    await dashboard_agrees(users)
