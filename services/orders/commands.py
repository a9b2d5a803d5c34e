"""Orders use cases. Each runs in one unit of work (a transaction of its own, or a savepoint in
the caller's), locks the aggregate it changes, and writes its event, timeline entry and state
together."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from services.orders import domain, store
from services.orders.domain import NotFound, Proposal, Refused
from services.orders.rup_import import ImportRefused, RupRow
from services.orders.workdays import WorkingCalendar
from shared.auth import Principal, Role
from shared.contracts.orders import (
    DeadlineKind,
    OrderAcceptedByVendor,
    OrderApproved,
    OrderCancelled,
    OrderCompleted,
    OrderDeliveryDisputed,
    OrderEvent,
    OrderExpired,
    OrderLine,
    OrderNegotiationAgreed,
    OrderNegotiationProposed,
    OrderPaid,
    OrderPlaced,
    OrderReceived,
    OrderRejected,
    OrderRejectedByVendor,
    OrderShipped,
    OrderState,
    OrderStockConfirmed,
    OrderVendor,
    Party,
    PriorityTier,
    ProcurementType,
    PurchaseMethod,
    RupRegistered,
    RupUpdated,
)
from shared.db import Connection, StaleWrite, optimistically, unit_of_work
from shared.outbox import Outbox

Db = asyncpg.Pool | Connection
Row = dict[str, Any]


@dataclass(frozen=True)
class Actor:
    """Who caused a change: a person (subject and role) or a system job."""

    subject: str
    role: str

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.subject, principal.role.value)


STOCK_SAGA = Actor("system:stock-saga", "system")
VENDOR_STATUS = Actor("system:vendor-status", "system")
PRODUCT_STATUS = Actor("system:product-status", "system")
DEADLINES = Actor("system:deadlines", "system")


@dataclass(frozen=True)
class OrderPolicy:
    """The city's settings: PP limits per procurement type and the working-day deadlines."""

    calendar: WorkingCalendar
    pp_limits: Mapping[str, int] = field(default_factory=dict)
    approval_working_days: int = 3
    vendor_answer_working_days: int = 3


@dataclass(frozen=True)
class Context:
    """What every command needs besides the database: where events go, the rules, the time."""

    outbox: Outbox
    policy: OrderPolicy
    clock: Callable[[], datetime]


# --------------------------------------------------------------------------- RUP packages


async def register_rups(
    db: Db, ctx: Context, principal: Principal, packages: Sequence[RupRow]
) -> dict[str, list[str]]:
    """Registers or updates packages, all or none; the same values again change nothing.

    Raises `ImportRefused` with one entry per refused package (by row number)."""
    errors = []
    for package in packages:
        try:
            domain.ensure_rup_registrar(principal, package.values["opd_id"])
        except Refused as exc:
            errors.append(_row_error(package, "opd_id", exc.detail))
    if errors:
        raise ImportRefused(errors)
    outcome: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
    now = ctx.clock()
    async with unit_of_work(db) as conn:
        codes = [p.values["rup_code"] for p in packages]
        existing = await store.lock_rups(conn, codes)
        events = []
        for package in packages:
            code = package.values["rup_code"]
            values = {f: package.values[f] for f in store.RUP_FIELDS}
            current = existing.get(code)
            if current is None:
                row = await store.insert_rup(conn, code, values)
                events.append(_rup_event(RupRegistered, row, principal, now))
                outcome["created"].append(code)
                continue
            changed = [f for f in store.RUP_FIELDS if current[f] != values[f]]
            problem = _rup_change_problem(current, values, current["committed"])
            if problem is not None:
                errors.append(_row_error(package, problem["field"], problem["reason"]))
            elif not changed:
                outcome["unchanged"].append(code)
            else:
                row = await store.update_rup(conn, code, {f: values[f] for f in changed})
                events.append(_rup_event(RupUpdated, row, principal, now, changed_fields=changed))
                outcome["updated"].append(code)
        if errors:
            raise ImportRefused(errors)
        await ctx.outbox.add(conn, *events)
    return outcome


def _row_error(package: RupRow, field: str, reason: str) -> dict[str, Any]:
    """A refusal naming the spreadsheet row, when the package came from a file."""
    error: dict[str, Any] = {"field": field, "reason": reason}
    if package.row is not None:
        error["row"] = package.row
    return error


def _rup_change_problem(current: Row, values: Row, committed: int) -> dict[str, str] | None:
    if current["opd_id"] != values["opd_id"]:
        return {
            "field": "opd_id",
            "reason": f"{current['rup_code']} belongs to OPD {current['opd_id']}",
        }
    if values["pagu"] < committed:
        return {
            "field": "pagu",
            "reason": f"live orders already hold {domain.rupiah(committed)} of this package",
        }
    if current["procurement_type"] != values["procurement_type"] and committed:
        return {
            "field": "procurement_type",
            "reason": "the package has live orders; its procurement type cannot change",
        }
    return None


def _rup_event(
    cls: type[RupRegistered] | type[RupUpdated],
    row: Row,
    principal: Principal,
    now: datetime,
    **extra: Any,
) -> RupRegistered | RupUpdated:
    return cls(
        **{f: row[f] for f in store.RUP_FIELDS},
        rup_code=row["rup_code"],
        version=row["version"],
        occurred_at=now,
        changed_by=principal.subject,
        **extra,
    )


async def get_rup(conn: Connection, code: str) -> Row:
    row = await store.get_rup(conn, code)
    if row is None:
        raise NotFound(f"RUP package {code} does not exist")
    return row


# --------------------------------------------------------------------------- placing an order


@dataclass(frozen=True)
class LineRequest:
    product_id: uuid.UUID
    quantity: int
    justification: str | None = None


@dataclass(frozen=True)
class PlaceOrder:
    rup_code: str
    vendor_id: uuid.UUID
    method: PurchaseMethod
    ppk_id: str
    delivery_address: str
    lines: Sequence[LineRequest]


def _claims(product: Row) -> domain.DomesticClaims:
    return domain.DomesticClaims(
        pdn=product["pdn"],
        tkdn=product["tkdn"],
        bmp=product["bmp"],
        tkdn_verified=product["tkdn_verified"],
        pdn_verified=product["pdn_verified"],
        bmp_verified=product["bmp_verified"],
    )


def _check_repeated(requests: Sequence[LineRequest]) -> None:
    ids = [r.product_id for r in requests]
    repeated = sorted({str(i) for i in ids if ids.count(i) > 1})
    if repeated:
        raise Refused("repeated_line", f"one line per product; repeated: {', '.join(repeated)}")


def _order_lines(
    vendor_id: uuid.UUID, requests: Sequence[LineRequest], inputs: store.OrderInputs
) -> list[OrderLine]:
    """Each line at the current listed price, checked against the domestic priority."""
    products = inputs.products
    for request in requests:
        product = products.get(request.product_id)
        if product is None or product["state"] != "listed":
            state = "unknown" if product is None else product["state"]
            raise Refused(
                "product_not_listed",
                f"product {request.product_id} is not listed ({state})"
                + (f": {product['state_reason']}" if product and product["state_reason"] else ""),
                product_id=str(request.product_id),
            )
        if product["vendor_id"] != vendor_id:
            raise Refused(
                "one_vendor_per_order",
                f"product {request.product_id} is sold by another vendor; an order holds one "
                "vendor's products",
                product_id=str(request.product_id),
            )
    tiers: dict[str, list[Any]] = defaultdict(list)
    for alternative in inputs.alternatives:
        tiers[alternative["category_code"]].append(domain.priority_tier(_claims(alternative)))
    lines = []
    for request in requests:
        product = products[request.product_id]
        check = domain.check_priority(
            str(request.product_id),
            domain.priority_tier(_claims(product)),
            tiers[product["category_code"]],
            request.justification,
        )
        lines.append(
            OrderLine(
                product_id=request.product_id,
                name=product["name"],
                category_code=product["category_code"],
                unit=product["unit"],
                quantity=request.quantity,
                listed_price=product["price"],
                unit_price=product["price"],
                line_total=request.quantity * product["price"],
                pdn=check.tier is not PriorityTier.NONE,
                tkdn=product["tkdn"],
                bmp=product["bmp"],
                tkdn_verified=product["tkdn_verified"],
                priority_tier=check.tier,
                best_available_tier=check.best_available,
                priority_compliant=check.compliant,
                priority_justification=None if check.compliant else request.justification,
            )
        )
    return lines


def _vendor_snapshot(vendor_id: uuid.UUID, vendor: Row | None) -> OrderVendor:
    if vendor is None:
        raise Refused("vendor_unknown", f"vendor {vendor_id} is not known to the catalogue")
    if vendor["state"] != "verified":
        reason = f": {vendor['state_reason']}" if vendor["state_reason"] else ""
        raise Refused(
            "vendor_not_selling", f"vendor {vendor_id} may not sell ({vendor['state']}{reason})"
        )
    return OrderVendor(
        vendor_id=vendor_id,
        legal_name=vendor["legal_name"],
        scale=vendor["scale"],
        is_umk=vendor["is_umk"],
        is_koperasi=vendor["is_koperasi"],
        is_local=vendor["is_local"],
    )


async def place_order(db: Db, ctx: Context, principal: Principal, request: PlaceOrder) -> Row:
    """Read the package, vendor and products, build the order, and write it in one statement
    only if the package is still at the version read and its pagu covers the total
    (`store.place_within_pagu`); built again from a new read when the package changed, under
    its lock once it is contended (`optimistically`)."""
    _check_repeated(request.lines)

    async def attempt(conn: Connection, lock: bool) -> Row:
        return await _place(conn, ctx, principal, request, lock)

    return await optimistically(db, attempt)


async def _place(
    conn: Connection, ctx: Context, principal: Principal, request: PlaceOrder, lock: bool
) -> Row:
    inputs = await store.order_inputs(
        conn, request.rup_code, request.vendor_id, [r.product_id for r in request.lines], lock
    )
    rup = inputs.rup
    if rup is None:
        raise Refused("rup_unknown", f"RUP package {request.rup_code} is not registered")
    domain.ensure_buyer(principal, rup["opd_id"])
    vendor = _vendor_snapshot(request.vendor_id, inputs.vendor)
    lines = _order_lines(request.vendor_id, request.lines, inputs)
    total = sum(line.line_total for line in lines)
    procurement_type = ProcurementType(rup["procurement_type"])
    domain.check_buyer_limit(principal.role, procurement_type, total, ctx.policy.pp_limits)
    # As a stored value reads back, so that the response shows what a read would.
    now = ctx.clock().astimezone(UTC)
    values: Row = {
        "id": uuid.uuid4(),
        "version": 1,
        "state": OrderState.PLACED.value,
        "opd_id": rup["opd_id"],
        "rup_code": rup["rup_code"],
        "procurement_type": procurement_type.value,
        "fiscal_year": rup["fiscal_year"],
        "method": request.method.value,
        "vendor_id": request.vendor_id,
        "vendor": vendor,
        "lines": lines,
        "product_ids": [line.product_id for line in lines],
        "total": total,
        "live": True,
        "delivery_address": request.delivery_address,
        "placed_by": principal.subject,
        "placed_by_role": principal.role.value,
        "ppk_id": request.ppk_id,
        "negotiation": [],
        "sp_number": None,
        "sp_signed_at": None,
        "next_deadline": None,
        "deadline_kind": None,
        "priority_compliant": all(line.priority_compliant for line in lines),
        "placed_at": now,
        "updated_at": now,
    }
    # Built before the write, from the values written: the order, its timeline entry and the
    # event go in one statement.
    event = _order_event(OrderPlaced, values, Actor.of(principal), now, {})
    parts = event.model_dump_json(include={"vendor", "lines"})
    _, written = await ctx.outbox.add_returning(
        conn, event, change=store.place_within_pagu(values, parts, rup["version"], event.type)
    )
    if written["placed"]:
        # The vendor and lines as stored (JSON), as a read of the order shows them.
        return {**values, **json.loads(parts)}
    package = written["package"]
    if package["version"] == rup["version"]:
        # Refused with the remaining amount, unless an order committed since the statement
        # began took what it saw remaining: then it is built again.
        domain.check_pagu(package["pagu"], package["committed"], total)
    raise StaleWrite(request.rup_code)


# --------------------------------------------------------------------------- transitions


def _order_event(
    cls: type[OrderEvent], row: Row, actor: Actor, now: datetime, extra: Mapping[str, Any]
) -> OrderEvent:
    return cls(
        order_id=row["id"],
        version=row["version"],
        occurred_at=now,
        state=OrderState(row["state"]),
        opd_id=row["opd_id"],
        rup_code=row["rup_code"],
        procurement_type=ProcurementType(row["procurement_type"]),
        fiscal_year=row["fiscal_year"],
        method=PurchaseMethod(row["method"]),
        vendor=OrderVendor.model_validate(row["vendor"]),
        lines=[OrderLine.model_validate(line) for line in row["lines"]],
        total=row["total"],
        delivery_address=row["delivery_address"],
        placed_by=row["placed_by"],
        ppk_id=row["ppk_id"],
        sp_number=row["sp_number"],
        sp_signed_at=row["sp_signed_at"],
        next_deadline=row["next_deadline"],
        deadline_kind=row["deadline_kind"],
        priority_compliant=row["priority_compliant"],
        actor=actor.subject,
        **extra,
    )


def _deadline(ctx: Context, state: OrderState, now: datetime) -> dict[str, Any]:
    """Waiting for the PPK or the vendor starts a working-day clock; other states have none."""
    policy = ctx.policy
    if state is OrderState.AWAITING_APPROVAL:
        days, kind = policy.approval_working_days, DeadlineKind.PPK_APPROVAL
    elif state is OrderState.AWAITING_VENDOR:
        days, kind = policy.vendor_answer_working_days, DeadlineKind.VENDOR_ANSWER
    else:
        return {"next_deadline": None, "deadline_kind": None}
    # In UTC, as the stored value reads back: the event is built from the values written.
    deadline = policy.calendar.deadline(now, days).astimezone(UTC)
    return {"next_deadline": deadline, "deadline_kind": kind.value}


def _changes(ctx: Context, order: Row, state: OrderState, now: datetime) -> dict[str, Any]:
    """What every transition sets: the state, whether it holds pagu, the deadline, the version."""
    return {
        **_deadline(ctx, state, now),
        "state": state.value,
        "live": domain.counts_against_pagu(state),
        "version": order["version"] + 1,
        "updated_at": now,
    }


async def _transition(
    conn: Connection,
    ctx: Context,
    order: Row,
    action: str,
    cls: type[OrderEvent],
    actor: Actor,
    *,
    changes: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Row:
    state = domain.check_transition(OrderState(order["state"]), action)
    assert state is not None
    now = ctx.clock()
    changed = {**(changes or {}), **_changes(ctx, order, state, now)}
    # The event is built from the order as the update leaves it, so that its timeline entry is
    # written by the update's statement.
    event = _order_event(cls, {**order, **changed}, actor, now, extra or {})
    row = await store.update_order(
        conn,
        order["id"],
        changed,
        store.TimelineEntry(
            event_type=cls.type,
            actor=actor.subject,
            actor_role=actor.role,
            at=now,
            details=event.model_dump(mode="json", include=set(extra or {})),
        ),
    )
    await ctx.outbox.add(conn, event)
    return row


async def _locked(conn: Connection, order_id: uuid.UUID) -> Row:
    order = await store.lock_order(conn, order_id)
    if order is None:
        raise NotFound(f"order {order_id} does not exist")
    return order


def _vendor_of(order: Row) -> str:
    return str(order["vendor_id"])


# Reactions to the catalog and the vendor events (no person acts).


async def confirm_stock(
    conn: Connection, ctx: Context, order_ids: Sequence[uuid.UUID]
) -> list[Row]:
    """The catalog reserved the stock of these orders: each one still placed goes to
    negotiation or to the PPK; one cancelled or rejected meanwhile stays so (the catalog
    releases on that event), and one confirmed already (a repeated answer) is left alone.

    Set-wise: one statement locks the orders, one moves them all with their timeline entries
    and writes their events; returns the orders as it leaves them. It runs in the stock
    handler's transaction without a savepoint of its own: a failure rolls the handler's batch
    back for the consumer to retry."""
    domain.check_transition(OrderState.PLACED, "confirm_stock")
    now = ctx.clock()
    moved = [
        {**order, **_changes(ctx, order, _confirmed_state(order), now)}
        for order in await store.lock_orders(conn, sorted(set(order_ids)))
        if order["state"] == OrderState.PLACED
    ]
    if not moved:
        return []
    await ctx.outbox.add(
        conn,
        *(_order_event(OrderStockConfirmed, order, STOCK_SAGA, now, {}) for order in moved),
        change=store.move_orders(
            moved,
            store.TimelineEntry(
                OrderStockConfirmed.type, STOCK_SAGA.subject, STOCK_SAGA.role, now, {}
            ),
        ),
    )
    return moved


def _confirmed_state(order: Row) -> OrderState:
    """A negotiated purchase negotiates first; a direct one goes to the PPK."""
    if order["method"] == PurchaseMethod.NEGOTIATION:
        return OrderState.NEGOTIATING
    return OrderState.AWAITING_APPROVAL


async def reject_order(
    conn: Connection,
    ctx: Context,
    order_id: uuid.UUID,
    reason_code: str,
    reason: str,
    actor: Actor,
    *,
    only_if_placed: bool = False,
) -> Row | None:
    """Refuse an order before its SP (stock, vendor or product); no-op once past that."""
    async with unit_of_work(conn) as tx:
        order = await store.lock_order(tx, order_id)
        if order is None or OrderState(order["state"]) not in domain.PRE_SP:
            return None
        if only_if_placed and order["state"] != OrderState.PLACED:
            return None
        return await _transition(
            tx,
            ctx,
            order,
            "reject",
            OrderRejected,
            actor,
            extra={"reason_code": reason_code, "reason": reason},
        )


async def reject_orders_of_vendor(
    conn: Connection, ctx: Context, vendor_id: uuid.UUID, reason: str
) -> int:
    ids = await store.lock_orders_where(conn, sorted(domain.PRE_SP), vendor_id=vendor_id)
    for order_id in ids:
        await reject_order(conn, ctx, order_id, "vendor_not_selling", reason, VENDOR_STATUS)
    return len(ids)


async def reject_orders_with_product(
    conn: Connection, ctx: Context, product_id: uuid.UUID, reason: str
) -> int:
    ids = await store.lock_orders_where(conn, sorted(domain.PRE_SP), product_id=product_id)
    for order_id in ids:
        await reject_order(
            conn,
            ctx,
            order_id,
            "product_taken_down",
            f"product {product_id}: {reason}",
            PRODUCT_STATUS,
        )
    return len(ids)


async def expire_overdue(db: Db, ctx: Context, limit: int = 200) -> int:
    """Orders whose PPK or vendor missed the working-day deadline expire, giving back their
    stock (the catalog releases on `order.expired`) and pagu."""
    now = ctx.clock()
    async with unit_of_work(db) as conn:
        ids = await store.claim_overdue(conn, now, limit)
        for order_id in ids:
            order = await _locked(conn, order_id)
            await _transition(
                conn,
                ctx,
                order,
                "expire",
                OrderExpired,
                DEADLINES,
                extra={"missed_deadline": order["next_deadline"], "missed": order["deadline_kind"]},
            )
    return len(ids)


# People acting on an order.


def _proposals(order: Row) -> list[Proposal]:
    return [Proposal(p["round"], Party(p["by"]), p["prices"]) for p in order["negotiation"]]


def _party(principal: Principal, order: Row) -> Party:
    if principal.role is Role.VENDOR:
        domain.ensure_order_vendor(principal, _vendor_of(order))
        return Party.VENDOR
    domain.ensure_buyer(principal, order["opd_id"])
    return Party.BUYER


async def propose(
    db: Db, ctx: Context, principal: Principal, order_id: uuid.UUID, prices: Mapping[str, int]
) -> Row:
    async with unit_of_work(db) as conn:
        order = await _locked(conn, order_id)
        party = _party(principal, order)
        domain.check_transition(OrderState(order["state"]), "propose")
        history = _proposals(order)
        last = history[-1] if history else None
        listed = {line["product_id"]: line["listed_price"] for line in order["lines"]}
        domain.check_proposal(party, last, prices, listed)
        round_ = len(history) + 1
        quantities = {line["product_id"]: line["quantity"] for line in order["lines"]}
        proposed_total = sum(quantities[p] * price for p, price in prices.items())
        entry = {
            "round": round_,
            "by": party.value,
            "prices": dict(prices),
            "by_subject": principal.subject,
        }
        return await _transition(
            conn,
            ctx,
            order,
            "propose",
            OrderNegotiationProposed,
            Actor.of(principal),
            changes={"negotiation": [*order["negotiation"], entry]},
            extra={
                "round": round_,
                "proposed_by": party,
                "prices": dict(prices),
                "proposed_total": proposed_total,
            },
        )


async def agree(db: Db, ctx: Context, principal: Principal, order_id: uuid.UUID) -> Row:
    """The side that received the last proposal agrees: its prices become the lines' prices."""
    async with unit_of_work(db) as conn:
        order = await _locked(conn, order_id)
        party = _party(principal, order)
        domain.check_transition(OrderState(order["state"]), "agree")
        history = _proposals(order)
        accepted = domain.check_agreement(party, history[-1] if history else None)
        lines = [
            {
                **line,
                "unit_price": accepted.prices[line["product_id"]],
                "line_total": line["quantity"] * accepted.prices[line["product_id"]],
            }
            for line in order["lines"]
        ]
        return await _transition(
            conn,
            ctx,
            order,
            "agree",
            OrderNegotiationAgreed,
            Actor.of(principal),
            changes={"lines": lines, "total": sum(line["line_total"] for line in lines)},
            extra={"round": accepted.round, "agreed_by": party},
        )


async def approve(db: Db, ctx: Context, principal: Principal, order_id: uuid.UUID) -> Row:
    """The chosen PPK approves and issues the Surat Pesanan, signed now."""
    async with unit_of_work(db) as conn:
        order = await _locked(conn, order_id)
        domain.ensure_chosen_ppk(principal, order["opd_id"], order["ppk_id"])
        domain.check_transition(OrderState(order["state"]), "approve")
        number = await store.next_sp_number(conn)
        return await _transition(
            conn,
            ctx,
            order,
            "approve",
            OrderApproved,
            Actor.of(principal),
            changes={
                "sp_number": f"SP/{order['fiscal_year']}/{order['opd_id']}/{number:06d}",
                "sp_signed_at": ctx.clock(),
            },
        )


async def vendor_answer(
    db: Db,
    ctx: Context,
    principal: Principal,
    order_id: uuid.UUID,
    accept: bool,
    reason: str | None = None,
) -> Row:
    async with unit_of_work(db) as conn:
        order = await _locked(conn, order_id)
        domain.ensure_order_vendor(principal, _vendor_of(order))
        if accept:
            return await _transition(
                conn, ctx, order, "accept", OrderAcceptedByVendor, Actor.of(principal)
            )
        if not reason:
            raise Refused("reason_required", "a rejection gives its reason")
        return await _transition(
            conn,
            ctx,
            order,
            "vendor_reject",
            OrderRejectedByVendor,
            Actor.of(principal),
            extra={"reason": reason},
        )


async def ship(
    db: Db, ctx: Context, principal: Principal, order_id: uuid.UUID, carrier: str, tracking: str
) -> Row:
    async with unit_of_work(db) as conn:
        order = await _locked(conn, order_id)
        domain.ensure_order_vendor(principal, _vendor_of(order))
        return await _transition(
            conn,
            ctx,
            order,
            "ship",
            OrderShipped,
            Actor.of(principal),
            extra={"carrier": carrier, "tracking_number": tracking},
        )


async def receive(
    db: Db,
    ctx: Context,
    principal: Principal,
    order_id: uuid.UUID,
    bast_number: str,
    received_on: date | None,
) -> Row:
    """The PPK checked the full delivery and signs the BAST."""
    async with unit_of_work(db) as conn:
        order = await _locked(conn, order_id)
        domain.ensure_chosen_ppk(principal, order["opd_id"], order["ppk_id"])
        today = ctx.clock().astimezone(ctx.policy.calendar.timezone).date()
        return await _transition(
            conn,
            ctx,
            order,
            "receive",
            OrderReceived,
            Actor.of(principal),
            extra={"bast_number": bast_number, "received_on": received_on or today},
        )


async def dispute(
    db: Db, ctx: Context, principal: Principal, order_id: uuid.UUID, reason: str
) -> Row:
    """The delivery does not match: it goes back to the vendor, who ships again."""
    async with unit_of_work(db) as conn:
        order = await _locked(conn, order_id)
        domain.ensure_chosen_ppk(principal, order["opd_id"], order["ppk_id"])
        return await _transition(
            conn,
            ctx,
            order,
            "dispute",
            OrderDeliveryDisputed,
            Actor.of(principal),
            extra={"reason": reason},
        )


async def pay(
    db: Db, ctx: Context, principal: Principal, order_id: uuid.UUID, reference: str, amount: int
) -> Row:
    """The treasurer pays the agreed total after the BAST; the order is then complete."""
    async with unit_of_work(db) as conn:
        order = await _locked(conn, order_id)
        domain.ensure_treasurer(principal, order["opd_id"])
        domain.check_transition(OrderState(order["state"]), "pay")
        domain.check_payment(amount, order["total"])
        paid = await _transition(
            conn,
            ctx,
            order,
            "pay",
            OrderPaid,
            Actor.of(principal),
            extra={"payment_reference": reference, "amount": amount},
        )
        return await _transition(conn, ctx, paid, "complete", OrderCompleted, Actor.of(principal))


async def cancel(
    db: Db, ctx: Context, principal: Principal, order_id: uuid.UUID, reason: str
) -> Row:
    async with unit_of_work(db) as conn:
        order = await _locked(conn, order_id)
        domain.ensure_buyer(principal, order["opd_id"])
        return await _transition(
            conn,
            ctx,
            order,
            "cancel",
            OrderCancelled,
            Actor.of(principal),
            extra={"reason": reason},
        )
