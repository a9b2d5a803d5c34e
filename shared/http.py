"""The HTTP edge every service shares, as one pure ASGI middleware.

It runs once per request in the request's own task (no extra task or queue per request, unlike
Starlette's `BaseHTTPMiddleware`): correlation id in and out, request metrics, `HEAD` served by
the `GET` route, and the size limits that refuse hostile requests before they are parsed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

from prometheus_client.metrics import Counter, Histogram

from shared.logging import correlation_id_var, new_correlation_id
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS
from shared.problems import PROBLEM_JSON, Problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION_KEY = CORRELATION_HEADER.lower().encode()
# A caller's correlation id is logged and echoed: only a short, printable token is kept.
_VALID_CORRELATION_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

# Methods outside this set are counted as "other", so that callers cannot grow the label set.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _BodyTooLarge(Exception):
    """Raised inside the app's `receive` once the streamed body passes the limit."""


def problem_bytes(problem: Problem, path: str) -> bytes:
    return json.dumps(problem.body(path), separators=(",", ":")).encode()


def too_large(part: str, limit: int) -> Problem:
    """413 for the body, 431 for the header block, naming the limit passed."""
    status = 413 if part == "body" else 431
    return Problem(
        status,
        HTTPStatus(status).phrase,
        f"the request {part} exceeds {limit} bytes",
        type_=f"{part}-too-large",
        limit=limit,
    )


class HttpEdge:
    """Correlation id, metrics, HEAD as GET, and the body and header limits, for one app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        # Resolving labelled children costs more than using them; there are few combinations.
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._histograms: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        cid: bytes | None = None
        content_length = 0
        header_bytes = 0
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value) + 4
            if name == _CORRELATION_KEY:
                cid = value
            elif name == b"content-length" and value.isdigit():
                content_length = int(value)
        if cid is None or not _VALID_CORRELATION_ID.fullmatch(cid):
            cid = new_correlation_id().encode()
        token = correlation_id_var.set(cid.decode())
        status = 500
        inner = scope if method != "HEAD" else {**scope, "method": "GET"}
        limit = self.max_body_bytes
        received = 0
        body_cut = False
        started_response = False

        async def receive_limited() -> Message:
            nonlocal received, body_cut
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    body_cut = True
                    raise _BodyTooLarge
            return message

        async def send_tagged(message: Message) -> None:
            nonlocal status, started_response
            if body_cut:
                # The app answered the aborted read (as a 400); the 413 below replaces it.
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message["headers"] = [*message.get("headers", ()), (_CORRELATION_KEY, cid)]
            elif method == "HEAD" and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            if header_bytes > self.max_header_bytes:
                status = 431
                await self._refuse(scope, send, too_large("headers", self.max_header_bytes), cid)
            elif content_length > limit:
                status = 413
                await self._refuse(scope, send, too_large("body", limit), cid)
            else:
                try:
                    await self.app(inner, receive_limited, send_tagged)
                except _BodyTooLarge:
                    pass
                if body_cut and not started_response:
                    status = 413
                    await self._refuse(scope, send, too_large("body", limit), cid)
        finally:
            correlation_id_var.reset(token)
            self._observe(method, inner, status, time.perf_counter() - started)

    async def _refuse(self, scope: Scope, send: Send, problem: Problem, cid: bytes) -> None:
        body = problem_bytes(problem, scope["path"])
        await send(
            {
                "type": "http.response.start",
                "status": problem.status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the request was not read; the connection cannot be reused.
                    (b"connection", b"close"),
                    (_CORRELATION_KEY, cid),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    def _observe(self, method: str, scope: Scope, status: int, seconds: float) -> None:
        method = method if method in _KNOWN_METHODS else "other"
        route = getattr(scope.get("route"), "path", "unmatched")
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = HTTP_REQUESTS.labels(method, route, str(status))
            self._counters[(method, route, status)] = counter
        counter.inc()
        histogram = self._histograms.get((method, route))
        if histogram is None:
            histogram = HTTP_LATENCY.labels(method, route)
            self._histograms[(method, route)] = histogram
        histogram.observe(seconds)
