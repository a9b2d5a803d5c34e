"""HTTP routes of the vendors service: parse, authorise, call a command, answer problem+json.

Roles: a vendor (penyedia) registers under the `vendor_id` its token carries and then reads and
updates only that registration; the catalogue manager verifies, rejects, suspends, reinstates
and keeps the NPWP blacklist; auditors read everything. Other roles get 403.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable
from datetime import date, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.vendors import store
from services.vendors.commands import VendorCommands
from services.vendors.domain import (
    AlreadyRegistered,
    DuplicateNib,
    IllegalTransition,
    IsoDate,
    KswpNotValid,
    MissingDocuments,
    NpwpBlacklisted,
    Profile,
    Text,
    Vendor,
    VendorError,
    VendorNotFound,
    check_no_nul,
    classify,
    normalise_npwp,
)
from shared.auth import Principal, Role, ensure_vendor_owner, forbidden, requires_role
from shared.contracts.vendors import BusinessScale, VendorState
from shared.problems import Problem, field_error

T = TypeVar("T")

router = APIRouter(tags=["vendors"])

Manager = Annotated[Principal, Depends(requires_role(Role.CATALOGUE_MANAGER))]
Reader = Annotated[
    Principal, Depends(requires_role(Role.CATALOGUE_MANAGER, Role.AUDITOR, Role.VENDOR))
]
Overseer = Annotated[Principal, Depends(requires_role(Role.CATALOGUE_MANAGER, Role.AUDITOR))]
VendorCaller = Annotated[Principal, Depends(requires_role(Role.VENDOR))]


# ------------------------------------------------------------------------------------ wiring


def commands_for(app: FastAPI) -> VendorCommands:
    return VendorCommands(app.state.pool, app.state.outbox, app.state.settings.city_region_code)


def today_for(app: FastAPI) -> date:
    """Dates of KSWP validity and sanctions are calendar days in the city's time zone."""
    return datetime.now(ZoneInfo(app.state.settings.timezone)).date()


async def run_daily_checks(app: FastAPI) -> None:
    """The scheduled job: suspension ends and KSWP expiry, as of today in the city."""
    await commands_for(app).run_daily_checks(today_for(app))


# ------------------------------------------------------------------------------------ errors


def _problem(exc: VendorError) -> Problem:
    match exc:
        case VendorNotFound():
            return Problem(404, "Not Found", str(exc), type_="vendor-not-found")
        case AlreadyRegistered():
            return Problem(
                409,
                "Already registered",
                str(exc),
                type_="vendor-already-registered",
                vendor_id=str(exc.vendor_id),
            )
        case DuplicateNib():
            return Problem(
                409,
                "NIB already registered",
                str(exc),
                type_="duplicate-nib",
                errors=[{"field": "nib", "reason": f"already registered as {exc.existing}"}],
                existing_vendor_id=str(exc.existing),
            )
        case NpwpBlacklisted():
            return Problem(
                422,
                "NPWP blacklisted",
                str(exc),
                type_="npwp-blacklisted",
                errors=[{"field": "npwp", "reason": f"blacklisted: {exc.reason}"}],
                reason=exc.reason,
            )
        case MissingDocuments():
            return Problem(
                422,
                "Missing documents",
                str(exc),
                type_="missing-documents",
                errors=[
                    {"field": f"documents.{k.value}", "reason": "required for this registration"}
                    for k in exc.kinds
                ],
                missing_documents=[k.value for k in exc.kinds],
            )
        case IllegalTransition():
            return Problem(
                409,
                "Illegal transition",
                str(exc),
                type_="illegal-transition",
                current_state=exc.state.value,
                action=exc.action.value,
            )
        case KswpNotValid():
            return Problem(409, "Tax compliance not valid", str(exc), type_="kswp-not-valid")
        case _:
            # a rule added without its own mapping still refuses, as a conflict
            return Problem(409, "Conflict", str(exc), type_="vendor-rule")


async def _run(call: Awaitable[T]) -> T:
    try:
        return await call
    except VendorError as exc:
        raise _problem(exc) from None


# ------------------------------------------------------------------------------------ views


class VendorView(Profile):
    """A vendor as the API shows it: the declared profile, its state and the derived flags."""

    vendor_id: UUID
    state: VendorState
    version: int
    scale: BusinessScale
    is_umk: bool
    is_koperasi: bool
    is_local: bool
    suspended_until: date | None
    registered_at: datetime
    updated_at: datetime


class HistoryEntry(BaseModel):
    """One event the vendor went through; `detail` holds its reasons or changed fields."""

    version: int
    event: str
    from_state: VendorState | None
    to_state: VendorState
    actor: str
    detail: dict[str, Any]
    occurred_at: datetime


class VendorDetail(VendorView):
    history: list[HistoryEntry]


class VendorPage(BaseModel):
    items: list[VendorView]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at end")


class BlacklistEntry(BaseModel):
    npwp: str
    reason: str
    added_by: str
    added_at: datetime


class BlacklistPage(BaseModel):
    items: list[BlacklistEntry]


def _view(request: Request, vendor: Vendor) -> VendorView:
    c = classify(vendor.profile, request.app.state.settings.city_region_code)
    return VendorView(
        **vendor.profile.model_dump(),
        vendor_id=vendor.vendor_id,
        state=vendor.state,
        version=vendor.version,
        scale=c.scale,
        is_umk=c.is_umk,
        is_koperasi=c.is_koperasi,
        is_local=c.is_local,
        suspended_until=vendor.suspended_until,
        registered_at=vendor.registered_at,
        updated_at=vendor.updated_at,
    )


def _encode_cursor(vendor: Vendor) -> str:
    raw = json.dumps([vendor.registered_at.isoformat(), str(vendor.vendor_id)])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        registered_at, vendor_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(registered_at), UUID(vendor_id)
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise field_error("cursor", "not a cursor returned by this listing") from None


# ------------------------------------------------------------------------------------ bodies


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reasons: list[Text] = Field(min_length=1, max_length=20)


class SuspendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text
    until: IsoDate | None = Field(
        default=None, description="last day of the sanction; it ends on the next daily check"
    )


class BlacklistBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text


# ------------------------------------------------------------------------------------ routes


def _registration_id(principal: Principal) -> UUID:
    """The vendor id is assigned by the identity provider and carried in the token."""
    try:
        return UUID(principal.vendor_id or "")
    except ValueError:
        raise forbidden("the token's vendor_id must be a UUID to register under") from None


@router.post("/vendors", status_code=201, summary="Register (the vendor in the token)")
async def register(request: Request, body: Profile, principal: VendorCaller) -> VendorView:
    vendor_id = _registration_id(principal)
    vendor = await _run(commands_for(request.app).register(vendor_id, body, principal.subject))
    return _view(request, vendor)


@router.get("/vendors", summary="List and filter vendors, keyset-paginated")
async def list_vendors(
    request: Request,
    _: Overseer,
    state: VendorState | None = None,
    scale: BusinessScale | None = None,
    koperasi: bool | None = None,
    local: bool | None = None,
    kbli: Annotated[str | None, Query(pattern=r"^[0-9]{5}$")] = None,
    q: Annotated[str | None, Query(max_length=100, description="text in the legal name")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> VendorPage:
    if q is not None:
        try:
            check_no_nul(q)
        except ValueError as exc:
            raise field_error("q", str(exc)) from None
    where = store.VendorFilter(
        state=state,
        scale=scale,
        koperasi=koperasi,
        local=local,
        local_region=request.app.state.settings.city_region_code,
        kbli=kbli,
        text=q,
    )
    after = _decode_cursor(cursor) if cursor else None
    async with request.app.state.pool.acquire() as conn:
        rows = await store.list_vendors(conn, where, after=after, limit=limit + 1)
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1]) if len(rows) > limit else None
    return VendorPage(items=[_view(request, v) for v in page], next_cursor=next_cursor)


@router.get("/vendors/{vendor_id}", summary="One vendor with its history")
async def get_vendor(request: Request, vendor_id: UUID, principal: Reader) -> VendorDetail:
    ensure_vendor_owner(principal, vendor_id)
    async with request.app.state.pool.acquire() as conn:
        vendor = await store.get_vendor(conn, vendor_id)
        if vendor is None:
            raise _problem(VendorNotFound(vendor_id))
        history = await store.history(conn, vendor_id)
    return VendorDetail(
        **_view(request, vendor).model_dump(),
        history=[HistoryEntry.model_validate(h) for h in history],
    )


@router.put("/vendors/{vendor_id}", summary="Replace the vendor's profile")
async def update_profile(
    request: Request, vendor_id: UUID, body: Profile, principal: VendorCaller
) -> VendorView:
    ensure_vendor_owner(principal, vendor_id)
    command = commands_for(request.app).update_profile(
        vendor_id, body, principal.subject, today_for(request.app)
    )
    return _view(request, await _run(command))


@router.post("/vendors/{vendor_id}/verify", summary="Verify a submitted registration")
async def verify(request: Request, vendor_id: UUID, principal: Manager) -> VendorView:
    command = commands_for(request.app).verify(vendor_id, principal.subject, today_for(request.app))
    return _view(request, await _run(command))


@router.post("/vendors/{vendor_id}/reject", summary="Reject a submitted registration")
async def reject(
    request: Request, vendor_id: UUID, body: RejectBody, principal: Manager
) -> VendorView:
    command = commands_for(request.app).reject(vendor_id, body.reasons, principal.subject)
    return _view(request, await _run(command))


@router.post("/vendors/{vendor_id}/suspend", summary="Sanction a verified vendor")
async def suspend(
    request: Request, vendor_id: UUID, body: SuspendBody, principal: Manager
) -> VendorView:
    if body.until is not None and body.until < today_for(request.app):
        raise field_error("until", "the end of a sanction cannot lie in the past")
    command = commands_for(request.app).suspend(
        vendor_id, body.reason, body.until, principal.subject
    )
    return _view(request, await _run(command))


@router.post("/vendors/{vendor_id}/reinstate", summary="End a suspension")
async def reinstate(request: Request, vendor_id: UUID, principal: Manager) -> VendorView:
    command = commands_for(request.app).reinstate(
        vendor_id, principal.subject, today_for(request.app)
    )
    return _view(request, await _run(command))


def _npwp_path(npwp: str) -> str:
    try:
        return normalise_npwp(npwp)
    except ValueError as exc:
        raise field_error("npwp", str(exc)) from None


@router.get("/vendor-blacklist", summary="NPWPs barred from registering")
async def list_blacklist(request: Request, _: Overseer) -> BlacklistPage:
    async with request.app.state.pool.acquire() as conn:
        entries = await store.blacklist_all(conn)
    return BlacklistPage(items=[BlacklistEntry.model_validate(e) for e in entries])


@router.put("/vendor-blacklist/{npwp}", status_code=204, summary="Blacklist an NPWP")
async def add_to_blacklist(
    request: Request, npwp: str, body: BlacklistBody, principal: Manager
) -> Response:
    await commands_for(request.app).blacklist(_npwp_path(npwp), body.reason, principal.subject)
    return Response(status_code=204)


@router.delete("/vendor-blacklist/{npwp}", status_code=204, summary="Lift a blacklisting")
async def remove_from_blacklist(request: Request, npwp: str, _: Manager) -> Response:
    if not await commands_for(request.app).unblacklist(_npwp_path(npwp)):
        raise Problem(404, "Not Found", f"NPWP {npwp} is not blacklisted", type_="not-blacklisted")
    return Response(status_code=204)
