"""Session-wide embedded PostgreSQL and tansu broker; a fresh database and topics per test."""

from __future__ import annotations

import asyncio
import faulthandler
import os
import sys
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest

from ekatalog.cli import SERVICES
from shared.embedded import EmbeddedPostgres, Tansu, free_port
from tests.support import TEST_CONSUMER_SESSION_TIMEOUT_MS, Infra, scratch_database

# A consumer joins its group after half the session timeout on the embedded broker; a short one
# keeps each test's start-up quick. Real deployments keep the 10 s default.
for _prefix in ("EKATALOG", *(prefix for prefix, _ in SERVICES.values())):
    os.environ.setdefault(
        f"{_prefix}_CONSUMER_SESSION_TIMEOUT_MS", str(TEST_CONSUMER_SESSION_TIMEOUT_MS)
    )

# No test takes two minutes; one that runs for five has stalled. Where each thread and task
# waits is printed and, if it is still stalled after ten, the run stops with an error instead of
# spending the rest of CI's time.
STALL_REPORT_SECONDS = 300.0
STALL_ABORT_SECONDS = 600.0
_session_loop: asyncio.AbstractEventLoop | None = None


@pytest.fixture(scope="session", autouse=True)
async def _remember_loop() -> None:
    global _session_loop
    _session_loop = asyncio.get_running_loop()


def _print_stalled(config: pytest.Config, nodeid: str, seconds: float) -> None:
    # Output is captured into a file while a test runs; this prints on the real terminal.
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        err = sys.__stderr__
        assert err is not None
        print(f"\n=== {nodeid} still running after {seconds:.0f} s ===", file=err, flush=True)
        faulthandler.dump_traceback(file=err, all_threads=True)
        loop = _session_loop
        if loop is not None and not loop.is_closed():
            # The loop is idle, waiting on whatever stalled, so its tasks hold still.
            for task in asyncio.all_tasks(loop):
                print(f"--- {task!r}", file=err)
                task.print_stack(file=err)
        err.flush()


def _abort_stalled(config: pytest.Config, nodeid: str) -> None:
    _print_stalled(config, nodeid, STALL_ABORT_SECONDS)
    os._exit(3)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Setup, call and teardown of one test, watched for a stall."""
    timers = [
        threading.Timer(
            STALL_REPORT_SECONDS, _print_stalled, (item.config, item.nodeid, STALL_REPORT_SECONDS)
        ),
        threading.Timer(STALL_ABORT_SECONDS, _abort_stalled, (item.config, item.nodeid)),
    ]
    for timer in timers:
        timer.daemon = True
        timer.start()
    try:
        return (yield)
    finally:
        for timer in timers:
            timer.cancel()


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    with tempfile.TemporaryDirectory(prefix="ekatalog-test-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        broker = Tansu(free_port())
        postgres.start(durable=False)
        broker.start()
        try:
            yield Infra(postgres.admin_dsn, broker.bootstrap_servers)
        finally:
            broker.stop()
            postgres.stop()


@pytest.fixture
async def database(infra: Infra) -> AsyncIterator[str]:
    """DSN of a new, empty database that exists only for this test."""
    async with scratch_database(infra) as dsn:
        yield dsn


@pytest.fixture
def topic_prefix() -> str:
    """A prefix that gives this test its own topics and consumer groups."""
    return f"t{uuid.uuid4().hex[:10]}."
