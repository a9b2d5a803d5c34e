"""A full platform restart (`ekatalog up` stopped and started again; the embedded broker starts
empty) in the middle of a stream of orders: afterwards every order finishes its saga and the
dashboard's totals equal the orders API's."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.journeys.helpers import (
    ORDERS,
    Users,
    dashboard_agrees,
    order,
    place,
    scene,
)
from tests.journeys.test_crashes import one_order
from tests.processes import Platform
from tests.support import eventually

pytestmark = pytest.mark.slow
BEFORE, AFTER = 100, 20


async def test_a_platform_restarted_mid_stream_loses_and_doubles_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Platform(data_dir)
    try:
        await asyncio.to_thread(first.wait_for, "all services ready", 180)
        users = Users(first)
        seller, buyers, code = await scene(
            users, "DINPERKIM", 10_000_000_000, stock=10_000, price=100_000
        )
        # The first order waits until the orders service has heard of the vendor and product.
        assert (await place(users, buyers, code, seller, 1)).status_code == 201
        limit = asyncio.Semaphore(8)
        async with users.client(ORDERS) as client:

            async def limited(n: int) -> None:
                async with limit:
                    await one_order(client, buyers, code, seller, n)

            stream = asyncio.gather(*(limited(n) for n in range(BEFORE)))
            await asyncio.sleep(3)
            assert not stream.done(), "the stream ended before the restart"
            assert await asyncio.to_thread(first.stop, signal.SIGINT) == 0
            stream.cancel()
            await asyncio.gather(stream, return_exceptions=True)
    finally:
        if first.process.poll() is None:
            first.stop(signal.SIGKILL)

    second = Platform(data_dir)
    try:
        await asyncio.to_thread(second.wait_for, "all services ready", 180)
        users = Users(second)
        async with users.client(ORDERS) as client:
            await asyncio.gather(
                *(one_order(client, buyers, code, seller, n) for n in range(AFTER))
            )
            page = await client.get(
                "/orders", params={"rup_code": code, "limit": 100}, headers=users.auditor
            )
        ids = [o["id"] for o in page.json()["items"]]

        async def none_waiting() -> bool:
            states = [(await order(users, i))["state"] for i in ids]
            assert "placed" not in states, states
            return True

        # Orders placed just before the stop get their stock answer after the restart.
        await eventually(none_waiting, timeout=60)
        figures = await dashboard_agrees(users, timeout=120)
        assert figures.orders >= AFTER + 1
    finally:
        assert await asyncio.to_thread(second.stop, signal.SIGINT) == 0
