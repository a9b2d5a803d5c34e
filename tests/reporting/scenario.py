"""A seeded city for fiscal year 2026 whose every KPI is computed by hand below.

Pagu: dinkes barang 1,000m + dinkes jasa lainnya 500m + dispupr konstruksi 500m = 2,000m
(plus a 2025 package that must not count).
Orders (m = million rupiah):
- O1 dinkes barang, V1 mikro local, completed: L1 P1 200m (TKDN 45 + BMP 5, verified, PDN),
  L2 P2 100m (no claim, skipped the priority: "stok PDN habis"); placed 2 Mar 08:00, SP 3 Mar,
  BAST 12 Mar 08:00 (10 days).
- O2 dispupr konstruksi, V2 besar non-local, accepted: P1 200m (TKDN 30 verified, PDN); SP 10 Apr.
- O3 dinkes jasa lainnya, V3 koperasi kecil non-local: SP issued, then expired (vendor_answer),
  50m: not spend.
- O4 dinkes barang, V1, cancelled before the SP, 10m: not spend.
- O5 dinkes barang, V3 koperasi, received: P3 100m (PDN, no TKDN); placed 16 May 08:00, SP 17 May,
  BAST 20 May 08:00 (4 days).
Spend with an SP: 300 + 200 + 100 = 600m; completed 300m.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from shared.contracts import orders as o
from shared.events import Event
from tests.reporting.helpers import Order, etalase, line, product, rup, vendor

WIB = timezone(timedelta(hours=7))
M = 1_000_000
YEAR = 2026


def at(month: int, day: int, hour: int = 8) -> datetime:
    return datetime(YEAR, month, day, hour, tzinfo=WIB)


class City:
    """The scenario's events, grouped by producer."""

    def __init__(self) -> None:
        ids = [uuid.uuid4() for _ in range(14)]
        self.v1, self.v2, self.v3, self.v4 = (
            vendor(ids[0], scale="mikro", local=True),
            vendor(ids[1], scale="besar", local=False),
            vendor(ids[2], scale="kecil", koperasi=True, local=False),
            vendor(ids[3], scale="menengah", verified=False),
        )
        self.e1, self.e2 = etalase(ids[4], "ATK"), etalase(ids[5], "SERAGAM", open_=False)
        self.p1, self.p2, self.p3, self.p4 = ids[6:10]
        self.products = [
            product(self.p1, self.e1.etalase_id, self.v1.vendor_id),
            product(self.p2, self.e1.etalase_id, self.v1.vendor_id),
            product(self.p3, self.e2.etalase_id, self.v3.vendor_id, state="taken_down"),
            product(self.p4, self.e1.etalase_id, self.v2.vendor_id, state="submitted", version=1),
        ]
        self.rups = [
            rup("R1", "dinkes", YEAR, "barang", 1000 * M),
            rup("R2", "dispupr", YEAR, "pekerjaan_konstruksi", 500 * M),
            rup("R3", "dinkes", YEAR, "jasa_lainnya", 500 * M),
            rup("R0", "dinkes", YEAR - 1, "barang", 999 * M),
        ]
        self.o1 = Order(
            ids[10],
            "dinkes",
            "R1",
            "barang",
            YEAR,
            self.v1,
            [
                line(self.p1, 10, 20 * M, pdn=True, tkdn=45, bmp=5, verified=True),
                line(self.p2, 1, 100 * M, compliant=False, justification="stok PDN habis"),
            ],
        )
        for cls, when in (
            (o.OrderPlaced, at(3, 2)),
            (o.OrderStockConfirmed, at(3, 2, 9)),
            (o.OrderApproved, at(3, 3)),
            (o.OrderAcceptedByVendor, at(3, 4)),
            (o.OrderShipped, at(3, 6)),
            (o.OrderReceived, at(3, 12)),
            (o.OrderPaid, at(3, 16)),
            (o.OrderCompleted, at(3, 16, 9)),
        ):
            self.o1.step(cls, when)
        self.o2 = Order(
            ids[11],
            "dispupr",
            "R2",
            "pekerjaan_konstruksi",
            YEAR,
            self.v2,
            [line(self.p1, 5, 40 * M, pdn=True, tkdn=30, verified=True)],
        )
        for cls, when in (
            (o.OrderPlaced, at(4, 8)),
            (o.OrderApproved, at(4, 10)),
            (o.OrderAcceptedByVendor, at(4, 11)),
        ):
            self.o2.step(cls, when)
        self.o3 = Order(
            ids[12], "dinkes", "R3", "jasa_lainnya", YEAR, self.v3, [line(self.p2, 1, 50 * M)]
        )
        for cls, when in (
            (o.OrderPlaced, at(6, 1)),
            (o.OrderApproved, at(6, 2)),
            (o.OrderExpired, at(6, 8)),
        ):
            self.o3.step(cls, when)
        self.o4 = Order(
            uuid.uuid4(), "dinkes", "R1", "barang", YEAR, self.v1, [line(self.p1, 1, 10 * M)]
        )
        self.o4.step(o.OrderPlaced, at(7, 1))
        self.o4.step(o.OrderCancelled, at(7, 2))
        self.o5 = Order(
            ids[13], "dinkes", "R1", "barang", YEAR, self.v3, [line(self.p3, 4, 25 * M, pdn=True)]
        )
        for cls, when in (
            (o.OrderPlaced, at(5, 16)),
            (o.OrderApproved, at(5, 17)),
            (o.OrderAcceptedByVendor, at(5, 18)),
            (o.OrderShipped, at(5, 19)),
            (o.OrderReceived, at(5, 20)),
        ):
            self.o5.step(cls, when)
        self.orders = [self.o1, self.o2, self.o3, self.o4, self.o5]

    def approved_order(self, total: int, month: int) -> Order:
        """A new dispupr construction order of `total` with its SP issued on the `month`'s 4th."""
        order = Order(
            uuid.uuid4(),
            "dispupr",
            "R2",
            "pekerjaan_konstruksi",
            YEAR,
            self.v2,
            [line(self.p1, 1, total)],
        )
        order.step(o.OrderPlaced, at(month, 3))
        order.step(o.OrderApproved, at(month, 4))
        return order

    @property
    def vendors(self) -> list[Event]:
        return [self.v1, self.v2, self.v3, self.v4]

    @property
    def catalog(self) -> list[Event]:
        return [self.e1, self.e2, *self.products]

    @property
    def order_events(self) -> list[Event]:
        return [event for order in self.orders for event in order.events]

    @property
    def all_events(self) -> list[Event]:
        return [*self.vendors, *self.catalog, *self.rups, *self.order_events]


EXPECTED_TOTALS = {
    "pagu": 2000 * M,
    "spend_sp": 600 * M,
    "spend_completed": 300 * M,
    "spend_umk_koperasi": 400 * M,
    "spend_local": 300 * M,
    "spend_pdn": 500 * M,
    "spend_tkdn_weighted": 150 * M,
    "spend_tkdn_bmp_40": 200 * M,
    "lines_priority_skipped": 1,
}
EXPECTED_SHARES = {
    "ekatalog_share": (30.0, 30.0, True),
    "ekatalog_share_completed": (15.0, 30.0, False),
    "umk_koperasi_share": (66.67, 40.0, True),
    "local_share": (50.0, None, None),
    "pdn_share": (83.33, 95.0, False),  # the 2023 target stays in force
    "tkdn_weighted_share": (25.0, None, None),
    "tkdn_bmp_40_share": (33.33, None, None),
}
EXPECTED_COUNTS = {
    "open_storefronts": 1,
    "products_registered": 4,
    "products_listed": 2,
    "vendors_verified": 3,
    "vendors_mikro": 1,
    "vendors_kecil": 1,
    "vendors_menengah": 0,
    "vendors_besar": 1,
    "vendors_koperasi": 1,
    "vendors_local": 1,
}
