"""HTTP routes of the orders service: RUP packages (API and CSV import) and orders."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from services.orders import commands, domain, store
from services.orders.commands import Context, LineRequest, PlaceOrder
from services.orders.domain import NotFound, Refused
from services.orders.rup_import import (
    OPD_PATTERN,
    RUP_CODE_PATTERN,
    ImportRefused,
    RupRow,
    parse_rup_csv,
)
from shared.auth import CurrentPrincipal, Principal, Role, requires_role
from shared.contracts.orders import OrderState, ProcurementType, PurchaseMethod
from shared.cursor import MAX_CURSOR_LENGTH, decode_cursor, encode_cursor
from shared.problems import ErrorMapper, Problem
from shared.query import QueryModel
from shared.types import MAX_LIST_ITEMS, MAX_MAPPING_ENTRIES, Integer, Reason, ShortText, Text

router = APIRouter()

_TITLES = {403: "Forbidden", 409: "Conflict", 422: "Unprocessable Content"}


def _refused(exc: Refused) -> Problem:
    return Problem(
        exc.status,
        _TITLES.get(exc.status, "Refused"),
        exc.detail,
        type_=f"orders-{exc.code.replace('_', '-')}",
        rule=exc.code,
        **exc.extra,
    )


def _import_refused(exc: ImportRefused) -> Problem:
    detail = "; ".join(
        (f"row {e['row']}: " if e.get("row") else "") + f"{e['field']}: {e['reason']}"
        for e in exc.errors[:20]
    )
    return Problem(
        422, "Unprocessable Content", detail, type_="orders-rup-import", errors=exc.errors
    )


ERRORS: dict[type[Exception], ErrorMapper] = {
    Refused: _refused,
    NotFound: lambda exc: Problem(404, "Not Found", str(exc)),
    ImportRefused: _import_refused,
}


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.orders
    return ctx


Buyer = Annotated[Principal, Depends(requires_role(Role.PP, Role.PPK))]
RupRegistrar = Annotated[
    Principal, Depends(requires_role(Role.CATALOGUE_MANAGER, Role.PP, Role.PPK))
]
RupReader = Annotated[
    Principal,
    Depends(requires_role(Role.CATALOGUE_MANAGER, Role.AUDITOR, Role.PP, Role.PPK, Role.TREASURER)),
]
OrderReader = Annotated[
    Principal,
    Depends(
        requires_role(
            Role.CATALOGUE_MANAGER, Role.AUDITOR, Role.PP, Role.PPK, Role.TREASURER, Role.VENDOR
        )
    ),
]

RupCode = Annotated[str, StringConstraints(pattern=RUP_CODE_PATTERN.pattern)]
OpdId = Annotated[str, StringConstraints(pattern=OPD_PATTERN.pattern)]
Rupiah = Annotated[Integer, Field(gt=0, le=10**15)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- RUP packages


class RupIn(Body):
    rup_code: RupCode
    opd_id: OpdId
    package_name: Text
    fiscal_year: Annotated[Integer, Field(ge=2000, le=2100)]
    procurement_type: ProcurementType
    pagu: Rupiah
    funding_source: ShortText = "APBD"
    method: ShortText = "e-Purchasing"


class RupOut(BaseModel):
    rup_code: str
    opd_id: str
    package_name: str
    fiscal_year: int
    procurement_type: ProcurementType
    pagu: int
    funding_source: str
    method: str
    version: int
    committed: int = Field(description="held by live orders")
    remaining: int = Field(description="pagu minus live orders")


class RupPage(BaseModel):
    items: list[RupOut]
    next_after: str | None


class ImportOutcome(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]


def _opd_scope(principal: Principal, opd_id: str | None) -> str | None:
    """OPD staff see their own OPD only; asking for another is refused, not silently narrowed."""
    if principal.role in domain.READ_ALL:
        return opd_id
    if opd_id is not None and opd_id != principal.opd_id:
        raise domain.forbidden(f"a {principal.role.value} sees only OPD {principal.opd_id}")
    return principal.opd_id


@router.post("/rup", response_model=RupOut, tags=["rup"])
async def register_rup(request: Request, body: RupIn, principal: RupRegistrar) -> dict[str, Any]:
    """Register a RUP package, or update it when the code exists (the same values change
    nothing)."""
    values = body.model_dump(mode="json")
    await commands.register_rups(
        request.app.state.pool, _ctx(request), principal, [RupRow(None, values)]
    )
    async with request.app.state.pool.acquire() as conn:
        return await commands.get_rup(conn, body.rup_code)


@router.post(
    "/rup/import",
    response_model=ImportOutcome,
    tags=["rup"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_rup(request: Request, principal: RupRegistrar) -> dict[str, list[str]]:
    """Import the CSV an OPD's spreadsheet exports: all rows or none, per-row errors."""
    data = await request.body()  # bounded by the HTTP edge (ORDERS_HTTP_MAX_BODY_BYTES)
    rows = parse_rup_csv(data)
    return await commands.register_rups(request.app.state.pool, _ctx(request), principal, rows)


@router.get("/rup", response_model=RupPage, tags=["rup"])
async def list_rup(
    request: Request,
    principal: RupReader,
    opd_id: Annotated[OpdId | None, Query()] = None,
    after: Annotated[RupCode | None, Query(description="last code of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    scope = _opd_scope(principal, opd_id)
    async with request.app.state.pool.acquire() as conn:
        rows = await store.list_rups(conn, scope, after, limit)
    return {"items": rows, "next_after": rows[-1]["rup_code"] if len(rows) == limit else None}


@router.get("/rup/{rup_code}", response_model=RupOut, tags=["rup"])
async def get_rup(request: Request, rup_code: RupCode, principal: RupReader) -> dict[str, Any]:
    async with request.app.state.pool.acquire() as conn:
        row = await commands.get_rup(conn, rup_code)
    _opd_scope(principal, row["opd_id"])
    return row


# --------------------------------------------------------------------------- orders


class LineIn(Body):
    product_id: uuid.UUID
    quantity: Annotated[Integer, Field(ge=1, le=1_000_000)]
    justification: Reason | None = Field(
        default=None,
        description="why a higher-priority domestic product in the category was not chosen",
    )


class OrderIn(Body):
    rup_code: RupCode
    vendor_id: uuid.UUID
    method: PurchaseMethod
    ppk_id: ShortText = Field(description="subject of the PPK who approves and signs")
    delivery_address: Text
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=MAX_LIST_ITEMS)]


class ProposalIn(Body):
    prices: Annotated[
        dict[uuid.UUID, Rupiah], Field(min_length=1, max_length=MAX_MAPPING_ENTRIES)
    ] = Field(description="product id -> proposed unit price in rupiah")


class ReasonIn(Body):
    reason: Reason


class ShipmentIn(Body):
    carrier: ShortText
    tracking_number: ShortText


class ReceiptIn(Body):
    bast_number: ShortText = Field(description="number of the signed BAST")
    received_on: date | None = None


class PaymentIn(Body):
    payment_reference: ShortText
    amount: Rupiah


class TimelineEntry(BaseModel):
    version: int
    event_type: str
    state: OrderState
    actor: str
    actor_role: str
    at: datetime
    details: dict[str, Any]


class OrderOut(BaseModel):
    id: uuid.UUID
    version: int
    state: OrderState
    opd_id: str
    rup_code: str
    procurement_type: ProcurementType
    fiscal_year: int
    method: PurchaseMethod
    vendor: dict[str, Any]
    lines: list[dict[str, Any]]
    total: int
    delivery_address: str
    placed_by: str
    ppk_id: str
    negotiation: list[dict[str, Any]]
    sp_number: str | None
    sp_signed_at: datetime | None
    next_deadline: datetime | None
    deadline_kind: str | None
    priority_compliant: bool
    placed_at: datetime
    updated_at: datetime


class OrderDetail(OrderOut):
    timeline: list[TimelineEntry]


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


def _position(key: list[str]) -> tuple[datetime, uuid.UUID]:
    """Where a page of orders ended: the last order's placement time and id."""
    placed_at, order_id = key
    at = datetime.fromisoformat(placed_at)
    if at.tzinfo is None:
        raise ValueError("a position carries its time zone")
    return at, uuid.UUID(order_id)


@router.post("/orders", response_model=OrderOut, status_code=201, tags=["orders"])
async def place_order(request: Request, body: OrderIn, principal: Buyer) -> dict[str, Any]:
    """Check out one vendor's products against a RUP package; the stock saga follows."""
    return await commands.place_order(
        request.app.state.pool,
        _ctx(request),
        principal,
        PlaceOrder(
            rup_code=body.rup_code,
            vendor_id=body.vendor_id,
            method=body.method,
            ppk_id=body.ppk_id,
            delivery_address=body.delivery_address,
            lines=[LineRequest(x.product_id, x.quantity, x.justification) for x in body.lines],
        ),
    )


class OrderFilters(QueryModel):
    """The query string of `GET /orders`."""

    opd_id: OpdId | None = None
    vendor_id: uuid.UUID | None = None
    state: OrderState | None = None
    rup_code: RupCode | None = None
    placed_from: AwareDatetime | None = None
    placed_to: AwareDatetime | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 50
    cursor: Annotated[str, Field(max_length=MAX_CURSOR_LENGTH)] | None = None


@router.get(
    "/orders", response_model=OrderPage, tags=["orders"], openapi_extra=OrderFilters.openapi()
)
async def list_orders(
    request: Request,
    principal: OrderReader,
    query: Annotated[OrderFilters, Depends(OrderFilters.from_request)],
) -> dict[str, Any]:
    """Newest first; `next_cursor` fetches the next page."""
    opd_id, vendor_id = query.opd_id, query.vendor_id
    if principal.role is Role.VENDOR:
        if vendor_id is not None and str(vendor_id) != principal.vendor_id:
            raise domain.forbidden("a vendor sees only its own orders")
        vendor_id = uuid.UUID(principal.vendor_id)
    else:
        opd_id = _opd_scope(principal, opd_id)
    filters = {
        "opd_id": opd_id,
        "vendor_id": vendor_id,
        "state": query.state.value if query.state else None,
        "rup_code": query.rup_code,
        "placed_from": query.placed_from,
        "placed_to": query.placed_to,
    }
    after = decode_cursor(query.cursor, _position) if query.cursor else None
    async with request.app.state.pool.acquire() as conn:
        rows = await store.list_orders(conn, filters, after, query.limit)
    last = rows[-1] if len(rows) == query.limit else None
    cursor = encode_cursor([last["placed_at"].isoformat(), str(last["id"])]) if last else None
    return {"items": rows, "next_cursor": cursor}


@router.get("/orders/{order_id}", response_model=OrderDetail, tags=["orders"])
async def get_order(
    request: Request, order_id: uuid.UUID, principal: OrderReader
) -> dict[str, Any]:
    """One order with its full timeline (who did what, when)."""
    async with request.app.state.pool.acquire() as conn:
        row = await store.get_order(conn, order_id)
        if row is None:
            raise NotFound(f"order {order_id} does not exist")
        domain.ensure_can_read(principal, row["opd_id"], str(row["vendor_id"]))
        return {**row, "timeline": await store.timeline(conn, order_id)}


@router.post("/orders/{order_id}/negotiation/proposals", response_model=OrderOut, tags=["orders"])
async def propose(
    request: Request, order_id: uuid.UUID, body: ProposalIn, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The buyer proposes unit prices; the vendor counter-proposes (sides take turns)."""
    prices = {str(k): v for k, v in body.prices.items()}
    return await commands.propose(
        request.app.state.pool, _ctx(request), principal, order_id, prices
    )


@router.post("/orders/{order_id}/negotiation/agree", response_model=OrderOut, tags=["orders"])
async def agree(
    request: Request, order_id: uuid.UUID, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The side that received the last proposal agrees to it."""
    return await commands.agree(request.app.state.pool, _ctx(request), principal, order_id)


@router.post("/orders/{order_id}/approve", response_model=OrderOut, tags=["orders"])
async def approve(
    request: Request, order_id: uuid.UUID, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The order's PPK approves and issues the signed Surat Pesanan."""
    return await commands.approve(request.app.state.pool, _ctx(request), principal, order_id)


@router.post("/orders/{order_id}/accept", response_model=OrderOut, tags=["orders"])
async def accept(
    request: Request, order_id: uuid.UUID, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The vendor accepts (signs) the Surat Pesanan."""
    return await commands.vendor_answer(
        request.app.state.pool, _ctx(request), principal, order_id, accept=True
    )


@router.post("/orders/{order_id}/reject", response_model=OrderOut, tags=["orders"])
async def vendor_reject(
    request: Request, order_id: uuid.UUID, body: ReasonIn, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The vendor declines the Surat Pesanan, with its reason."""
    return await commands.vendor_answer(
        request.app.state.pool, _ctx(request), principal, order_id, accept=False, reason=body.reason
    )


@router.post("/orders/{order_id}/ship", response_model=OrderOut, tags=["orders"])
async def ship(
    request: Request, order_id: uuid.UUID, body: ShipmentIn, principal: CurrentPrincipal
) -> dict[str, Any]:
    return await commands.ship(
        request.app.state.pool,
        _ctx(request),
        principal,
        order_id,
        body.carrier,
        body.tracking_number,
    )


@router.post("/orders/{order_id}/receive", response_model=OrderOut, tags=["orders"])
async def receive(
    request: Request, order_id: uuid.UUID, body: ReceiptIn, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The PPK signs the BAST for the full delivery."""
    return await commands.receive(
        request.app.state.pool,
        _ctx(request),
        principal,
        order_id,
        body.bast_number,
        body.received_on,
    )


@router.post("/orders/{order_id}/dispute", response_model=OrderOut, tags=["orders"])
async def dispute(
    request: Request, order_id: uuid.UUID, body: ReasonIn, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The delivery does not match the order: back to the vendor."""
    return await commands.dispute(
        request.app.state.pool, _ctx(request), principal, order_id, body.reason
    )


@router.post("/orders/{order_id}/pay", response_model=OrderOut, tags=["orders"])
async def pay(
    request: Request, order_id: uuid.UUID, body: PaymentIn, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The treasurer records payment of the agreed total; the order completes."""
    return await commands.pay(
        request.app.state.pool,
        _ctx(request),
        principal,
        order_id,
        body.payment_reference,
        body.amount,
    )


@router.post("/orders/{order_id}/cancel", response_model=OrderOut, tags=["orders"])
async def cancel(
    request: Request, order_id: uuid.UUID, body: ReasonIn, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The buyer cancels before the vendor accepts."""
    return await commands.cancel(
        request.app.state.pool, _ctx(request), principal, order_id, body.reason
    )
