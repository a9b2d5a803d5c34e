"""A full platform restart (`ekatalog up` stopped and started again on the same ports; the
embedded broker starts empty) in the middle of a stream of 1,000 orders whose buyers keep
retrying: afterwards every order finishes its saga, the catalog's stock moved by exactly the
approved units and the dashboard's totals equal the orders API's."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.journeys.helpers import Users, dashboard_agrees
from tests.journeys.test_crashes import STREAM, stream_scene
from tests.processes import Platform

pytestmark = pytest.mark.slow


async def test_a_platform_restarted_mid_stream_loses_and_doubles_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # A short drain (the stream goes on meanwhile), so that the restart cuts the stream.
    first = Platform(data_dir, extra=("--drain-seconds", "5"))
    second: Platform | None = None
    flowing: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(first.wait_for, "all services ready", 180)
        users = Users(first)
        stream = await stream_scene(users, STREAM)
        flowing = stream.start()
        await stream.until_placed(STREAM * 2 // 5)
        assert await asyncio.to_thread(first.stop, signal.SIGINT) == 0
        before_restart = stream.placed
        assert before_restart < STREAM
        second = Platform(data_dir, ports_of=first)
        await asyncio.to_thread(second.wait_for, "all services ready", 180)
        await stream.until_placed(before_restart + 50)  # the buyers' retries got through
        await asyncio.wait_for(flowing, 600)

        await stream.settled()
        figures = await dashboard_agrees(users, timeout=120)
        assert figures.orders >= STREAM + 1
        assert await asyncio.to_thread(second.stop, signal.SIGINT) == 0
    finally:
        if flowing is not None:
            flowing.cancel()
        for platform in (first, second):
            if platform is not None and platform.process.poll() is None:
                platform.stop(signal.SIGINT)
