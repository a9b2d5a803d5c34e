"""Wiring of the catalog service: settings, routes, events, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore")

    http_port: int = 8002


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings.from_env()
    return create_service_app(
        ServiceDefinition(
            name="catalog",
            title="e-Katalog catalog",
            description="Storefronts (etalase), products, curation, listing, search and stock.",
            settings=settings,
            migrations=Path(__file__).parent / "migrations",
        )
    )
