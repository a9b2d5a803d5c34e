"""Wiring of the vendors service: settings, routes, events, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings


class VendorsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VENDORS_", extra="ignore")

    http_port: int = 8001


def create_app(settings: VendorsSettings | None = None) -> FastAPI:
    settings = settings or VendorsSettings.from_env()
    return create_service_app(
        ServiceDefinition(
            name="vendors",
            title="e-Katalog vendors",
            description="Vendor (penyedia) registration, verification, scale and sanctions.",
            settings=settings,
            migrations=Path(__file__).parent / "migrations",
        )
    )
