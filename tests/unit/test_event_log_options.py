"""Event log options: `ekatalog replay` arguments and the retention setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ekatalog.cli import build_parser
from shared.settings import ServiceSettings, SettingsError

REQUIRED = {"database_url": "postgresql://db/x", "kafka_bootstrap_servers": "k:9092"}


def test_a_replay_starts_at_a_time_with_or_without_an_offset() -> None:
    args = build_parser().parse_args(["replay", "vendors", "--since", "2026-11-27T08:00+07:00"])
    assert args.since == datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    local = build_parser().parse_args(["replay", "vendors", "--since", "2026-11-27"]).since
    assert local.tzinfo is not None, "a time without an offset is read as local time"
    default = build_parser().parse_args(["replay", "catalog"])
    assert default.since is None and not default.from_start


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "vendors", "--since", "yesterday"],
        ["replay", "vendors", "--since", "2026-11-27", "--from-start"],
        ["replay", "payments", "--from-start"],
        ["replay", "vendors", "--since", "2026-13-01\x00"],
    ],
)
def test_bad_replay_arguments_are_refused_with_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    assert "usage: ekatalog replay" in capsys.readouterr().err


def test_the_log_keeps_everything_unless_a_retention_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EKATALOG_JWT_SECRET", "s")
    assert ServiceSettings.from_env(**REQUIRED).event_log_retention is None
    monkeypatch.setenv("EKATALOG_EVENT_LOG_RETENTION_DAYS", "400")
    assert ServiceSettings.from_env(**REQUIRED).event_log_retention == timedelta(days=400)
    for bad in ("0", "-1", "forever"):
        monkeypatch.setenv("EKATALOG_EVENT_LOG_RETENTION_DAYS", bad)
        with pytest.raises(SettingsError, match="EKATALOG_EVENT_LOG_RETENTION_DAYS"):
            ServiceSettings.from_env(**REQUIRED)
