"""HTTP routes of the vendors service: parse, authorise, call a command; `ERRORS` maps the
domain's refusals to problem+json.

Roles: a vendor (penyedia) registers under the `vendor_id` its token carries and then reads and
updates only that registration and submits its KSWP renewals; the catalogue manager verifies,
rejects, suspends, reinstates, decides KSWP renewals and keeps the NPWP blacklist; auditors read
everything. Other roles get 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from services.vendors import store
from services.vendors.commands import VendorCommands
from services.vendors.domain import (
    MAX_KBLI_CODES,
    AlreadyRegistered,
    BusinessForm,
    Contact,
    Declaration,
    Documents,
    DuplicateNib,
    IllegalTransition,
    IsoDate,
    Kbli,
    KswpNotValid,
    KswpRenewalRequired,
    KswpStatus,
    MissingDocuments,
    Nib,
    NoKswpRenewal,
    NpwpBlacklisted,
    NpwpText,
    Profile,
    Rupiah,
    Vendor,
    VendorError,
    VendorNotFound,
    canonical_npwp,
)
from shared.auth import Principal, Role, ensure_vendor_owner, forbidden, requires_role
from shared.contracts.vendors import BusinessScale, KbliEdition, VendorSnapshot, VendorState
from shared.cursor import MAX_CURSOR_LENGTH, decode_cursor, encode_cursor
from shared.problems import ErrorMapper, Problem, field_error, request_part_error
from shared.query import QueryModel
from shared.regions import AddressRegionCode
from shared.types import Flag, Reason, SingleLine, Text, Url

M = TypeVar("M", bound=BaseModel)

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
    """The scheduled job (also run at start-up): corrected snapshots, suspension ends and KSWP
    expiry, as of today in the city."""
    await commands_for(app).run_daily_checks(today_for(app))


# ------------------------------------------------------------------------------------ errors


def _missing_documents(exc: MissingDocuments) -> Problem:
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


# Every refusal of the domain and how the API answers it; the base class catches a rule added
# without its own entry, as a conflict.
ERRORS: Mapping[type[Exception], ErrorMapper] = {
    VendorNotFound: lambda exc: Problem(404, "Not Found", str(exc), type_="vendor-not-found"),
    AlreadyRegistered: lambda exc: Problem(
        409,
        "Already registered",
        str(exc),
        type_="vendor-already-registered",
        vendor_id=str(exc.vendor_id),
    ),
    DuplicateNib: lambda exc: Problem(
        409,
        "NIB already registered",
        str(exc),
        type_="duplicate-nib",
        errors=[{"field": "nib", "reason": f"already registered as {exc.existing}"}],
        existing_vendor_id=str(exc.existing),
    ),
    NpwpBlacklisted: lambda exc: Problem(
        422,
        "NPWP blacklisted",
        str(exc),
        type_="npwp-blacklisted",
        errors=[{"field": "npwp", "reason": f"blacklisted: {exc.reason}"}],
        reason=exc.reason,
    ),
    MissingDocuments: _missing_documents,
    IllegalTransition: lambda exc: Problem(
        409,
        "Illegal transition",
        str(exc),
        type_="illegal-transition",
        current_state=exc.state.value,
        action=exc.action.value,
    ),
    KswpNotValid: lambda exc: Problem(
        409, "Tax compliance not valid", str(exc), type_="kswp-not-valid"
    ),
    KswpRenewalRequired: lambda exc: Problem(
        422,
        "KSWP renewal required",
        str(exc),
        type_="kswp-renewal-required",
        errors=[{"field": "documents.kswp_certificate", "reason": str(exc)}],
    ),
    NoKswpRenewal: lambda exc: Problem(409, "No KSWP renewal", str(exc), type_="no-kswp-renewal"),
    VendorError: lambda exc: Problem(409, "Conflict", str(exc), type_="vendor-rule"),
}


# ------------------------------------------------------------------------------------ bodies


def _domain(model: type[M], data: dict[str, Any]) -> M:
    """The domain model of a body: a cross-field rule it breaks is a 422 naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise request_part_error(exc, "body") from None


class DeclarationBody(BaseModel):
    """What a vendor declares about itself. The KSWP is not part of it: a new one is a KSWP
    renewal (POST /vendors/{vendor_id}/kswp-renewal) that the catalogue manager accepts."""

    model_config = ConfigDict(extra="forbid")

    legal_name: Text
    legal_form: BusinessForm
    nib: Nib
    npwp: NpwpText = Field(
        description="16 digits; an entity's old 15-digit NPWP (also as 99.999.999.9-999.999) "
        "is accepted and stored as 0 + 15 digits; an individual's NPWP is the NIK"
    )
    kbli: list[Kbli] = Field(min_length=1, max_length=MAX_KBLI_CODES)
    kbli_editions: dict[Kbli, KbliEdition] = Field(
        default_factory=dict,
        max_length=MAX_KBLI_CODES,
        description='edition of codes not from KBLI 2025, e.g. {"13134": "2020"}',
    )
    address: Text
    region_code: AddressRegionCode
    capital: Rupiah | None = None
    annual_sales: Rupiah | None = None
    is_pkp: Flag = Field(description="PKP: registered to charge VAT (Pengusaha Kena Pajak)")
    contact: Contact
    documents: Documents = Field(default_factory=dict)

    @field_validator("kbli_editions")
    @classmethod
    def _editions_of_listed_codes(
        cls, editions: dict[str, KbliEdition], info: ValidationInfo
    ) -> dict[str, KbliEdition]:
        stray = sorted(set(editions) - set(info.data.get("kbli", editions)))
        if stray:
            raise ValueError(f"editions given for codes not in kbli: {', '.join(stray)}")
        return editions

    def _fields(self) -> dict[str, Any]:
        fields = dict(vars(self))
        editions = fields.pop("kbli_editions")
        fields["kbli"] = [
            {"code": code, "edition": editions.get(code, KbliEdition.KBLI_2025)}
            for code in self.kbli
        ]
        return fields

    def declaration(self) -> Declaration:
        return _domain(Declaration, self._fields())


class RegistrationBody(DeclarationBody):
    """A registration: the declaration with the KSWP result the manager checks on verifying."""

    kswp_status: KswpStatus
    kswp_valid_until: IsoDate | None = None

    def profile(self) -> Profile:
        return _domain(Profile, self._fields())


class KswpRenewalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    valid_until: IsoDate = Field(description="the validity the new KSWP confirmation states")
    certificate: Url = Field(description="the KSWP confirmation document")


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reasons: list[Reason] = Field(min_length=1, max_length=20)


class SuspendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason
    until: IsoDate | None = Field(
        default=None, description="last day of the sanction; it ends on the next daily check"
    )


class BlacklistBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


# ------------------------------------------------------------------------------------ views


class KswpRenewalView(BaseModel):
    valid_until: date
    certificate: str
    submitted_at: datetime
    submitted_by: str


class VendorView(VendorSnapshot):
    """A vendor as the API shows it: the snapshot its events carry, with the declared legal
    form (PT Perorangan included), address, contact, documents and KSWP status beside it."""

    legal_form: BusinessForm  # type: ignore[assignment]
    kbli_editions: dict[str, KbliEdition]
    address: str
    contact: Contact
    documents: dict[str, str]
    kswp_status: KswpStatus
    kswp_renewal: KswpRenewalView | None = Field(description="awaiting the catalogue manager")
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
    history: list[HistoryEntry] = Field(
        description=f"the latest {store.LATEST_HISTORY} events, oldest first; every event: "
        "GET /vendors/{vendor_id}/history"
    )


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at end")


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


def _view_fields(request: Request, vendor: Vendor) -> dict[str, Any]:
    p = vendor.profile
    renewal = vendor.kswp_renewal
    return {
        **vars(vendor.snapshot(request.app.state.settings.city_region_code)),
        "legal_form": p.legal_form,
        "address": p.address,
        "contact": p.contact,
        "documents": {kind.value: url for kind, url in p.documents.items()},
        "kswp_status": p.kswp_status,
        "kswp_renewal": renewal.model_dump() if renewal is not None else None,
        "suspended_until": vendor.suspended_until,
        "registered_at": vendor.registered_at,
        "updated_at": vendor.updated_at,
    }


def _view(request: Request, vendor: Vendor) -> VendorView:
    return VendorView(**_view_fields(request, vendor))


def _cursor_key(key: list[str]) -> tuple[datetime, UUID]:
    registered_at, vendor_id = key  # ValueError unless exactly two
    return datetime.fromisoformat(registered_at), UUID(vendor_id)


# ------------------------------------------------------------------------------------ routes


def _registration_id(principal: Principal) -> UUID:
    """The vendor id is assigned by the identity provider and carried in the token."""
    try:
        return UUID(principal.vendor_id or "")
    except ValueError:
        raise forbidden("the token's vendor_id must be a UUID to register under") from None


@router.post("/vendors", status_code=201, summary="Register (the vendor in the token)")
async def register(request: Request, body: RegistrationBody, principal: VendorCaller) -> VendorView:
    vendor_id = _registration_id(principal)
    command = commands_for(request.app).register(vendor_id, body.profile(), principal.subject)
    return _view(request, await command)


class VendorFilters(QueryModel):
    """The query string of `GET /vendors`."""

    state: VendorState | None = None
    scale: BusinessScale | None = None
    koperasi: bool | None = None
    local: bool | None = None
    kbli: Annotated[str, Field(pattern=r"^[0-9]{5}$")] | None = None
    kbli_edition: KbliEdition | None = Field(
        None, description="codes of this KBLI edition (with `kbli`: that code)"
    )
    q: Annotated[str, Field(max_length=100), SingleLine] | None = Field(
        None, description="text in the legal name"
    )
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str, Field(max_length=MAX_CURSOR_LENGTH)] | None = None


@router.get(
    "/vendors",
    summary="List and filter vendors, keyset-paginated",
    openapi_extra=VendorFilters.openapi(),
)
async def list_vendors(
    request: Request,
    _: Overseer,
    query: Annotated[VendorFilters, Depends(VendorFilters.from_request)],
) -> VendorPage:
    where = store.VendorFilter(
        state=query.state,
        scale=query.scale,
        koperasi=query.koperasi,
        local=query.local,
        local_region=request.app.state.settings.city_region_code,
        kbli=query.kbli,
        kbli_edition=query.kbli_edition,
        text=query.q,
    )
    cursor, limit = query.cursor, query.limit
    after = decode_cursor(cursor, _cursor_key) if cursor else None
    async with request.app.state.pool.acquire() as conn:
        rows = await store.list_vendors(conn, where, after=after, limit=limit + 1)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor([page[-1].registered_at.isoformat(), str(page[-1].vendor_id)])
    return VendorPage(items=[_view(request, v) for v in page], next_cursor=next_cursor)


@router.get("/vendors/{vendor_id}", summary="One vendor with its latest history")
async def get_vendor(request: Request, vendor_id: UUID, principal: Reader) -> VendorDetail:
    ensure_vendor_owner(principal, vendor_id)
    async with request.app.state.pool.acquire() as conn:
        vendor = await store.get_vendor(conn, vendor_id)
        if vendor is None:
            raise VendorNotFound(vendor_id)
        history = await store.latest_history(conn, vendor_id)
    return VendorDetail(
        **_view_fields(request, vendor),
        history=[HistoryEntry.model_validate(h) for h in history],
    )


def _version_key(parts: list[str]) -> int:
    (version,) = parts  # ValueError unless exactly one
    after = int(version)
    if not 0 <= after < 2**31:  # versions are PostgreSQL integers
        raise ValueError("version out of range")
    return after


@router.get("/vendors/{vendor_id}/history", summary="Every event of one vendor, oldest first")
async def vendor_history(
    request: Request,
    vendor_id: UUID,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)] = None,
) -> HistoryPage:
    ensure_vendor_owner(principal, vendor_id)
    after = decode_cursor(cursor, _version_key) if cursor else 0
    async with request.app.state.pool.acquire() as conn:
        rows = await store.history(conn, vendor_id, after, limit + 1)
        if not rows and await store.get_vendor(conn, vendor_id) is None:
            raise VendorNotFound(vendor_id)
    page = rows[:limit]
    next_cursor = encode_cursor([str(page[-1]["version"])]) if len(rows) > limit else None
    return HistoryPage(
        items=[HistoryEntry.model_validate(h) for h in page], next_cursor=next_cursor
    )


@router.put("/vendors/{vendor_id}", summary="Replace what the vendor declares")
async def update_profile(
    request: Request, vendor_id: UUID, body: DeclarationBody, principal: VendorCaller
) -> VendorView:
    ensure_vendor_owner(principal, vendor_id)
    command = commands_for(request.app).update_profile(
        vendor_id, body.declaration(), principal.subject, today_for(request.app)
    )
    return _view(request, await command)


@router.post("/vendors/{vendor_id}/verify", summary="Verify a submitted registration")
async def verify(request: Request, vendor_id: UUID, principal: Manager) -> VendorView:
    command = commands_for(request.app).verify(vendor_id, principal.subject, today_for(request.app))
    return _view(request, await command)


@router.post("/vendors/{vendor_id}/reject", summary="Reject a submitted registration")
async def reject(
    request: Request, vendor_id: UUID, body: RejectBody, principal: Manager
) -> VendorView:
    command = commands_for(request.app).reject(vendor_id, body.reasons, principal.subject)
    return _view(request, await command)


@router.post("/vendors/{vendor_id}/suspend", summary="Sanction a verified vendor")
async def suspend(
    request: Request, vendor_id: UUID, body: SuspendBody, principal: Manager
) -> VendorView:
    if body.until is not None and body.until < today_for(request.app):
        raise field_error("until", "the end of a sanction cannot lie in the past")
    command = commands_for(request.app).suspend(
        vendor_id, body.reason, body.until, principal.subject
    )
    return _view(request, await command)


@router.post("/vendors/{vendor_id}/reinstate", summary="End a suspension")
async def reinstate(request: Request, vendor_id: UUID, principal: Manager) -> VendorView:
    command = commands_for(request.app).reinstate(
        vendor_id, principal.subject, today_for(request.app)
    )
    return _view(request, await command)


@router.post(
    "/vendors/{vendor_id}/kswp-renewal",
    summary="Submit a new KSWP confirmation (the vendor's own; the manager accepts it)",
)
async def submit_kswp_renewal(
    request: Request, vendor_id: UUID, body: KswpRenewalBody, principal: VendorCaller
) -> VendorView:
    ensure_vendor_owner(principal, vendor_id)
    if body.valid_until < today_for(request.app):
        raise field_error("valid_until", "a renewal's validity cannot lie in the past")
    command = commands_for(request.app).submit_kswp_renewal(
        vendor_id, body.valid_until, body.certificate, principal.subject
    )
    return _view(request, await command)


@router.post(
    "/vendors/{vendor_id}/kswp-renewal/accept",
    summary="Accept the pending KSWP renewal; an expired vendor may sell again",
)
async def accept_kswp_renewal(request: Request, vendor_id: UUID, principal: Manager) -> VendorView:
    command = commands_for(request.app).accept_kswp_renewal(
        vendor_id, principal.subject, today_for(request.app)
    )
    return _view(request, await command)


@router.post("/vendors/{vendor_id}/kswp-renewal/reject", summary="Refuse the pending KSWP renewal")
async def reject_kswp_renewal(
    request: Request, vendor_id: UUID, body: RejectBody, principal: Manager
) -> VendorView:
    command = commands_for(request.app).reject_kswp_renewal(
        vendor_id, body.reasons, principal.subject
    )
    return _view(request, await command)


def _npwp_path(npwp: str) -> str:
    try:
        return canonical_npwp(npwp)
    except ValueError as exc:
        raise field_error("npwp", str(exc)) from None


@router.get("/vendor-blacklist", summary="NPWPs barred from registering")
async def list_blacklist(request: Request, _: Overseer) -> BlacklistPage:
    async with request.app.state.pool.acquire() as conn:
        entries = await store.blacklist_all(conn)
    return BlacklistPage(items=[BlacklistEntry.model_validate(e) for e in entries])


@router.put(
    "/vendor-blacklist/{npwp}",
    status_code=204,
    summary="Blacklist an NPWP (either form; stored as 16 digits)",
)
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
