"""The embedded broker forgets everything when `ekatalog up` stops: what consumers had not stored
yet is published again from the producers' event logs at the next start. On real processes,
driven over HTTP and read with a plain Kafka consumer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.auth import Role, mint_token
from tests.catalog.helpers import etalase_body, product_body
from tests.processes import Platform
from tests.support import eventually, read_topic
from tests.vendors.helpers import profile

VENDORS = 50
SUSPENDED = "ekatalog.vendor.suspended.v1"


class Market:
    """The platform of one data directory (vendors and catalog driven), as people would."""

    def __init__(self, data_dir: Path) -> None:
        self.secret = (data_dir / "jwt-secret").read_text().strip()
        self.manager = self.bearer(Role.CATALOGUE_MANAGER)

    def bearer(self, role: Role, **claims: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.secret, role=role, **claims)}"}

    async def list_products(
        self, vendors_url: str, catalog_url: str
    ) -> tuple[str, dict[str, dict[str, Any]]]:
        """Verified vendors with one listed product each: (etalase id, vendor id -> product)."""
        async with (
            httpx.AsyncClient(base_url=vendors_url, timeout=30) as vendors,
            httpx.AsyncClient(base_url=catalog_url, timeout=30) as catalog,
        ):
            etalase = await catalog.post("/etalase", json=etalase_body(), headers=self.manager)
            assert etalase.status_code == 201, etalase.text
            etalase_id = etalase.json()["id"]
            opened = await catalog.post(f"/etalase/{etalase_id}/open", headers=self.manager)
            assert opened.status_code == 200, opened.text

            async def one(number: int) -> tuple[str, dict[str, Any]]:
                vendor_id = str(uuid.uuid4())
                vendor = self.bearer(Role.VENDOR, vendor_id=vendor_id)
                registered = await vendors.post(
                    "/vendors", json=profile(is_pkp=True), headers=vendor
                )
                assert registered.status_code == 201, registered.text
                verified = await vendors.post(f"/vendors/{vendor_id}/verify", headers=self.manager)
                assert verified.status_code == 200, verified.text

                async def submitted() -> dict[str, Any]:
                    # 403 until the catalog has stored `vendor.verified`.
                    body = product_body(etalase_id, name=f"Kain batik tulis nomor {number}")
                    response = await catalog.post("/products", json=body, headers=vendor)
                    assert response.status_code == 201, response.text
                    return dict(response.json())

                product = await eventually(submitted, timeout=60, interval=0.3)
                approved = await catalog.post(
                    f"/products/{product['id']}/approve", headers=self.manager
                )
                assert approved.json()["state"] == "listed", approved.text
                return vendor_id, dict(approved.json())

            listed = await asyncio.gather(*(one(n) for n in range(VENDORS)))
        return etalase_id, dict(listed)

    async def suspend(self, vendors_url: str, vendor_ids: list[str]) -> None:
        """A burst: every suspension at once."""
        async with httpx.AsyncClient(base_url=vendors_url, timeout=30) as vendors:
            responses = await asyncio.gather(
                *(
                    vendors.post(
                        f"/vendors/{v}/suspend",
                        json={"reason": "wanprestasi"},
                        headers=self.manager,
                    )
                    for v in vendor_ids
                )
            )
        assert [r.status_code for r in responses] == [200] * len(vendor_ids)

    async def all_taken_down_once(
        self, catalog_url: str, etalase_id: str, listed: dict[str, dict[str, Any]]
    ) -> None:
        auditor = self.bearer(Role.AUDITOR)
        async with httpx.AsyncClient(base_url=catalog_url, timeout=30) as catalog:

            async def out_of_search() -> bool:
                page = await catalog.get("/search", params={"etalase_id": etalase_id, "limit": 100})
                assert page.status_code == 200, page.text
                left = page.json()["items"]
                assert left == [], f"{len(left)} of {VENDORS} products still listed"
                return True

            await eventually(out_of_search, timeout=60, interval=0.5)
            for product in listed.values():
                now = (await catalog.get(f"/products/{product['id']}", headers=auditor)).json()
                assert now["state"] == "taken_down"
                assert now["taken_down_by"] == "vendor_status"
                assert now["version"] == product["version"] + 1, "a suspension applied twice"


async def _stored_suspensions(platform: Platform) -> int:
    conn = await asyncpg.connect(platform.dsn("catalog"))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM inbox WHERE consumer = 'catalog' AND event_type = $1",
                SUSPENDED,
            )
        )
    finally:
        await conn.close()


async def _one_take_down_each(platform: Platform, listed: dict[str, dict[str, Any]]) -> None:
    """On the broker: exactly one take-down event per product, whatever was published again."""
    events = await read_topic(platform.bootstrap_servers, "ekatalog.products", min_count=VENDORS)
    take_downs = {
        e.headers["ce_id"]: e.key for e in events if e.type == "ekatalog.product.taken_down.v1"
    }
    assert Counter(take_downs.values()) == Counter({p["id"]: 1 for p in listed.values()})


def _duplicates(catalog_url: str) -> float:
    text = httpx.get(f"{catalog_url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ekatalog_events_consumed_total"
        and sample.labels.get("consumer") == "catalog"
        and sample.labels.get("outcome") == "duplicate"
    )


async def _ready(platform: Platform) -> None:
    await asyncio.to_thread(platform.wait_for, "all services ready", 90)


async def _stop(platform: Platform, sig: int = signal.SIGINT) -> None:
    assert await asyncio.to_thread(platform.stop, sig) == 0, "".join(platform.output[-20:])


async def _listed_market(data_dir: Path) -> tuple[Market, str, dict[str, dict[str, Any]]]:
    """A first run: 50 verified vendors with one listed product each, then a clean stop."""
    first = Platform(data_dir)
    try:
        await _ready(first)
        market = Market(data_dir)
        etalase_id, listed = await market.list_products(first.url(0), first.url(1))
    finally:
        await _stop(first)
    # Every event had been stored by its consumers: the next start needs none of them again.
    await asyncio.to_thread(first.wait_for, "vendors: every consumer stored its events", 5)
    return market, etalase_id, listed


@pytest.mark.slow
async def test_suspensions_made_while_the_catalog_was_down_reach_it_at_the_next_start(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    market, etalase_id, listed = await _listed_market(data_dir)

    alone = Platform(data_dir, "vendors")
    try:
        await _ready(alone)
        await market.suspend(alone.url(0), list(listed))
    finally:
        await _stop(alone)
    await asyncio.to_thread(alone.wait_for, "vendors: catalog, orders, reporting not running", 5)

    both = Platform(data_dir)
    try:
        # Only what the catalog may not have stored goes out again: the 50 suspensions.
        await asyncio.to_thread(both.wait_for, f"vendors: publishing again {VENDORS} event(s)", 30)
        await _ready(both)
        await market.all_taken_down_once(both.url(1), etalase_id, listed)
        assert await _stored_suspensions(both) == VENDORS
        await _one_take_down_each(both, listed)

        # An operator replays the whole vendors log: every event is a duplicate, nothing changes.
        before = _duplicates(both.url(1))
        env = {**os.environ, "VENDORS_DATABASE_URL": both.dsn("vendors")}
        replay = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "ekatalog.cli", "replay", "vendors", "--from-start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert replay.returncode == 0, replay.stderr
        logged = 3 * VENDORS  # registered, verified, suspended
        assert f"vendors: {logged} event(s) to publish again" in replay.stdout

        async def all_dropped() -> bool:
            return _duplicates(both.url(1)) - before >= logged

        await eventually(all_dropped, timeout=60, interval=0.5)
        await market.all_taken_down_once(both.url(1), etalase_id, listed)
        assert await _stored_suspensions(both) == VENDORS
    finally:
        await _stop(both)


@pytest.mark.slow
async def test_a_stop_right_after_a_burst_lets_the_catalog_drain_first(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Platform(data_dir)
    try:
        await _ready(first)
        market = Market(data_dir)
        etalase_id, listed = await market.list_products(first.url(0), first.url(1))
        await market.suspend(first.url(0), list(listed))
    finally:
        await _stop(first, signal.SIGTERM)
    logged = 3 * VENDORS
    await asyncio.to_thread(
        first.wait_for, f"vendors: every consumer stored its events up to position {logged}", 5
    )

    second = Platform(data_dir)
    try:
        await _ready(second)
        assert not any("vendors: publishing again" in line for line in second.output)
        await market.all_taken_down_once(second.url(1), etalase_id, listed)
        assert await _stored_suspensions(second) == VENDORS
    finally:
        await _stop(second)


@pytest.mark.slow
async def test_a_power_cut_right_after_a_burst_loses_nothing_and_applies_nothing_twice(
    tmp_path: Path,
) -> None:
    """SIGKILL of PostgreSQL and `ekatalog up` together; the next start waits for PostgreSQL's
    crash recovery and brings the catalog to where it would have been."""
    data_dir = tmp_path / "data"
    market, etalase_id, listed = await _listed_market(data_dir)

    cut = Platform(data_dir)
    await _ready(cut)
    await market.suspend(cut.url(0), list(listed))
    supervisor = psutil.Process(cut.process.pid)
    children = supervisor.children(recursive=True)
    postmaster = next(p for p in supervisor.children() if p.name() == "postgres")
    postmaster.kill()
    supervisor.kill()
    cut.process.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == [], "processes outlived the power cut"
    assert (data_dir / "postgres" / "postmaster.pid").exists(), "PostgreSQL did not stop cleanly"

    after = Platform(data_dir)
    try:
        await _ready(after)
        server_log = (data_dir / "postgres" / "server.log").read_text()
        assert "automatic recovery in progress" in server_log
        await market.all_taken_down_once(after.url(1), etalase_id, listed)
        assert await _stored_suspensions(after) == VENDORS
        await _one_take_down_each(after, listed)
    finally:
        await _stop(after)
