"""The HTTP edge behind the real server (`ekatalog serve`): what a raw socket sees."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.embedded import free_port
from tests.support import TEST_JWT_SECRET, Infra, eventually


@pytest.fixture
async def served(infra: Infra, database: str, topic_prefix: str) -> AsyncIterator[int]:
    port = free_port()
    env = {
        **os.environ,
        "ORDERS_DATABASE_URL": database,
        "ORDERS_KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
        "ORDERS_TOPIC_PREFIX": topic_prefix,
        "ORDERS_JWT_SECRET": TEST_JWT_SECRET,
        "ORDERS_HTTP_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ekatalog.cli", "serve", "orders"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        async def healthy() -> bool:
            assert process.poll() is None, "the service exited"
            async with httpx.AsyncClient() as http:
                try:
                    response = await http.get(f"http://127.0.0.1:{port}/healthz")
                except httpx.TransportError:
                    return False
            return response.status_code == 200

        await eventually(healthy, timeout=60)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
