"""`ekatalog up`: the whole platform as processes on the embedded default."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from shared.cli import SERVICES
from tests.processes import Platform


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
