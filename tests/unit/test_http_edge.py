"""The shared HTTP edge, in process: limits, HEAD, Allow, problem+json, correlation id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from shared.logging import current_correlation_id
from shared.problems import PROBLEM_JSON
from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings
from tests.support import http_scope

router = APIRouter()


class Thing(BaseModel):
    name: str


@router.get("/things")
async def list_things() -> dict[str, Any]:
    return {"things": [], "correlation_id": current_correlation_id()}


@router.post("/things", status_code=201)
async def add_thing(thing: Thing) -> Thing:
    return thing


@router.put("/things/{thing_id}")
async def put_thing(thing_id: int, thing: Thing) -> Thing:
    return thing


@router.post("/stored-things", status_code=201)
async def store_thing(thing: Thing) -> Thing:
    # What the driver does with text PostgreSQL refuses, without a database.
    thing.name.encode()
    if "\x00" in thing.name:
        raise asyncpg.CharacterNotInRepertoireError('invalid byte sequence for "UTF8": 0x00')
    return thing


@router.delete("/things/{thing_id}", status_code=204)
async def delete_thing(thing_id: int) -> None:
    return None


def make_app(**limits: int) -> FastAPI:
    # Built but not started: nothing here touches the database or the broker.
    settings = ServiceSettings(
        database_url="postgresql://unused/unused",
        kafka_bootstrap_servers="unused:9092",
        jwt_secret="unused-secret-0123456789-0123456789",
        **limits,  # type: ignore[arg-type]
    )
    return create_service_app(
        ServiceDefinition(
            name="edge-test",
            title="edge test",
            description="the shared HTTP edge",
            settings=settings,
            migrations=Path("unused"),
            routers=[router],
        )
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(http_max_body_bytes=4096))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    return body


async def test_head_is_answered_by_the_get_route_without_a_body(
    client: httpx.AsyncClient,
) -> None:
    get = await client.get("/things")
    head = await client.head("/things")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == "application/json"


async def test_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.patch("/things")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD, POST"
    response = await client.post("/things/1", json={"name": "x"})
    assert_problem(response, 405)
    assert response.headers["allow"] == "DELETE, PUT"
    response = await client.head("/things/1")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, PUT"


async def test_unknown_paths_and_unparseable_bodies_are_problems(
    client: httpx.AsyncClient,
) -> None:
    body = assert_problem(await client.get("/nowhere"), 404)
    assert body["title"] == "Not Found"
    assert body["instance"] == "/nowhere"
    broken = await client.post(
        "/things", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_problem(broken, 422)


async def test_deeply_nested_json_is_refused_cheaply(client: httpx.AsyncClient) -> None:
    nested = b"[" * 2000 + b"]" * 2000
    response = await client.post(
        "/things", content=nested, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == PROBLEM_JSON


async def test_a_declared_oversized_body_gets_413_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/things",
        content=json.dumps({"name": "x" * 5000}).encode(),
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 413)
    assert body["limit"] == 4096
    assert response.headers["connection"] == "close"
    assert response.headers["x-correlation-id"]
    small = await client.post("/things", json={"name": "x" * 4000})
    assert small.status_code == 201


async def test_a_streamed_body_is_cut_off_at_the_limit_not_read_in_full() -> None:
    """50 MB sent chunked without a length: the app stops reading after the limit."""
    app = make_app(http_max_body_bytes=1024 * 1024)
    chunk = b"x" * (1024 * 1024)
    chunks_read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal chunks_read
        chunks_read += 1
        return {"type": "http.request", "body": chunk, "more_body": chunks_read < 50}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"host", b"test")]
    await app(http_scope("POST", "/things", headers), receive, send)
    assert chunks_read == 2
    start, body = sent
    assert start["status"] == 413
    assert dict(start["headers"])[b"content-type"] == PROBLEM_JSON.encode()
    assert json.loads(body["body"])["type"] == "/problems/body-too-large"


async def test_a_huge_header_block_gets_431(client: httpx.AsyncClient) -> None:
    response = await client.get("/things", headers={"x-filler": "a" * 130_000})
    assert_problem(response, 431)


async def test_the_correlation_id_is_taken_when_sane_and_replaced_when_not(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/things", headers={"x-correlation-id": "req-42"})
    assert response.headers["x-correlation-id"] == "req-42"
    assert response.json()["correlation_id"] == "req-42"
    hostile = await client.get("/things", headers={"x-correlation-id": "a b\tc" + "x" * 300})
    replaced = hostile.headers["x-correlation-id"]
    assert replaced != "a b\tc" + "x" * 300
    assert hostile.json()["correlation_id"] == replaced


async def test_docs_are_served_from_the_installed_package(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text
    script = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000


@pytest.mark.parametrize("name", ["nul \x00 inside", "unpaired \ud800 surrogate"])
async def test_text_the_database_cannot_store_is_a_422_problem(
    client: httpx.AsyncClient, name: str
) -> None:
    response = await client.post(
        "/stored-things",
        content=json.dumps({"name": name}).encode(),
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 422)
    assert "cannot be stored" in body["detail"]
