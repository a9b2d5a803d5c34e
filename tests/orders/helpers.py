"""A running catalog and orders service on shared topics, driven over HTTP and Kafka, with the
orders service's clock under the test's control."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from services.orders.app import OrdersSettings, create_app
from services.orders.commands import Context
from shared.auth import Role
from shared.events import Event, build_headers, encode
from tests.catalog.helpers import Catalog, catalog_app
from tests.support import (
    TEST_JWT_SECRET,
    Infra,
    ReceivedEvent,
    auth,
    eventually,
    read_topic,
    running,
    scratch_database,
)

MANAGER = auth(Role.CATALOGUE_MANAGER)
AUDITOR = auth(Role.AUDITOR)


class Clock:
    """Real time shifted to a chosen start; `advance` moves it on (deadlines, date ranges)."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._started = time.monotonic()
        self._offset = timedelta()

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._started) + self._offset

    def advance(self, delta: timedelta) -> None:
        self._offset += delta

    def set(self, moment: datetime) -> None:
        self._offset += moment - self()


@asynccontextmanager
async def catalog_beside_orders(infra: Infra) -> AsyncIterator[tuple[Catalog, str]]:
    """A running catalog on fresh topics, and an empty database for an orders service on the
    same topics (`Catalog.prefix`); the catalog's producer sends the vendor events."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    await producer.start()
    try:
        async with (
            scratch_database(infra) as catalog_db,
            scratch_database(infra) as orders_db,
        ):
            app = catalog_app(infra, catalog_db, prefix)
            async with running(app) as client:
                yield (
                    Catalog(client, app.state.pool, producer, infra.bootstrap_servers, prefix),
                    (orders_db),
                )
    finally:
        await producer.stop()


def orders_app(infra: Infra, database: str, prefix: str, clock: Clock, **overrides: Any) -> Any:
    settings = OrdersSettings(
        database_url=database,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=prefix,
        jwt_secret=TEST_JWT_SECRET,
        relay_poll_seconds=0.05,
        consumer_backoff_seconds=0.05,
        deadline_check_seconds=0.2,
        **overrides,
    )
    return create_app(settings, clock=clock)


@dataclass
class Buyers:
    """The people of one OPD: a PP, the PPK chosen at checkout, another PPK, the treasurer."""

    opd_id: str
    pp: dict[str, str] = field(init=False)
    ppk: dict[str, str] = field(init=False)
    other_ppk: dict[str, str] = field(init=False)
    treasurer: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.ppk_id = f"ppk-{self.opd_id}"
        self.pp = auth(Role.PP, opd_id=self.opd_id, subject=f"pp-{self.opd_id}")
        self.ppk = auth(Role.PPK, opd_id=self.opd_id, subject=self.ppk_id)
        self.other_ppk = auth(Role.PPK, opd_id=self.opd_id, subject=f"ppk2-{self.opd_id}")
        self.treasurer = auth(Role.TREASURER, opd_id=self.opd_id, subject=f"bend-{self.opd_id}")


@dataclass
class Seller:
    vendor_id: uuid.UUID
    headers: dict[str, str]
    etalase_id: str


@dataclass
class Scene:
    """One OPD with a RUP package, buying from one seller's listed product."""

    buyers: Buyers
    seller: Seller
    product: dict[str, Any]
    rup: str


@dataclass
class Platform:
    catalog: Catalog
    client: httpx.AsyncClient
    pool: asyncpg.Pool
    clock: Clock
    ctx: Context  # what the orders service's commands run with

    def buyers(self) -> Buyers:
        return Buyers(f"OPD-{uuid.uuid4().hex[:6]}")

    async def seller(self, category: str | None = None, **vendor: Any) -> Seller:
        """A verified vendor with an open storefront, known to the orders service; `category`
        gives the storefront that one category (code `<category>.X`) instead of the default."""
        vendor_id, headers = await self.catalog.verified_vendor(**vendor)
        overrides: dict[str, Any] = {}
        if category is not None:
            child = {"code": f"{category}.X", "name": "Barang uji"}
            overrides["categories"] = [{"code": category, "name": "Uji", "children": [child]}]
        etalase = await self.catalog.open_etalase(**overrides)
        await self.known("vendor_projection", "vendor_id", vendor_id, "verified")
        return Seller(vendor_id, headers, etalase["id"])

    async def product(self, seller: Seller, **overrides: Any) -> dict[str, Any]:
        """A listed product whose claims were verified, once the orders service has it."""
        product = await self.catalog.listed(
            seller.headers, seller.etalase_id, verify=True, **overrides
        )

        async def known() -> bool:
            row = await self.pool.fetchrow(
                "SELECT state, tkdn_verified FROM product_projection WHERE product_id = $1",
                uuid.UUID(product["id"]),
            )
            return row is not None and (row["state"], row["tkdn_verified"]) == (
                "listed",
                product["tkdn_verified"],
            )

        await eventually(known, timeout=20)
        return product

    async def known(self, table: str, key: str, value: uuid.UUID, state: str) -> None:
        async def stored() -> bool:
            found = await self.pool.fetchval(f"SELECT state FROM {table} WHERE {key} = $1", value)
            return bool(found == state)

        await eventually(stored, timeout=20)

    async def rup(self, buyers: Buyers, pagu: int = 1_000_000_000, **values: Any) -> str:
        code = values.pop("rup_code", f"RUP-{uuid.uuid4().hex[:8]}")
        body = {
            "rup_code": code,
            "opd_id": buyers.opd_id,
            "package_name": "Pengadaan seragam batik",
            "fiscal_year": 2026,
            "procurement_type": "barang",
            "pagu": pagu,
            **values,
        }
        response = await self.client.post("/rup", json=body, headers=MANAGER)
        assert response.status_code == 200, response.text
        return code

    def order_body(
        self,
        buyers: Buyers,
        rup_code: str,
        seller: Seller,
        lines: list[tuple[Any, int]],
        **extra: Any,
    ) -> dict[str, Any]:
        return {
            "rup_code": rup_code,
            "vendor_id": str(seller.vendor_id),
            "method": "direct",
            "ppk_id": buyers.ppk_id,
            "delivery_address": "Jl. Mataram No. 1, Pekalongan",
            "lines": [{"product_id": str(p), "quantity": q} for p, q in lines],
            **extra,
        }

    async def place(
        self,
        buyers: Buyers,
        rup_code: str,
        seller: Seller,
        lines: list[tuple[Any, int]],
        **extra: Any,
    ) -> dict[str, Any]:
        headers = extra.pop("headers", buyers.pp)
        response = await self.client.post(
            "/orders",
            json=self.order_body(buyers, rup_code, seller, lines, **extra),
            headers=headers,
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def scene(self, stock: int = 10) -> Scene:
        buyers = self.buyers()
        seller = await self.seller()
        product = await self.product(seller, stock=stock)
        return Scene(buyers, seller, product, await self.rup(buyers))

    async def confirmed(self, scene: Scene, quantity: int) -> dict[str, Any]:
        """A direct purchase placed by the PP whose stock the catalog reserved."""
        placed = await self.place(
            scene.buyers, scene.rup, scene.seller, [(scene.product["id"], quantity)]
        )
        return await self.reaches(placed["id"], "awaiting_approval")

    async def handled(self, consumer: str, event_id: uuid.UUID) -> bool:
        """The consumer stored the event (applied, or dropped as a duplicate or stale)."""
        pool = self.pool if consumer == "orders" else self.catalog.pool
        found = await pool.fetchval(
            "SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2", consumer, event_id
        )
        return bool(found)

    async def order(self, order_id: Any, headers: dict[str, str] = AUDITOR) -> dict[str, Any]:
        response = await self.client.get(f"/orders/{order_id}", headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def reaches(self, order_id: Any, state: str, timeout: float = 20) -> dict[str, Any]:
        async def check() -> dict[str, Any]:
            order = await self.order(order_id)
            assert order["state"] == state, f"{order['state']} is not {state}"
            return order

        return await eventually(check, timeout=timeout)

    async def act(
        self, order_id: Any, action: str, headers: dict[str, str], body: Any = None
    ) -> httpx.Response:
        return await self.client.post(f"/orders/{order_id}/{action}", json=body, headers=headers)

    async def stock(self, product_id: Any) -> int:
        return int((await self.catalog.product(product_id))["stock"])


def start_of_working_week() -> datetime:
    """Monday 8 June 2026, 09:00 in Jakarta: a week with no holidays."""
    return datetime(2026, 6, 8, 2, 0, tzinfo=UTC)


async def send(platform: Platform, event: Event, event_id: uuid.UUID | None = None) -> uuid.UUID:
    """Produce an event as its producer's relay would (CloudEvents headers, keyed)."""
    event_id = event_id or uuid.uuid4()
    headers = build_headers(
        event_id=event_id,
        event_type=event.type,
        source="/ekatalog/test",
        subject=event.aggregate_id,
        time=datetime.now(UTC),
        correlation_id=None,
    )
    await platform.catalog.producer.send_and_wait(
        f"{platform.catalog.prefix}{event.topic}",
        value=encode(event),
        key=event.aggregate_id.encode(),
        headers=[(k, v.encode()) for k, v in headers.items()],
    )
    return event_id


async def events_on(
    platform: Platform, topic: str, key: str, count: int, timeout: float = 20
) -> list[ReceivedEvent]:
    """The records of one aggregate on `ekatalog.<topic>`, once `count` of them arrived."""

    async def arrived() -> list[ReceivedEvent]:
        events = await read_topic(
            platform.catalog.bootstrap, f"{platform.catalog.prefix}ekatalog.{topic}", timeout=1
        )
        mine = [e for e in events if e.key == key]
        assert len(mine) >= count, [e.type for e in mine]
        return mine

    return await eventually(arrived, timeout=timeout)
