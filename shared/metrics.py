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
    "Events read by a consumer, by outcome (processed, duplicate, ignored, dead_letter)",
    ["consumer", "topic", "outcome"],
)
OUTBOX_BACKLOG = Gauge("ekatalog_outbox_backlog", "Outbox events not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "ekatalog_outbox_oldest_unpublished_seconds", "Age of the oldest unpublished outbox event"
)
CONSUMER_LAG = Gauge(
    "ekatalog_consumer_lag", "Records behind the partition end", ["consumer", "topic", "partition"]
)
