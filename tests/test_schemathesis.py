"""Property-based fuzzing of every service's OpenAPI with schemathesis, as every role and as none.

Each operation gets a fixed number of generated requests (valid and invalid ones, derandomized so
a run is repeatable) against the real server. Whatever the input: no 5xx, every response matches
the schema the OpenAPI documents for its status, and every error is problem+json.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure as SchemathesisFailure
from schemathesis.core.failures import FailureGroup

from ekatalog.cli import SERVICES
from shared.auth import OPD_ROLES, Role
from shared.problems import PROBLEM_JSON
from tests.served import serve
from tests.support import Infra, auth

EXAMPLES_PER_OPERATION = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def credentials(role: Role | None) -> dict[str, str]:
    if role is None:
        return {}
    if role is Role.VENDOR:
        return auth(role, vendor_id=str(uuid.uuid4()))
    if role in OPD_ROLES:
        return auth(role, opd_id="1.01.01")
    return auth(role)


@dataclass
class Failure:
    operation: str
    reason: str
    status: int
    request: str
    roles: list[str]

    def __str__(self) -> str:
        return (
            f"{self.operation} -> {self.status}: {self.reason}\n"
            f"    as {', '.join(self.roles)}: {self.request}"
        )


def content_type(response: schemathesis.Response) -> str:
    value = response.headers.get("content-type", "")
    return str(value[0] if isinstance(value, list) else value)


def fuzz(base: str) -> tuple[list[Failure], Counter[int]]:
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    session = requests.Session()
    failures: dict[tuple[str, str], Failure] = {}
    statuses: Counter[int] = Counter()
    for operation in (result.ok() for result in schema.get_all_operations()):
        for role in (None, *Role):
            for mode in GenerationMode:
                try:
                    fuzz_operation(base, session, operation, mode, role, failures, statuses)
                except Unsatisfiable:
                    # Nothing to break: the operation takes no input (no negative case exists).
                    assert mode is GenerationMode.NEGATIVE, operation.label
    return list(failures.values()), statuses


def fuzz_operation(
    base: str,
    session: requests.Session,
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    role: Role | None,
    failures: dict[tuple[str, str], Failure],
    statuses: Counter[int],
) -> None:
    name = role.value if role else "anonymous"
    headers = credentials(role)

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=base, session=session, headers=headers)
        statuses[response.status_code] += 1
        reasons = []
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            reasons.extend(failure.title for failure in group.exceptions)
        except SchemathesisFailure as failure:
            reasons.append(failure.title)
        if response.status_code >= 400 and content_type(response) != PROBLEM_JSON:
            reasons.append(f"an error answered as {content_type(response)!r}")
        for reason in reasons:
            found = failures.setdefault(
                (operation.label, reason),
                Failure(
                    operation.label,
                    reason,
                    response.status_code,
                    case.as_curl_command()[:500],
                    [],
                ),
            )
            if name not in found.roles:
                found.roles.append(name)

    check()


@pytest.mark.parametrize("service", list(SERVICES))
async def test_every_operation_survives_fuzzing_as_every_role(
    service: str, infra: Infra, database: str, topic_prefix: str
) -> None:
    with serve(service, infra, database, topic_prefix) as base:
        failures, statuses = await asyncio.to_thread(fuzz, base)
    print(f"{service}: {sum(statuses.values())} requests, by status {sorted(statuses.items())}")
    # The run reached the service and some requests were served.
    assert any(200 <= status < 300 for status in statuses), statuses
    assert not failures, f"{len(failures)} failure(s):\n" + "\n".join(map(str, failures))
