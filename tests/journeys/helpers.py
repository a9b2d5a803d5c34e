"""Users of a running platform: tokens signed with its local secret, HTTP calls, and the
figures the orders API and the reporting API each give, to compare them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shared.auth import Role, mint_token
from tests.processes import Platform
from tests.support import eventually

VENDORS, CATALOG, ORDERS, REPORTING = range(4)
# Orders whose SP was issued but which did not go on: they are not spend.
NOT_SPENT = {"rejected_by_vendor", "cancelled", "expired"}


class Users:
    """Tokens of the platform's roles, minted with the secret `ekatalog up` keeps."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        data_dir = Path(platform.process.args[platform.process.args.index("--data-dir") + 1])
        self.secret = (data_dir / "jwt-secret").read_text().strip()
        self.manager = self.bearer(Role.CATALOGUE_MANAGER, "ukpbj-journey")
        self.auditor = self.bearer(Role.AUDITOR, "auditor-journey")

    def bearer(self, role: Role, subject: str, **claims: str) -> dict[str, str]:
        token = mint_token(self.secret, role=role, subject=subject, **claims)
        return {"Authorization": f"Bearer {token}"}

    def client(self, service: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.platform.url(service), timeout=30)


@dataclass(frozen=True)
class Figures:
    """What the dashboard must show, from either side."""

    orders: int
    spend_sp: int
    spend_completed: int
    pagu: int


async def orders_api_figures(users: Users, fiscal_year: int = 2026) -> Figures:
    """The figures computed from the orders API alone (every order, every RUP package)."""
    orders: list[dict[str, Any]] = []
    packages: list[dict[str, Any]] = []
    async with users.client(ORDERS) as client:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/orders", params=params, headers=users.auditor)).json()
            orders += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        after: str | None = None
        while True:
            params = {"limit": 100, **({"after": after} if after else {})}
            response = await client.get("/rup", params=params, headers=users.manager)
            assert response.status_code == 200, response.text
            packages += response.json()["items"]
            after = response.json()["next_after"]
            if not after:
                break
    mine = [o for o in orders if o["fiscal_year"] == fiscal_year]
    return Figures(
        orders=len(mine),
        spend_sp=sum(o["total"] for o in mine if o["sp_number"] and o["state"] not in NOT_SPENT),
        spend_completed=sum(o["total"] for o in mine if o["state"] == "completed"),
        pagu=sum(p["pagu"] for p in packages if p["fiscal_year"] == fiscal_year),
    )


async def dashboard_figures(users: Users, fiscal_year: int = 2026) -> Figures:
    """The same figures as the reporting API (the dashboard's source) shows them."""
    async with users.client(REPORTING) as client:
        kpis = (await client.get("/kpis", params={"fiscal_year": fiscal_year})).json()
        funnel = (await client.get("/kpis/funnel", params={"fiscal_year": fiscal_year})).json()
    shares = {s["id"]: s for s in kpis["shares"]}
    return Figures(
        orders=next(r["orders"] for r in funnel["rows"] if r["stage"] == "placed"),
        spend_sp=shares["ekatalog_share"]["numerator"],
        spend_completed=shares["ekatalog_share_completed"]["numerator"],
        pagu=shares["ekatalog_share"]["denominator"],
    )


async def dashboard_agrees(users: Users, timeout: float = 60) -> Figures:
    """Wait until the dashboard's figures equal the orders API's; return them."""

    async def equal() -> Figures:
        expected = await orders_api_figures(users)
        shown = await dashboard_figures(users)
        assert shown == expected, f"dashboard {shown} != orders API {expected}"
        return expected

    return await eventually(equal, timeout=timeout, interval=0.5)


async def counts(users: Users) -> dict[str, int]:
    async with users.client(REPORTING) as client:
        kpis = (await client.get("/kpis", params={"fiscal_year": 2026})).json()
    return {c["id"]: c["value"] for c in kpis["counts"]}


def new_id() -> str:
    return str(uuid.uuid4())
