"""A query string read into one model: the same values, errors and API description as
FastAPI's own parameters."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import Field
from starlette.requests import Request

from shared.query import QueryModel


class Order(StrEnum):
    """Newest first unless asked."""

    NEWEST = "newest"
    OLDEST = "oldest"


class Params(QueryModel):
    q: Annotated[str, Field(min_length=2)] | None = None
    in_stock: bool | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    order: Order = Order.NEWEST
    region: str | None = Field(None, description="where it is delivered")


def request(query: bytes) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query})


async def test_values_are_read_as_fastapi_reads_query_parameters() -> None:
    params = await Params.from_request(request(b"q=kertas&in_stock=yes&limit=5&limit=7&x=1"))
    assert params == Params(q="kertas", in_stock=True, limit=7)  # the last of a repeated key
    assert await Params.from_request(request(b"")) == Params()


async def test_a_bad_value_is_a_validation_error_naming_the_query_parameter() -> None:
    with pytest.raises(RequestValidationError) as raised:
        await Params.from_request(request(b"limit=0&order=random"))
    assert sorted(error["loc"] for error in raised.value.errors()) == [
        ("query", "limit"),
        ("query", "order"),
    ]


def test_the_description_lists_each_field_as_a_query_parameter() -> None:
    parameters = {p["name"]: p for p in Params.openapi()["parameters"]}
    assert list(parameters) == ["q", "in_stock", "limit", "order", "region"]
    assert all(p["in"] == "query" and p["required"] is False for p in parameters.values())
    assert parameters["limit"]["schema"] == {
        "default": 20,
        "maximum": 100,
        "minimum": 1,
        "title": "Limit",
        "type": "integer",
    }
    # An enum is written out in place, keeping the field's default.
    order = parameters["order"]
    assert order["schema"]["enum"] == ["newest", "oldest"]
    assert order["schema"]["default"] == "newest"
    assert order["description"] == "Newest first unless asked."
    assert parameters["region"]["description"] == "where it is delivered"
    assert "$ref" not in str(parameters)
