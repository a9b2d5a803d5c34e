"""Structured logging with a correlation id carried from HTTP requests into events."""

from __future__ import annotations

import itertools
import logging
import os
import sys
from contextvars import ContextVar

import structlog

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
# (event id, event type) of the event a consumer is handling; cheaper per event than binding
# structlog context variables.
handled_event_var: ContextVar[tuple[str, str] | None] = ContextVar("handled_event", default=None)


# A random per-process prefix and a counter: unique like a uuid4, without a urandom call per
# request (which showed in the HTTP profile).
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count()


def new_correlation_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def current_correlation_id() -> str | None:
    return correlation_id_var.get()


def _add_correlation_id(
    _logger: object, _name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    cid = correlation_id_var.get()
    if cid is not None and "correlation_id" not in event_dict:
        event_dict["correlation_id"] = cid
    handled = handled_event_var.get()
    if handled is not None:
        event_dict.setdefault("event_id", handled[0])
        event_dict.setdefault("event_type", handled[1])
    return event_dict


def configure_logging(service: str, fmt: str = "json", level: str = "info") -> None:
    """JSON lines in production, coloured console output locally; stdlib logs go the same way."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_correlation_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
