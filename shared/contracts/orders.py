"""Events the orders service publishes: RUP packages on `ekatalog.rup` (key = RUP code) and
orders on `ekatalog.orders` (key = order id).

Every order event carries the order's full snapshot after the change (OPD, vendor with its flags
at order time, RUP code and procurement type, lines, totals, next deadline) and a per-order
`version`, so an integrator keeps its own copy from any single event and drops stale ones.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Event

RUP_TOPIC = "ekatalog.rup"
ORDERS_TOPIC = "ekatalog.orders"


class ProcurementType(StrEnum):
    """Jenis pengadaan of a RUP package."""

    BARANG = "barang"
    PEKERJAAN_KONSTRUKSI = "pekerjaan_konstruksi"
    JASA_KONSULTANSI = "jasa_konsultansi"
    JASA_LAINNYA = "jasa_lainnya"


class PurchaseMethod(StrEnum):
    """Direct purchase at the listed price, or a price negotiation with the vendor first."""

    DIRECT = "direct"
    NEGOTIATION = "negotiation"


class OrderState(StrEnum):
    PLACED = "placed"  # awaiting the catalog's stock reservation
    NEGOTIATING = "negotiating"
    AWAITING_APPROVAL = "awaiting_approval"  # the PPK reviews and issues the SP
    AWAITING_VENDOR = "awaiting_vendor"  # SP issued and signed, the vendor answers
    ACCEPTED = "accepted"
    SHIPPED = "shipped"
    DELIVERY_DISPUTED = "delivery_disputed"
    RECEIVED = "received"  # BAST signed
    PAID = "paid"
    COMPLETED = "completed"
    REJECTED = "rejected"  # stock, vendor or product refused before the SP
    REJECTED_BY_VENDOR = "rejected_by_vendor"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Party(StrEnum):
    BUYER = "buyer"
    VENDOR = "vendor"


class DeadlineKind(StrEnum):
    PPK_APPROVAL = "ppk_approval"  # the PPK issues the SP
    VENDOR_ANSWER = "vendor_answer"  # the vendor accepts or rejects the SP


class PriorityTier(StrEnum):
    """Perpres 46/2025 art. 66 order of preference for domestic products (verified claims)."""

    TKDN_BMP_40 = "tkdn_bmp_40"  # TKDN + BMP >= 40% with TKDN >= 25%
    TKDN_25 = "tkdn_25"  # TKDN >= 25%
    TKDN_LOWER = "tkdn_lower"  # some TKDN below 25%
    PDN = "pdn"  # a domestic product without a TKDN
    NONE = "none"  # imported, or no verified claim


class RupEvent(Event):
    """A RUP package (the OPD's budget line) as it is after the change."""

    topic: ClassVar[str] = RUP_TOPIC
    aggregate_field: ClassVar[str] = "rup_code"

    rup_code: str
    version: int = Field(ge=1, description="per-package sequence number, +1 per event")
    occurred_at: datetime
    opd_id: str
    package_name: str
    fiscal_year: int
    procurement_type: ProcurementType
    pagu: int = Field(description="budget ceiling in whole rupiah")
    funding_source: str = Field(description="sumber dana, e.g. APBD")
    method: str = Field(description="metode pemilihan as planned, e.g. e-Purchasing")
    changed_by: str


class RupRegistered(RupEvent):
    """A RUP package was registered (by API or CSV import)."""

    type: ClassVar[str] = "ekatalog.rup.registered.v1"


class RupUpdated(RupEvent):
    """A RUP package's fields changed (a re-import or an edit)."""

    type: ClassVar[str] = "ekatalog.rup.updated.v1"
    changed_fields: list[str]


class OrderVendor(BaseModel):
    """The vendor as it was when the order was placed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    vendor_id: UUID
    legal_name: str
    scale: str = Field(description="mikro, kecil, menengah or besar")
    is_umk: bool
    is_koperasi: bool
    is_local: bool


class OrderLine(BaseModel):
    """One line: a listed product, its claims at order time, quantity and prices."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    product_id: UUID
    name: str
    category_code: str
    unit: str
    quantity: int = Field(ge=1)
    listed_price: int = Field(description="listed unit price in rupiah when the order was placed")
    unit_price: int = Field(description="agreed unit price in rupiah (negotiated or listed)")
    line_total: int = Field(description="quantity x unit_price")
    pdn: bool = Field(description="domestic product, counted only once verified")
    tkdn: float | None
    bmp: float | None
    tkdn_verified: bool
    priority_tier: PriorityTier
    best_available_tier: PriorityTier = Field(
        description="best tier listed in the same category when the order was placed"
    )
    priority_compliant: bool = Field(
        description="the line is in the best available tier (Perpres 46/2025 art. 66)"
    )
    priority_justification: str | None = Field(
        default=None, description="why a higher-priority domestic product was not chosen"
    )


class OrderEvent(Event):
    """An order as it is after the change."""

    topic: ClassVar[str] = ORDERS_TOPIC
    aggregate_field: ClassVar[str] = "order_id"

    order_id: UUID
    version: int = Field(ge=1, description="per-order sequence number, +1 per event")
    occurred_at: datetime
    state: OrderState
    opd_id: str
    rup_code: str
    procurement_type: ProcurementType
    fiscal_year: int
    method: PurchaseMethod
    vendor: OrderVendor
    lines: list[OrderLine]
    total: int = Field(description="sum of the line totals in rupiah")
    delivery_address: str
    placed_by: str
    ppk_id: str = Field(description="the PPK chosen at checkout")
    sp_number: str | None = Field(default=None, description="Surat Pesanan number, once issued")
    sp_signed_at: datetime | None = None
    next_deadline: datetime | None = Field(default=None, description="when the order expires")
    deadline_kind: DeadlineKind | None = None
    priority_compliant: bool = Field(description="every line follows the domestic priority")
    actor: str = Field(description="who caused this change (subject, or system:<job>)")


class OrderPlaced(OrderEvent):
    """A PP or PPK checked out; the catalog reserves the stock next."""

    type: ClassVar[str] = "ekatalog.order.placed.v1"


class OrderStockConfirmed(OrderEvent):
    """The catalog reserved every line's stock."""

    type: ClassVar[str] = "ekatalog.order.stock_confirmed.v1"


class OrderRejected(OrderEvent):
    """The order was refused before the SP: no stock, vendor suspended, product taken down."""

    type: ClassVar[str] = "ekatalog.order.rejected.v1"
    reason_code: str = Field(
        description="not_listed, price_changed, insufficient_stock (the catalog's stock "
        "answer), vendor_not_selling (suspended, expired), product_taken_down"
    )
    reason: str


class OrderNegotiationProposed(OrderEvent):
    """One side proposed unit prices; the other counter-proposes or agrees."""

    type: ClassVar[str] = "ekatalog.order.negotiation_proposed.v1"
    round: int = Field(ge=1)
    proposed_by: Party
    prices: dict[str, int] = Field(description="product id -> proposed unit price")
    proposed_total: int


class OrderNegotiationAgreed(OrderEvent):
    """The other side agreed to the last proposal; its prices are now the lines' prices."""

    type: ClassVar[str] = "ekatalog.order.negotiation_agreed.v1"
    round: int = Field(ge=1)
    agreed_by: Party


class OrderApproved(OrderEvent):
    """The PPK approved the order and issued and signed the Surat Pesanan (`sp_number`)."""

    type: ClassVar[str] = "ekatalog.order.approved.v1"


class OrderAcceptedByVendor(OrderEvent):
    """The vendor accepted (signed) the Surat Pesanan."""

    type: ClassVar[str] = "ekatalog.order.accepted_by_vendor.v1"


class OrderRejectedByVendor(OrderEvent):
    """The vendor declined the Surat Pesanan."""

    type: ClassVar[str] = "ekatalog.order.rejected_by_vendor.v1"
    reason: str


class OrderShipped(OrderEvent):
    """The vendor shipped (again, after a disputed delivery)."""

    type: ClassVar[str] = "ekatalog.order.shipped.v1"
    carrier: str
    tracking_number: str


class OrderReceived(OrderEvent):
    """The PPK checked the goods and signed the BAST (berita acara serah terima)."""

    type: ClassVar[str] = "ekatalog.order.received.v1"
    bast_number: str
    received_on: date


class OrderDeliveryDisputed(OrderEvent):
    """The delivery did not match the order; it goes back to the vendor."""

    type: ClassVar[str] = "ekatalog.order.delivery_disputed.v1"
    reason: str


class OrderPaid(OrderEvent):
    """The treasurer (bendahara) paid the agreed total."""

    type: ClassVar[str] = "ekatalog.order.paid.v1"
    payment_reference: str
    amount: int


class OrderCompleted(OrderEvent):
    """Paid after the BAST: nothing more happens to the order."""

    type: ClassVar[str] = "ekatalog.order.completed.v1"


class OrderCancelled(OrderEvent):
    """The buyer cancelled before the vendor accepted."""

    type: ClassVar[str] = "ekatalog.order.cancelled.v1"
    reason: str


class OrderExpired(OrderEvent):
    """A working-day deadline passed without the PPK or the vendor acting."""

    type: ClassVar[str] = "ekatalog.order.expired.v1"
    missed_deadline: datetime
    missed: DeadlineKind


RUP_EVENTS: tuple[type[RupEvent], ...] = (RupRegistered, RupUpdated)

ORDER_EVENTS: tuple[type[OrderEvent], ...] = (
    OrderPlaced,
    OrderStockConfirmed,
    OrderRejected,
    OrderNegotiationProposed,
    OrderNegotiationAgreed,
    OrderApproved,
    OrderAcceptedByVendor,
    OrderRejectedByVendor,
    OrderShipped,
    OrderReceived,
    OrderDeliveryDisputed,
    OrderPaid,
    OrderCompleted,
    OrderCancelled,
    OrderExpired,
)

# The events after which an order holds no stock and no pagu any more.
ORDER_ENDED_WITHOUT_DELIVERY: tuple[type[OrderEvent], ...] = (
    OrderRejected,
    OrderRejectedByVendor,
    OrderCancelled,
    OrderExpired,
)
