"""Wiring of the orders service: settings, routes, events, deadlines, lifespan."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI
from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.orders import api, commands, handlers
from services.orders.clock import FileClock, read_clock_file, real_now
from services.orders.domain import DEFAULT_PP_LIMIT
from services.orders.rup_import import MAX_BYTES
from services.orders.workdays import WorkingCalendar
from shared.contracts.orders import ORDER_EVENTS, RUP_EVENTS, ProcurementType
from shared.outbox import Outbox
from shared.service import BackgroundJob, ServiceDefinition, create_service_app
from shared.settings import ServiceSettings
from shared.types import TimeZoneName


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")

    http_port: int = 8003
    http_max_body_bytes: int = Field(
        default=MAX_BYTES, ge=1024, description="larger request bodies (RUP CSV files) get 413"
    )
    timezone: TimeZoneName = Field(
        default="Asia/Jakarta", description="whose calendar days the working-day deadlines count"
    )
    pp_limits: dict[ProcurementType, Annotated[int, Field(gt=0)]] = Field(
        default_factory=lambda: {t: DEFAULT_PP_LIMIT for t in ProcurementType},
        description="largest total a PP may order, per procurement type, in rupiah (JSON)",
    )
    holiday_files: list[Path] = Field(
        default_factory=list,
        description="extra holiday calendars (next year's SKB, local holidays), JSON list of paths",
    )
    local_holidays: list[date] = Field(
        default_factory=list, description="the city's own days off, JSON list of dates"
    )
    approval_working_days: int = Field(default=3, ge=1, le=30)
    vendor_answer_working_days: int = Field(default=3, ge=1, le=30)
    deadline_check_seconds: float = Field(
        default=60, gt=0, description="how often orders past their deadline are expired"
    )
    clock_file: Path | None = Field(
        default=None,
        description="test and demo platforms only: a file whose ISO-8601 instant (or signed "
        "seconds added to real time) the service takes as now; real time while it is absent",
    )

    @field_validator("clock_file")
    @classmethod
    def _clock_file_parses(cls, path: Path | None) -> Path | None:
        if path is not None:
            read_clock_file(path)  # a malformed file stops the service at start, named
        return path


def create_app(
    settings: OrdersSettings | None = None, clock: Callable[[], datetime] | None = None
) -> FastAPI:
    """`clock` is injectable so tests control deadlines; else `clock_file`, else real time."""
    settings = settings or OrdersSettings.from_env()
    if clock is None:
        clock = FileClock(settings.clock_file) if settings.clock_file else real_now
    ctx = commands.Context(
        outbox=Outbox.for_service(handlers.SERVICE, settings.topic_prefix),
        policy=commands.OrderPolicy(
            calendar=WorkingCalendar.load(
                settings.timezone, settings.holiday_files, settings.local_holidays
            ),
            pp_limits={t.value: limit for t, limit in settings.pp_limits.items()},
            approval_working_days=settings.approval_working_days,
            vendor_answer_working_days=settings.vendor_answer_working_days,
        ),
        clock=clock,
    )

    async def expire(app: FastAPI) -> None:
        await commands.expire_overdue(app.state.pool, ctx)

    app = create_service_app(
        ServiceDefinition(
            name=handlers.SERVICE,
            title="e-Katalog orders",
            description="RUP budget packages and the e-purchasing order lifecycle.",
            settings=settings,
            migrations=Path(__file__).parent / "migrations",
            routers=[api.router],
            publishes=(*RUP_EVENTS, *ORDER_EVENTS),
            consumer=handlers.build_consumer(settings, ctx),
            background=[BackgroundJob("order-deadlines", settings.deadline_check_seconds, expire)],
            errors=api.ERRORS,
        )
    )
    app.state.orders = ctx
    return app
