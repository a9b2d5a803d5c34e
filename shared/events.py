"""Domain event models, their registry, and the CloudEvents 1.0 Kafka binary-mode envelope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
CORRELATION_HEADER = "ce_correlationid"


class Event(BaseModel):
    """A domain event. Subclasses name their versioned type, topic and aggregate id field.

    Unknown fields are ignored when reading so that producers may add optional fields.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: ClassVar[str]
    topic: ClassVar[str]
    aggregate_field: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            registry.register(cls)

    @property
    def aggregate_id(self) -> str:
        return str(getattr(self, self.aggregate_field))


class EventRegistry:
    """Maps a versioned event type name to its pydantic model."""

    def __init__(self) -> None:
        self._types: dict[str, type[Event]] = {}

    def register(self, cls: type[Event]) -> None:
        existing = self._types.get(cls.type)
        if existing is not None and existing is not cls:
            qualname = f"{existing.__module__}.{existing.__qualname__}"
            raise ValueError(f"event type {cls.type} is already registered by {qualname}")
        self._types[cls.type] = cls

    def get(self, event_type: str) -> type[Event] | None:
        return self._types.get(event_type)

    def all(self) -> dict[str, type[Event]]:
        return dict(sorted(self._types.items()))


registry = EventRegistry()


class DeadLetterError(Exception):
    """An event that no retry can fix; `reason` is a short machine-readable kind."""

    reason = "handler_failed"


class MalformedEvent(DeadLetterError):
    reason = "malformed"


class UnknownEventType(DeadLetterError):
    reason = "unknown_type"


class InvalidEvent(DeadLetterError):
    reason = "schema_invalid"


@dataclass(frozen=True)
class EventMeta:
    """The CloudEvents attributes of a received event plus where it was read from."""

    id: uuid.UUID
    type: str
    source: str
    subject: str
    time: datetime
    correlation_id: str | None
    topic: str = ""
    partition: int = -1
    offset: int = -1


def build_headers(
    *,
    event_id: uuid.UUID,
    event_type: str,
    source: str,
    subject: str,
    time: datetime,
    correlation_id: str | None,
) -> dict[str, str]:
    headers = {
        "ce_specversion": SPEC_VERSION,
        "ce_id": str(event_id),
        "ce_source": source,
        "ce_type": event_type,
        "ce_time": time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "ce_subject": subject,
        "content-type": CONTENT_TYPE,
    }
    if correlation_id:
        headers[CORRELATION_HEADER] = correlation_id
    return headers


def encode(event: Event) -> bytes:
    return event.__pydantic_serializer__.to_json(event)


def decode_headers(raw: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") if v is not None else "" for k, v in raw}


def parse(
    headers: dict[str, str],
    value: bytes | None,
    *,
    topic: str = "",
    partition: int = -1,
    offset: int = -1,
) -> tuple[Event, EventMeta]:
    """Read one Kafka record as an event; raises a DeadLetterError subclass when it cannot."""
    meta = parse_meta(headers, topic=topic, partition=partition, offset=offset)
    return parse_data(meta.type, value), meta


def parse_meta(
    headers: dict[str, str], *, topic: str = "", partition: int = -1, offset: int = -1
) -> EventMeta:
    """Read a record's CloudEvents attributes; raises MalformedEvent when they are unusable."""
    missing = [h for h in ("ce_id", "ce_type", "ce_source", "ce_specversion") if h not in headers]
    if missing:
        raise MalformedEvent(f"missing CloudEvents headers: {', '.join(missing)}")
    if headers["ce_specversion"] != SPEC_VERSION:
        raise MalformedEvent(f"unsupported ce_specversion {headers['ce_specversion']!r}")
    try:
        event_id = uuid.UUID(headers["ce_id"])
    except ValueError:
        raise MalformedEvent(f"ce_id {headers['ce_id']!r} is not a UUID") from None
    try:
        time = datetime.fromisoformat(headers.get("ce_time", "").replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEvent(f"ce_time {headers.get('ce_time')!r} is not RFC 3339") from None
    return EventMeta(
        id=event_id,
        type=headers["ce_type"],
        source=headers["ce_source"],
        subject=headers.get("ce_subject", ""),
        time=time,
        correlation_id=headers.get(CORRELATION_HEADER),
        topic=topic,
        partition=partition,
        offset=offset,
    )


def parse_data(event_type: str, value: bytes | None) -> Event:
    """Validate a record's value against the model of `event_type`."""
    model = registry.get(event_type)
    if model is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    try:
        return model.model_validate_json(value or b"")
    except ValidationError as exc:
        errors = exc.errors()
        if errors and errors[0]["type"] == "json_invalid":
            raise MalformedEvent(f"body is not JSON: {errors[0]['msg']}") from None
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in errors
        )
        raise InvalidEvent(f"{event_type} does not match its schema: {problems}") from None


def event_json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every registered event, keyed by type; committed and diffed by tests."""
    schemas = {}
    for event_type, model in registry.all().items():
        schema = model.model_json_schema()
        schema["$id"] = event_type
        schema["x-topic"] = model.topic
        schema["x-aggregate-id"] = model.aggregate_field
        schemas[event_type] = schema
    return schemas
