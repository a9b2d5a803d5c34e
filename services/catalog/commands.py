"""Catalogue use cases: each is one unit of work (state change + outbox rows).

Every command takes `db`, a pool or the caller's connection, and runs inside
`shared.db.unit_of_work(db)`: on a pool it is its own transaction, inside a handler or a saga it
joins theirs. Every command locks the aggregate row it changes before it writes that aggregate's
events (the stock set in `stock.py` reads without a lock and takes the lock with its guarded
write, in the events' own statement). Commands raise the domain errors of `domain.py` and
nothing that speaks HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services.catalog import domain, schemas, store
from services.catalog.domain import (
    Etalase,
    NotFound,
    NotOwner,
    Product,
    RuleViolation,
    StateConflict,
)
from shared.auth import Principal, Role
from shared.contracts.catalog import (
    CategoryNode,
    ClaimStatus,
    CuratedCollection,
    EtalaseClosed,
    EtalaseCreated,
    EtalaseEvent,
    EtalaseOpened,
    EtalaseSnapshot,
    EtalaseState,
    EtalaseUpdated,
    ProductClaimsReviewed,
    ProductEvent,
    ProductListed,
    ProductPriceChanged,
    ProductRejected,
    ProductSnapshot,
    ProductState,
    ProductSubmitted,
    ProductTakenDown,
    ProductUpdated,
    TakenDownBy,
)
from shared.db import Connection, unit_of_work
from shared.outbox import Outbox

Db = asyncpg.Pool | Connection
# Who lapses a TKDN claim whose certificate ran out: the daily check, not a person.
TKDN_EXPIRY_ACTOR = "system:tkdn-expiry"


def now() -> datetime:
    return datetime.now(UTC)


def local_today(timezone: str) -> date:
    """Today in the city's calendar: certificates are valid up to and including their date."""
    return datetime.now(ZoneInfo(timezone)).date()


# --------------------------------------------------------------------------- storefronts


def _validate_etalase(values: Mapping[str, Any]) -> None:
    if "categories" in values:
        domain.category_index(CategoryNode.model_validate(n) for n in values["categories"])
    if "collections" in values:
        domain.check_collections(CuratedCollection.model_validate(c) for c in values["collections"])


def _etalase_event(
    cls: type[EtalaseEvent], etalase: Etalase, actor: str, **extra: Any
) -> EtalaseEvent:
    snapshot = {f: getattr(etalase, f) for f in EtalaseSnapshot.model_fields}
    return cls(**snapshot, etalase_id=etalase.id, occurred_at=now(), changed_by=actor, **extra)


async def create_etalase(db: Db, outbox: Outbox, values: Mapping[str, Any], actor: str) -> Etalase:
    """A new storefront, as a draft: the manager opens it when its rules are complete."""
    _validate_etalase(values)
    async with unit_of_work(db) as conn:
        try:
            etalase = await store.insert_etalase(
                conn, uuid.uuid4(), {**values, "state": EtalaseState.DRAFT}
            )
        except asyncpg.UniqueViolationError:
            raise StateConflict(
                "code_unique", f"a storefront with code {values['code']} exists"
            ) from None
        await outbox.add(conn, _etalase_event(EtalaseCreated, etalase, actor))
        return etalase


async def _locked_etalase(conn: Connection, etalase_id: uuid.UUID) -> Etalase:
    etalase = await store.lock_etalase(conn, etalase_id)
    if etalase is None:
        raise NotFound(f"storefront {etalase_id} does not exist")
    return etalase


async def update_etalase(
    db: Db, outbox: Outbox, etalase_id: uuid.UUID, requested: Mapping[str, Any], actor: str
) -> Etalase:
    """Change definition or rules; products already listed keep their place (see docs)."""
    async with unit_of_work(db) as conn:
        current = (await _locked_etalase(conn, etalase_id)).model_dump(mode="json")
        changes = {k: v for k, v in requested.items() if current[k] != v}
        if not changes:
            raise RuleViolation("no_change", "the request changes nothing")
        _validate_etalase(changes)
        etalase = await store.update_etalase(conn, etalase_id, changes)
        await outbox.add(
            conn, _etalase_event(EtalaseUpdated, etalase, actor, changed_fields=sorted(changes))
        )
        return etalase


async def set_etalase_open(
    db: Db, outbox: Outbox, etalase_id: uuid.UUID, is_open: bool, actor: str
) -> Etalase:
    """Open (from draft or closed) or close (from open) a storefront."""
    async with unit_of_work(db) as conn:
        etalase = await _locked_etalase(conn, etalase_id)
        if is_open == (etalase.state is EtalaseState.OPEN):
            raise StateConflict("state", f"the storefront is already {etalase.state}")
        target = EtalaseState.OPEN if is_open else EtalaseState.CLOSED
        etalase = await store.update_etalase(conn, etalase_id, {"state": target})
        await store.set_etalase_products_open(conn, etalase_id, is_open)
        event = EtalaseOpened if is_open else EtalaseClosed
        await outbox.add(conn, _etalase_event(event, etalase, actor))
        return etalase


# --------------------------------------------------------------------------- products


def principal_vendor_id(principal: Principal) -> uuid.UUID | None:
    """The vendor a token acts for; vendor ids are UUIDs, anything else is no known vendor."""
    try:
        return uuid.UUID(principal.vendor_id or "")
    except ValueError:
        return None


def ensure_owner(principal: Principal, product: Product | store.StockHeld) -> None:
    """A vendor acts only on its own products; other roles are checked by the API's roles."""
    if principal.role is Role.VENDOR and not principal.is_vendor(product.vendor_id):
        raise NotOwner("a vendor may act only on its own products")


def product_event(cls: type[ProductEvent], product: Product, **extra: Any) -> ProductEvent:
    snapshot = {f: getattr(product, f) for f in ProductSnapshot.model_fields}
    return cls(**snapshot, product_id=product.id, occurred_at=now(), **extra)


async def locked_product(conn: Connection, product_id: uuid.UUID, principal: Principal) -> Product:
    product = await store.lock_product(conn, product_id)
    if product is None:
        raise NotFound(f"product {product_id} does not exist")
    ensure_owner(principal, product)
    return product


async def record_change(
    conn: Connection,
    outbox: Outbox,
    product_id: uuid.UUID,
    changes: Mapping[str, Any],
    event: type[ProductEvent],
    **extra: Any,
) -> Product:
    """One update, one version, one event, and the public view rendered again (stored in the
    event's statement)."""
    product = await store.update_product(conn, product_id, changes)
    view = store.viewed(product.id, schemas.render_public_view(product), schemas.PUBLIC_VIEW_KEY)
    await outbox.add(conn, product_event(event, product, **extra), change=view)
    return product


async def store_public_views(conn: Connection, products: Iterable[Product]) -> None:
    """Render the products' public views and keep them with the products (in the caller's
    transaction): the public product page and the search serve these renderings."""
    views = {p.id: schemas.render_public_view(p) for p in products}
    if views:
        await store.store_public_views(conn, views, schemas.PUBLIC_VIEW_KEY)


async def copy_vendor_flags(
    conn: Connection, vendor_id: uuid.UUID, is_umk: bool, is_koperasi: bool, is_local: bool
) -> None:
    """The vendor's flags onto its products, whose public views show them."""
    changed = await store.copy_vendor_flags(conn, vendor_id, is_umk, is_koperasi, is_local)
    if changed:  # most vendor events change no flag: no read for nothing
        await store_public_views(conn, await store.get_products(conn, changed))


async def render_public_views(db: Db, batch: int = 200) -> int:
    """Render the public view of every product that has none or one rendered by another
    version of the view (after a migration or a change of `ProductPublic`); returns how many.

    Runs at start, in batches of short transactions, while the service serves: until a product
    is rendered its page and search hits are rendered on each read instead.
    """
    total, after = 0, None
    while True:
        async with unit_of_work(db) as conn:
            ids = await store.lock_unrendered(conn, schemas.PUBLIC_VIEW_KEY, after, batch)
            await store_public_views(conn, await store.get_products(conn, ids))
        total += len(ids)
        if len(ids) < batch:
            return total
        after = ids[-1]


def _values_json(values: Mapping[str, Any]) -> dict[str, Any]:
    """Revision rows keep the submitted values as JSON."""
    return {
        k: v.isoformat() if isinstance(v, date) else str(v) if isinstance(v, uuid.UUID) else v
        for k, v in values.items()
    }


def _pending_claims(changes: Mapping[str, Any]) -> dict[str, ClaimStatus]:
    """A claim whose backing fields change goes back to review."""
    return {f"{c}_status": ClaimStatus.PENDING for c in domain.claims_touched(changes)}


async def submit_product(
    db: Db, outbox: Outbox, principal: Principal, values: Mapping[str, Any]
) -> Product:
    """A vendor offers a product in an open storefront whose rules it meets; it awaits review."""
    domain.check_claims(values)
    async with unit_of_work(db) as conn:
        etalase = await store.lock_etalase(conn, values["etalase_id"], shared=True)
        if etalase is None:
            raise RuleViolation("etalase", f"storefront {values['etalase_id']} does not exist")
        vendor_id = principal_vendor_id(principal)
        vendor = domain.check_vendor_eligible(
            etalase, await store.get_vendor(conn, vendor_id) if vendor_id else None
        )
        path = domain.check_offer(
            etalase,
            vendor,
            vendor_type=values["vendor_type"],
            category_code=values["category_code"],
            price=values["price"],
            regional_prices=values["regional_prices"],
            tax_percent=values["tax_percent"],
        )
        product_id = uuid.uuid4()
        await store.insert_product(
            conn,
            product_id,
            {
                **values,
                "vendor_id": vendor.vendor_id,
                "category_path": path,
                "state": domain.submit(None, None),
                "taken_down_by": None,
                "state_reasons": [],
                "revision": 1,
                "etalase_open": True,
                "vendor_is_umk": vendor.is_umk,
                "vendor_is_koperasi": vendor.is_koperasi,
                "vendor_is_local": vendor.is_local,
                "search_words": domain.product_search_words(
                    values["name"], values["brand"], values["specification"]
                ),
                "search_version": domain.SEARCH_VERSION,
                **{f"{c}_status": ClaimStatus.PENDING for c in domain.CLAIMS},
            },
        )
        await store.insert_revision(
            conn, product_id, 1, _values_json(values), "applied", principal.subject
        )
        await store.record_price(conn, product_id, 1, values["price"], values["regional_prices"])
        return await record_change(conn, outbox, product_id, {}, ProductSubmitted)


async def _apply_changes(
    conn: Connection, outbox: Outbox, product: Product, changes: Mapping[str, Any], revision: int
) -> Product:
    """Make a revision live: a price change and a specification change are separate events."""
    prices, other = domain.split_prices(changes)
    if prices:
        new = product.model_copy(update=prices)
        await store.record_price(conn, product.id, revision, new.price, new.regional_prices)
        product = await record_change(
            conn,
            outbox,
            product.id,
            {**prices, "revision": revision},
            ProductPriceChanged,
            previous_price=product.price,
            previous_regional_prices=product.regional_prices,
        )
    if other:
        derived: dict[str, Any] = _pending_claims(other)
        if domain.SEARCH_FIELDS & other.keys():
            merged = product.model_copy(update=other)
            derived["search_words"] = domain.product_search_words(
                merged.name, merged.brand, merged.specification
            )
            derived["search_version"] = domain.SEARCH_VERSION
        product = await record_change(
            conn,
            outbox,
            product.id,
            {**other, **derived, "revision": revision},
            ProductUpdated,
            changed_fields=sorted(other),
        )
    return product


async def edit_product(
    db: Db,
    outbox: Outbox,
    principal: Principal,
    product_id: uuid.UUID,
    requested: Mapping[str, Any],
) -> Product:
    """The vendor changes price or specification; each edit is a new revision.

    A listed product's edit waits for review when the storefront asks for it; otherwise it goes
    live at once, and every claim it touches is pending review again.
    """
    async with unit_of_work(db) as conn:
        product = await locked_product(conn, product_id, principal)
        etalase = await store.get_etalase(conn, product.etalase_id)
        assert etalase is not None
        decision = domain.decide_change(
            product, requested, recurate_changes=etalase.recurate_changes
        )
        merged = product.model_copy(update=decision.changes)
        domain.check_price_ceiling(etalase, merged.price, merged.regional_prices)
        domain.check_claims(merged.model_dump())
        if "tax_percent" in decision.changes:
            vendor = await store.get_vendor(conn, product.vendor_id)
            assert vendor is not None
            domain.check_tax(vendor, merged.tax_percent)
        revision = await store.next_revision(conn, product_id)
        status = "applied" if decision.apply_now else "pending"
        await store.insert_revision(
            conn, product_id, revision, _values_json(decision.changes), status, principal.subject
        )
        if not decision.apply_now:
            return await record_change(
                conn, outbox, product_id, {}, ProductSubmitted, change_revision=revision
            )
        product = await _apply_changes(conn, outbox, product, decision.changes, revision)
        if decision.resubmit:
            product = await record_change(
                conn,
                outbox,
                product_id,
                {"state": ProductState.SUBMITTED, "state_reasons": []},
                ProductSubmitted,
            )
        return product


async def review_product(
    db: Db,
    outbox: Outbox,
    principal: Principal,
    product_id: uuid.UUID,
    *,
    approve: bool,
    reasons: Sequence[str] = (),
    claims: Mapping[str, ClaimStatus] | None = None,
    today: date,
) -> Product:
    """Curation (kurasi): list or reject a submitted product, or decide a pending change.

    An approval may decide claims in the same step (`claims`); claims left out stay as they are,
    so a product can be listed while a claim is refused or still pending.
    """
    async with unit_of_work(db) as conn:
        product = await locked_product(conn, product_id, principal)
        pending = product.pending_revision
        target = domain.curate(product.state, approve, pending is not None)
        if product.state is ProductState.LISTED:
            assert pending is not None
            change = await store.pending_revision(conn, product_id)
            assert change is not None
            status = "applied" if approve else "rejected"
            await store.decide_revision(
                conn, product_id, pending, status, reasons, principal.subject
            )
            if not approve:
                return await record_change(
                    conn,
                    outbox,
                    product_id,
                    {},
                    ProductRejected,
                    reasons=list(reasons),
                    rejected_by=principal.subject,
                    change_revision=pending,
                )
            # The stored JSON is read back through the product model: dates become dates.
            typed = Product.model_validate({**product.model_dump(), **change["changes"]})
            changes = {k: getattr(typed, k) for k in change["changes"]}
            product = await _apply_changes(conn, outbox, product, changes, pending)
        elif not approve:
            return await record_change(
                conn,
                outbox,
                product_id,
                {"state": target, "state_reasons": list(reasons)},
                ProductRejected,
                reasons=list(reasons),
                rejected_by=principal.subject,
            )
        else:
            vendor = await store.get_vendor(conn, product.vendor_id)
            if vendor is None or not vendor.may_sell:
                raise StateConflict("vendor_verified", "the vendor may not sell at the moment")
            product = await record_change(
                conn,
                outbox,
                product_id,
                {"state": target, "state_reasons": [], "taken_down_by": None},
                ProductListed,
                listed_by=principal.subject,
            )
        if claims:
            product = await _decide_claims(
                conn, outbox, product, claims, principal.subject, None, today
            )
        return product


async def _decide_claims(
    conn: Connection,
    outbox: Outbox,
    product: Product,
    decisions: Mapping[str, ClaimStatus],
    actor: str,
    reason: str | None,
    today: date,
) -> Product:
    changed = domain.review_claims(product, decisions, today)
    if not changed:
        return product
    return await record_change(
        conn,
        outbox,
        product.id,
        {f"{claim}_status": status for claim, status in changed.items()},
        ProductClaimsReviewed,
        changed_claims=sorted(changed),
        changed_by=actor,
        reason=reason,
    )


async def review_claims(
    db: Db,
    outbox: Outbox,
    principal: Principal,
    product_id: uuid.UUID,
    decisions: Mapping[str, ClaimStatus],
    reason: str | None,
    today: date,
) -> Product:
    """The manager verifies, refuses or postpones a product's claims (TKDN, BMP, PDN, SNI) one by
    one, in any state of the product."""
    async with unit_of_work(db) as conn:
        product = await locked_product(conn, product_id, principal)
        changed = await _decide_claims(
            conn, outbox, product, decisions, principal.subject, reason, today
        )
        if changed is product:
            raise RuleViolation("no_change", "the request changes nothing")
        return changed


async def lapse_tkdn_claims(db: Db, outbox: Outbox, today: date, batch: int = 200) -> int:
    """Verified TKDN claims whose certificate ended before `today` expire (and BMP and the PDN
    it implied stop counting with them). Returns how many products lapsed."""
    async with unit_of_work(db) as conn:
        ids = await store.lock_lapsed_tkdn(conn, today, batch)
        lapsed = 0
        for product in (await store.lock_products(conn, ids)).values():
            valid_until = product.tkdn_valid_until
            if product.tkdn_status is not ClaimStatus.VERIFIED or not valid_until:
                continue
            await record_change(
                conn,
                outbox,
                product.id,
                {"tkdn_status": ClaimStatus.EXPIRED},
                ProductClaimsReviewed,
                changed_claims=["tkdn"],
                changed_by=TKDN_EXPIRY_ACTOR,
                reason=f"TKDN certificate valid until {valid_until.isoformat()}",
            )
            lapsed += 1
        return lapsed


async def reindex_search(db: Db, batch: int = 500) -> int:
    """Re-index products whose search words were computed by an older rule; returns how many."""
    total = 0
    while True:
        async with unit_of_work(db) as conn:
            done = await store.reindex_search_words(conn, domain.SEARCH_VERSION, batch)
        total += done
        if done < batch:
            return total


async def take_down_product(
    db: Db, outbox: Outbox, principal: Principal, product_id: uuid.UUID, reason: str
) -> Product:
    """Turun tayang by the manager or by the owning vendor."""
    async with unit_of_work(db) as conn:
        product = await locked_product(conn, product_id, principal)
        target = domain.take_down(product.state)
        by = TakenDownBy.VENDOR if principal.role is Role.VENDOR else TakenDownBy.MANAGER
        if product.pending_revision is not None:
            # Edits of a product that is down apply directly and relisting reviews everything,
            # so a change still waiting would only block the vendor later.
            await store.decide_revision(
                conn,
                product_id,
                product.pending_revision,
                "withdrawn",
                [f"withdrawn: taken down ({reason})"],
                principal.subject,
            )
        return await record_change(
            conn,
            outbox,
            product_id,
            {"state": target, "taken_down_by": by, "state_reasons": [reason]},
            ProductTakenDown,
            taken_down_by=by,
            reason=reason,
        )


async def relist_product(
    db: Db, outbox: Outbox, principal: Principal, product_id: uuid.UUID
) -> Product:
    """A taken-down or rejected product goes back through review, under today's rules."""
    async with unit_of_work(db) as conn:
        product = await locked_product(conn, product_id, principal)
        target = domain.submit(product.state, product.taken_down_by)
        etalase = await store.get_etalase(conn, product.etalase_id)
        assert etalase is not None
        vendor = domain.check_vendor_eligible(
            etalase, await store.get_vendor(conn, product.vendor_id)
        )
        domain.check_offer(
            etalase,
            vendor,
            vendor_type=product.vendor_type,
            category_code=product.category_code,
            price=product.price,
            regional_prices=product.regional_prices,
            tax_percent=product.tax_percent,
        )
        return await record_change(
            conn,
            outbox,
            product_id,
            {"state": target, "taken_down_by": None, "state_reasons": []},
            ProductSubmitted,
        )
