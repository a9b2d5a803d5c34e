"""`ekatalog up` as a child process whose output a test reads line by line."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from ekatalog.cli import SERVICES
from shared.embedded import free_port, port_is_open


class Platform:
    """A running `ekatalog up` whose output the test reads line by line."""

    def __init__(
        self,
        data_dir: Path,
        *services: str,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        ports_of: Platform | None = None,
    ) -> None:
        """`ports_of`: listen where that (stopped) platform listened, as a restart does."""
        if ports_of is not None:
            self.base_port, self.kafka_port = ports_of.base_port, ports_of.kafka_port
            self.pg_port = ports_of.pg_port
        else:
            self.base_port = _free_port_range(len(services) or len(SERVICES))
            self.kafka_port = free_port()
            self.pg_port = free_port()
        args = [
            sys.executable,
            "-m",
            "ekatalog.cli",
            "up",
            "--data-dir",
            str(data_dir),
            "--pg-port",
            str(self.pg_port),
            "--kafka-port",
            str(self.kafka_port),
            "--base-port",
            str(self.base_port),
            "--log-format",
            "json",
        ]
        if services:
            args += ["--services", *services]
        args += extra
        inherited = {
            k: v for k, v in os.environ.items() if not k.endswith("_CONSUMER_SESSION_TIMEOUT_MS")
        }
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**inherited, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def dsn(self, service: str) -> str:
        """The embedded database of `service`."""
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/ekatalog_{service}"

    def url(self, index: int) -> str:
        """Base URL of the `index`-th service started."""
        return f"http://127.0.0.1:{self.base_port + index}"

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
