"""Settings errors, the event envelope and structured logs: pure, no I/O."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

import pytest

from services.vendors.app import VendorsSettings
from shared.events import (
    InvalidEvent,
    MalformedEvent,
    UnknownEventType,
    build_headers,
    encode,
    event_json_schemas,
    parse,
    parse_meta,
)
from shared.logging import configure_logging, correlation_id_var, get_logger
from shared.settings import SettingsError
from tests.plumbing import CounterIncremented


@pytest.fixture
def valid_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A complete vendors configuration; each test breaks one part of it."""
    monkeypatch.setenv("VENDORS_DATABASE_URL", "postgresql://x/y")
    monkeypatch.setenv("VENDORS_KAFKA_BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("VENDORS_JWT_SECRET", "s")
    return monkeypatch


def test_missing_setting_names_the_variable(valid_env: pytest.MonkeyPatch) -> None:
    valid_env.delenv("VENDORS_DATABASE_URL")
    with pytest.raises(SettingsError, match="VENDORS_DATABASE_URL is required but not set"):
        VendorsSettings.from_env()


def test_malformed_setting_names_the_variable(valid_env: pytest.MonkeyPatch) -> None:
    valid_env.setenv("VENDORS_HTTP_PORT", "eighty")
    with pytest.raises(SettingsError, match="VENDORS_HTTP_PORT"):
        VendorsSettings.from_env()


def test_the_key_for_the_chosen_algorithm_is_required(valid_env: pytest.MonkeyPatch) -> None:
    valid_env.setenv("VENDORS_JWT_ALGORITHM", "RS256")
    valid_env.delenv("VENDORS_JWT_PUBLIC_KEY", raising=False)
    with pytest.raises(SettingsError, match="VENDORS_JWT_PUBLIC_KEY is required"):
        VendorsSettings.from_env()


def test_the_retry_budget_must_fit_in_the_poll_interval(valid_env: pytest.MonkeyPatch) -> None:
    valid_env.setenv("VENDORS_CONSUMER_MAX_POLL_INTERVAL_MS", "60000")
    valid_env.setenv("VENDORS_CONSUMER_RETRY_BUDGET_SECONDS", "31")
    with pytest.raises(SettingsError, match=r"VENDORS_CONSUMER_RETRY_BUDGET_SECONDS .* half of"):
        VendorsSettings.from_env()
    valid_env.setenv("VENDORS_CONSUMER_RETRY_BUDGET_SECONDS", "30")
    options = VendorsSettings.from_env().consumer_options()
    assert options["max_poll_interval_ms"] == 60_000 and options["retry_budget_seconds"] == 30


def _headers(**overrides: str) -> dict[str, str]:
    headers = build_headers(
        event_id=uuid.uuid4(),
        event_type=CounterIncremented.type,
        source="/test",
        subject="c1",
        time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        correlation_id="cid",
    )
    headers.update(overrides)
    return headers


def test_envelope_round_trip() -> None:
    headers = _headers()
    assert headers["ce_time"] == "2026-01-02T03:04:05Z"
    event, meta = parse(headers, encode(CounterIncremented(counter_id="c1", seq=3)))
    assert event == CounterIncremented(counter_id="c1", seq=3)
    assert str(meta.id) == headers["ce_id"]
    assert meta.correlation_id == "cid" and meta.subject == "c1"


def test_added_optional_fields_are_accepted() -> None:
    event, _ = parse(_headers(), b'{"counter_id": "c1", "seq": 3, "new_field": true}')
    assert event == CounterIncremented(counter_id="c1", seq=3)


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        (_headers(), b"{", MalformedEvent),
        (_headers(ce_type="ekatalog.nope.v1"), b"{}", UnknownEventType),
        (_headers(), b'{"counter_id": "c1"}', InvalidEvent),
        (_headers(ce_id="not-a-uuid"), b"{}", MalformedEvent),
        (_headers(ce_specversion="0.3"), b"{}", MalformedEvent),
        ({"content-type": "application/json"}, b"{}", MalformedEvent),
    ],
)
def test_unreadable_events_raise_dead_letter_errors(
    headers: dict[str, str], body: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        parse(headers, body)


def test_a_newer_type_is_well_formed_though_its_data_cannot_be_read() -> None:
    # The consumer skips such a record instead of dead-lettering it.
    headers = _headers(ce_type="ekatalog.test.counter_incremented.v2")
    meta = parse_meta(headers, topic="t", partition=2, offset=7)
    assert meta.type == "ekatalog.test.counter_incremented.v2"
    assert (meta.topic, meta.partition, meta.offset) == ("t", 2, 7)
    with pytest.raises(UnknownEventType):
        parse(headers, b'{"counter_id": "c1", "seq": 3}')


def test_every_event_schema_names_its_type_and_topic() -> None:
    schema = event_json_schemas()[CounterIncremented.type]
    assert schema["$id"] == CounterIncremented.type
    assert schema["x-topic"] == CounterIncremented.topic
    assert set(schema["required"]) == {"counter_id", "seq"}


def test_json_logs_carry_the_correlation_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("vendors", "json", "info")
    token = correlation_id_var.set("abc123")
    try:
        get_logger("t").info("vendor verified", vendor_id="v1")
    finally:
        correlation_id_var.reset(token)
        logging.getLogger().handlers.clear()
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "vendor verified"
    assert line["correlation_id"] == "abc123"
    assert line["service"] == "vendors" and line["vendor_id"] == "v1"
