"""Wiring of the catalog service: settings, routes, events, periodic jobs, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.catalog import api, handlers, jobs
from shared.contracts.catalog import CATALOG_EVENTS
from shared.contracts.stock import STOCK_EVENTS
from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings
from shared.types import TimeZoneName


class CatalogSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore")

    http_port: int = 8002
    timezone: TimeZoneName = Field(
        default="Asia/Jakarta", description="the calendar TKDN certificate dates are read in"
    )
    claims_check_interval_seconds: float = Field(
        default=3600, gt=0, description="how often lapsed TKDN certificates are looked for"
    )


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings.from_env()
    app = create_service_app(
        ServiceDefinition(
            name=handlers.SERVICE,
            title="e-Katalog catalog",
            description="Storefronts (etalase), products, curation, listing, search and stock.",
            errors=api.ERRORS,
            background=jobs.background_jobs(settings.claims_check_interval_seconds),
            settings=settings,
            migrations=Path(__file__).parent / "migrations",
            routers=[api.router],
            publishes=(*CATALOG_EVENTS, *STOCK_EVENTS),
            consumer=handlers.build_consumer(settings),
        )
    )
    return app
