"""Health checks answer within their time limit whatever the check does."""

from __future__ import annotations

import asyncio
import time

from shared.service import answer_within


async def test_a_check_that_never_finishes_is_reported_when_its_time_is_up() -> None:
    never = asyncio.get_running_loop().create_future()
    started = time.monotonic()
    assert await answer_within(never, 0.1) == "unavailable: no answer within 0.1 s"
    assert time.monotonic() - started < 0.5
    never.cancel()


async def test_a_failing_check_reports_its_error_and_a_passing_one_ok() -> None:
    async def refused() -> None:
        raise ConnectionRefusedError("connection refused")

    async def fine() -> None:
        return None

    assert await answer_within(refused(), 1) == (
        "unavailable: ConnectionRefusedError('connection refused')"
    )
    assert await answer_within(fine(), 1) == "ok"
