"""`kill -9` of each service in turn while a stream of 1,000 orders flows: after the restarts,
the dashboard's totals equal the sums computed from the orders API and the catalog's stock
moved by exactly the approved units (nothing lost, nothing applied twice)."""

from __future__ import annotations

import asyncio
import signal

import psutil
import pytest

from ekatalog.cli import SERVICES
from tests.journeys.helpers import (
    STREAM_STOCK,
    Lane,
    OrderStream,
    Users,
    buyers_of,
    dashboard_agrees,
    listed_seller,
    place,
    rup,
)
from tests.processes import Platform

pytestmark = pytest.mark.slow

STREAM = 1_000
# Four buyers place at once; each order is confirmed by the stock saga, then approved (an SP, so
# it counts as spend) or, one in four, cancelled.
OPDS = ("DINDAGKOP", "DISPERKIM", "DISPORA", "DISNAKER")


def service_process(platform: Platform, name: str) -> psutil.Process:
    return next(
        p for p in platform.descendants() if p.cmdline()[-2:] == ["serve", name] and p.is_running()
    )


async def stream_scene(users: Users, total: int) -> OrderStream:
    """A seller with plenty of stock and the lanes of four OPDs; the first order waits until
    the orders service has heard of the vendor and its product."""
    seller = await listed_seller(users, stock=STREAM_STOCK, price=100_000)
    lanes = []
    for opd in OPDS:
        buyers = buyers_of(users, opd)
        lanes.append(Lane(buyers, await rup(users, buyers, 10_000_000_000)))
    first = await place(users, lanes[0].buyers, lanes[0].rup_code, seller, 1)
    assert first.status_code == 201, first.text
    return OrderStream(users, seller, lanes, total)


async def test_each_service_killed_mid_stream_loses_and_doubles_nothing(
    platform: Platform, users: Users
) -> None:
    stream = await stream_scene(users, STREAM)
    before = await dashboard_agrees(users)
    flowing = stream.start()
    try:
        for n, name in enumerate(SERVICES, start=1):
            # Each in the middle of the stream: once 10%, 25%, 40% and 55% of it is placed (a
            # service takes seconds to come back, while the buyers go on).
            await stream.until_placed(STREAM * (n * 15 - 5) // 100)
            service_process(platform, name).send_signal(signal.SIGKILL)
            await asyncio.to_thread(platform.wait_for, f"{name} exited with code -9", 30)
            await asyncio.to_thread(platform.wait_for, f"{name:<10} ready", 90)
        await asyncio.wait_for(flowing, 600)
    finally:
        flowing.cancel()

    await stream.settled()
    after = await dashboard_agrees(users, timeout=120)
    assert after.orders >= before.orders + STREAM
    assert after.spend_sp > before.spend_sp
