"""docker-compose.yml runs the same services with the same settings (no Docker engine here)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from ekatalog.cli import SERVICES, _settings_class, consumer_groups

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
GATEWAY = (ROOT / "deploy/gateway/nginx.conf").read_text()
INTERPOLATION = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(value: Any, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution."""

    def substitute(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in env:
            return env[name]
        if kind == "-":
            return rest
        raise AssertionError(f"{name} must be set: {rest}")

    return INTERPOLATION.sub(substitute, str(value))


def environment(service: str) -> dict[str, str]:
    env = {"EKATALOG_JWT_SECRET": "a-secret-from-the-operator"}
    raw = COMPOSE["services"][service]["environment"]
    return {k: interpolate(v, env) for k, v in raw.items()}


@pytest.mark.parametrize("name", list(SERVICES))
def test_each_service_is_deployed_with_settings_it_understands(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = COMPOSE["services"][name]
    prefix, port = SERVICES[name]
    assert service["command"] == ["serve", name]
    assert service["build"] == "."
    assert service["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "kafka": {"condition": "service_healthy"},
    }
    assert service["healthcheck"]["test"] == ["CMD", "ekatalog", "health", name]
    assert service["expose"] == [str(port)]

    env = environment(name)
    settings_cls = _settings_class(name)
    for variable in env:
        assert variable.startswith(f"{prefix}_"), f"{variable} is not read by {name}"
        field = variable.removeprefix(f"{prefix}_").lower()
        assert field in settings_cls.model_fields, f"{name} has no setting {variable}"
    for variable in [v for v in os.environ if v.startswith(f"{prefix}_")]:
        monkeypatch.delenv(variable)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    settings = settings_cls.from_env()
    assert settings.http_port == port and settings.http_host == "0.0.0.0"

    dsn = urlparse(settings.database_url)
    assert dsn.hostname == "postgres" and dsn.port == 5432
    init_sql = (ROOT / "deploy/postgres/init.sql").read_text()
    assert f"CREATE DATABASE {dsn.path.lstrip('/')};" in init_sql
    postgres = COMPOSE["services"]["postgres"]
    assert dsn.username == postgres["environment"]["POSTGRES_USER"]
    assert dsn.password == interpolate(postgres["environment"]["POSTGRES_PASSWORD"], {})

    kafka = COMPOSE["services"]["kafka"]["environment"]
    assert f"PLAINTEXT://{settings.kafka_bootstrap_servers}" in kafka["KAFKA_ADVERTISED_LISTENERS"]


def test_the_secret_must_be_given_by_the_operator() -> None:
    raw = COMPOSE["services"]["vendors"]["environment"]["VENDORS_JWT_SECRET"]
    with pytest.raises(AssertionError, match="EKATALOG_JWT_SECRET must be set"):
        interpolate(raw, {})


def test_infrastructure_is_kraft_kafka_and_postgres_with_volumes() -> None:
    services = COMPOSE["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["postgres"]["image"].startswith("postgres:")
    assert {"pgdata", "kafkadata"} <= set(COMPOSE["volumes"])
    mounts = services["postgres"]["volumes"]
    assert any(m.startswith("./deploy/postgres/init.sql:") for m in mounts)


def test_the_image_runs_the_cli_and_installs_the_project() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["ekatalog"]' in dockerfile
    assert "pip install --no-cache-dir ." in dockerfile
    for path in re.findall(r"^COPY (\S+)", dockerfile, re.MULTILINE):
        assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which does not exist"


def test_every_service_scales_behind_the_gateway() -> None:
    """`docker compose up --scale NAME=2`: no replica binds a host port or a container name;
    the gateway publishes each service's port and resolves the service's name (every replica)
    per request rather than once."""
    gateway = COMPOSE["services"]["gateway"]
    assert gateway["image"].startswith("nginx:")
    assert "./deploy/gateway/nginx.conf:/etc/nginx/nginx.conf:ro" in gateway["volumes"]
    assert "resolver 127.0.0.11 valid=10s" in GATEWAY  # Docker's DNS, asked again every 10 s
    routes = {
        int(port): (variable, target)
        for port, variable, target, used in re.findall(
            r"listen (\d+);\s*location / \{\s*set \$(\w+) (\S+);\s*proxy_pass \$(\w+);", GATEWAY
        )
        if used == variable
    }
    for name, (_, port) in SERVICES.items():
        service = COMPOSE["services"][name]
        assert "ports" not in service and "container_name" not in service, name
        assert f"{port}:{port}" in gateway["ports"]
        assert routes[port] == (name, f"http://{name}:{port}")
    assert len(gateway["ports"]) == len(SERVICES)
    limit = re.search(r"client_max_body_size (\d+)m;", GATEWAY)
    assert limit is not None
    largest = max(_settings_class(n).model_fields["http_max_body_bytes"].default for n in SERVICES)
    assert int(limit.group(1)) * 2**20 >= largest, "the gateway would refuse bodies a service takes"


def test_replicas_of_a_service_share_its_consumer_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two replicas join the same groups (named after the service, nothing per container), so
    Kafka gives each partition to one of them: no event is handled by both."""
    monkeypatch.setenv("HOSTNAME", "ekatalog-reporting-1")
    first = consumer_groups("kafka:9092")
    monkeypatch.setenv("HOSTNAME", "ekatalog-reporting-2")
    assert consumer_groups("kafka:9092") == first
    for group, (service, topics) in first.items():
        assert group == service and topics, group
    assert "reporting" in first
