"""Working-day deadlines with the orders service's clock under control: weekends, the 2026
Idul Fitri holidays and cuti bersama are skipped; a missed deadline expires the order and gives
its stock and pagu back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.orders import commands
from tests.orders.helpers import AUDITOR, Platform
from tests.support import eventually

JAKARTA = timedelta(hours=7)


def wib(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC) - JAKARTA


async def expire_now(platform: Platform) -> int:
    return await commands.expire_overdue(platform.pool, platform.ctx)


async def test_the_ppk_deadline_skips_a_weekend_holidays_and_cuti_bersama(
    platform: Platform,
) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=10)
    rup = await platform.rup(buyers, pagu=3 * product["price"])
    platform.clock.set(wib(2026, 3, 13, 10, 0))  # Friday before Idul Fitri 1447 H
    placed = await platform.place(buyers, rup, seller, [(product["id"], 3)])
    order = await platform.reaches(placed["id"], "awaiting_approval")
    # Mon 16, Tue 17 count; 18-24 March are cuti bersama, holidays and a weekend; Wed 25 is
    # the third working day, so the PPK has until midnight that night in Jakarta.
    assert order["deadline_kind"] == "ppk_approval"
    assert datetime.fromisoformat(order["next_deadline"]) == wib(2026, 3, 26, 0, 0)

    platform.clock.set(wib(2026, 3, 25, 23, 50))
    assert await expire_now(platform) == 0
    assert (await platform.order(placed["id"]))["state"] == "awaiting_approval"

    platform.clock.set(wib(2026, 3, 26, 0, 1))
    expired = await platform.reaches(placed["id"], "expired")  # by the background job
    last = expired["timeline"][-1]
    assert last["actor"] == "system:deadlines" and last["details"]["missed"] == "ppk_approval"
    assert expired["next_deadline"] is None

    async def released() -> bool:
        return await platform.stock(product["id"]) == 10

    await eventually(released)
    rup_view = (await platform.client.get(f"/rup/{rup}", headers=AUDITOR)).json()
    assert rup_view["remaining"] == rup_view["pagu"]
    late = await platform.act(placed["id"], "approve", buyers.ppk)
    assert late.status_code == 409 and "expired" in late.json()["detail"]


async def test_the_vendor_answers_the_sp_within_three_working_days(platform: Platform) -> None:
    buyers = platform.buyers()
    seller = await platform.seller()
    product = await platform.product(seller, stock=10)
    rup = await platform.rup(buyers)
    platform.clock.set(wib(2026, 5, 12, 9, 0))  # Tuesday
    placed = await platform.place(buyers, rup, seller, [(product["id"], 2)])
    await platform.reaches(placed["id"], "awaiting_approval")
    approved = await platform.act(placed["id"], "approve", buyers.ppk)
    assert approved.status_code == 200
    # Wed 13 counts; 14 May (Ascension) and 15 May (cuti bersama), then the weekend;
    # Mon 18 is the second and Tue 19 the third working day.
    assert approved.json()["deadline_kind"] == "vendor_answer"
    assert datetime.fromisoformat(approved.json()["next_deadline"]) == wib(2026, 5, 20, 0, 0)

    answered = await platform.place(buyers, rup, seller, [(product["id"], 1)])
    await platform.reaches(answered["id"], "awaiting_approval")
    assert (await platform.act(answered["id"], "approve", buyers.ppk)).is_success
    assert (await platform.act(answered["id"], "accept", seller.headers)).is_success

    platform.clock.set(wib(2026, 5, 20, 0, 0, 1))
    expired = await platform.reaches(placed["id"], "expired")
    assert expired["timeline"][-1]["details"]["missed"] == "vendor_answer"
    assert (await platform.order(answered["id"]))["state"] == "accepted"

    async def released() -> bool:
        return await platform.stock(product["id"]) == 9

    await eventually(released)
