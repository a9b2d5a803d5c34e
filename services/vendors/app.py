"""Wiring of the vendors service: settings, routes, events, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.vendors import api
from shared.contracts.vendors import VENDOR_EVENTS
from shared.regions import RegionCode
from shared.service import BackgroundJob, ServiceDefinition, create_service_app
from shared.settings import ServiceSettings
from shared.types import TimeZoneName


class VendorsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VENDORS_", extra="ignore")

    http_port: int = 8001
    city_region_code: RegionCode = Field(
        default="33.75",
        description="Kemendagri code of the city (or province) whose vendors count as local",
    )
    timezone: TimeZoneName = Field(
        default="Asia/Jakarta", description="whose calendar day KSWP validity and sanctions use"
    )
    daily_check_interval_seconds: float = Field(
        default=3600,
        gt=0,
        description="how often corrected snapshots, suspension ends and KSWP expiry are handled",
    )


def create_app(settings: VendorsSettings | None = None) -> FastAPI:
    settings = settings or VendorsSettings.from_env()
    return create_service_app(
        ServiceDefinition(
            name="vendors",
            title="e-Katalog vendors",
            description="Vendor (penyedia) registration, verification, scale and sanctions.",
            settings=settings,
            migrations=Path(__file__).parent / "migrations",
            routers=[api.router],
            publishes=VENDOR_EVENTS,
            errors=api.ERRORS,
            background=[
                BackgroundJob(
                    "vendor-daily-checks",
                    settings.daily_check_interval_seconds,
                    run=api.run_daily_checks,
                )
            ],
        )
    )
