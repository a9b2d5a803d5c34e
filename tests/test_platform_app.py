"""The service app factory: correlation ids, auth, problem+json, outbox wiring, health."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, StrictInt

from shared.auth import CurrentPrincipal, Principal, Role, ensure_vendor_owner, requires_role
from shared.consumer import EventConsumer
from shared.db import Connection
from shared.events import EventMeta
from shared.logging import current_correlation_id
from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings
from tests.plumbing import CounterIncremented
from tests.support import (
    TEST_CONSUMER_SESSION_TIMEOUT_MS,
    TEST_JWT_SECRET,
    Infra,
    auth,
    eventually,
    read_topic,
    running,
)

router = APIRouter()


class Increment(BaseModel):
    counter_id: str
    seq: StrictInt


@router.post("/counters", status_code=202)
async def increment(
    body: Increment,
    request: Request,
    principal: Principal = Depends(requires_role(Role.CATALOGUE_MANAGER, Role.VENDOR)),
) -> dict[str, str]:
    app = request.app
    async with app.state.pool.acquire() as conn, conn.transaction():
        [event_id] = await app.state.outbox.add(
            conn, CounterIncremented(counter_id=body.counter_id, seq=body.seq)
        )
    return {"event_id": str(event_id)}


@router.get("/vendors/{vendor_id}/secret")
async def vendor_secret(vendor_id: str, principal: CurrentPrincipal) -> dict[str, str]:
    ensure_vendor_owner(principal, vendor_id)
    return {"vendor_id": vendor_id}


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("a bug")


def correlation_consumer(prefix: str) -> EventConsumer:
    consumer = EventConsumer(
        "seen", topic_prefix=prefix, session_timeout_ms=TEST_CONSUMER_SESSION_TIMEOUT_MS
    )

    @consumer.on(CounterIncremented)
    async def seen(conn: Connection, event: CounterIncremented, meta: EventMeta) -> None:
        await conn.execute(
            "INSERT INTO seen (event_id, correlation_id) VALUES ($1, $2)",
            meta.id,
            current_correlation_id(),
        )

    return consumer


@pytest.fixture
async def client(
    infra: Infra, database: str, topic_prefix: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / "001_seen.sql").write_text(
        "CREATE TABLE seen (event_id uuid PRIMARY KEY, correlation_id text)"
    )
    settings = ServiceSettings(
        database_url=database,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=topic_prefix,
        jwt_secret=TEST_JWT_SECRET,
    )
    app = create_service_app(
        ServiceDefinition(
            name="platform-test",
            title="platform test",
            description="exercises shared/",
            settings=settings,
            migrations=tmp_path,
            routers=[router],
            publishes=[CounterIncremented],
            consumer=correlation_consumer(topic_prefix),
        )
    )
    async with running(app) as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


async def test_correlation_id_travels_from_request_to_event_to_consumer(
    client: httpx.AsyncClient, infra: Infra, topic_prefix: str
) -> None:
    response = await client.post(
        "/counters",
        json={"counter_id": "c1", "seq": 1},
        headers={**auth(Role.CATALOGUE_MANAGER), "X-Correlation-ID": "req-42"},
    )
    assert response.status_code == 202, response.text
    assert response.headers["X-Correlation-ID"] == "req-42"
    event_id = response.json()["event_id"]
    [event] = await read_topic(
        infra.bootstrap_servers, f"{topic_prefix}{CounterIncremented.topic}", min_count=1
    )
    assert event.headers["ce_id"] == event_id
    assert event.headers["ce_correlationid"] == "req-42"
    pool = client.app.state.pool  # type: ignore[attr-defined]
    row = await eventually(lambda: pool.fetchrow("SELECT * FROM seen"))
    assert str(row["event_id"]) == event_id and row["correlation_id"] == "req-42"


async def test_a_correlation_id_is_made_when_the_request_has_none(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/healthz")
    assert len(response.headers["X-Correlation-ID"]) == 32


OTHER_SECRET = "another-secret-of-sufficient-length-0123456789"


def _bearer(claims: dict[str, object], key: str = TEST_JWT_SECRET, ttl: int = 60) -> str:
    # Signed when the test runs, so a long suite cannot expire it early.
    now = int(time.time())
    token = jwt.encode({"iat": now, "exp": now + ttl, **claims}, key, algorithm="HS256")
    return f"Bearer {token}"


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (lambda: None, "a bearer token is required"),
        (lambda: "Basic dXNlcjpwYXNz", "a bearer token is required"),
        (lambda: "Bearer not-a-jwt", "not valid"),
        (lambda: _bearer({"sub": "u", "role": "catalogue_manager"}, ttl=-10), "expired"),
        (
            lambda: _bearer({"sub": "u", "role": "vendor", "vendor_id": "v"}, OTHER_SECRET),
            "not valid",
        ),
        (lambda: _bearer({"sub": "u", "role": "mayor"}), "unknown role"),
        (lambda: _bearer({"sub": "u", "role": "vendor"}), "vendor_id"),
        (lambda: _bearer({"role": "auditor"}), "not valid"),
    ],
    ids=[
        "none",
        "basic",
        "garbage",
        "expired",
        "wrong-key",
        "unknown-role",
        "no-vendor-id",
        "no-subject",
    ],
)
async def test_bad_tokens_get_401_problem(
    client: httpx.AsyncClient, authorization: Callable[[], str | None], reason: str
) -> None:
    value = authorization()
    headers = {} if value is None else {"Authorization": value}
    response = await client.post("/counters", json={"counter_id": "c", "seq": 1}, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert reason in response.json()["detail"]


async def test_wrong_role_and_not_owner_get_403(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/counters", json={"counter_id": "c", "seq": 1}, headers=auth(Role.AUDITOR)
    )
    assert response.status_code == 403
    assert "auditor" in response.json()["detail"]
    own = await client.get("/vendors/v1/secret", headers=auth(Role.VENDOR, vendor_id="v1"))
    assert own.status_code == 200
    other = await client.get("/vendors/v2/secret", headers=auth(Role.VENDOR, vendor_id="v1"))
    assert other.status_code == 403


async def _request_counts(client: httpx.AsyncClient, route: str) -> dict[tuple[str, str], float]:
    """The request counter of `route` by method and status (the registry is the process's)."""
    metrics = (await client.get("/metrics")).text
    found = re.findall(
        rf'ekatalog_http_requests_total{{method="(\w+)",route="{re.escape(route)}",'
        rf'status="(\d+)"}} ([0-9.]+)',
        metrics,
    )
    return {(method, status): float(count) for method, status, count in found}


async def test_the_services_routes_are_served_and_counted_by_their_template(
    client: httpx.AsyncClient,
) -> None:
    route = "/vendors/{vendor_id}/secret"
    before = await _request_counts(client, route)
    vendor = auth(Role.VENDOR, vendor_id="v7")
    assert (await client.get("/vendors/v7/secret", headers=vendor)).status_code == 200
    head = await client.head("/vendors/v7/secret", headers=vendor)
    assert head.status_code == 200 and head.content == b""
    wrong_method = await client.post("/vendors/v7/secret", headers=vendor)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET, HEAD"
    after = await _request_counts(client, route)
    for labels in (("GET", "200"), ("HEAD", "200"), ("POST", "405")):
        assert after[labels] == before.get(labels, 0.0) + 1, labels
    paths = [getattr(r, "path", None) for r in client.app.routes]  # type: ignore[attr-defined]
    assert paths.index(route) < paths.index("/healthz")


async def test_invalid_body_gets_problem_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/counters", json={"counter_id": "c", "seq": 1.5}, headers=auth(Role.CATALOGUE_MANAGER)
    )
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert body["errors"] == [{"field": "seq", "reason": "Input should be a valid integer"}]
    malformed = await client.post(
        "/counters",
        content=b"{not json",
        headers={**auth(Role.CATALOGUE_MANAGER), "content-type": "application/json"},
    )
    assert malformed.status_code == 422


async def test_unexpected_errors_are_problems_not_stack_traces(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json()["title"] == "Internal Server Error"
    assert "a bug" not in response.text


async def test_asyncapi_documents_published_and_consumed_events(
    client: httpx.AsyncClient, topic_prefix: str
) -> None:
    spec = (await client.get("/asyncapi")).json()
    channels = " ".join(spec["channels"])
    assert f"{topic_prefix}ekatalog.test.counters" in channels
    assert "CounterIncremented" in str(spec["components"]["schemas"])


async def test_rs256_tokens_are_verified_with_the_public_key(
    infra: Infra, database: str, topic_prefix: str, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = ServiceSettings(
        database_url=database,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=topic_prefix,
        jwt_algorithm="RS256",
        jwt_public_key=public_pem,
    )
    app = create_service_app(
        ServiceDefinition(
            name="rs",
            title="rs",
            description="rs",
            settings=settings,
            migrations=tmp_path,
            routers=[router],
        )
    )
    claims = {"sub": "u", "role": "vendor", "vendor_id": "v1", "exp": int(time.time()) + 60}
    good = jwt.encode(claims, key, algorithm="RS256")
    forged = jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256")
    async with running(app) as http:
        ok = await http.get("/vendors/v1/secret", headers={"Authorization": f"Bearer {good}"})
        assert ok.status_code == 200
        bad = await http.get("/vendors/v1/secret", headers={"Authorization": f"Bearer {forged}"})
        assert bad.status_code == 401
