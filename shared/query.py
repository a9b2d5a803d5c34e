"""Query strings read into one model in one validation, and documented as query parameters.

FastAPI reads each declared query parameter on its own, inspecting its annotation and running
its own validator on every request: for a route with many optional filters (the public search
has seventeen) that was a quarter of the route's CPU time. A `QueryModel` is validated once by
pydantic's compiled validator; errors reach the client exactly as FastAPI's own would (422
problem+json naming the parameter), and `openapi()` lists the same parameters in the API
description, so clients, docs and the schemathesis run see no difference.
"""

from __future__ import annotations

from typing import Any, Self

from fastapi import Request
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.problems import request_part_error


class QueryModel(BaseModel):
    """A route's query parameters; unknown ones are ignored, as FastAPI ignores them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    async def from_request(cls, request: Request) -> Self:
        """The dependency that reads the request's query string (a repeated key: its last
        value, as FastAPI reads a single-valued parameter). A coroutine: FastAPI would run a
        plain function in a worker thread."""
        try:
            return cls.model_validate(dict(request.query_params))
        except ValidationError as exc:
            raise request_part_error(exc, "query") from None

    @classmethod
    def openapi(cls) -> dict[str, Any]:
        """`openapi_extra` for the route: the model's fields as its query parameters."""
        schema = cls.model_json_schema()
        definitions = schema.get("$defs", {})
        required = set(schema.get("required", ()))
        parameters = []
        for name, field_schema in schema["properties"].items():
            inlined = _inline(field_schema, definitions)
            description = inlined.pop("description", None)
            parameter: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": inlined,
            }
            if description:
                parameter["description"] = description
            parameters.append(parameter)
        return {"parameters": parameters}


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    """`schema` with its references to the model's own definitions (enums) written out."""
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        inlined = {key: _inline(value, definitions) for key, value in schema.items()}
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            del inlined["$ref"]  # its siblings (a default) stay
            target = _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
            return {**target, **inlined}
        return inlined
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema
