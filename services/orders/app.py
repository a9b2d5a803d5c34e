"""Wiring of the orders service: settings, routes, events, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")

    http_port: int = 8003


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    settings = settings or OrdersSettings.from_env()
    return create_service_app(
        ServiceDefinition(
            name="orders",
            title="e-Katalog orders",
            description="RUP budget packages and the e-purchasing order lifecycle.",
            settings=settings,
            migrations=Path(__file__).parent / "migrations",
        )
    )
