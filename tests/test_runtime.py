"""`ekatalog up`: the whole platform as processes on the embedded default."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from shared.cli import SERVICES
from shared.embedded import free_port, port_is_open


class Platform:
    """A running `ekatalog up` whose output the test reads line by line."""

    def __init__(self, data_dir: Path, *services: str) -> None:
        self.base_port = _free_port_range(len(services) or len(SERVICES))
        args = [
            sys.executable,
            "-m",
            "shared.cli",
            "up",
            "--data-dir",
            str(data_dir),
            "--pg-port",
            str(free_port()),
            "--kafka-port",
            str(free_port()),
            "--base-port",
            str(self.base_port),
            "--log-format",
            "json",
        ]
        if services:
            args += ["--services", *services]
        env = {
            k: v for k, v in os.environ.items() if not k.endswith("_CONSUMER_SESSION_TIMEOUT_MS")
        }
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if text in line:
                return line
        tail = "".join(self.output[-30:])
        raise AssertionError(f"{text!r} not printed within {timeout}s; last output:\n{tail}")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)


def _free_port_range(count: int) -> int:
    for _ in range(50):
        base = free_port()
        if base + count < 65535 and not any(port_is_open(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free port range")


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
