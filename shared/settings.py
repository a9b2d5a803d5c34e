"""Settings read from the environment, one variable prefix per service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, Self

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed; the message names it."""


class ServiceSettings(BaseSettings):
    """What every service needs; a service subclasses it and sets its own `env_prefix`."""

    model_config = SettingsConfigDict(env_prefix="EKATALOG_", extra="ignore")

    database_url: str = Field(description="PostgreSQL DSN of this service's own database")
    kafka_bootstrap_servers: str = Field(description="comma-separated host:port list")
    topic_prefix: str = Field(default="", description="prepended to every topic name")
    topic_partitions: int = Field(default=6, ge=1)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    http_max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="larger request bodies get 413"
    )
    http_max_header_bytes: int = Field(
        default=32 * 1024, ge=4096, description="larger request header blocks get 431"
    )
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: str | None = Field(default=None, description="HS256 shared secret")
    jwt_public_key: str | None = Field(default=None, description="RS256 public key, PEM")
    jwt_issuer: str | None = None
    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_seconds: float = Field(default=0.5, gt=0)
    relay_lease_seconds: float = Field(default=30.0, gt=0)
    event_log_retention_days: float | None = Field(
        default=None, gt=0, description="how long published events stay in the log; unset: forever"
    )
    consumer_batch_size: int = Field(default=500, ge=1)
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_backoff_seconds: float = Field(default=0.2, ge=0)
    consumer_session_timeout_ms: int = Field(default=10_000, ge=1000)
    # A fetch waits this long for records when there are none: each consumer hop of a saga adds
    # up to it (the broker holds a fetch until it runs out), and each idle consumer asks the broker
    # 1000 / it times a second.
    consumer_fetch_max_wait_ms: int = Field(default=50, ge=1, le=10_000)
    consumer_max_poll_interval_ms: int = Field(
        default=300_000,
        ge=10_000,
        description="Kafka max.poll.interval.ms: the longest one batch may take to handle",
    )
    consumer_retry_budget_seconds: float = Field(
        default=30.0,
        ge=0,
        description="time one batch may spend retrying failing events; at most half the poll"
        " interval",
    )
    readiness_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        le=1.5,
        description="how long /readyz waits for the database and for the broker (in parallel)",
    )

    def consumer_options(self) -> dict[str, Any]:
        """Keyword arguments for `EventConsumer` taken from these settings."""
        return {
            "topic_prefix": self.topic_prefix,
            "batch_size": self.consumer_batch_size,
            "max_attempts": self.consumer_max_attempts,
            "backoff_seconds": self.consumer_backoff_seconds,
            "session_timeout_ms": self.consumer_session_timeout_ms,
            "fetch_max_wait_ms": self.consumer_fetch_max_wait_ms,
            "max_poll_interval_ms": self.consumer_max_poll_interval_ms,
            "retry_budget_seconds": self.consumer_retry_budget_seconds,
        }

    @property
    def event_log_retention(self) -> timedelta | None:
        days = self.event_log_retention_days
        return None if days is None else timedelta(days=days)

    @classmethod
    def from_env(cls, **overrides: object) -> Self:
        """Load from the environment, turning validation errors into one readable message."""
        try:
            settings = cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise SettingsError(cls.describe_errors(exc)) from None
        settings.check_consistency()
        return settings

    @classmethod
    def describe_errors(cls, exc: ValidationError) -> str:
        prefix = cls.model_config.get("env_prefix", "")
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            variable = f"{prefix}{field}".upper()
            reason = "is required but not set" if err["type"] == "missing" else err["msg"]
            lines.append(f"{variable} {reason}")
        return "invalid configuration: " + "; ".join(lines)

    def check_consistency(self) -> None:
        prefix = str(self.model_config.get("env_prefix", "")).upper()
        if self.consumer_retry_budget_seconds * 1000 > self.consumer_max_poll_interval_ms / 2:
            # The rest of the interval is left for the handlers themselves and the dead letters.
            raise SettingsError(
                f"{prefix}CONSUMER_RETRY_BUDGET_SECONDS must be at most half of"
                f" {prefix}CONSUMER_MAX_POLL_INTERVAL_MS"
            )
        if self.jwt_algorithm == "HS256" and not self.jwt_secret:
            raise SettingsError(f"{prefix}JWT_SECRET is required when {prefix}JWT_ALGORITHM=HS256")
        if self.jwt_algorithm == "RS256" and not self.jwt_public_key:
            raise SettingsError(
                f"{prefix}JWT_PUBLIC_KEY is required when {prefix}JWT_ALGORITHM=RS256"
            )

    @property
    def jwt_verification_key(self) -> str:
        key = self.jwt_secret if self.jwt_algorithm == "HS256" else self.jwt_public_key
        assert key is not None  # guaranteed by check_consistency
        return key
