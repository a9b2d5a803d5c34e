"""One platform started as a user starts it (`ekatalog up`, processes) for the journeys. Its
orders service follows a clock file (absent: real time) that a journey moves to see working-day
deadlines pass, and looks for overdue orders every half second."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.journeys.helpers import OrdersClock, Users
from tests.processes import Platform


@pytest.fixture(scope="package")
def orders_clock(tmp_path_factory: pytest.TempPathFactory) -> OrdersClock:
    return OrdersClock(tmp_path_factory.mktemp("clock") / "orders-clock")


@pytest.fixture(scope="package")
def platform(
    tmp_path_factory: pytest.TempPathFactory, orders_clock: OrdersClock
) -> Iterator[Platform]:
    env = {
        "ORDERS_CLOCK_FILE": str(orders_clock.path),
        "ORDERS_DEADLINE_CHECK_SECONDS": "0.5",
    }
    running = Platform(tmp_path_factory.mktemp("journeys") / "data", env=env)
    try:
        running.wait_for("all services ready", 180)
        yield running
    finally:
        running.stop(signal.SIGINT)


@pytest.fixture
def users(platform: Platform) -> Users:
    return Users(platform)
