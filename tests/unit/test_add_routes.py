"""A service's routes are added to its app one by one, described as `include_router` would."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.routing import APIRoute
from pydantic import BaseModel

from shared.problems import PROBLEM_RESPONSES
from shared.service import add_routes

router = APIRouter(tags=["things"])


class Thing(BaseModel):
    name: str


async def limit(limit: Annotated[int, Query(ge=1, le=10)] = 5) -> int:
    return limit


@router.put(
    "/things/{thing_id}",
    status_code=202,
    summary="Replace a thing",
    responses={409: {"description": "it changed meanwhile"}},
    openapi_extra={"x-note": "kept"},
)
async def replace(thing_id: int, body: Thing, n: Annotated[int, Depends(limit)]) -> Thing:
    """The thing as given."""
    return Thing(name=f"{body.name} {thing_id} {n}")


@router.get("/things", deprecated=True, include_in_schema=False)
async def things() -> list[Thing]:
    return []


def test_the_app_holds_the_routes_themselves_and_describes_them_as_include_router_does() -> None:
    flat, included = FastAPI(), FastAPI()
    add_routes(flat, router, responses=PROBLEM_RESPONSES)
    included.include_router(router, responses=PROBLEM_RESPONSES)

    added = [r for r in flat.router.routes if isinstance(r, APIRoute)]
    assert [(r.path, r.methods) for r in added] == [
        ("/things/{thing_id}", {"PUT"}),
        ("/things", {"GET"}),
    ]
    assert flat.openapi() == included.openapi()
    operation = flat.openapi()["paths"]["/things/{thing_id}"]["put"]
    assert set(operation["responses"]) == {"202", "409", "4XX", "5XX"}
    assert operation["x-note"] == "kept"


async def test_an_added_route_validates_and_answers_as_declared() -> None:
    app = FastAPI()
    add_routes(app, router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answered = await client.put("/things/7?limit=3", json={"name": "meja"})
        assert answered.status_code == 202
        assert answered.json() == {"name": "meja 7 3"}
        too_many = await client.put("/things/7?limit=11", json={"name": "meja"})
        assert too_many.status_code == 422
        assert (await client.put("/things/x", json={"name": "meja"})).status_code == 422
