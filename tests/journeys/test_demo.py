"""`ekatalog demo` against a running platform: the city appears once, however often it runs,
and the dashboard's figures are those of the orders API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

from tests.journeys.helpers import Users, counts, dashboard_agrees
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


@pytest.mark.slow
async def test_the_demo_city_fills_the_dashboard_once(platform: Platform, users: Users) -> None:
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
    assert figures.orders >= 54 and figures.spend_completed > 0
    assert 15 < 100 * figures.spend_sp / figures.pagu < 80  # a city on its way to its target

    again, _ = await asyncio.to_thread(run_demo, platform)
    assert again["created"] == {}
    assert again["found"] == first["created"]
    assert await dashboard_agrees(users) == figures
    shown = await counts(users)
    assert shown["vendors_verified"] >= 12 and shown["vendors_koperasi"] >= 2
    assert shown["products_listed"] >= 48 and shown["open_storefronts"] >= 5
