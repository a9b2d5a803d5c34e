"""A service run by the real server (`ekatalog serve <name>`) against the test infrastructure."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from ekatalog.cli import SERVICES
from shared.embedded import free_port, stop_process
from tests.support import TEST_JWT_SECRET, Infra


@contextmanager
def serve(name: str, infra: Infra, database: str, topic_prefix: str) -> Iterator[str]:
    """Base URL of the service once it answers /healthz; the process is stopped on exit."""
    prefix, _ = SERVICES[name]
    port = free_port()
    env = {
        **os.environ,
        f"{prefix}_DATABASE_URL": database,
        f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
        f"{prefix}_TOPIC_PREFIX": topic_prefix,
        f"{prefix}_JWT_SECRET": TEST_JWT_SECRET,
        f"{prefix}_HTTP_PORT": str(port),
        f"{prefix}_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ekatalog.cli", "serve", name],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"{name} exited with {process.returncode}"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{name} did not answer within 60 s"
            time.sleep(0.1)
        yield base
    finally:
        stop_process(process)
