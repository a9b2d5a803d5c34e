"""`ekatalog demo` against a running platform: the city appears once, however often it runs,
its finished orders spread over the fiscal year's months, and the dashboard's figures are those
of the orders API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

from tests.journeys.helpers import REPORTING, Users, counts, dashboard_agrees
from tests.processes import Platform


def run_demo(platform: Platform) -> tuple[dict[str, dict[str, int]], float]:
    data_dir = platform.process.args[platform.process.args.index("--data-dir") + 1]
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ekatalog.cli",
            "demo",
            "--base-port",
            str(platform.base_port),
            "--data-dir",
            data_dir,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary: dict[str, dict[str, int]] = json.loads(done.stdout.splitlines()[0])
    return summary, time.monotonic() - started


async def spend_by_month(users: Users) -> dict[str, int]:
    async with users.client(REPORTING) as client:
        response = await client.get("/kpis/months", params={"fiscal_year": 2026})
    assert response.status_code == 200, response.text
    return {row["month"]: row["spend_sp"] for row in response.json()["rows"]}


@pytest.mark.slow
async def test_the_demo_city_fills_the_dashboard_once(platform: Platform, users: Users) -> None:
    # Other journeys may have run on this platform: the demo's part is what it adds.
    before = await dashboard_agrees(users)
    counted = await counts(users)
    months_before = await spend_by_month(users)
    first, seconds = await asyncio.to_thread(run_demo, platform)
    print(f"demo: {seconds:.1f}s, {first}")
    assert seconds < 60
    assert first["created"] == {"storefronts": 5, "vendors": 12, "products": 48, "orders": 54}
    # Every state an order can be driven to through the API, each at least once.
    assert set(first["order_states"]) == {
        "completed",
        "received",
        "shipped",
        "delivery_disputed",
        "accepted",
        "awaiting_vendor",
        "awaiting_approval",
        "negotiating",
        "rejected_by_vendor",
        "cancelled",
        "rejected",
    }
    figures = await dashboard_agrees(users)
    assert figures.orders == before.orders + 54
    assert figures.spend_completed > before.spend_completed
    share = 100 * (figures.spend_sp - before.spend_sp) / (figures.pagu - before.pagu)
    assert 15 < share < 80  # a city on its way to its 30% target
    # The demo dates its finished orders over the months of the year so far (this platform's
    # clock is past March 2026), then gives the orders service back real time.
    months = await spend_by_month(users)
    grown = sorted(m for m, spend in months.items() if spend > months_before.get(m, 0))
    assert len(grown) >= 3, months
    assert not users.orders_clock.path.exists()

    again, _ = await asyncio.to_thread(run_demo, platform)
    assert again["created"] == {}
    assert again["found"] == first["created"]
    assert await dashboard_agrees(users) == figures
    assert await spend_by_month(users) == months
    added = {k: v - counted[k] for k, v in (await counts(users)).items()}
    assert added["vendors_verified"] == 12 and added["vendors_koperasi"] == 2
    assert added["vendors_local"] == 9 and added["vendors_besar"] == 2
    assert added["products_listed"] == 48 and added["open_storefronts"] == 5
