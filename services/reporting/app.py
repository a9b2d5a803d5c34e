"""Wiring of the reporting service: settings, routes, events, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.reporting import api, handlers
from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings
from shared.types import TimeZoneName


class ReportingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    http_port: int = 8004
    ekatalog_share_target: float = Field(
        default=30.0, ge=0, le=100, description="% of RUP pagu to spend through the e-Katalog"
    )
    umk_koperasi_target: float = Field(
        default=40.0, ge=0, le=100, description="% of spend with micro/small firms and koperasi"
    )
    local_target: float | None = Field(
        default=None, ge=0, le=100, description="% of spend with local vendors, if the city has one"
    )
    pdn_targets: dict[int, float] = Field(
        default={2023: 95.0},
        description="% of spend on domestic products, per fiscal year (SE LKPP 8/2023: 95%)",
    )
    timezone: TimeZoneName = Field(
        default="Asia/Jakarta", description="whose calendar months and fiscal years figures use"
    )
    ocid_prefix: str = Field(
        default="ocds-ekatalog-",
        pattern=r"^[A-Za-z0-9-]{1,40}$",
        description="prefix of every OCDS ocid (register one with the OCDS Data Support Team)",
    )
    ocds_publisher: str = Field(
        default="Pemerintah Kota Pekalongan", min_length=1, description="OCDS publisher name"
    )
    top_vendors: int = Field(default=10, ge=1, le=100)
    feed_page_size: int = Field(default=100, ge=1, le=1000)
    dashboard_refresh_seconds: float = Field(default=5.0, gt=0)


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings.from_env()
    return create_service_app(
        ServiceDefinition(
            name=handlers.SERVICE,
            title="e-Katalog reporting",
            description="Projections of every service, the KPI dashboard, exports and open data.",
            settings=settings,
            migrations=Path(__file__).parent / "migrations",
            routers=[api.router],
            consumer=handlers.build_consumer(settings),
        )
    )
