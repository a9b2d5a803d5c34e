"""Catalogue use cases: each runs in the caller's transaction and writes its events to the outbox.

The caller opens the transaction (`async with conn.transaction()`); every command locks the
aggregate row it changes before it writes that aggregate's events.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.catalog import domain, store
from services.catalog.domain import EtalaseRules, RuleViolation, VendorProfile
from shared.auth import Principal, Role, ensure_vendor_owner
from shared.contracts.catalog import (
    CategoryNode,
    CuratedCollection,
    EtalaseClosed,
    EtalaseCreated,
    EtalaseEvent,
    EtalaseOpened,
    EtalaseState,
    EtalaseUpdated,
    ProductEvent,
    ProductListed,
    ProductPriceChanged,
    ProductRejected,
    ProductState,
    ProductSubmitted,
    ProductTakenDown,
    ProductUpdated,
    TakenDownBy,
    VendorType,
)
from shared.db import Connection
from shared.outbox import Outbox


class NotFound(Exception):
    """The storefront or product does not exist (or is not visible to the caller)."""


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- storefronts


def etalase_rules(row: Mapping[str, Any]) -> EtalaseRules:
    tree = [CategoryNode.model_validate(n) for n in row["categories"]]
    return EtalaseRules(
        state=EtalaseState(row["state"]),
        vendor_types=frozenset(VendorType(t) for t in row["vendor_types"]),
        kbli=frozenset(row["kbli"]),
        only_local=row["only_local"],
        only_umk_koperasi=row["only_umk_koperasi"],
        price_ceiling=row["price_ceiling"],
        category_paths=domain.category_paths(tree),
    )


def _validate_etalase(values: Mapping[str, Any]) -> None:
    if "categories" in values:
        domain.category_paths(CategoryNode.model_validate(n) for n in values["categories"])
    if "collections" in values:
        domain.check_collections(CuratedCollection.model_validate(c) for c in values["collections"])


def _etalase_event(
    cls: type[EtalaseEvent], row: Mapping[str, Any], actor: str, **extra: Any
) -> EtalaseEvent:
    fields = {k: row[k] for k in cls.model_fields if k in row}
    return cls(
        **fields,
        etalase_id=row["id"],
        occurred_at=_now(),
        changed_by=actor,
        **extra,
    )


async def create_etalase(
    conn: Connection, outbox: Outbox, values: Mapping[str, Any], actor: str
) -> dict[str, Any]:
    """A new storefront, as a draft: the manager opens it when its rules are complete."""
    _validate_etalase(values)
    try:
        row = await store.insert_etalase(
            conn, uuid.uuid4(), {**values, "state": EtalaseState.DRAFT}
        )
    except asyncpg.UniqueViolationError:
        raise RuleViolation(
            "code_unique", f"a storefront with code {values['code']} exists", status=409
        ) from None
    await outbox.add(conn, _etalase_event(EtalaseCreated, row, actor))
    return row


async def _locked_etalase(conn: Connection, etalase_id: uuid.UUID) -> dict[str, Any]:
    row = await store.lock_etalase(conn, etalase_id)
    if row is None:
        raise NotFound(f"storefront {etalase_id} does not exist")
    return row


async def update_etalase(
    conn: Connection,
    outbox: Outbox,
    etalase_id: uuid.UUID,
    requested: Mapping[str, Any],
    actor: str,
) -> dict[str, Any]:
    """Change definition or rules; products already listed keep their place (see docs)."""
    row = await _locked_etalase(conn, etalase_id)
    changes = {k: v for k, v in requested.items() if row[k] != v}
    if not changes:
        raise RuleViolation("no_change", "the request changes nothing")
    _validate_etalase(changes)
    row = await store.update_etalase(conn, etalase_id, changes)
    await outbox.add(
        conn, _etalase_event(EtalaseUpdated, row, actor, changed_fields=sorted(changes))
    )
    return row


async def set_etalase_open(
    conn: Connection, outbox: Outbox, etalase_id: uuid.UUID, is_open: bool, actor: str
) -> dict[str, Any]:
    """Open (from draft or closed) or close (from open) a storefront."""
    row = await _locked_etalase(conn, etalase_id)
    state = EtalaseState(row["state"])
    if is_open == (state is EtalaseState.OPEN):
        raise RuleViolation("state", f"the storefront is already {state}", status=409)
    target = EtalaseState.OPEN if is_open else EtalaseState.CLOSED
    row = await store.update_etalase(conn, etalase_id, {"state": target})
    await store.set_etalase_products_open(conn, etalase_id, is_open)
    event = EtalaseOpened if is_open else EtalaseClosed
    await outbox.add(conn, _etalase_event(event, row, actor))
    return row


# --------------------------------------------------------------------------- products


def principal_vendor_id(principal: Principal) -> uuid.UUID | None:
    """The vendor a token acts for; vendor ids are UUIDs, anything else is no known vendor."""
    try:
        return uuid.UUID(principal.vendor_id or "")
    except ValueError:
        return None


def vendor_profile(row: Mapping[str, Any] | None) -> VendorProfile | None:
    if row is None:
        return None
    return VendorProfile(
        state=row["state"],
        kbli=frozenset(row["kbli"]),
        is_umk=row["is_umk"],
        is_koperasi=row["is_koperasi"],
        is_local=row["is_local"],
    )


def _product_event(cls: type[ProductEvent], row: Mapping[str, Any], **extra: Any) -> ProductEvent:
    fields = {k: row[k] for k in cls.model_fields if k in row and k not in extra}
    return cls(**fields, product_id=row["id"], occurred_at=_now(), **extra)


async def locked_product(
    conn: Connection, product_id: uuid.UUID, principal: Principal
) -> dict[str, Any]:
    row = await store.lock_product(conn, product_id)
    if row is None:
        raise NotFound(f"product {product_id} does not exist")
    ensure_vendor_owner(principal, row["vendor_id"])
    return row


async def record_change(
    conn: Connection,
    outbox: Outbox,
    row: Mapping[str, Any],
    changes: Mapping[str, Any],
    event: type[ProductEvent],
    **extra: Any,
) -> dict[str, Any]:
    """One update, one version, one event."""
    updated = await store.update_product(conn, row["id"], changes)
    await outbox.add(conn, _product_event(event, updated, **extra))
    return updated


async def submit_product(
    conn: Connection, outbox: Outbox, principal: Principal, values: Mapping[str, Any]
) -> dict[str, Any]:
    """A vendor offers a product in an open storefront whose rules it meets; it awaits review."""
    etalase = await store.lock_etalase(conn, values["etalase_id"], shared=True)
    if etalase is None:
        raise RuleViolation("etalase", f"storefront {values['etalase_id']} does not exist")
    rules = etalase_rules(etalase)
    vendor_id = principal_vendor_id(principal)
    vendor = await store.get_vendor(conn, vendor_id) if vendor_id else None
    domain.check_vendor_eligible(rules, vendor_profile(vendor))
    assert vendor is not None
    path = domain.check_offer(
        rules,
        vendor_type=VendorType(values["vendor_type"]),
        category_code=values["category_code"],
        price=values["price"],
        regional_prices=values["regional_prices"],
    )
    product_id = uuid.uuid4()
    await store.insert_product(
        conn,
        product_id,
        {
            **values,
            "vendor_id": vendor["vendor_id"],
            "category_path": path,
            "tkdn_verified": False,
            "state": domain.submit(None, None),
            "taken_down_by": None,
            "state_reasons": [],
            "revision": 1,
            "etalase_open": True,
            "vendor_is_umk": vendor["is_umk"],
            "vendor_is_koperasi": vendor["is_koperasi"],
            "vendor_is_local": vendor["is_local"],
            "search_words": domain.search_words(
                values["name"], values["brand"], *values["specification"].values()
            ),
        },
    )
    await store.insert_revision(
        conn, product_id, 1, values_json(values), "applied", principal.subject
    )
    await store.record_price(conn, product_id, 1, values["price"], values["regional_prices"])
    row = await store.get_product(conn, product_id)
    assert row is not None
    return await record_change(conn, outbox, row, {}, ProductSubmitted)


def values_json(values: Mapping[str, Any]) -> dict[str, Any]:
    """Revision rows keep the submitted values as JSON."""
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in values.items()}


async def _apply_changes(
    conn: Connection,
    outbox: Outbox,
    row: dict[str, Any],
    decision: domain.ChangeDecision,
    revision: int,
    *,
    reviewed: bool,
) -> dict[str, Any]:
    """Make a revision live: a price change and a specification change are separate events."""
    changes = dict(decision.changes)
    if domain.TKDN_FIELDS & changes.keys():
        changes["tkdn_verified"] = reviewed and (
            changes.get("tkdn", row["tkdn"]) is not None
            or changes.get("bmp", row["bmp"]) is not None
        )
    if domain.SEARCH_FIELDS & changes.keys():
        merged = {**row, **changes}
        changes["search_words"] = domain.search_words(
            merged["name"], merged["brand"], *merged["specification"].values()
        )
    price_changes = decision.price_changes
    other = {k: v for k, v in changes.items() if k not in price_changes}
    if price_changes:
        new = {**row, **price_changes}
        await store.record_price(conn, row["id"], revision, new["price"], new["regional_prices"])
        row = await record_change(
            conn,
            outbox,
            row,
            {**price_changes, "revision": revision},
            ProductPriceChanged,
            previous_price=row["price"],
            previous_regional_prices=row["regional_prices"],
        )
    if other:
        row = await record_change(
            conn,
            outbox,
            row,
            {**other, "revision": revision},
            ProductUpdated,
            changed_fields=sorted(decision.other_changes),
        )
    return row


async def edit_product(
    conn: Connection,
    outbox: Outbox,
    principal: Principal,
    product_id: uuid.UUID,
    requested: Mapping[str, Any],
) -> dict[str, Any]:
    """The vendor changes price or specification; each edit is a new revision.

    A listed product's edit waits for review when the storefront asks for it; otherwise it goes
    live at once (and a TKDN claim it touches is unverified again).
    """
    row = await locked_product(conn, product_id, principal)
    state = ProductState(row["state"])
    taken_down_by = TakenDownBy(row["taken_down_by"]) if row["taken_down_by"] else None
    etalase = await store.get_etalase(conn, row["etalase_id"])
    assert etalase is not None
    decision = domain.decide_change(
        state,
        taken_down_by,
        row,
        requested,
        recurate_changes=etalase["recurate_changes"],
        has_pending_change=row["pending_revision"] is not None,
    )
    merged = {**row, **decision.changes}
    domain.check_price_ceiling(etalase_rules(etalase), merged["price"], merged["regional_prices"])
    domain.check_tkdn_claim(merged["tkdn"], merged["bmp"], merged["tkdn_certificate"])
    revision = await store.next_revision(conn, product_id)
    status = "applied" if decision.apply_now else "pending"
    await store.insert_revision(
        conn, product_id, revision, decision.changes, status, principal.subject
    )
    if not decision.apply_now:
        return await record_change(
            conn, outbox, row, {}, ProductSubmitted, change_revision=revision
        )
    row = await _apply_changes(conn, outbox, row, decision, revision, reviewed=False)
    if decision.resubmit:
        row = await record_change(
            conn,
            outbox,
            row,
            {"state": ProductState.SUBMITTED, "state_reasons": []},
            ProductSubmitted,
        )
    return row


async def review_product(
    conn: Connection,
    outbox: Outbox,
    principal: Principal,
    product_id: uuid.UUID,
    *,
    approve: bool,
    reasons: Sequence[str],
) -> dict[str, Any]:
    """Curation (kurasi): list or reject a submitted product, or decide a pending change."""
    row = await locked_product(conn, product_id, principal)
    state = ProductState(row["state"])
    pending = row["pending_revision"]
    target = domain.curate(state, approve, pending is not None)
    if state is ProductState.LISTED:
        change = await store.pending_revision(conn, product_id)
        assert change is not None
        status = "applied" if approve else "rejected"
        await store.decide_revision(conn, product_id, pending, status, reasons, principal.subject)
        if not approve:
            return await record_change(
                conn,
                outbox,
                row,
                {},
                ProductRejected,
                reasons=list(reasons),
                rejected_by=principal.subject,
                change_revision=pending,
            )
        decision = domain.ChangeDecision(change["changes"], apply_now=True, resubmit=False)
        return await _apply_changes(conn, outbox, row, decision, pending, reviewed=True)
    if not approve:
        return await record_change(
            conn,
            outbox,
            row,
            {"state": target, "state_reasons": list(reasons)},
            ProductRejected,
            reasons=list(reasons),
            rejected_by=principal.subject,
        )
    vendor = vendor_profile(await store.get_vendor(conn, row["vendor_id"]))
    if vendor is None or not vendor.may_sell:
        raise RuleViolation("vendor_verified", "the vendor may not sell at the moment", status=409)
    verified = row["tkdn"] is not None or row["bmp"] is not None
    return await record_change(
        conn,
        outbox,
        row,
        {"state": target, "state_reasons": [], "taken_down_by": None, "tkdn_verified": verified},
        ProductListed,
        listed_by=principal.subject,
    )


async def take_down_product(
    conn: Connection,
    outbox: Outbox,
    principal: Principal,
    product_id: uuid.UUID,
    reason: str,
) -> dict[str, Any]:
    """Turun tayang by the manager or by the owning vendor."""
    row = await locked_product(conn, product_id, principal)
    target = domain.take_down(ProductState(row["state"]))
    by = TakenDownBy.VENDOR if principal.role is Role.VENDOR else TakenDownBy.MANAGER
    if row["pending_revision"] is not None:
        # Edits of a product that is down apply directly and relisting reviews everything, so
        # a change still waiting would only block the vendor later.
        await store.decide_revision(
            conn,
            product_id,
            row["pending_revision"],
            "withdrawn",
            [f"withdrawn: taken down ({reason})"],
            principal.subject,
        )
    return await record_change(
        conn,
        outbox,
        row,
        {"state": target, "taken_down_by": by, "state_reasons": [reason]},
        ProductTakenDown,
        taken_down_by=by,
        reason=reason,
    )


async def relist_product(
    conn: Connection, outbox: Outbox, principal: Principal, product_id: uuid.UUID
) -> dict[str, Any]:
    """A taken-down or rejected product goes back through review, under today's rules."""
    row = await locked_product(conn, product_id, principal)
    taken_down_by = TakenDownBy(row["taken_down_by"]) if row["taken_down_by"] else None
    target = domain.submit(ProductState(row["state"]), taken_down_by)
    etalase = await store.get_etalase(conn, row["etalase_id"])
    assert etalase is not None
    rules = etalase_rules(etalase)
    domain.check_vendor_eligible(
        rules, vendor_profile(await store.get_vendor(conn, row["vendor_id"]))
    )
    domain.check_offer(
        rules,
        vendor_type=VendorType(row["vendor_type"]),
        category_code=row["category_code"],
        price=row["price"],
        regional_prices=row["regional_prices"],
    )
    return await record_change(
        conn,
        outbox,
        row,
        {"state": target, "taken_down_by": None, "state_reasons": []},
        ProductSubmitted,
    )
