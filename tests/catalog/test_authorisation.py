"""Who may do what: every role against every endpoint."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.auth import Role
from tests.catalog.helpers import MANAGER, Catalog, etalase_body, product_body
from tests.support import auth, token

ANONYMOUS, MANAGER_ROLE, AUDITOR, OWNER, STRANGER, PP = (
    "anonymous",
    "manager",
    "auditor",
    "owner",
    "other_vendor",
    "pp",
)
ROLES = (ANONYMOUS, MANAGER_ROLE, AUDITOR, OWNER, STRANGER, PP)
EVERYBODY = frozenset(ROLES)

# method, path template, body, roles let through (others: 401 without a token, else 403)
MATRIX: list[tuple[str, str, Any, frozenset[str]]] = [
    ("GET", "/etalase", None, EVERYBODY),
    ("GET", "/etalase/{etalase}", None, EVERYBODY),
    ("POST", "/etalase", "new_etalase", frozenset({MANAGER_ROLE})),
    ("PATCH", "/etalase/{etalase}", {"description": "baru"}, frozenset({MANAGER_ROLE})),
    ("POST", "/etalase/{draft}/open", None, frozenset({MANAGER_ROLE})),
    ("POST", "/etalase/{draft}/close", None, frozenset({MANAGER_ROLE})),
    ("POST", "/products", "new_product", frozenset({OWNER, STRANGER})),
    ("GET", "/products", None, frozenset({MANAGER_ROLE, AUDITOR, OWNER, STRANGER})),
    ("GET", "/products/{listed}", None, EVERYBODY),
    ("GET", "/products/{listed}/history", None, frozenset({MANAGER_ROLE, AUDITOR, OWNER})),
    ("PATCH", "/products/{submitted}", {"description": "lebih rinci"}, frozenset({OWNER})),
    ("POST", "/products/{submitted}/approve", None, frozenset({MANAGER_ROLE})),
    ("POST", "/products/{submitted}/reject", {"reasons": ["x"]}, frozenset({MANAGER_ROLE})),
    ("POST", "/products/{listed}/claims", {"pdn": "verified"}, frozenset({MANAGER_ROLE})),
    ("POST", "/products/{other}/take-down", {"reason": "x"}, frozenset({MANAGER_ROLE, OWNER})),
    ("POST", "/products/{other}/relist", None, frozenset({MANAGER_ROLE, OWNER})),
    ("PUT", "/products/{listed}/stock", {"stock": 3}, frozenset({OWNER})),
    ("GET", "/search", None, EVERYBODY),
]


@pytest.fixture(scope="module")
async def world(catalog: Catalog) -> dict[str, Any]:
    etalase = await catalog.open_etalase()
    draft = (await catalog.client.post("/etalase", json=etalase_body(), headers=MANAGER)).json()
    owner_id, owner = await catalog.verified_vendor()
    _, stranger = await catalog.verified_vendor()
    return {
        "ids": {
            "etalase": etalase["id"],
            "draft": draft["id"],
            "listed": (await catalog.listed(owner, etalase["id"]))["id"],
            "other": (await catalog.listed(owner, etalase["id"]))["id"],
            "submitted": (await catalog.submit(owner, etalase["id"]))["id"],
        },
        "headers": {
            ANONYMOUS: {},
            MANAGER_ROLE: MANAGER,
            AUDITOR: auth(Role.AUDITOR),
            OWNER: owner,
            STRANGER: stranger,
            PP: auth(Role.PP, opd_id="opd-dinkes"),
        },
        "etalase": etalase,
        "owner_id": owner_id,
    }


def _body(body: Any, world: dict[str, Any]) -> Any:
    if body == "new_etalase":
        return etalase_body()
    if body == "new_product":
        return product_body(world["ids"]["etalase"])
    return body


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    MATRIX,
    ids=[f"{m} {p}" for m, p, _, _ in MATRIX],
)
async def test_authorisation_matrix(
    catalog: Catalog,
    world: dict[str, Any],
    method: str,
    path: str,
    body: Any,
    allowed: frozenset[str],
    role: str,
) -> None:
    response = await catalog.client.request(
        method,
        path.format(**world["ids"]),
        json=_body(body, world),
        headers=world["headers"][role],
    )
    if role in allowed:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text
    else:
        assert response.status_code == (401 if role == ANONYMOUS else 403), response.text
        assert response.headers["content-type"] == "application/problem+json"


async def test_bad_tokens_are_refused_even_on_public_routes(
    catalog: Catalog, world: dict[str, Any]
) -> None:
    expired = {"Authorization": f"Bearer {token(Role.AUDITOR, ttl_seconds=-10)}"}
    for headers in (expired, {"Authorization": "Bearer nonsense"}):
        assert (await catalog.client.get("/search", headers=headers)).status_code == 401
        assert (await catalog.client.get("/products", headers=headers)).status_code == 401
    not_a_uuid = auth(Role.VENDOR, vendor_id="vendor-42")
    assert (await catalog.client.get("/products", headers=not_a_uuid)).status_code == 403
    body = product_body(world["ids"]["etalase"])
    response = await catalog.client.post("/products", json=body, headers=not_a_uuid)
    assert response.status_code == 403 and response.json()["rule"] == "vendor_verified"
    vendor_without_id = {"Authorization": f"Bearer {token(Role.VENDOR)}"}
    response = await catalog.client.post("/products", json={}, headers=vendor_without_id)
    assert response.status_code == 401


async def test_vendors_list_only_their_own_products(
    catalog: Catalog, world: dict[str, Any]
) -> None:
    stranger = world["headers"][STRANGER]
    mine = await catalog.client.get(
        "/products", params={"vendor_id": str(world["owner_id"])}, headers=stranger
    )
    assert all(p["vendor_id"] != str(world["owner_id"]) for p in mine.json()["items"])
    everything = await catalog.client.get(
        "/products", params={"vendor_id": str(world["owner_id"])}, headers=MANAGER
    )
    assert len(everything.json()["items"]) >= 3
    response = await catalog.client.get(f"/products/{uuid.uuid4()}", headers=MANAGER)
    assert response.status_code == 404
