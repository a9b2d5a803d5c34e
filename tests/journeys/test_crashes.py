"""`kill -9` of each service in turn while a stream of orders flows: after the restarts, the
dashboard's totals equal the sums computed from the orders API (nothing lost, nothing twice)."""

from __future__ import annotations

import asyncio
import signal

import httpx
import psutil
import pytest

from ekatalog.cli import SERVICES
from tests.journeys.helpers import (
    ORDERS,
    Buyers,
    Seller,
    Users,
    dashboard_agrees,
    place,
    scene,
)
from tests.processes import Platform

pytestmark = pytest.mark.slow

# Small enough for CI on two cores; each order is placed, confirmed by the stock saga and
# approved (an SP, so it counts as spend), and a quarter of them cancelled.
STREAM = 200
CONCURRENCY = 8


def service_process(platform: Platform, name: str) -> psutil.Process:
    return next(
        p for p in platform.descendants() if p.cmdline()[-2:] == ["serve", name] and p.is_running()
    )


async def call(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: object
) -> httpx.Response:
    """Retry while the service is down (killed and not yet restarted)."""
    for _ in range(300):
        try:
            response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            await asyncio.sleep(0.2)
            continue
        if response.status_code < 500:
            return response
        await asyncio.sleep(0.2)
    raise AssertionError(f"{method} {url}: the service did not come back")


async def one_order(
    client: httpx.AsyncClient, buyers: Buyers, code: str, seller: Seller, n: int
) -> None:
    body = {
        "rup_code": code,
        "vendor_id": seller.vendor_id,
        "method": "direct",
        "ppk_id": buyers.ppk_id,
        "delivery_address": "Jl. Mataram No. 1, Pekalongan",
        "lines": [{"product_id": seller.product["id"], "quantity": 1 + n % 3}],
    }
    # A placement whose answer a kill swallowed may be placed twice: the buyer retries, as a
    # person would, and the totals are compared with what the orders API holds.
    placed = await call(client, "POST", "/orders", json=body, headers=buyers.pp)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    for _ in range(600):
        state = (await call(client, "GET", f"/orders/{order_id}", headers=buyers.pp)).json()
        if state["state"] != "placed":
            break
        await asyncio.sleep(0.2)
    assert state["state"] == "awaiting_approval", state
    if n % 4 == 3:
        cancel = {"reason": "dibatalkan"}
        await call(client, "POST", f"/orders/{order_id}/cancel", json=cancel, headers=buyers.pp)
        return
    approved = await call(client, "POST", f"/orders/{order_id}/approve", headers=buyers.ppk)
    assert approved.status_code in (200, 409), approved.text


async def test_each_service_killed_mid_stream_loses_and_doubles_nothing(
    platform: Platform, users: Users
) -> None:
    seller, buyers, code = await scene(
        users, "DINDAGKOP", 10_000_000_000, stock=10_000, price=100_000
    )
    # The first order waits until the orders service has heard of the vendor and product.
    assert (await place(users, buyers, code, seller, 1)).status_code == 201
    before = await dashboard_agrees(users)
    limit = asyncio.Semaphore(CONCURRENCY)

    async with users.client(ORDERS) as client:

        async def limited(n: int) -> None:
            async with limit:
                await one_order(client, buyers, code, seller, n)

        stream = asyncio.gather(*(limited(n) for n in range(STREAM)))
        try:
            for name in SERVICES:
                await asyncio.sleep(1)
                assert not stream.done(), "the stream ended before every service was killed"
                service_process(platform, name).send_signal(signal.SIGKILL)
                await asyncio.to_thread(platform.wait_for, f"{name} exited with code -9", 30)
                await asyncio.to_thread(platform.wait_for, f"{name:<10} ready", 90)
            await stream
        finally:
            stream.cancel()

    after = await dashboard_agrees(users, timeout=120)
    assert after.orders >= before.orders + STREAM
    assert after.spend_sp > before.spend_sp
