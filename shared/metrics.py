"""Prometheus metrics shared by every service (one process serves one service)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "ekatalog_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "ekatalog_http_request_seconds", "HTTP request latency", ["method", "route"]
)
EVENTS_PUBLISHED = Counter(
    "ekatalog_events_published_total", "Outbox events acknowledged by the broker", ["topic"]
)
EVENTS_CONSUMED = Counter(
    "ekatalog_events_consumed_total",
    "Events read by a consumer, by outcome (processed, duplicate, dead_letter; ignored: a known"
    " type it does not handle; unknown_type: a type it does not know, e.g. a newer version)",
    ["consumer", "topic", "outcome"],
)
OUTBOX_BACKLOG = Gauge("ekatalog_outbox_backlog", "Outbox events not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "ekatalog_outbox_oldest_unpublished_seconds", "Age of the oldest unpublished outbox event"
)
# Not a lag computed from the broker's end offsets: the embedded broker reports them lower than
# the records it holds. Compare with what the producers published (ekatalog_events_published_total).
CONSUMER_COMMITTED_OFFSET = Gauge(
    "ekatalog_consumer_committed_offset",
    "Next offset to read, committed by the consumer after storing the batch before it",
    ["consumer", "topic", "partition"],
)
