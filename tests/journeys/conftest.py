"""One platform started as a user starts it (`ekatalog up`, processes) for the journeys. Its
orders service looks for overdue orders every half second, so that a journey moving its clock
file sees deadlines pass at once."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.journeys.helpers import Users
from tests.processes import Platform


@pytest.fixture(scope="package")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    env = {"ORDERS_DEADLINE_CHECK_SECONDS": "0.5"}
    running = Platform(tmp_path_factory.mktemp("journeys") / "data", env=env)
    try:
        running.wait_for("all services ready", 180)
        yield running
    finally:
        running.stop(signal.SIGINT)


@pytest.fixture
def users(platform: Platform) -> Users:
    return Users(platform)
