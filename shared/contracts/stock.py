"""The catalog's replies in the orders stock saga (topic `ekatalog.stock`, key = order id).

The catalog reserves an order's stock when it reads `order.placed`, all lines or none, and
answers with one of these; the orders service moves the order on from the answer.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Event

STOCK_TOPIC = "ekatalog.stock"


class ReservationRefusal(StrEnum):
    NOT_LISTED = "not_listed"
    PRICE_CHANGED = "price_changed"
    INSUFFICIENT_STOCK = "insufficient_stock"


class ReservedLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    product_id: UUID
    quantity: int = Field(ge=1)


class StockEvent(Event):
    topic: ClassVar[str] = STOCK_TOPIC
    aggregate_field: ClassVar[str] = "order_id"

    order_id: UUID
    occurred_at: datetime


class StockReserved(StockEvent):
    """Every line of the order is reserved; the stock is held until the order ends."""

    type: ClassVar[str] = "ekatalog.stock.reserved.v1"
    lines: list[ReservedLine]


class StockReservationRejected(StockEvent):
    """Nothing was reserved; `reason_code` says why, `reason` names the product."""

    type: ClassVar[str] = "ekatalog.stock.reservation_rejected.v1"
    reason_code: ReservationRefusal
    reason: str
    product_id: UUID | None = None


STOCK_EVENTS: tuple[type[StockEvent], ...] = (StockReserved, StockReservationRejected)
