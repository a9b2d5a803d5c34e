"""Wiring of the catalog service: settings, routes, events, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from services.catalog import api, handlers
from shared.contracts.catalog import CATALOG_EVENTS
from shared.contracts.stock import STOCK_EVENTS
from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore")

    http_port: int = 8002


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings.from_env()
    app = create_service_app(
        ServiceDefinition(
            name=handlers.SERVICE,
            title="e-Katalog catalog",
            description="Storefronts (etalase), products, curation, listing, search and stock.",
            settings=settings,
            migrations=Path(__file__).parent / "migrations",
            routers=[api.router],
            publishes=(*CATALOG_EVENTS, *STOCK_EVENTS),
            consumer=handlers.build_consumer(settings),
        )
    )
    api.install_error_handlers(app)
    return app
