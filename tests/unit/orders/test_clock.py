"""The clock file a test or demo platform sets for the orders service."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.orders.app import OrdersSettings
from services.orders.clock import ClockFileError, FileClock, parse_clock, real_now
from shared.settings import SettingsError


def test_an_instant_with_its_offset_is_a_fixed_time() -> None:
    assert parse_clock("2026-03-17T10:00:00+07:00\n") == datetime(2026, 3, 17, 3, tzinfo=UTC)
    assert parse_clock("2026-03-17T03:00:00Z") == datetime(2026, 3, 17, 3, tzinfo=UTC)


def test_signed_seconds_shift_real_time() -> None:
    assert parse_clock("+86400") == timedelta(days=1)
    assert parse_clock(" -3600.5 ") == timedelta(seconds=-3600.5)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("  \n", "empty"),
        ("2026-03-17T10:00:00", "no UTC offset"),
        ("2026-03-17", "no UTC offset"),
        ("tomorrow", "neither an ISO-8601 instant"),
        ("86400", "neither an ISO-8601 instant"),
        ("+1e400", "not a signed number"),
        ("+nan", "not a signed number"),
        ("-", "not a signed number"),
        ("2026-13-01T00:00:00Z", "neither an ISO-8601 instant"),
    ],
)
def test_anything_else_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ClockFileError, match=reason):
        parse_clock(text)


def replace(path: Path, text: str) -> None:
    """As an operator should: write another file and rename it over."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def test_the_clock_follows_the_file_and_keeps_the_last_good_time(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    clock = FileClock(path)
    assert abs(clock() - real_now()) < timedelta(seconds=5)  # no file: real time

    replace(path, "2026-03-17T10:00:00+07:00")
    assert clock() == datetime(2026, 3, 17, 3, tzinfo=UTC)
    replace(path, "2026-03-28T00:00:01+07:00")
    assert clock() == datetime(2026, 3, 27, 17, 0, 1, tzinfo=UTC)

    replace(path, "next week")  # refused: logged, the last good time stays
    assert clock() == datetime(2026, 3, 27, 17, 0, 1, tzinfo=UTC)

    replace(path, "+172800")
    assert abs(clock() - real_now() - timedelta(days=2)) < timedelta(seconds=5)
    path.unlink()
    assert abs(clock() - real_now()) < timedelta(seconds=5)


def test_a_malformed_file_stops_the_service_at_start_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "clock"
    path.write_text("17/03/2026")
    monkeypatch.setenv("ORDERS_CLOCK_FILE", str(path))
    with pytest.raises(SettingsError, match="CLOCK_FILE") as refused:
        OrdersSettings.from_env(
            database_url="postgresql://x/y", kafka_bootstrap_servers="k:9", jwt_secret="s"
        )
    assert "17/03/2026" in str(refused.value)
    path.write_text("2026-03-17T10:00:00+07:00")
    settings = OrdersSettings.from_env(
        database_url="postgresql://x/y", kafka_bootstrap_servers="k:9", jwt_secret="s"
    )
    assert settings.clock_file == path
