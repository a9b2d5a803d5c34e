"""Users of a running platform: tokens signed with its local secret, HTTP calls, and the
figures the orders API and the reporting API each give, to compare them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from ekatalog.cli import CLOCK_FILE
from ekatalog.demo import OrdersClock, VendorPlan, registration
from shared.auth import Role, mint_token
from tests.processes import Platform
from tests.support import eventually

VENDORS, CATALOG, ORDERS, REPORTING = range(4)
STREAM_STOCK = 10_000
# Orders whose SP was issued but which did not go on: they are not spend.
NOT_SPENT = {"rejected_by_vendor", "cancelled", "expired"}


class Users:
    """Tokens of the platform's roles, minted with the secret `ekatalog up` keeps."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        data_dir = Path(platform.process.args[platform.process.args.index("--data-dir") + 1])
        self.secret = (data_dir / "jwt-secret").read_text().strip()
        # `ekatalog up` points the orders service at it (ORDERS_CLOCK_FILE); absent: real time.
        self.orders_clock = OrdersClock(data_dir / CLOCK_FILE)
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


@dataclass
class Seller:
    """A verified vendor with one listed product in a storefront of its own category."""

    vendor_id: str
    headers: dict[str, str]
    product: dict[str, Any]


async def listed_seller(users: Users, *, stock: int = 100, price: int = 250_000) -> Seller:
    """A vendor registers, the manager verifies it, opens a storefront, and lists its product
    with its claims verified, all over HTTP; waits until the orders service knows both."""
    vendor_id = new_id()
    vendor = users.bearer(Role.VENDOR, f"penyedia-{vendor_id[:8]}", vendor_id=vendor_id)
    plan = VendorPlan(f"CV Journey {vendor_id[:8]}", "CV", "33.75.01", 3 * 10**9, "BATIK", True)
    code = f"J{vendor_id[:8]}"
    async with users.client(VENDORS) as vendors, users.client(CATALOG) as catalog:
        registered = await vendors.post("/vendors", json=registration(plan), headers=vendor)
        assert registered.status_code == 201, registered.text
        verified = await vendors.post(f"/vendors/{vendor_id}/verify", headers=users.manager)
        assert verified.status_code == 200, verified.text
        body = {
            "code": code,
            "name": f"Etalase {code}",
            "categories": [{"code": code, "name": "Batik", "children": []}],
        }
        etalase = await catalog.post("/etalase", json=body, headers=users.manager)
        assert etalase.status_code == 201, etalase.text
        etalase_id = etalase.json()["id"]
        opened = await catalog.post(f"/etalase/{etalase_id}/open", headers=users.manager)
        assert opened.status_code == 200, opened.text
        offer = {
            "etalase_id": etalase_id,
            "vendor_type": "producer",
            "category_code": code,
            "name": f"Kain batik tulis {code}",
            "kbki": "26290",
            "unit": "lembar",
            "price": price,
            "tax_percent": 11,
            "pdn": True,
            "tkdn": 45.0,
            "bmp": 5.0,
            "tkdn_certificate": f"TKDN-{code}",
            "tkdn_valid_until": "2030-12-31",
            "stock": stock,
            "delivery_regions": ["33.75"],
        }

        async def submitted() -> dict[str, Any]:
            response = await catalog.post("/products", json=offer, headers=vendor)
            assert response.status_code == 201, response.text  # 403 until the catalog knows
            result: dict[str, Any] = response.json()
            return result

        product = await eventually(submitted, timeout=30)
        claims = {"claims": {"pdn": "verified", "tkdn": "verified", "bmp": "verified"}}
        approved = await catalog.post(
            f"/products/{product['id']}/approve", json=claims, headers=users.manager
        )
        assert approved.status_code == 200, approved.text
    return Seller(vendor_id, vendor, approved.json())


@dataclass
class Buyers:
    opd: str
    pp: dict[str, str]
    ppk: dict[str, str]
    treasurer: dict[str, str]

    @property
    def ppk_id(self) -> str:
        return f"ppk-{self.opd.lower()}"


def buyers_of(users: Users, opd: str) -> Buyers:
    return Buyers(
        opd,
        users.bearer(Role.PP, f"pp-{opd.lower()}", opd_id=opd),
        users.bearer(Role.PPK, f"ppk-{opd.lower()}", opd_id=opd),
        users.bearer(Role.TREASURER, f"bendahara-{opd.lower()}", opd_id=opd),
    )


async def rup(users: Users, buyers: Buyers, pagu: int, procurement_type: str = "barang") -> str:
    code = f"RUP-J-{new_id()[:8]}"
    body = {
        "rup_code": code,
        "opd_id": buyers.opd,
        "package_name": "Pengadaan seragam batik",
        "fiscal_year": 2026,
        "procurement_type": procurement_type,
        "pagu": pagu,
    }
    async with users.client(ORDERS) as orders:
        response = await orders.post("/rup", json=body, headers=users.manager)
    assert response.status_code == 200, response.text
    return code


async def place(
    users: Users,
    buyers: Buyers,
    rup_code: str,
    seller: Seller,
    quantity: int,
    method: str = "direct",
) -> httpx.Response:
    """Place an order, retrying while the orders service has not yet heard of the product."""
    body = {
        "rup_code": rup_code,
        "vendor_id": seller.vendor_id,
        "method": method,
        "ppk_id": buyers.ppk_id,
        "delivery_address": "Jl. Mataram No. 1, Pekalongan",
        "lines": [{"product_id": seller.product["id"], "quantity": quantity}],
    }
    async with users.client(ORDERS) as orders:

        async def known() -> httpx.Response:
            response = await orders.post("/orders", json=body, headers=buyers.pp)
            rule = response.json().get("rule") if response.status_code == 422 else None
            assert rule not in ("vendor_unknown", "product_not_listed"), response.text
            return response

        return await eventually(known, timeout=30)


async def order(users: Users, order_id: str) -> dict[str, Any]:
    async with users.client(ORDERS) as orders:
        response = await orders.get(f"/orders/{order_id}", headers=users.auditor)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def reaches(users: Users, order_id: str, state: str, timeout: float = 30) -> dict[str, Any]:
    async def there() -> dict[str, Any]:
        found = await order(users, order_id)
        assert found["state"] == state, f"{found['state']} is not {state}"
        return found

    return await eventually(there, timeout=timeout)


async def act(
    users: Users, order_id: str, step: str, headers: dict[str, str], body: Any = None
) -> dict[str, Any]:
    async with users.client(ORDERS) as orders:
        response = await orders.post(f"/orders/{order_id}/{step}", json=body, headers=headers)
    assert response.status_code == 200, (step, response.text)
    result: dict[str, Any] = response.json()
    return result


async def stock(users: Users, product_id: str) -> int:
    async with users.client(CATALOG) as catalog:
        response = await catalog.get(f"/products/{product_id}", headers=users.auditor)
    assert response.status_code == 200, response.text
    return int(response.json()["stock"])


async def scene(users: Users, opd: str, pagu: int, **offer: int) -> tuple[Seller, Buyers, str]:
    """A listed seller, the buyers of `opd` and a RUP package of theirs with `pagu`."""
    seller = await listed_seller(users, **offer)
    buyers = buyers_of(users, opd)
    return seller, buyers, await rup(users, buyers, pagu)


async def order_events(platform: Platform, order_id: str, last: str) -> list[dict[str, Any]]:
    """What a plain aiokafka subscriber of `ekatalog.orders` receives for one order, up to the
    event `last`; a redelivery (same `ce_id`) counts once."""
    consumer = AIOKafkaConsumer(
        "ekatalog.orders",
        bootstrap_servers=platform.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for record in (r for records in batches.values() for r in records):
                if record.key is None or record.key.decode() != order_id:
                    continue
                headers = {k: v.decode() for k, v in record.headers}
                assert record.value is not None
                seen[headers["ce_id"]] = {"type": headers["ce_type"], **json.loads(record.value)}
            if any(e["type"] == last for e in seen.values()):
                break
    finally:
        await consumer.stop()
    return list(seen.values())


async def call(
    client: httpx.AsyncClient, method: str, url: str, patience: float = 240, **kwargs: Any
) -> httpx.Response:
    """Retry while the service is down (killed, or the platform restarting)."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.TransportError:
            await asyncio.sleep(0.2)
            continue
        if response.status_code < 500:
            return response
        await asyncio.sleep(0.2)
    raise AssertionError(f"{method} {url}: the service did not come back")


@dataclass(frozen=True)
class Lane:
    """One buyer (an OPD) placing its share of a stream against its own RUP package."""

    buyers: Buyers
    rup_code: str


def cancelled_in_stream(order_id: str) -> bool:
    """One order in four is cancelled rather than approved (decided by its id, so a retry after
    a crash decides the same)."""
    return int(order_id[-4:], 16) % 4 == 3


class OrderStream:
    """`total` orders placed by the buyers of several lanes at once against one seller, at
    `rate` orders a second (so that crashes land in the middle of it). Each lane's PPK approves
    (an SP: spend) what the stock saga confirmed, or its PP cancels one in four, polling the
    lane's orders by state; every call is retried while a service is down. A placement whose
    answer a crash swallowed may be placed twice, as a person retrying would: the totals are
    compared with what the orders API holds."""

    def __init__(
        self,
        users: Users,
        seller: Seller,
        lanes: list[Lane],
        total: int,
        rate: float = 20,
        in_flight: int = 3,
    ) -> None:
        self.users = users
        self.seller = seller
        self.lanes = lanes
        self.total = total
        self.rate = rate
        self.in_flight = in_flight
        self.placed = 0
        self.lanes_placed = 0

    def start(self) -> asyncio.Task[None]:
        self.flowing = asyncio.create_task(self._run())
        return self.flowing

    async def _run(self) -> None:
        async with self.users.client(ORDERS) as client:
            step = len(self.lanes)
            await asyncio.gather(
                *(
                    self._place(client, lane, range(i, self.total, step))
                    for i, lane in enumerate(self.lanes)
                ),
                *(self._decide(client, lane) for lane in self.lanes),
            )

    async def until_placed(self, count: int) -> None:
        """Wait until `count` orders are placed, the stream still flowing; fail if it ended (or
        failed) first."""
        while True:
            if self.flowing.done():
                self.flowing.result()
                raise AssertionError(f"the stream ended with {self.placed} orders placed")
            if self.placed >= count:
                return
            await asyncio.sleep(0.1)

    async def _place(self, client: httpx.AsyncClient, lane: Lane, share: range) -> None:
        limit = asyncio.Semaphore(self.in_flight)

        async def one(n: int) -> None:
            body = {
                "rup_code": lane.rup_code,
                "vendor_id": self.seller.vendor_id,
                "method": "direct",
                "ppk_id": lane.buyers.ppk_id,
                "delivery_address": "Jl. Mataram No. 1, Pekalongan",
                "lines": [{"product_id": self.seller.product["id"], "quantity": 1 + n % 3}],
            }
            async with limit:
                placed = await call(client, "POST", "/orders", json=body, headers=lane.buyers.pp)
            assert placed.status_code == 201, placed.text
            self.placed += 1

        async with asyncio.TaskGroup() as placing:
            for n in share:
                placing.create_task(one(n))
                await asyncio.sleep(len(self.lanes) / self.rate)
        self.lanes_placed += 1

    async def _waiting(self, client: httpx.AsyncClient, lane: Lane, state: str) -> list[str]:
        params = {"rup_code": lane.rup_code, "state": state, "limit": 100}
        page = await call(client, "GET", "/orders", params=params, headers=self.users.auditor)
        assert page.status_code == 200, page.text
        return [o["id"] for o in page.json()["items"]]

    async def _decide(self, client: httpx.AsyncClient, lane: Lane) -> None:
        limit = asyncio.Semaphore(self.in_flight)

        async def one(order_id: str) -> None:
            async with limit:
                if cancelled_in_stream(order_id):
                    step, body, who = "cancel", {"reason": "dibatalkan"}, lane.buyers.pp
                else:
                    step, body, who = "approve", None, lane.buyers.ppk
                url = f"/orders/{order_id}/{step}"
                done = await call(client, "POST", url, json=body, headers=who)
            # 409: the answer to an earlier try was lost in a crash and the step was taken.
            assert done.status_code in (200, 409), done.text

        while True:
            ready = await self._waiting(client, lane, "awaiting_approval")
            await asyncio.gather(*(one(i) for i in ready))
            if ready:
                continue
            if self.lanes_placed == len(self.lanes) and not any(
                [await self._waiting(client, lane, s) for s in ("placed", "awaiting_approval")]
            ):
                return
            await asyncio.sleep(0.3)

    async def orders(self) -> list[dict[str, Any]]:
        """Every order of the stream's lanes, as the orders API holds them."""
        found: list[dict[str, Any]] = []
        async with self.users.client(ORDERS) as client:
            for lane in self.lanes:
                cursor: str | None = None
                while True:
                    params = {"rup_code": lane.rup_code, "limit": 100}
                    if cursor:
                        params["cursor"] = cursor
                    page = await client.get("/orders", params=params, headers=self.users.auditor)
                    assert page.status_code == 200, page.text
                    found += page.json()["items"]
                    cursor = page.json()["next_cursor"]
                    if not cursor:
                        break
        return found

    async def settled(self) -> list[dict[str, Any]]:
        """After the stream: every order approved or cancelled, and the catalog's stock of the
        product less by exactly the units of the approved ones (each reservation applied once,
        each cancellation released once)."""
        orders = await self.orders()
        assert len(orders) >= self.total
        states = {o["state"] for o in orders}
        assert states <= {"awaiting_vendor", "cancelled"}, states
        units = sum(
            line["quantity"]
            for o in orders
            if o["state"] == "awaiting_vendor"
            for line in o["lines"]
        )

        async def reserved() -> bool:
            return await stock(self.users, self.seller.product["id"]) == STREAM_STOCK - units

        await eventually(reserved, timeout=60)
        return orders
