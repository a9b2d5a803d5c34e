"""RFC 9457 problem details, the one error shape every service returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise to answer with problem+json; `errors` lists field-level problems."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_ if type_ == "about:blank" or ":" in type_ else f"/problems/{type_}"
        self.errors = errors
        self.headers = headers
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class FieldProblem(BaseModel):
    field: str
    reason: str


class ProblemDetails(BaseModel):
    """The body of every error answer (RFC 9457), as the OpenAPI documents it."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="`about:blank` or `/problems/<kind>`")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] | None = Field(
        default=None, description="the fields refused and why (validation errors)"
    )


PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
# Every route documents its errors as problem+json; FastAPI then leaves out its own 422 schema,
# which describes a body these services never send.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }
    for status, description in (
        ("4XX", "refused: bad input, no or wrong credentials, not found, conflict, too large"),
        ("5XX", "the service failed or a dependency is unavailable"),
    )
}


def request_part_error(exc: ValidationError, part: str) -> RequestValidationError:
    """A model's validation errors as FastAPI's own for that part of the request ("body",
    "query"): the same 422 problem naming each field, for models a route validates itself."""
    return RequestValidationError(
        [{**error, "loc": (part, *error["loc"])} for error in exc.errors(include_context=False)]
    )


def field_error(field: str, reason: str) -> Problem:
    """422 naming one field and why it was refused."""
    return Problem(
        422,
        "Unprocessable Content",
        f"{field}: {reason}",
        type_="validation-error",
        errors=[{"field": field, "reason": reason}],
    )


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    return JSONResponse(
        problem.body(str(request.url.path)),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


# Turns one of a service's domain errors into the problem it answers with.
ErrorMapper = Callable[[Any], Problem]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]
    if "GET" in allowed:
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return ", ".join(allowed)


def install_problem_handlers(
    app: FastAPI, domain_errors: Mapping[type[Exception], ErrorMapper] | None = None
) -> None:
    for error_type, to_problem in (domain_errors or {}).items():

        async def _domain(
            request: Request, exc: Exception, to_problem: ErrorMapper = to_problem
        ) -> JSONResponse:
            return problem_response(to_problem(exc), request)

        app.add_exception_handler(error_type, _domain)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"] if p not in ("body", "query", "path", "header")]
            # A validator's own ValueError text is the reason; pydantic's prefix is noise.
            reason = str(err["msg"]).removeprefix("Value error, ")
            errors.append({"field": ".".join(loc) or str(err["loc"][0]), "reason": reason})
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        problem = Problem(
            422, "Unprocessable Content", detail, type_="validation-error", errors=errors
        )
        return problem_response(problem, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        title = _phrase(exc.status_code)
        detail = None if exc.detail == title else str(exc.detail)
        return problem_response(Problem(exc.status_code, title, detail, headers=headers), request)

    # A last line behind each service's own validation: text PostgreSQL cannot store (a NUL
    # character, an unpaired surrogate) is the caller's mistake, and its transaction has rolled
    # back; say so instead of answering 500.
    async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("unstorable text refused", path=request.url.path, error=str(exc)[:200])
        problem = Problem(
            422,
            "Unprocessable Content",
            "a text contains a character that cannot be stored (NUL or an unpaired surrogate)",
            type_="validation-error",
        )
        return problem_response(problem, request)

    for unstorable in (
        asyncpg.CharacterNotInRepertoireError,
        asyncpg.UntranslatableCharacterError,
        UnicodeEncodeError,
    ):
        app.add_exception_handler(unstorable, _unstorable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        problem = Problem(500, "Internal Server Error", "an unexpected error was logged")
        return problem_response(problem, request)
