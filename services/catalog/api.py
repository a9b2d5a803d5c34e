"""HTTP routes of the catalog: storefronts (etalase), products, curation, stock, public search.

Routes parse, authorise by role, call a command and return its aggregate; the domain errors
commands raise become problem+json through `ERRORS` (installed by `ServiceDefinition.errors`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from services.catalog import commands, stock, store
from services.catalog.domain import (
    NotEligible,
    NotFound,
    NotOwner,
    RuleViolation,
    StateConflict,
    search_words,
)
from services.catalog.schemas import (
    PUBLIC_VIEW_KEY,
    Approval,
    ClaimReview,
    EtalaseCreate,
    EtalaseOut,
    EtalasePatch,
    ProductCreate,
    ProductHistory,
    ProductOut,
    ProductPage,
    ProductPatch,
    ProductPublic,
    Reasons,
    SearchPage,
    SearchParams,
    StockSet,
    TakeDown,
    render_public_view,
    search_page_json,
)
from services.catalog.search import (
    SearchQuery,
    Sort,
    apply_collection,
    continue_after,
    cursor_parts,
)
from shared.auth import (
    MaybePrincipal,
    Principal,
    Role,
    forbidden,
    optional_principal,
    requires_role,
)
from shared.contracts.catalog import EtalaseState, ProductState
from shared.cursor import decode_cursor, encode_cursor
from shared.db import Connection
from shared.problems import ErrorMapper, Problem, field_error
from shared.types import single_line

router = APIRouter()

Manager = Annotated[Principal, Depends(requires_role(Role.CATALOGUE_MANAGER))]
Vendor = Annotated[Principal, Depends(requires_role(Role.VENDOR))]
ManagerOrVendor = Annotated[Principal, Depends(requires_role(Role.CATALOGUE_MANAGER, Role.VENDOR))]
Reader = Annotated[
    Principal, Depends(requires_role(Role.CATALOGUE_MANAGER, Role.AUDITOR, Role.VENDOR))
]
READ_ALL = frozenset({Role.CATALOGUE_MANAGER, Role.AUDITOR})
MAX_QUERY_WORDS = 8


def _rule_problem(exc: RuleViolation) -> Problem:
    """403 for who the vendor is, 409 for the state of things, 422 for what was sent."""
    if isinstance(exc, NotEligible):
        status, title = 403, "Forbidden"
    elif isinstance(exc, StateConflict):
        status, title = 409, "Conflict"
    else:
        status, title = 422, "Unprocessable Content"
    return Problem(status, title, exc.detail, type_=f"catalog-rule-{exc.rule}", rule=exc.rule)


ERRORS: Mapping[type[Exception], ErrorMapper] = {
    RuleViolation: _rule_problem,
    NotFound: lambda exc: Problem(404, "Not Found", str(exc)),
    NotOwner: lambda exc: forbidden(str(exc)),
}


def _today(request: Request) -> date:
    return commands.local_today(request.app.state.settings.timezone)


def _can_read_all(principal: Principal | None) -> bool:
    return principal is not None and principal.role in READ_ALL


def _sees_everything(principal: Principal | None, vendor_id: uuid.UUID) -> bool:
    """Manager, auditor and the owning vendor see claims under review; others verified ones."""
    return _can_read_all(principal) or (principal is not None and principal.is_vendor(vendor_id))


# --------------------------------------------------------------------------- storefronts


@router.get("/etalase", response_model=list[EtalaseOut], tags=["etalase"])
async def list_etalase(request: Request, principal: MaybePrincipal) -> Any:
    """Storefronts: the open ones for everybody, all of them for the manager and auditor."""
    states = list(EtalaseState) if _can_read_all(principal) else [EtalaseState.OPEN]
    async with request.app.state.pool.acquire() as conn:
        return await store.list_etalase(conn, states)


@router.get("/etalase/{etalase_id}", response_model=EtalaseOut, tags=["etalase"])
async def get_etalase(request: Request, etalase_id: uuid.UUID, principal: MaybePrincipal) -> Any:
    async with request.app.state.pool.acquire() as conn:
        etalase = await store.get_etalase(conn, etalase_id)
    if etalase is None or (etalase.state is not EtalaseState.OPEN and not _can_read_all(principal)):
        raise NotFound(f"storefront {etalase_id} does not exist")
    return etalase


@router.post("/etalase", response_model=EtalaseOut, status_code=201, tags=["etalase"])
async def create_etalase(request: Request, body: EtalaseCreate, principal: Manager) -> Any:
    return await commands.create_etalase(
        request.app.state.pool,
        request.app.state.outbox,
        body.model_dump(mode="json"),
        principal.subject,
    )


@router.patch("/etalase/{etalase_id}", response_model=EtalaseOut, tags=["etalase"])
async def update_etalase(
    request: Request, etalase_id: uuid.UUID, body: EtalasePatch, principal: Manager
) -> Any:
    changes = body.model_dump(mode="json", exclude_unset=True)
    return await commands.update_etalase(
        request.app.state.pool, request.app.state.outbox, etalase_id, changes, principal.subject
    )


@router.post("/etalase/{etalase_id}/open", response_model=EtalaseOut, tags=["etalase"])
async def open_etalase(request: Request, etalase_id: uuid.UUID, principal: Manager) -> Any:
    return await commands.set_etalase_open(
        request.app.state.pool, request.app.state.outbox, etalase_id, True, principal.subject
    )


@router.post("/etalase/{etalase_id}/close", response_model=EtalaseOut, tags=["etalase"])
async def close_etalase(request: Request, etalase_id: uuid.UUID, principal: Manager) -> Any:
    return await commands.set_etalase_open(
        request.app.state.pool, request.app.state.outbox, etalase_id, False, principal.subject
    )


# --------------------------------------------------------------------------- products


@router.post("/products", response_model=ProductOut, status_code=201, tags=["products"])
async def submit_product(request: Request, body: ProductCreate, principal: Vendor) -> Any:
    """A verified vendor offers a product; it is listed after curation."""
    return await commands.submit_product(
        request.app.state.pool, request.app.state.outbox, principal, body.model_dump()
    )


@router.get("/products", response_model=ProductPage, tags=["products"])
async def list_products(
    request: Request,
    principal: Reader,
    state: ProductState | None = None,
    etalase_id: uuid.UUID | None = None,
    vendor_id: uuid.UUID | None = None,
    after: Annotated[uuid.UUID | None, Query(description="last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Every product in any state (curation queue, audit); a vendor sees only its own."""
    if principal.role is Role.VENDOR:
        vendor_id = commands.principal_vendor_id(principal)
        if vendor_id is None:
            raise forbidden("the token's vendor_id is not a known vendor")
    async with request.app.state.pool.acquire() as conn:
        products = await store.list_products(
            conn,
            vendor_id=vendor_id,
            etalase_id=etalase_id,
            state=state,
            after=after,
            limit=limit + 1,
        )
    more = len(products) > limit
    products = products[:limit]
    return {"items": products, "next_cursor": str(products[-1].id) if more else None}


@router.get("/products/{product_id}", response_model=ProductOut | ProductPublic, tags=["products"])
async def get_product(request: Request, product_id: uuid.UUID, principal: MaybePrincipal) -> Any:
    """A listed product for everybody (verified claims only); any product, with its claims
    under review, for the manager, auditor and its vendor.

    Whether an unlisted product exists is not revealed to others (404).
    """
    async with request.app.state.pool.acquire() as conn:
        found = await store.get_public_view(conn, product_id, PUBLIC_VIEW_KEY)
        if found is None:
            raise NotFound(f"product {product_id} does not exist")
        sees_everything = _sees_everything(principal, found.vendor_id)
        if not (sees_everything or found.public):
            raise NotFound(f"product {product_id} does not exist")
        if found.view is not None and not sees_everything:
            # The stored rendering of `ProductPublic`, handed out as it is.
            return Response(found.view, media_type="application/json")
        product = await store.get_product(conn, product_id)
    if product is None:
        raise NotFound(f"product {product_id} does not exist")
    if sees_everything:
        return ProductOut.model_validate(product.model_dump())
    # Not rendered yet by this version of the view: the same rendering, made now.
    return Response(render_public_view(product), media_type="application/json")


@router.get("/products/{product_id}/history", response_model=ProductHistory, tags=["products"])
async def product_history(
    request: Request, product_id: uuid.UUID, principal: Reader
) -> dict[str, Any]:
    """Revisions (with their review decisions) and the price history."""
    async with request.app.state.pool.acquire() as conn:
        product = await store.get_product(conn, product_id)
        if product is None:
            raise NotFound(f"product {product_id} does not exist")
        commands.ensure_owner(principal, product)
        return {
            "revisions": await store.revisions(conn, product_id),
            "prices": await store.price_history(conn, product_id),
        }


@router.patch("/products/{product_id}", response_model=ProductOut, tags=["products"])
async def edit_product(
    request: Request, product_id: uuid.UUID, body: ProductPatch, principal: Vendor
) -> Any:
    """Change price or specification: a new revision, reviewed again if the storefront says so."""
    changes = body.model_dump(exclude_unset=True)
    return await commands.edit_product(
        request.app.state.pool, request.app.state.outbox, principal, product_id, changes
    )


@router.post("/products/{product_id}/approve", response_model=ProductOut, tags=["curation"])
async def approve_product(
    request: Request,
    product_id: uuid.UUID,
    principal: Manager,
    body: Annotated[Approval | None, Body()] = None,
) -> Any:
    """List (tayang) a submitted product, or make a listed product's pending change live.

    Claims (TKDN, BMP, PDN, SNI) stay pending unless `claims` decides them here or later.
    """
    return await commands.review_product(
        request.app.state.pool,
        request.app.state.outbox,
        principal,
        product_id,
        approve=True,
        claims=body.claims.decided() if body else None,
        today=_today(request),
    )


@router.post("/products/{product_id}/reject", response_model=ProductOut, tags=["curation"])
async def reject_product(
    request: Request, product_id: uuid.UUID, body: Reasons, principal: Manager
) -> Any:
    """Reject a submitted product, or a listed product's pending change, with reasons."""
    return await commands.review_product(
        request.app.state.pool,
        request.app.state.outbox,
        principal,
        product_id,
        approve=False,
        reasons=body.reasons,
        today=_today(request),
    )


@router.post("/products/{product_id}/claims", response_model=ProductOut, tags=["curation"])
async def review_claims(
    request: Request, product_id: uuid.UUID, body: ClaimReview, principal: Manager
) -> Any:
    """Verify, refuse or postpone (pending) the product's TKDN, BMP, PDN and SNI claims."""
    return await commands.review_claims(
        request.app.state.pool,
        request.app.state.outbox,
        principal,
        product_id,
        body.decided(),
        body.reason,
        _today(request),
    )


@router.post("/products/{product_id}/take-down", response_model=ProductOut, tags=["curation"])
async def take_down_product(
    request: Request, product_id: uuid.UUID, body: TakeDown, principal: ManagerOrVendor
) -> Any:
    """Turun tayang, by the manager or by the product's own vendor."""
    return await commands.take_down_product(
        request.app.state.pool, request.app.state.outbox, principal, product_id, body.reason
    )


@router.post("/products/{product_id}/relist", response_model=ProductOut, tags=["curation"])
async def relist_product(
    request: Request, product_id: uuid.UUID, principal: ManagerOrVendor
) -> Any:
    """Send a taken-down or rejected product back to review."""
    return await commands.relist_product(
        request.app.state.pool, request.app.state.outbox, principal, product_id
    )


@router.put("/products/{product_id}/stock", response_model=ProductOut, tags=["stock"])
async def set_stock(
    request: Request, product_id: uuid.UUID, body: StockSet, principal: Vendor
) -> Any:
    return await stock.set_stock(
        request.app.state.pool, request.app.state.outbox, principal, product_id, body.stock
    )


# --------------------------------------------------------------------------- search


async def _with_collection(conn: Connection, query: SearchQuery, code: str) -> SearchQuery:
    if query.etalase_id is None:
        raise field_error("collection", "a collection belongs to a storefront: give etalase_id")
    etalase = await store.get_etalase(conn, query.etalase_id)
    found = [c for c in (etalase.collections if etalase else []) if c.code == code]
    if not found:
        raise field_error("collection", f"the storefront has no collection {code}")
    return apply_collection(query, found[0])


@router.get(
    "/search",
    response_model=SearchPage,
    tags=["search"],
    dependencies=[Depends(optional_principal)],
    openapi_extra=SearchParams.openapi(),
)
async def search(
    request: Request, params: Annotated[SearchParams, Depends(SearchParams.from_request)]
) -> Response:
    """Public search over listed products of open storefronts; no token needed.

    Only verified claims are shown and filtered on.
    """
    q, limit, sort, cursor = params.q, params.limit, params.sort, params.cursor
    if q is not None:
        try:
            single_line(q)
        except ValueError as exc:
            raise field_error("q", str(exc)) from None
        if not 0 < len(search_words(q)) <= MAX_QUERY_WORDS:
            raise field_error("q", f"give 1 to {MAX_QUERY_WORDS} words of letters or digits")
    query = SearchQuery(
        text=(q.strip() or None) if q else None,
        etalase_id=params.etalase_id,
        category=params.category,
        pdn=params.pdn,
        min_tkdn_bmp=params.min_tkdn_bmp,
        min_price=params.min_price,
        max_price=params.max_price,
        umkm_koperasi=params.umkm_koperasi,
        local_vendor=params.local_vendor,
        region=params.region,
        in_stock=params.in_stock,
        sort=sort,
        limit=limit,
    )
    async with request.app.state.pool.acquire() as conn:
        if params.collection is not None:
            query = await _with_collection(conn, query, params.collection)
        if cursor is not None:
            query = decode_cursor(cursor, partial(continue_after, query))
        hits = await store.search_products(conn, query, PUBLIC_VIEW_KEY)
        more = len(hits) > limit
        hits = hits[:limit]
        views = await _views(conn, hits)
    next_cursor = None
    if more:
        last = hits[-1]
        next_cursor = encode_cursor(cursor_parts(query, last.sort_key or 0, last.id))
    scored = query.text is not None and sort is Sort.RELEVANCE
    # The page is the products' stored renderings (`SearchPage` documents it): no row is decoded
    # into a product, validated or serialised again here.
    page = search_page_json(
        [(view, hit.sort_key if scored else None) for hit, view in zip(hits, views, strict=True)],
        next_cursor,
    )
    return Response(page, media_type="application/json")


async def _views(conn: Connection, hits: list[store.Hit]) -> list[str]:
    """The hits' stored public views; a product not rendered yet by this version of the view
    (until the start-up job reaches it) is rendered from its row."""
    stored = [hit.view for hit in hits if hit.view is not None]
    if len(stored) == len(hits):
        return stored
    missing = [hit.id for hit in hits if hit.view is None]
    rendered = {p.id: render_public_view(p) for p in await store.get_products(conn, missing)}
    return [hit.view or rendered[hit.id] for hit in hits]
