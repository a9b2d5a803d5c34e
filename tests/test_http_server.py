"""The HTTP edge behind the real server (`ekatalog serve`): what a raw socket sees."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.served import serve
from tests.support import Infra


@pytest.fixture
def served(infra: Infra, database: str, topic_prefix: str) -> Iterator[int]:
    with serve("orders", infra, database, topic_prefix) as base:
        yield int(base.rsplit(":", 1)[1])


def exchange(port: int, request: bytes) -> bytes:
    """Send one raw request and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def status_and_body(answer: bytes) -> tuple[bytes, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


async def test_130_kb_of_headers_get_a_431_problem_not_a_reset(served: int) -> None:
    answer = exchange(
        served,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 130_000 + b"\r\n\r\n",
    )
    head, body = status_and_body(answer)
    assert head.startswith(b"HTTP/1.1 431 ")
    assert b"content-type: application/problem+json" in head.lower()
    assert b'"status":431' in body


async def test_a_declared_50_mb_body_is_refused_before_it_is_sent(served: int) -> None:
    answer = exchange(
        served,
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 52428800\r\n\r\n" + b"x" * 65536,
    )
    head, body = status_and_body(answer)
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b'"status":413' in body


async def test_head_and_allow_over_the_wire(served: int) -> None:
    head, body = status_and_body(
        exchange(served, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    )
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b""
    head, body = status_and_body(
        exchange(served, b"DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    )
    assert head.startswith(b"HTTP/1.1 405 ")
    assert b"\r\nallow: GET, HEAD\r\n" in head + b"\r\n"
    assert b'"status":405' in body
