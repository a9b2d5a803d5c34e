"""The orders service's SQL: projections, RUP packages, orders and their timeline."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from shared.db import Connection
from shared.outbox import StateChange

Row = dict[str, Any]


def _row(record: asyncpg.Record | None) -> Row | None:
    return dict(record) if record is not None else None


# --------------------------------------------------------------------------- projections

_VENDOR_COLUMNS = (
    "vendor_id",
    "version",
    "state",
    "state_reason",
    "legal_name",
    "scale",
    "is_umk",
    "is_koperasi",
    "is_local",
)
_PRODUCT_COLUMNS = (
    "product_id",
    "version",
    "vendor_id",
    "name",
    "category_code",
    "unit",
    "price",
    "pdn",
    "pdn_verified",
    "tkdn",
    "bmp",
    "tkdn_verified",
    "bmp_verified",
    "state",
    "state_reason",
)


def _upsert_sql(table: str, columns: Sequence[str]) -> str:
    """Insert or replace with a newer version. A snapshot without a `state_reason` keeps the
    stored one while the state stays the same: only the event that changed the state (a
    suspension, a take-down) carries its reason; later events of that state do not."""
    names = ", ".join(columns)
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(
        f"{c} = EXCLUDED.{c}"
        if c != "state_reason"
        else f"{c} = CASE WHEN EXCLUDED.{c} IS NULL AND EXCLUDED.state = {table}.state"
        f" THEN {table}.{c} ELSE EXCLUDED.{c} END"
        for c in columns[1:]
    )
    return (
        f"INSERT INTO {table} ({names}) VALUES ({params}) ON CONFLICT ({columns[0]}) DO UPDATE"
        f" SET {updates}, updated_at = now() WHERE {table}.version < EXCLUDED.version"
        f" RETURNING version"
    )


_UPSERT_VENDOR = _upsert_sql("vendor_projection", _VENDOR_COLUMNS)
_UPSERT_PRODUCT = _upsert_sql("product_projection", _PRODUCT_COLUMNS)


async def upsert_vendor(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Stores a newer snapshot; returns False (and changes nothing) for a stale one."""
    stored = await conn.fetchval(_UPSERT_VENDOR, *(values[c] for c in _VENDOR_COLUMNS))
    return stored is not None


async def upsert_product(conn: Connection, values: Mapping[str, Any]) -> bool:
    stored = await conn.fetchval(_UPSERT_PRODUCT, *(values[c] for c in _PRODUCT_COLUMNS))
    return stored is not None


# A product's category and its domestic claims (PDN, TKDN, BMP and whether each is verified).
_CLAIM_COLUMNS = (
    "category_code",
    *(c for c in _PRODUCT_COLUMNS if c.startswith(("pdn", "tkdn", "bmp"))),
)


class OrderInputs(NamedTuple):
    """What placing an order reads: the RUP package, the vendor and the products as this
    service knows them, and the domestic claims listed in the products' categories."""

    rup: Row | None
    vendor: Row | None
    products: dict[uuid.UUID, Row]
    alternatives: list[Row]


# One round trip: `place_within_pagu` writes only if the package is still at the version read
# here; `FOR UPDATE` (a contended package) keeps it so until the transaction ends. The
# alternatives are the distinct claims of every listed product in the ordered products'
# categories whose vendor may sell.
_ORDER_INPUTS_TEMPLATE = f"""
SELECT (SELECT r FROM rup_package r WHERE r.rup_code = $1 {{lock}}) AS rup,
       (SELECT v FROM vendor_projection v WHERE v.vendor_id = $2) AS vendor,
       array(SELECT p FROM product_projection p WHERE p.product_id = ANY($3::uuid[])) AS products,
       array(SELECT DISTINCT ROW({", ".join(f"a.{c}" for c in _CLAIM_COLUMNS)})
             FROM product_projection a
             JOIN vendor_projection v ON v.vendor_id = a.vendor_id AND v.state = 'verified'
             WHERE a.state = 'listed' AND a.category_code IN (
                 SELECT category_code FROM product_projection
                 WHERE product_id = ANY($3::uuid[]))) AS alternatives
"""
# The statement without and with the package's lock.
_ORDER_INPUTS = {
    False: _ORDER_INPUTS_TEMPLATE.format(lock=""),
    True: _ORDER_INPUTS_TEMPLATE.format(lock="FOR UPDATE"),
}


async def order_inputs(
    conn: Connection,
    rup_code: str,
    vendor_id: uuid.UUID,
    product_ids: Sequence[uuid.UUID],
    lock: bool = False,
) -> OrderInputs:
    record = await conn.fetchrow(_ORDER_INPUTS[lock], rup_code, vendor_id, list(product_ids))
    assert record is not None  # scalar subqueries: always one row
    return OrderInputs(
        rup=_row(record["rup"]),
        vendor=_row(record["vendor"]),
        products={p["product_id"]: dict(p) for p in record["products"]},
        alternatives=[dict(zip(_CLAIM_COLUMNS, a, strict=True)) for a in record["alternatives"]],
    )


# --------------------------------------------------------------------------- RUP packages

RUP_FIELDS = (
    "opd_id",
    "package_name",
    "fiscal_year",
    "procurement_type",
    "pagu",
    "funding_source",
    "method",
)


async def lock_rups(conn: Connection, codes: Sequence[str]) -> dict[str, Row]:
    """Locks the packages in code order, so concurrent imports never deadlock; each row's
    `committed` is what its live orders hold."""
    rows = await conn.fetch(
        "SELECT * FROM rup_package WHERE rup_code = ANY($1::text[]) ORDER BY rup_code FOR UPDATE",
        list(codes),
    )
    return {r["rup_code"]: dict(r) for r in rows}


# A package as it reads: with what its live orders hold and what remains of its pagu.
_RUP_READ = "SELECT *, pagu - committed AS remaining FROM rup_package"


async def get_rup(conn: Connection, code: str) -> Row | None:
    return _row(await conn.fetchrow(f"{_RUP_READ} WHERE rup_code = $1", code))


async def insert_rup(conn: Connection, code: str, values: Mapping[str, Any]) -> Row:
    row = await conn.fetchrow(
        f"""INSERT INTO rup_package (rup_code, {", ".join(RUP_FIELDS)}, version)
            VALUES ($1, {", ".join(f"${i}" for i in range(2, len(RUP_FIELDS) + 2))}, 1)
            RETURNING *""",
        code,
        *(values[f] for f in RUP_FIELDS),
    )
    assert row is not None
    return dict(row)


async def update_rup(conn: Connection, code: str, values: Mapping[str, Any]) -> Row:
    columns = [f for f in RUP_FIELDS if f in values]
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
    row = await conn.fetchrow(
        f"UPDATE rup_package SET {sets}, version = version + 1, updated_at = now()"
        " WHERE rup_code = $1 RETURNING *",
        code,
        *(values[c] for c in columns),
    )
    assert row is not None
    return dict(row)


async def list_rups(
    conn: Connection, opd_id: str | None, after: str | None, limit: int
) -> list[Row]:
    rows = await conn.fetch(
        f"""{_RUP_READ}
            WHERE ($1::text IS NULL OR opd_id = $1) AND ($2::text IS NULL OR rup_code > $2)
            ORDER BY rup_code LIMIT $3""",
        opd_id,
        after,
        limit,
    )
    return [dict(r) for r in rows]


# --------------------------------------------------------------------------- orders

_ORDER_COLUMNS = (
    "id",
    "version",
    "state",
    "opd_id",
    "rup_code",
    "procurement_type",
    "fiscal_year",
    "method",
    "vendor_id",
    "vendor",
    "lines",
    "product_ids",
    "total",
    "live",
    "delivery_address",
    "placed_by",
    "placed_by_role",
    "ppk_id",
    "priority_compliant",
    "placed_at",
    "updated_at",
)
_UPDATABLE = frozenset(
    {
        "version",
        "state",
        "lines",
        "total",
        "live",
        "negotiation",
        "sp_number",
        "sp_signed_at",
        "next_deadline",
        "deadline_kind",
        "updated_at",
    }
)


# What placing an order writes as parameters; its vendor and lines come as the event's JSON
# text, which PostgreSQL takes apart (no JSON encoding in this process).
_PLACED_COLUMNS = tuple(c for c in _ORDER_COLUMNS if c not in ("vendor", "lines"))
_COUNT = len(_PLACED_COLUMNS)
# The pagu check, the order and its first timeline entry, as CTEs of the outbox's statement. The
# package row's update is the check: PostgreSQL re-evaluates its condition on the latest row
# when a concurrent order held it, so concurrent orders never overspend; and it applies only to
# the version read, so the order was built from the package as it is.
_PLACE = f"""
reserved AS (
    UPDATE rup_package SET committed = committed + ${_PLACED_COLUMNS.index("total") + 1}
    WHERE rup_code = ${_PLACED_COLUMNS.index("rup_code") + 1} AND version = ${_COUNT + 1}
      AND committed + ${_PLACED_COLUMNS.index("total") + 1} <= pagu
    RETURNING rup_code
), placed AS (
    INSERT INTO orders ({", ".join(_PLACED_COLUMNS)}, vendor, lines)
    SELECT {", ".join(f"${i}" for i in range(1, _COUNT + 1))}, e.doc -> 'vendor', e.doc -> 'lines'
    FROM reserved, (SELECT ${_COUNT + 3}::text::jsonb AS doc) AS e
    RETURNING id, version, state, placed_by, placed_by_role, placed_at
), entry AS (
    INSERT INTO order_timeline
        (order_id, version, event_type, state, actor, actor_role, at, details)
    SELECT id, version, ${_COUNT + 2}, state, placed_by, placed_by_role, placed_at, '{{}}'::jsonb
    FROM placed
)"""
# Whether the order was placed and, when it was not, the package as the statement found it.
_PLACE_RETURNS = f"""EXISTS (SELECT FROM placed) AS placed,
    (SELECT r FROM rup_package r WHERE r.rup_code = ${_PLACED_COLUMNS.index("rup_code") + 1})
    AS package"""


def place_within_pagu(
    values: Mapping[str, Any], parts: str, rup_version: int, event_type: str
) -> StateChange:
    """The order with its timeline entry (the placer acting, no details), inserted if its
    package is still at `rup_version` and its remaining pagu covers the total, written by the
    outbox in its event's statement, with its event only if it was inserted (one statement: no
    transaction needed). `parts` is a JSON object holding the order's `vendor` and `lines`. The
    statement returns whether the order was `placed` and the `package` row it saw."""
    return StateChange(
        _PLACE,
        (*(values[c] for c in _PLACED_COLUMNS), rup_version, event_type, parts),
        returns=_PLACE_RETURNS,
        guard="placed",
    )


async def lock_order(conn: Connection, order_id: uuid.UUID) -> Row | None:
    return _row(await conn.fetchrow("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order_id))


async def get_order(conn: Connection, order_id: uuid.UUID) -> Row | None:
    return _row(await conn.fetchrow("SELECT * FROM orders WHERE id = $1", order_id))


async def update_order(
    conn: Connection, order_id: uuid.UUID, changes: Mapping[str, Any], entry: TimelineEntry
) -> Row:
    """Apply `changes` and add the timeline entry of the event they make, in one statement."""
    columns = sorted(changes)
    unknown = set(columns) - _UPDATABLE
    assert not unknown, f"not updatable: {unknown}"
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
    n = len(columns) + 1
    row = await conn.fetchrow(
        f"""WITH updated AS (UPDATE orders SET {sets} WHERE id = $1 RETURNING *),
                 entry AS (
                     INSERT INTO order_timeline
                         (order_id, version, event_type, state, actor, actor_role, at, details)
                     SELECT id, version, ${n + 1}, state, ${n + 2}, ${n + 3}, ${n + 4}, ${n + 5}
                     FROM updated)
            SELECT * FROM updated""",
        order_id,
        *(changes[c] for c in columns),
        *entry,
    )
    assert row is not None
    return dict(row)


# The columns every transition sets (`commands._transition`), with their types.
_MOVED = (
    ("state", "text"),
    ("live", "boolean"),
    ("version", "integer"),
    ("updated_at", "timestamptz"),
    ("next_deadline", "timestamptz"),
    ("deadline_kind", "text"),
)
_N = len(_MOVED) + 1
_MOVED_ARRAYS = ", ".join(f"${i}::{t}[]" for i, (_, t) in enumerate(_MOVED, 2))
_MOVE = f"""
moved AS (
    SELECT * FROM unnest($1::uuid[], {_MOVED_ARRAYS}) AS m(id, {", ".join(c for c, _ in _MOVED)})
), updated AS (
    UPDATE orders o SET {", ".join(f"{c} = m.{c}" for c, _ in _MOVED)}
    FROM moved m WHERE o.id = m.id RETURNING o.id, o.version, o.state
), entry AS (
    INSERT INTO order_timeline
        (order_id, version, event_type, state, actor, actor_role, at, details)
    SELECT id, version, ${_N + 1}, state, ${_N + 2}, ${_N + 3}, ${_N + 4}, ${_N + 5} FROM updated
)"""


async def lock_orders(conn: Connection, order_ids: Sequence[uuid.UUID]) -> list[Row]:
    """Several orders, locked in id order."""
    rows = await conn.fetch(
        "SELECT * FROM orders WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", list(order_ids)
    )
    return [dict(r) for r in rows]


def move_orders(orders: Sequence[Mapping[str, Any]], entry: TimelineEntry) -> StateChange:
    """Set the columns every transition sets on several orders (each mapping: `id` and those
    columns), each with a timeline entry of the same event and actor, written by the outbox in
    the events' statement."""
    return StateChange(
        _MOVE, ([o["id"] for o in orders], *([o[c] for o in orders] for c, _ in _MOVED), *entry)
    )


class TimelineEntry(NamedTuple):
    """Who did what when, beside the order's new version and state."""

    event_type: str
    actor: str
    actor_role: str
    at: datetime
    details: dict[str, Any]


async def timeline(conn: Connection, order_id: uuid.UUID) -> list[Row]:
    rows = await conn.fetch(
        "SELECT version, event_type, state, actor, actor_role, at, details FROM order_timeline"
        " WHERE order_id = $1 ORDER BY version",
        order_id,
    )
    return [dict(r) for r in rows]


async def next_sp_number(conn: Connection) -> int:
    value = await conn.fetchval("SELECT nextval('surat_pesanan_number')")
    return int(value)


async def lock_orders_where(
    conn: Connection,
    states: Sequence[str],
    *,
    vendor_id: uuid.UUID | None = None,
    product_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Ids of orders in these states of a vendor or holding a product, locked in id order."""
    rows = await conn.fetch(
        """SELECT id FROM orders
           WHERE state = ANY($1::text[])
             AND ($2::uuid IS NULL OR vendor_id = $2)
             AND ($3::uuid IS NULL OR product_ids @> ARRAY[$3::uuid])
           ORDER BY id FOR UPDATE""",
        list(states),
        vendor_id,
        product_id,
    )
    return [r["id"] for r in rows]


async def claim_overdue(conn: Connection, now: datetime, limit: int) -> list[uuid.UUID]:
    """Orders whose deadline passed, skipping those another transaction holds."""
    rows = await conn.fetch(
        """SELECT id FROM orders WHERE next_deadline <= $1
           ORDER BY next_deadline LIMIT $2 FOR UPDATE SKIP LOCKED""",
        now,
        limit,
    )
    return [r["id"] for r in rows]


async def list_orders(
    conn: Connection,
    filters: Mapping[str, Any],
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row]:
    """Newest first, keyset-paginated on (placed_at, id)."""
    rows = await conn.fetch(
        """SELECT * FROM orders
           WHERE ($1::text IS NULL OR opd_id = $1)
             AND ($2::uuid IS NULL OR vendor_id = $2)
             AND ($3::text IS NULL OR state = $3)
             AND ($4::text IS NULL OR rup_code = $4)
             AND ($5::timestamptz IS NULL OR placed_at >= $5)
             AND ($6::timestamptz IS NULL OR placed_at < $6)
             AND ($7::timestamptz IS NULL OR (placed_at, id) < ($7, $8::uuid))
           ORDER BY placed_at DESC, id DESC
           LIMIT $9""",
        filters.get("opd_id"),
        filters.get("vendor_id"),
        filters.get("state"),
        filters.get("rup_code"),
        filters.get("placed_from"),
        filters.get("placed_to"),
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [dict(r) for r in rows]
