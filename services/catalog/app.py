"""Wiring of the catalog service: settings, routes, events, periodic jobs, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.catalog import api, commands, handlers
from shared.contracts.catalog import CATALOG_EVENTS
from shared.service import BackgroundJob, ServiceDefinition, create_service_app
from shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore")

    http_port: int = 8002
    timezone: str = Field(
        default="Asia/Jakarta", description="the calendar TKDN certificate dates are read in"
    )
    claims_check_interval_seconds: float = Field(
        default=3600, gt=0, description="how often lapsed TKDN certificates are looked for"
    )


async def _lapse_tkdn_claims(app: FastAPI) -> None:
    today = api.local_today(app.state.settings.timezone)
    await commands.lapse_tkdn_claims(app.state.pool, app.state.outbox, today)


async def _reindex_search(app: FastAPI) -> None:
    await commands.reindex_search(app.state.pool)


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings.from_env()
    return create_service_app(
        ServiceDefinition(
            name=handlers.SERVICE,
            title="e-Katalog catalog",
            description="Storefronts (etalase), products, curation, listing, search and stock.",
            settings=settings,
            migrations=Path(__file__).parent / "migrations",
            routers=[api.router],
            publishes=CATALOG_EVENTS,
            consumer=handlers.build_consumer(settings),
            errors=api.ERRORS,
            background=[
                BackgroundJob(
                    "tkdn-expiry", settings.claims_check_interval_seconds, _lapse_tkdn_claims
                ),
                # Runs at start: products indexed by an older search-word rule are re-indexed.
                BackgroundJob("search-reindex", 24 * 3600, _reindex_search),
            ],
        )
    )
