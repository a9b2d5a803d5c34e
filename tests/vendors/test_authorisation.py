"""Every role against every endpoint: allowed callers get past authorisation, others do not."""

from __future__ import annotations

import uuid
from typing import Any

from services.vendors.api import DeclarationBody
from shared.auth import Role
from tests.support import auth, token
from tests.vendors.helpers import Service, profile, vendor_auth

MANAGER, AUDITOR, OWNER, OTHER_VENDOR = "manager", "auditor", "owner", "other_vendor"
OPD_AND_INTEGRATOR = {
    "pp": auth(Role.PP, opd_id="dinkes"),
    "ppk": auth(Role.PPK, opd_id="dinkes"),
    "treasurer": auth(Role.TREASURER, opd_id="dinkes"),
    "integrator": auth(Role.INTEGRATOR),
}
UNAUTHENTICATED = {
    "no token": {},
    "garbage token": {"Authorization": "Bearer not.a.jwt"},
    "expired token": {"Authorization": f"Bearer {token(Role.CATALOGUE_MANAGER, ttl_seconds=-60)}"},
    "basic auth": {"Authorization": "Basic dXNlcjpwYXNz"},
}

RENEWAL = {"valid_until": "2099-12-31", "certificate": "https://docs.example/kswp-2.pdf"}

# (method, path, body, roles allowed); {v} is the owner's verified registration.
MATRIX: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/vendors", "profile", {OWNER, OTHER_VENDOR}),
    ("GET", "/vendors", None, {MANAGER, AUDITOR}),
    ("GET", "/vendors/{v}", None, {MANAGER, AUDITOR, OWNER}),
    ("PUT", "/vendors/{v}", "current", {OWNER}),
    ("POST", "/vendors/{v}/verify", None, {MANAGER}),
    ("POST", "/vendors/{v}/reject", {"reasons": ["x"]}, {MANAGER}),
    ("POST", "/vendors/{v}/suspend", {}, {MANAGER}),  # empty body: allowed callers get 422
    ("POST", "/vendors/{v}/reinstate", None, {MANAGER}),
    ("POST", "/vendors/{v}/kswp-renewal", RENEWAL, {OWNER}),
    ("POST", "/vendors/{v}/kswp-renewal/accept", None, {MANAGER}),
    ("POST", "/vendors/{v}/kswp-renewal/reject", {"reasons": ["x"]}, {MANAGER}),
    ("GET", "/vendor-blacklist", None, {MANAGER, AUDITOR}),
    ("PUT", "/vendor-blacklist/987654321098765", {"reason": "uji"}, {MANAGER}),
    ("DELETE", "/vendor-blacklist/987654321098765", None, {MANAGER}),
]


async def test_authorisation_matrix(service: Service) -> None:
    vendor = await service.verified()
    vid = vendor["vendor_id"]
    current = {k: vendor[k] for k in DeclarationBody.model_fields}
    callers = {
        MANAGER: auth(Role.CATALOGUE_MANAGER),
        AUDITOR: auth(Role.AUDITOR),
        OWNER: vendor_auth(vid),
        OTHER_VENDOR: vendor_auth(str(uuid.uuid4())),
        **OPD_AND_INTEGRATOR,
    }
    failures = []
    for method, template, body, allowed in MATRIX:
        path = template.format(v=vid)
        payload = (
            {"profile": profile(), "current": current}[body] if isinstance(body, str) else body
        )
        for name, headers in {**callers, **UNAUTHENTICATED}.items():
            response = await service.client.request(method, path, json=payload, headers=headers)
            if name in UNAUTHENTICATED:
                expected = "401"
            else:
                expected = "allowed" if name in allowed else "403"
            got = str(response.status_code)
            if response.status_code not in (401, 403):
                got = "allowed"
            if got != expected or response.status_code >= 500:
                failures.append((method, template, name, response.status_code, response.text))
            if got in ("401", "403"):
                assert response.headers["content-type"] == "application/problem+json"
    assert failures == []
    # nothing that was refused changed the vendor: only the manager's no-op calls ran
    assert (await service.get(vid))["state"] == "verified"
