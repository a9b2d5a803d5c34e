"""`ekatalog up`: the whole platform as processes on the embedded default."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from ekatalog.cli import SERVICES
from tests.processes import Platform
from tests.support import Infra


def _gone(processes: list[psutil.Process], timeout: float = 15) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return alive


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


@pytest.mark.slow
def test_up_runs_every_service_restarts_a_crash_and_stops_cleanly(data_dir: Path) -> None:
    platform = Platform(data_dir)
    try:
        platform.wait_for("all services ready", timeout=90)
        for index, name in enumerate(SERVICES):
            health = httpx.get(f"http://127.0.0.1:{platform.base_port + index}/healthz")
            assert health.json() == {"status": "ok", "service": name}
        children = platform.descendants()
        vendors = next(p for p in children if "serve" in p.cmdline() and "vendors" in p.cmdline())
        vendors.kill()
        platform.wait_for("vendors exited with code", timeout=10)
        platform.wait_for("vendors    ready", timeout=60)
        assert httpx.get(f"http://127.0.0.1:{platform.base_port}/readyz").status_code == 200
        children = platform.descendants()
    finally:
        code = platform.stop(signal.SIGINT)
    assert code == 0, "".join(platform.output[-20:])
    assert _gone(children) == [], "processes outlived `ekatalog up`"
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert (data_dir / "jwt-secret").exists()


@pytest.mark.slow
def test_a_killed_supervisor_leaves_no_orphans_and_the_next_start_works(data_dir: Path) -> None:
    first = Platform(data_dir, "orders")
    first.wait_for("all services ready", timeout=90)
    children = first.descendants()
    assert len(children) >= 3  # postgres, broker, the service
    first.stop(signal.SIGKILL)
    assert _gone(children, timeout=30) == [], "children outlived a killed supervisor"

    second = Platform(data_dir, "orders")
    try:
        second.wait_for("all services ready", timeout=90)
        # The data kept under the data dir is the same database: nothing re-applied.
        assert not any("migration applied" in line for line in second.output)
    finally:
        assert second.stop(signal.SIGTERM) == 0


@pytest.mark.slow
async def test_up_can_use_external_kafka_and_postgresql(infra: Infra, data_dir: Path) -> None:
    prefix = f"x{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(infra.admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{prefix}_orders"')
    finally:
        await admin.close()
    template = infra.dsn(prefix + "_{service}")
    platform = Platform(
        data_dir,
        "orders",
        extra=("--kafka-bootstrap", infra.bootstrap_servers, "--database-url", template),
    )
    try:
        await asyncio.to_thread(platform.wait_for, "all services ready", 60)
        names = [p.name() for p in platform.descendants()]
        assert "postgres" not in names and not any("tansu" in n for n in names)
        assert not (data_dir / "postgres").exists(), "no embedded database was made"
        conn = await asyncpg.connect(infra.dsn(f"{prefix}_orders"))
        try:
            applied = await conn.fetchval("SELECT count(DISTINCT component) FROM schema_migrations")
        finally:
            await conn.close()
        assert applied == 2  # the platform's and the orders service's, in the external database
    finally:
        assert await asyncio.to_thread(platform.stop, signal.SIGINT) == 0
