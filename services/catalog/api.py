"""HTTP routes of the catalog: storefronts (etalase), products, curation, stock, public search."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from services.catalog import commands, stock, store
from services.catalog.commands import NotFound
from services.catalog.domain import RuleViolation, search_words
from services.catalog.schemas import (
    MAX_RUPIAH,
    EtalaseCreate,
    EtalaseOut,
    EtalasePatch,
    ProductCreate,
    ProductHistory,
    ProductOut,
    ProductPage,
    ProductPatch,
    Reasons,
    SearchPage,
    StockSet,
    TakeDown,
)
from services.catalog.search import (
    SearchQuery,
    Sort,
    apply_collection,
    decode_cursor,
    encode_cursor,
)
from shared.auth import (
    MaybePrincipal,
    Principal,
    Role,
    ensure_vendor_owner,
    forbidden,
    optional_principal,
    requires_role,
)
from shared.contracts.catalog import CuratedCollection, EtalaseState, ProductState
from shared.db import Connection
from shared.problems import Problem, field_error, problem_response

router = APIRouter()

Manager = Annotated[Principal, Depends(requires_role(Role.CATALOGUE_MANAGER))]
Vendor = Annotated[Principal, Depends(requires_role(Role.VENDOR))]
ManagerOrVendor = Annotated[Principal, Depends(requires_role(Role.CATALOGUE_MANAGER, Role.VENDOR))]
Reader = Annotated[
    Principal, Depends(requires_role(Role.CATALOGUE_MANAGER, Role.AUDITOR, Role.VENDOR))
]
READ_ALL = frozenset({Role.CATALOGUE_MANAGER, Role.AUDITOR})
MAX_QUERY_WORDS = 8


@asynccontextmanager
async def transaction(request: Request) -> AsyncIterator[Connection]:
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        yield conn


def install_error_handlers(app: FastAPI) -> None:
    """Catalogue rule violations become problem+json naming the rule that refused the request."""

    @app.exception_handler(RuleViolation)
    async def _rule(request: Request, exc: RuleViolation) -> JSONResponse:
        titles = {403: "Forbidden", 409: "Conflict", 422: "Unprocessable Content"}
        problem = Problem(
            exc.status,
            titles.get(exc.status, "Refused"),
            exc.detail,
            type_=f"catalog-rule-{exc.rule}",
            rule=exc.rule,
        )
        return problem_response(problem, request)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return problem_response(Problem(404, "Not Found", str(exc)), request)


# --------------------------------------------------------------------------- storefronts


def _can_read_all(principal: Principal | None) -> bool:
    return principal is not None and principal.role in READ_ALL


@router.get("/etalase", response_model=list[EtalaseOut], tags=["etalase"])
async def list_etalase(request: Request, principal: MaybePrincipal) -> list[dict[str, Any]]:
    """Storefronts: the open ones for everybody, all of them for the manager and auditor."""
    states = list(EtalaseState) if _can_read_all(principal) else [EtalaseState.OPEN]
    async with request.app.state.pool.acquire() as conn:
        return await store.list_etalase(conn, states)


@router.get("/etalase/{etalase_id}", response_model=EtalaseOut, tags=["etalase"])
async def get_etalase(
    request: Request, etalase_id: uuid.UUID, principal: MaybePrincipal
) -> dict[str, Any]:
    async with request.app.state.pool.acquire() as conn:
        row = await store.get_etalase(conn, etalase_id)
    if row is None or (row["state"] != EtalaseState.OPEN and not _can_read_all(principal)):
        raise NotFound(f"storefront {etalase_id} does not exist")
    return row


@router.post("/etalase", response_model=EtalaseOut, status_code=201, tags=["etalase"])
async def create_etalase(
    request: Request, body: EtalaseCreate, principal: Manager
) -> dict[str, Any]:
    async with transaction(request) as conn:
        return await commands.create_etalase(
            conn, request.app.state.outbox, body.model_dump(mode="json"), principal.subject
        )


@router.patch("/etalase/{etalase_id}", response_model=EtalaseOut, tags=["etalase"])
async def update_etalase(
    request: Request, etalase_id: uuid.UUID, body: EtalasePatch, principal: Manager
) -> dict[str, Any]:
    changes = body.model_dump(mode="json", exclude_unset=True)
    async with transaction(request) as conn:
        return await commands.update_etalase(
            conn, request.app.state.outbox, etalase_id, changes, principal.subject
        )


@router.post("/etalase/{etalase_id}/open", response_model=EtalaseOut, tags=["etalase"])
async def open_etalase(
    request: Request, etalase_id: uuid.UUID, principal: Manager
) -> dict[str, Any]:
    async with transaction(request) as conn:
        return await commands.set_etalase_open(
            conn, request.app.state.outbox, etalase_id, True, principal.subject
        )


@router.post("/etalase/{etalase_id}/close", response_model=EtalaseOut, tags=["etalase"])
async def close_etalase(
    request: Request, etalase_id: uuid.UUID, principal: Manager
) -> dict[str, Any]:
    async with transaction(request) as conn:
        return await commands.set_etalase_open(
            conn, request.app.state.outbox, etalase_id, False, principal.subject
        )


# --------------------------------------------------------------------------- products


@router.post("/products", response_model=ProductOut, status_code=201, tags=["products"])
async def submit_product(
    request: Request, body: ProductCreate, principal: Vendor
) -> dict[str, Any]:
    """A verified vendor offers a product; it is listed after curation."""
    async with transaction(request) as conn:
        return await commands.submit_product(
            conn, request.app.state.outbox, principal, body.model_dump()
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
        rows = await store.list_products(
            conn,
            vendor_id=vendor_id,
            etalase_id=etalase_id,
            state=state,
            after=after,
            limit=limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": str(rows[-1]["id"]) if more else None}


@router.get("/products/{product_id}", response_model=ProductOut, tags=["products"])
async def get_product(
    request: Request, product_id: uuid.UUID, principal: MaybePrincipal
) -> dict[str, Any]:
    """A listed product for everybody; any product for the manager, auditor and its vendor.

    Whether an unlisted product exists is not revealed to others (404).
    """
    async with request.app.state.pool.acquire() as conn:
        row = await store.get_product(conn, product_id)
    visible = row is not None and (
        row["searchable"]
        or _can_read_all(principal)
        or (principal is not None and principal.is_vendor(row["vendor_id"]))
    )
    if not visible:
        raise NotFound(f"product {product_id} does not exist")
    return row  # type: ignore[return-value]


@router.get("/products/{product_id}/history", response_model=ProductHistory, tags=["products"])
async def product_history(
    request: Request, product_id: uuid.UUID, principal: Reader
) -> dict[str, Any]:
    """Revisions (with their review decisions) and the price history."""
    async with request.app.state.pool.acquire() as conn:
        row = await store.get_product(conn, product_id)
        if row is None:
            raise NotFound(f"product {product_id} does not exist")
        ensure_vendor_owner(principal, row["vendor_id"])
        return {
            "revisions": await store.revisions(conn, product_id),
            "prices": await store.price_history(conn, product_id),
        }


@router.patch("/products/{product_id}", response_model=ProductOut, tags=["products"])
async def edit_product(
    request: Request, product_id: uuid.UUID, body: ProductPatch, principal: Vendor
) -> dict[str, Any]:
    """Change price or specification: a new revision, reviewed again if the storefront says so."""
    changes = body.model_dump(exclude_unset=True)
    async with transaction(request) as conn:
        return await commands.edit_product(
            conn, request.app.state.outbox, principal, product_id, changes
        )


@router.post("/products/{product_id}/approve", response_model=ProductOut, tags=["curation"])
async def approve_product(
    request: Request, product_id: uuid.UUID, principal: Manager
) -> dict[str, Any]:
    """List (tayang) a submitted product, or make a listed product's pending change live."""
    async with transaction(request) as conn:
        return await commands.review_product(
            conn, request.app.state.outbox, principal, product_id, approve=True, reasons=[]
        )


@router.post("/products/{product_id}/reject", response_model=ProductOut, tags=["curation"])
async def reject_product(
    request: Request, product_id: uuid.UUID, body: Reasons, principal: Manager
) -> dict[str, Any]:
    """Reject a submitted product, or a listed product's pending change, with reasons."""
    async with transaction(request) as conn:
        return await commands.review_product(
            conn,
            request.app.state.outbox,
            principal,
            product_id,
            approve=False,
            reasons=body.reasons,
        )


@router.post("/products/{product_id}/take-down", response_model=ProductOut, tags=["curation"])
async def take_down_product(
    request: Request, product_id: uuid.UUID, body: TakeDown, principal: ManagerOrVendor
) -> dict[str, Any]:
    """Turun tayang, by the manager or by the product's own vendor."""
    async with transaction(request) as conn:
        return await commands.take_down_product(
            conn, request.app.state.outbox, principal, product_id, body.reason
        )


@router.post("/products/{product_id}/relist", response_model=ProductOut, tags=["curation"])
async def relist_product(
    request: Request, product_id: uuid.UUID, principal: ManagerOrVendor
) -> dict[str, Any]:
    """Send a taken-down or rejected product back to review."""
    async with transaction(request) as conn:
        return await commands.relist_product(conn, request.app.state.outbox, principal, product_id)


@router.put("/products/{product_id}/stock", response_model=ProductOut, tags=["stock"])
async def set_stock(
    request: Request, product_id: uuid.UUID, body: StockSet, principal: Vendor
) -> dict[str, Any]:
    async with transaction(request) as conn:
        return await stock.set_stock(
            conn, request.app.state.outbox, principal, product_id, body.stock
        )


# --------------------------------------------------------------------------- search


async def _with_collection(conn: Connection, query: SearchQuery, code: str) -> SearchQuery:
    if query.etalase_id is None:
        raise field_error("collection", "a collection belongs to a storefront: give etalase_id")
    etalase = await store.get_etalase(conn, query.etalase_id)
    found = [c for c in (etalase or {}).get("collections", []) if c["code"] == code]
    if not found:
        raise field_error("collection", f"the storefront has no collection {code}")
    return apply_collection(query, CuratedCollection.model_validate(found[0]))


@router.get(
    "/search",
    response_model=SearchPage,
    tags=["search"],
    dependencies=[Depends(optional_principal)],
)
async def search(
    request: Request,
    q: Annotated[str | None, Query(min_length=2, max_length=200)] = None,
    etalase_id: uuid.UUID | None = None,
    category: str | None = None,
    collection: Annotated[
        str | None, Query(description="a curated collection code; needs etalase_id")
    ] = None,
    pdn: bool | None = None,
    min_tkdn_bmp: Annotated[float | None, Query(ge=0, le=200)] = None,
    min_price: Annotated[int | None, Query(ge=0, le=MAX_RUPIAH)] = None,
    max_price: Annotated[int | None, Query(ge=0, le=MAX_RUPIAH)] = None,
    umkm_koperasi: bool | None = None,
    local_vendor: bool | None = None,
    region: str | None = None,
    in_stock: bool | None = None,
    sort: Sort = Sort.RELEVANCE,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Public search over listed products of open storefronts; no token needed."""
    words = search_words(q)
    if q is not None and not 0 < len(words) <= MAX_QUERY_WORDS:
        raise field_error("q", f"give 1 to {MAX_QUERY_WORDS} words of letters or digits")
    query = SearchQuery(
        text=(q.strip() or None) if q else None,
        etalase_id=etalase_id,
        category=category,
        pdn=pdn,
        min_tkdn_bmp=min_tkdn_bmp,
        min_price=min_price,
        max_price=max_price,
        umkm_koperasi=umkm_koperasi,
        local_vendor=local_vendor,
        region=region,
        in_stock=in_stock,
        sort=sort,
        limit=limit,
    )
    async with request.app.state.pool.acquire() as conn:
        if collection is not None:
            query = await _with_collection(conn, query, collection)
        if cursor is not None:
            query = decode_cursor(query, cursor)
        rows = await store.search_products(conn, query)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = encode_cursor(query, last["sort_key"] or 0, last["id"])
    for row in rows:
        row["score"] = row["sort_key"] if query.text and sort is Sort.RELEVANCE else None
    return {"items": rows, "next_cursor": next_cursor}
