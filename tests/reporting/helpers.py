"""Builders of the producers' events and a driver that publishes them to a running reporting
service the way the producers' relays do (CloudEvents headers, key = aggregate id)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder

from services.reporting import api, store
from services.reporting.app import ReportingSettings, create_app
from services.reporting.projection import rows_of
from shared.contracts import orders as o
from shared.contracts.catalog import (
    EtalaseClosed,
    EtalaseEvent,
    EtalaseOpened,
    ProductEvent,
    ProductListed,
    ProductSubmitted,
    ProductTakenDown,
)
from shared.contracts.vendors import VendorEvent, VendorRegistered, VendorVerified
from shared.db import Connection, migrate_service
from shared.embedded import free_port, port_is_open
from shared.events import Event, build_headers, encode
from tests.support import TEST_JWT_SECRET, Infra, eventually, scratch_database

MIGRATIONS = Path(api.__file__).parent / "migrations"


def vendor(
    vendor_id: uuid.UUID,
    *,
    scale: str,
    verified: bool = True,
    koperasi: bool = False,
    local: bool = True,
    version: int = 1,
) -> VendorEvent:
    cls = VendorVerified if verified else VendorRegistered
    extra = {"verified_by": "manager-1"} if verified else {}
    return cls(
        vendor_id=vendor_id,
        version=version,
        occurred_at=datetime(2026, 1, 5, tzinfo=UTC),
        state="verified" if verified else "submitted",
        legal_name=f"Penyedia {str(vendor_id)[:8]}",
        legal_form="Koperasi" if koperasi else "CV",
        nib="1234567890123",
        npwp="0123456789012345",
        kbli=["47711"],
        region_code="33.75" if local else "31.71",
        scale=scale,
        is_umk=scale in ("mikro", "kecil"),
        is_koperasi=koperasi,
        is_local=local,
        **extra,
    )


def etalase(etalase_id: uuid.UUID, code: str, *, open_: bool = True) -> EtalaseEvent:
    cls = EtalaseOpened if open_ else EtalaseClosed
    return cls(
        etalase_id=etalase_id,
        version=2,
        occurred_at=datetime(2026, 1, 6, tzinfo=UTC),
        code=code,
        name=f"Etalase {code}",
        description="",
        state="open" if open_ else "closed",
        categories=[{"code": "ATK", "name": "Alat tulis"}],
        vendor_types=["producer"],
        kbli=[],
        only_local=False,
        only_umk_koperasi=False,
        price_ceiling=None,
        recurate_changes=False,
        collections=[],
        changed_by="manager-1",
    )


def product(
    product_id: uuid.UUID,
    etalase_id: uuid.UUID,
    vendor_id: uuid.UUID,
    *,
    state: str = "listed",
    version: int = 2,
) -> ProductEvent:
    cls: type[ProductEvent]
    extra: dict[str, Any]
    if state == "listed":
        cls, extra = ProductListed, {"listed_by": "manager-1"}
    elif state == "taken_down":
        cls, extra = ProductTakenDown, {"taken_down_by": "manager", "reason": "sanksi"}
    else:
        cls, extra = ProductSubmitted, {}
    return cls(
        product_id=product_id,
        version=version,
        occurred_at=datetime(2026, 1, 7, tzinfo=UTC),
        etalase_id=etalase_id,
        etalase_code="ET",
        vendor_id=vendor_id,
        vendor_type="producer",
        vendor_is_umk=True,
        vendor_is_koperasi=False,
        vendor_is_local=True,
        name="Produk",
        category_code="ATK",
        category_path=["ATK"],
        kbki="26290",
        unit="buah",
        price=1000,
        regional_prices={},
        tax_percent=11,
        pdn=True,
        tkdn=None,
        bmp=None,
        tkdn_verified=False,
        stock=5,
        delivery_regions=["33.75"],
        state=state,
        revision=1,
        **extra,
    )


def rup(code: str, opd: str, year: int, kind: str, pagu: int, version: int = 1) -> o.RupEvent:
    return o.RupRegistered(
        rup_code=code,
        version=version,
        occurred_at=datetime(year, 1, 2, tzinfo=UTC),
        opd_id=opd,
        package_name=f"Paket {code}",
        fiscal_year=year,
        procurement_type=kind,
        pagu=pagu,
        funding_source="APBD",
        method="e-Purchasing",
        changed_by="opd-staff",
    )


def line(
    product_id: uuid.UUID,
    quantity: int,
    unit_price: int,
    *,
    pdn: bool = False,
    tkdn: float | None = None,
    bmp: float | None = None,
    verified: bool = False,
    compliant: bool = True,
    justification: str | None = None,
) -> o.OrderLine:
    return o.OrderLine(
        product_id=product_id,
        name=f"Produk {str(product_id)[:8]}",
        category_code="ATK",
        unit="buah",
        quantity=quantity,
        listed_price=unit_price,
        unit_price=unit_price,
        line_total=quantity * unit_price,
        pdn=pdn,
        tkdn=tkdn,
        bmp=bmp,
        tkdn_verified=verified,
        priority_tier="none",
        best_available_tier="none" if compliant else "tkdn_bmp_40",
        priority_compliant=compliant,
        priority_justification=justification,
    )


# The state an order is in after each event, and the fields that event type needs.
_AFTER: dict[type[o.OrderEvent], tuple[str, dict[str, Any]]] = {
    o.OrderPlaced: ("placed", {}),
    o.OrderStockConfirmed: ("awaiting_approval", {}),
    o.OrderApproved: ("awaiting_vendor", {}),
    o.OrderAcceptedByVendor: ("accepted", {}),
    o.OrderShipped: ("shipped", {"carrier": "JNE", "tracking_number": "JNE-1"}),
    o.OrderReceived: ("received", {"bast_number": "BAST-1"}),
    o.OrderPaid: ("paid", {"payment_reference": "PAY-1"}),
    o.OrderCompleted: ("completed", {}),
    o.OrderCancelled: ("cancelled", {"reason": "tidak jadi"}),
    o.OrderExpired: ("expired", {"missed": "vendor_answer"}),
    o.OrderRejected: ("rejected", {"reason_code": "insufficient_stock", "reason": "stok"}),
    o.OrderRejectedByVendor: ("rejected_by_vendor", {"reason": "tidak sanggup"}),
}


@dataclass
class Order:
    """One order's history: each `step` makes the next event with the snapshot so far."""

    order_id: uuid.UUID
    opd: str
    rup_code: str
    kind: str
    year: int
    supplier: VendorEvent
    lines: Sequence[o.OrderLine]
    events: list[o.OrderEvent] = field(default_factory=list)
    sp_signed_at: datetime | None = None

    def step(self, cls: type[o.OrderEvent], at: datetime) -> o.OrderEvent:
        state, extra = _AFTER[cls]
        if cls is o.OrderApproved:
            self.sp_signed_at = at
        if cls is o.OrderReceived:
            extra = {**extra, "received_on": at.date()}
        if cls is o.OrderPaid:
            extra = {**extra, "amount": self.total}
        if cls is o.OrderExpired:
            extra = {**extra, "missed_deadline": at}
        event = cls(
            order_id=self.order_id,
            version=len(self.events) + 1,
            occurred_at=at,
            state=state,
            opd_id=self.opd,
            rup_code=self.rup_code,
            procurement_type=self.kind,
            fiscal_year=self.year,
            method="direct",
            vendor=o.OrderVendor(
                vendor_id=self.supplier.vendor_id,
                legal_name=self.supplier.legal_name,
                scale=self.supplier.scale,
                is_umk=self.supplier.is_umk,
                is_koperasi=self.supplier.is_koperasi,
                is_local=self.supplier.is_local,
            ),
            lines=list(self.lines),
            total=self.total,
            delivery_address="Jl. Mataram No. 1, Pekalongan",
            placed_by="pp-1",
            ppk_id="ppk-1",
            sp_number=f"SP-{str(self.order_id)[:8]}" if self.sp_signed_at else None,
            sp_signed_at=self.sp_signed_at,
            deadline_kind="vendor_answer" if cls is o.OrderExpired else None,
            priority_compliant=all(line.priority_compliant for line in self.lines),
            actor="pp-1",
            **extra,
        )
        self.events.append(event)
        return event

    @property
    def total(self) -> int:
        return sum(line.line_total for line in self.lines)


PRODUCER_OF_TOPIC = {
    "ekatalog.vendors": "vendors",
    "ekatalog.etalase": "catalog",
    "ekatalog.products": "catalog",
    "ekatalog.rup": "orders",
    "ekatalog.orders": "orders",
}


@dataclass
class Reporting:
    """A running reporting service and a producer that publishes as the other services do."""

    client: httpx.AsyncClient
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    prefix: str
    settings: ReportingSettings

    async def publish(self, event: Event, event_id: uuid.UUID | None = None) -> uuid.UUID:
        event_id = event_id or uuid.uuid4()
        headers = build_headers(
            event_id=event_id,
            event_type=event.type,
            source=f"/ekatalog/{PRODUCER_OF_TOPIC[event.topic]}",
            subject=event.aggregate_id,
            time=datetime.now(UTC),
            correlation_id=None,
        )
        await self.producer.send_and_wait(
            f"{self.prefix}{event.topic}",
            value=encode(event),
            key=event.aggregate_id.encode(),
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
        return event_id

    async def processed(self, event_ids: Sequence[uuid.UUID], timeout: float = 30) -> None:
        """Wait until the reporting consumer stored every one of these events."""

        async def done() -> bool:
            count = await self.pool.fetchval(
                "SELECT count(*) FROM inbox WHERE consumer = 'reporting'"
                " AND event_id = ANY($1::uuid[])",
                list(event_ids),
            )
            return bool(count == len(set(event_ids)))

        await eventually(done, timeout=timeout)

    async def deliver(self, events: Sequence[Event]) -> list[uuid.UUID]:
        ids = [await self.publish(event) for event in events]
        await self.processed(ids)
        return ids

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


def reporting_settings(infra: Infra, database: str, topic_prefix: str) -> ReportingSettings:
    return ReportingSettings(
        database_url=database,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=topic_prefix,
        jwt_secret=TEST_JWT_SECRET,
        consumer_backoff_seconds=0.05,
        topic_partitions=3,
    )


def reporting_app(infra: Infra, database: str, topic_prefix: str) -> FastAPI:
    return create_app(reporting_settings(infra, database, topic_prefix))


async def every_figure(conn: Connection, settings: ReportingSettings, year: int) -> Any:
    """Every KPI and breakdown of a year, city-wide and per OPD, as the API would answer."""
    figures: dict[str, Any] = {}
    for opd in [None, *await store.opds(conn, year)]:
        scope = api.Scope(year, opd)
        figures[f"kpis:{opd}"] = await api.kpis(conn, settings, scope)
        for name, breakdown in api.BREAKDOWNS.items():
            figures[f"{name}:{opd}"] = await breakdown.fetch(conn, settings, scope)
    return jsonable_encoder(figures)


async def recomputed(
    infra: Infra, settings: ReportingSettings, events: Sequence[Event], year: int
) -> Any:
    """Every figure of `events` applied in one batch to a fresh projection database."""
    async with scratch_database(infra) as dsn:
        await migrate_service(dsn, "reporting", MIGRATIONS)
        conn = await asyncpg.connect(dsn)
        try:
            await store.apply(conn, rows_of(events))
            return await every_figure(conn, settings, year)
        finally:
            await conn.close()


@asynccontextmanager
async def serving(infra: Infra, **settings: Any) -> AsyncIterator[tuple[str, Reporting]]:
    """A reporting service on a real HTTP port (fresh database and topics): its base URL and a
    driver whose client speaks to that port."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    await producer.start()
    try:
        async with scratch_database(infra) as database:
            config = reporting_settings(infra, database, prefix).model_copy(update=settings)
            app = create_app(config)
            server = uvicorn.Server(
                uvicorn.Config(
                    app, host="127.0.0.1", port=free_port(), log_config=None, access_log=False
                )
            )
            task = asyncio.create_task(server.serve())
            try:

                async def started() -> bool:
                    return server.started and port_is_open(server.config.port)

                await eventually(started, timeout=30)
                base = f"http://127.0.0.1:{server.config.port}"
                async with httpx.AsyncClient(base_url=base) as client:
                    yield base, Reporting(client, app.state.pool, producer, prefix, config)
            finally:
                server.should_exit = True
                await task
    finally:
        await producer.stop()
