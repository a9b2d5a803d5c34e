"""The FastAPI application every service is built from: lifespan, health, metrics, docs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.auth import TokenVerifier
from shared.consumer import DLQ_SUFFIX, EventConsumer
from shared.db import create_pool, migrate_service
from shared.events import Event
from shared.http import HttpEdge
from shared.logging import configure_logging, get_logger
from shared.outbox import Outbox, OutboxRelay
from shared.problems import (
    PROBLEM_RESPONSES,
    ErrorMapper,
    ProblemDetails,
    install_problem_handlers,
)
from shared.settings import ServiceSettings

log = get_logger(__name__)


@dataclass
class BackgroundJob:
    """A periodic task run at start-up and then every `interval_seconds` (e.g. a deadline check)."""

    name: str
    interval_seconds: float
    run: Callable[[FastAPI], Awaitable[None]]


@dataclass
class ServiceDefinition:
    """What makes one service: its name, settings, tables, routes, and events in and out."""

    name: str
    title: str
    description: str
    settings: ServiceSettings
    migrations: Path
    routers: Sequence[APIRouter] = ()
    publishes: Sequence[type[Event]] = ()
    consumer: EventConsumer | None = None
    version: str = "0.1.0"
    background: Sequence[BackgroundJob] = ()
    # The service's domain error types and how api.py turns each into problem+json; domain and
    # commands raise plain exceptions and never speak HTTP.
    errors: Mapping[type[Exception], ErrorMapper] = field(default_factory=dict)


async def ensure_topics(bootstrap_servers: str, topics: Sequence[str], partitions: int) -> None:
    if not topics:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


def service_topics(definition: ServiceDefinition) -> list[str]:
    prefix = definition.settings.topic_prefix
    topics = {f"{prefix}{e.topic}" for e in definition.publishes}
    if definition.consumer is not None:
        topics.update(definition.consumer.topics)
        topics.update(f"{t}{DLQ_SUFFIX}" for t in definition.consumer.topics)
    return sorted(topics)


async def _retry_until_ready(what: str, attempt: object, max_delay: float = 5.0) -> object:
    delay = 0.2
    while True:
        try:
            return await attempt()  # type: ignore[operator]
        except (KafkaError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning(f"waiting for {what}", error=repr(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


# How long each part of the service may take to stop before it is left behind: stopping must not
# wait for ever on a broker or a database that no longer answers, or on a connection a stuck
# handler never gave back. A clean stop takes well under a second.
STOP_STEP_SECONDS = 5.0


async def _stop_within(what: str, stopping: Awaitable[object]) -> None:
    try:
        await asyncio.wait_for(stopping, STOP_STEP_SECONDS)
    except TimeoutError:
        log.error("stopping took too long; left behind", part=what, seconds=STOP_STEP_SECONDS)
    except Exception as exc:
        log.warning("stopped with an error", part=what, error=repr(exc))


# Allocations between two young-generation collections (CPython's default is 700): a request
# allocates hundreds of objects, nearly all freed by reference counting, so collecting that
# often is work for nothing.
YOUNG_COLLECTION_THRESHOLD = 20_000


def settle_heap() -> None:
    """Move everything alive once the service is built (modules, classes, models, routes: most
    of the heap) out of the collector's reach, and collect the young generation less often.

    A full collection otherwise walks that whole heap, pausing every request in the process for
    100 to 250 ms a few times a minute under load, which made each service's p99 latency 5 to
    15 times its median. Called by `ekatalog serve` before it starts serving.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


def create_service_app(definition: ServiceDefinition) -> FastAPI:
    settings = definition.settings
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"ekatalog-{definition.name}",
        request_timeout_ms=10_000,
        logger=get_logger("faststream"),
    )
    outbox = Outbox.for_service(definition.name, settings.topic_prefix)
    for event in definition.publishes:
        broker.publisher(
            outbox.topic_for(event),
            title=f"{outbox.topic_for(event)}:{event.type}",
            description=(event.__doc__ or "").strip(),
            schema=event,
        )
    if definition.consumer is not None:
        definition.consumer.attach(broker)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(definition.name, settings.log_format, settings.log_level)
        await _retry_until_ready(
            "the database",
            lambda: migrate_service(settings.database_url, definition.name, definition.migrations),
        )
        pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
        if definition.consumer is not None:
            definition.consumer.bind(pool)
        relay = OutboxRelay(
            pool,
            settings.database_url,
            settings.kafka_bootstrap_servers,
            name=definition.name,
            batch_size=settings.relay_batch_size,
            poll_seconds=settings.relay_poll_seconds,
            lease_seconds=settings.relay_lease_seconds,
            log_retention=settings.event_log_retention,
        )
        app.state.pool = pool
        app.state.relay = relay
        app.state.consumer_status = "joining"
        # HTTP is served from here on; joining the consumer group can take a session timeout
        # or more after a crash, and reads must not wait for it.
        messaging = asyncio.create_task(_start_messaging(app, definition, broker, relay))
        jobs = [asyncio.create_task(_periodic(app, job)) for job in definition.background]
        log.info("service started", port=settings.http_port)
        try:
            yield
        finally:
            for task in (messaging, *jobs):
                task.cancel()
            await _stop_within(
                "background tasks", asyncio.gather(messaging, *jobs, return_exceptions=True)
            )
            await _stop_within("outbox relay", relay.stop())
            await _stop_within("broker", broker.stop())
            # A connection never given back would keep `close` waiting forever; cancelled, it
            # closes every connection at once.
            await _stop_within("database pool", pool.close())
            log.info("service stopped")

    app = FastAPI(
        title=definition.title,
        description=definition.description,
        version=definition.version,
        lifespan=lifespan,
        # FastAPI's own Swagger UI and ReDoc pages load scripts from a CDN; `_install_docs`
        # serves Swagger UI from the installed swagger-ui-py package instead.
        docs_url=None,
        redoc_url=None,
        # The platform's telemetry is its structured logs with correlation ids and its
        # Prometheus metrics; FastAPI's OpenTelemetry hooks would only be looked up and
        # skipped on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.service = definition.name
    app.state.broker = broker
    app.state.outbox = outbox
    app.state.token_verifier = TokenVerifier(
        settings.jwt_verification_key, settings.jwt_algorithm, settings.jwt_issuer
    )
    install_problem_handlers(app, definition.errors)
    _install_observability(app, settings)
    # Requests are matched against the routes in order: the service's own come first.
    for router in definition.routers:
        add_routes(app, router, responses=PROBLEM_RESPONSES)
    add_routes(app, _operations_router(definition, broker))
    _install_docs(app)
    _document_problems(app)
    return app


async def _start_messaging(
    app: FastAPI, definition: ServiceDefinition, broker: KafkaBroker, relay: OutboxRelay
) -> None:
    """Create the topics, then start the relay and the consumers, retrying while the broker is
    unreachable. The relay starts after the topics exist so that it never auto-creates one."""
    settings = definition.settings
    try:
        await _retry_until_ready(
            "the Kafka broker",
            lambda: ensure_topics(
                settings.kafka_bootstrap_servers,
                service_topics(definition),
                settings.topic_partitions,
            ),
        )
        await relay.start()
        await _retry_until_ready("the Kafka broker", lambda: _start_broker(broker))
    except Exception as exc:
        log.exception("the relay and the consumers could not start")
        app.state.consumer_status = f"failed: {exc!r}"
        return
    app.state.consumer_status = "ok"
    log.info("relay and consumers started")


async def _start_broker(broker: KafkaBroker) -> None:
    try:
        await broker.start()
    except Exception:
        # Subscribers started before the failure would stay in their groups, holding partitions
        # no one reads; stop them all before the next attempt.
        with contextlib.suppress(Exception):
            await broker.stop()
        raise


async def _periodic(app: FastAPI, job: BackgroundJob) -> None:
    while True:
        try:
            await job.run(app)
        except Exception:
            log.exception("background job failed", job=job.name)
        await asyncio.sleep(job.interval_seconds)


def _install_observability(app: FastAPI, settings: ServiceSettings) -> None:
    app.add_middleware(
        HttpEdge,
        max_body_bytes=settings.http_max_body_bytes,
        max_header_bytes=settings.http_max_header_bytes,
    )


def _document_problems(app: FastAPI) -> None:
    """Adds the problem+json schema that every route's error responses refer to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()  # kept in app.openapi_schema, which this completes
        problem = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(problem.pop("$defs", {}))
        components["Problem"] = problem
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


DOCS_ASSETS = "/docs/assets"


def _install_docs(app: FastAPI) -> None:
    """Swagger UI at /docs, its scripts and styles from the installed package (works offline)."""
    app.mount(DOCS_ASSETS, StaticFiles(packages=[("swagger_ui", "static")]), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            # The default validator badge is fetched from swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )


async def _ping_database(pool: asyncpg.Pool, timeout: float) -> None:
    async with pool.acquire(timeout=timeout) as conn:
        await conn.fetchval("SELECT 1", timeout=timeout)


async def _ping_broker(broker: KafkaBroker, timeout: float) -> None:
    if not await broker.ping(timeout=timeout):
        raise ConnectionError("the broker does not answer")


async def answer_within(check: Awaitable[None], timeout: float) -> str:
    """Run a health check: "ok", or why not (its error, or that it did not finish in time).

    The check runs as its own task and is left to finish in the background when it is late, so
    the caller never waits longer than `timeout` (a frozen server can hold a connection's
    cleanup far longer).
    """
    task = asyncio.ensure_future(check)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.add_done_callback(_discard_outcome)
        return f"unavailable: no answer within {timeout:g} s"
    error = task.exception()
    return "ok" if error is None else f"unavailable: {error!r}"


# What `add_api_route` takes besides the path and the endpoint, each kept as the route has it.
_ROUTE_OPTIONS = tuple(
    name
    for name in inspect.signature(APIRouter.add_api_route).parameters
    if name not in ("self", "path", "endpoint", "route_class_override")
)


def add_routes(
    app: FastAPI, router: APIRouter, responses: Mapping[int | str, dict[str, Any]] | None = None
) -> None:
    """Each of the router's routes added to the app itself, with `responses` documented too.

    `app.include_router` keeps the router as one node of a tree that every request walks again
    (routes version checks, scope copies, a match per route): a few percent of a request's CPU
    that a route added to the app does not cost. This adds them as `include_router` did before
    FastAPI 0.137.
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"only API routes can be added, not {route!r}")
        options = {name: getattr(route, name) for name in _ROUTE_OPTIONS}
        options["responses"] = {**(responses or {}), **route.responses}
        app.router.add_api_route(
            route.path, route.endpoint, route_class_override=type(route), **options
        )


def _discard_outcome(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()


def _operations_router(definition: ServiceDefinition, broker: KafkaBroker) -> APIRouter:
    router = APIRouter(tags=["operations"])
    spec = AsyncAPI(
        broker,
        title=f"{definition.title} events",
        version=definition.version,
        description=definition.description,
    )

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": definition.name}

    @router.get("/readyz", summary="Readiness: database and broker reachable")
    async def readyz(request: Request) -> JSONResponse:
        state = request.app.state
        timeout = definition.settings.readiness_timeout_seconds
        database, kafka = await asyncio.gather(
            answer_within(_ping_database(state.pool, timeout), timeout),
            answer_within(_ping_broker(broker, timeout), timeout),
        )
        checks: dict[str, object] = {"database": database, "broker": kafka}
        status: str = getattr(state, "consumer_status", "joining")
        if definition.consumer is not None:
            # Not a reason to refuse traffic: HTTP is served while the consumer joins its group.
            checks["consumer"] = status
        relay: OutboxRelay | None = getattr(state, "relay", None)
        if relay is not None:
            checks["outbox_backlog"] = relay.backlog
            checks["outbox_oldest_seconds"] = round(relay.oldest_age, 3)
        ready = database == "ok" and kafka == "ok" and not status.startswith("failed")
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get(
        "/asyncapi",
        summary="AsyncAPI document of the events this service uses",
        response_class=Response,
        responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    )
    async def asyncapi() -> Response:
        return Response(spec.to_specification().to_json(), media_type="application/json")

    return router
