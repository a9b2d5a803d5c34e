"""Wiring of the reporting service: settings, routes, events, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    http_port: int = 8004


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings.from_env()
    return create_service_app(
        ServiceDefinition(
            name="reporting",
            title="e-Katalog reporting",
            description="Projections of every service, the KPI dashboard, exports and open data.",
            settings=settings,
            migrations=Path(__file__).parent / "migrations",
        )
    )
