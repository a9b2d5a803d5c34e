"""Helpers for tests that run services against the real database and broker."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from shared.auth import Role, mint_token
from shared.events import decode_headers

TEST_JWT_SECRET = "test-secret-for-the-ekatalog-suite-0123456789"
TEST_CONSUMER_SESSION_TIMEOUT_MS = 2000

T = TypeVar("T")


@dataclass(frozen=True)
class Infra:
    admin_dsn: str
    bootstrap_servers: str

    def dsn(self, database: str) -> str:
        return self.admin_dsn.rsplit("/", 1)[0] + f"/{database}"


@asynccontextmanager
async def scratch_database(infra: Infra) -> AsyncIterator[str]:
    """DSN of a new, empty database, dropped on exit."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infra.admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield infra.dsn(name)
    finally:
        admin = await asyncpg.connect(infra.admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def migrations_before(directory: Path, version: str, into: Path) -> Path:
    """A copy of a service's migrations older than `version`: the database before an upgrade."""
    into.mkdir()
    for migration in sorted(directory.glob("*.sql")):
        if migration.name < version:
            shutil.copy(migration, into / migration.name)
    return into


def token(
    role: Role | str,
    *,
    opd_id: str | None = None,
    vendor_id: str | None = None,
    subject: str | None = None,
    ttl_seconds: int = 3600,
) -> str:
    return mint_token(
        TEST_JWT_SECRET,
        role=role,
        opd_id=opd_id,
        vendor_id=vendor_id,
        subject=subject,
        ttl_seconds=ttl_seconds,
    )


def auth(role: Role | str, **claims: Any) -> dict[str, str]:
    """Authorization header for a role; pass opd_id= or vendor_id= where the role needs one."""
    return {"Authorization": f"Bearer {token(role, **claims)}"}


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (migrations, broker, relay, consumers) and give an HTTP client."""
    async with app.router.lifespan_context(app):
        # Unhandled errors reach the client as the 500 problem a real server would send.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 15.0, interval: float = 0.1
) -> T:
    """Poll `check` until it returns a truthy value without raising; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = await check()
            if result:
                return result
        except AssertionError as exc:
            last_error = exc
        await asyncio.sleep(interval)
    if last_error is not None:
        raise last_error
    raise AssertionError(f"condition not met within {timeout}s")


@dataclass(frozen=True)
class ReceivedEvent:
    type: str
    key: str
    value: bytes
    headers: dict[str, str]

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.value)


async def read_topic(
    bootstrap_servers: str, topic: str, *, min_count: int = 1, timeout: float = 15.0
) -> list[ReceivedEvent]:
    """Read a topic from the beginning until at least `min_count` records arrived."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    events: list[ReceivedEvent] = []
    try:
        deadline = time.monotonic() + timeout
        while len(events) < min_count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for r in records:
                    headers = decode_headers(r.headers)
                    events.append(
                        ReceivedEvent(
                            headers.get("ce_type", ""), (r.key or b"").decode(), r.value, headers
                        )
                    )
    finally:
        await consumer.stop()
    return events


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The ASGI scope of one HTTP request, for driving an app without a server."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "state": {},
    }
