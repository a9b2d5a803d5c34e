"""SQL of the catalog service: vendor projection, storefronts (etalase), products, search."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

import asyncpg

from services.catalog.domain import (
    Etalase,
    Product,
    VendorProfile,
    product_search_words,
    region_and_parents,
    search_words,
)
from services.catalog.search import SearchQuery, Sort
from shared.contracts.catalog import EtalaseSnapshot
from shared.db import Connection
from shared.outbox import StateChange

Row = dict[str, Any]

# The stored columns are the aggregates' fields, less what the database derives (generated
# columns, the storefront code joined in, the pending revision) or sets itself.
_SET_BY_DATABASE = frozenset({"id", "version", "created_at", "updated_at"})
ETALASE_COLUMNS = tuple(f for f in EtalaseSnapshot.model_fields if f not in _SET_BY_DATABASE)
PRODUCT_COLUMNS = tuple(
    f
    for f in Product.model_fields
    if f
    not in _SET_BY_DATABASE
    | {
        "etalase_code",
        "pending_revision",
        "tkdn_verified",
        "bmp_verified",
        "pdn_verified",
        "sni_verified",
    }
)
# A product whole, from the table or from the rows an UPDATE returns.
_PRODUCT_FROM = """
SELECT p.*, e.code AS etalase_code,
       (SELECT r.revision FROM product_revision r
        WHERE r.product_id = p.id AND r.status = 'pending') AS pending_revision
FROM {} p JOIN etalase e ON e.id = p.etalase_id
"""
_PRODUCT_SELECT = _PRODUCT_FROM.format("product")
# The row's xmin too: the transaction that wrote it last, which every later write of the row
# changes (those that count no version too: vendor flags, storefront state, search words).
_PRODUCT_READ = _PRODUCT_SELECT.replace("SELECT p.*", "SELECT p.xmin AS row_xmin, p.*", 1)
_UPDATED_PRODUCT = _PRODUCT_FROM.format("updated")


def _row(record: asyncpg.Record | None) -> Row | None:
    if record is None:
        return None
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in record.items()}


def _product(record: asyncpg.Record | None) -> Product | None:
    row = _row(record)
    return None if row is None else Product.model_validate(row)


def _etalase(record: asyncpg.Record | None) -> Etalase | None:
    row = _row(record)
    return None if row is None else Etalase.model_validate(row)


def _vendor(record: asyncpg.Record | None) -> VendorProfile | None:
    return None if record is None else VendorProfile.from_row(dict(record))


def _set_clause(columns: Sequence[str], allowed: Sequence[str], first: int) -> str:
    unknown = set(columns) - set(allowed)
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    return ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=first))


# --------------------------------------------------------------------------- vendors


async def lock_vendor(conn: Connection, vendor_id: uuid.UUID) -> VendorProfile | None:
    return _vendor(
        await conn.fetchrow(
            "SELECT * FROM vendor_projection WHERE vendor_id = $1 FOR UPDATE", vendor_id
        )
    )


async def get_vendor(conn: Connection, vendor_id: uuid.UUID) -> VendorProfile | None:
    return _vendor(
        await conn.fetchrow("SELECT * FROM vendor_projection WHERE vendor_id = $1", vendor_id)
    )


async def upsert_vendor(conn: Connection, vendor: Mapping[str, Any]) -> VendorProfile:
    """Store the vendor's snapshot; returns the projection as it is now."""
    record = await conn.fetchrow(
        """INSERT INTO vendor_projection (vendor_id, version, state, legal_name, kbli,
               region_code, scale, is_umk, is_koperasi, is_local, is_pkp)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (vendor_id) DO UPDATE SET
               version = excluded.version, state = excluded.state,
               legal_name = excluded.legal_name, kbli = excluded.kbli,
               region_code = excluded.region_code, scale = excluded.scale,
               is_umk = excluded.is_umk, is_koperasi = excluded.is_koperasi,
               is_local = excluded.is_local, is_pkp = excluded.is_pkp, updated_at = now()
           RETURNING *""",
        vendor["vendor_id"],
        vendor["version"],
        vendor["state"],
        vendor["legal_name"],
        vendor["kbli"],
        vendor["region_code"],
        vendor["scale"],
        vendor["is_umk"],
        vendor["is_koperasi"],
        vendor["is_local"],
        vendor["is_pkp"],
    )
    assert record is not None
    return VendorProfile.from_row(dict(record))


async def copy_vendor_flags(
    conn: Connection, vendor_id: uuid.UUID, is_umk: bool, is_koperasi: bool, is_local: bool
) -> list[uuid.UUID]:
    """Copy the vendor's flags onto its products; returns the ids of those that changed."""
    rows = await conn.fetch(
        """UPDATE product SET vendor_is_umk = $2, vendor_is_koperasi = $3, vendor_is_local = $4
           WHERE vendor_id = $1 AND (vendor_is_umk, vendor_is_koperasi, vendor_is_local)
                 IS DISTINCT FROM ($2, $3, $4)
           RETURNING id""",
        vendor_id,
        is_umk,
        is_koperasi,
        is_local,
    )
    return [r["id"] for r in rows]


async def lock_vendor_products(
    conn: Connection, vendor_id: uuid.UUID, state: str, taken_down_by: str | None = None
) -> list[uuid.UUID]:
    """Ids of a vendor's products in `state`, locked in id order (the order every command uses)."""
    rows = await conn.fetch(
        """SELECT id FROM product
           WHERE vendor_id = $1 AND state = $2 AND taken_down_by IS NOT DISTINCT FROM $3
           ORDER BY id FOR UPDATE""",
        vendor_id,
        state,
        taken_down_by,
    )
    return [r["id"] for r in rows]


# --------------------------------------------------------------------------- etalase


async def insert_etalase(
    conn: Connection, etalase_id: uuid.UUID, values: Mapping[str, Any]
) -> Etalase:
    columns = ", ".join(ETALASE_COLUMNS)
    params = ", ".join(f"${i}" for i in range(2, len(ETALASE_COLUMNS) + 2))
    row = await conn.fetchrow(
        f"INSERT INTO etalase (id, {columns}, version) VALUES ($1, {params}, 1) RETURNING *",
        etalase_id,
        *(values[c] for c in ETALASE_COLUMNS),
    )
    return _etalase(row)  # type: ignore[return-value]


async def lock_etalase(
    conn: Connection, etalase_id: uuid.UUID, *, shared: bool = False
) -> Etalase | None:
    """Lock a storefront; submissions take a shared lock so a close waits for them."""
    mode = "SHARE" if shared else "UPDATE"
    return _etalase(
        await conn.fetchrow(f"SELECT * FROM etalase WHERE id = $1 FOR {mode}", etalase_id)
    )


async def get_etalase(conn: Connection, etalase_id: uuid.UUID) -> Etalase | None:
    return _etalase(await conn.fetchrow("SELECT * FROM etalase WHERE id = $1", etalase_id))


async def list_etalase(conn: Connection, states: Sequence[str]) -> list[Etalase]:
    rows = await conn.fetch(
        "SELECT * FROM etalase WHERE state = ANY($1::text[]) ORDER BY code", list(states)
    )
    return [_etalase(r) for r in rows]  # type: ignore[misc]


async def update_etalase(
    conn: Connection, etalase_id: uuid.UUID, changes: Mapping[str, Any]
) -> Etalase:
    """Apply `changes` and count one more version (one event follows each update)."""
    columns = list(changes)
    assignments = _set_clause(columns, ETALASE_COLUMNS, 2)
    separator = ", " if assignments else ""
    row = await conn.fetchrow(
        f"UPDATE etalase SET {assignments}{separator}version = version + 1, updated_at = now()"
        " WHERE id = $1 RETURNING *",
        etalase_id,
        *(changes[c] for c in columns),
    )
    return _etalase(row)  # type: ignore[return-value]


async def set_etalase_products_open(conn: Connection, etalase_id: uuid.UUID, is_open: bool) -> None:
    await conn.execute(
        "UPDATE product SET etalase_open = $2 WHERE etalase_id = $1 AND etalase_open <> $2",
        etalase_id,
        is_open,
    )


# --------------------------------------------------------------------------- products


async def insert_product(
    conn: Connection, product_id: uuid.UUID, values: Mapping[str, Any]
) -> None:
    columns = ", ".join(PRODUCT_COLUMNS)
    params = ", ".join(f"${i}" for i in range(2, len(PRODUCT_COLUMNS) + 2))
    await conn.execute(
        f"INSERT INTO product (id, {columns}) VALUES ($1, {params})",
        product_id,
        *(values[c] for c in PRODUCT_COLUMNS),
    )
    await add_search_words(conn, values["search_words"])


async def add_search_words(conn: Connection, words: Sequence[str]) -> None:
    """Grow the dictionary typos are resolved against (words are never removed)."""
    await conn.execute(
        "INSERT INTO search_word (word) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
        list(words),
    )


async def get_product(conn: Connection, product_id: uuid.UUID) -> Product | None:
    return _product(await conn.fetchrow(f"{_PRODUCT_SELECT} WHERE p.id = $1", product_id))


async def get_products(conn: Connection, product_ids: Sequence[uuid.UUID]) -> list[Product]:
    rows = await conn.fetch(f"{_PRODUCT_SELECT} WHERE p.id = ANY($1::uuid[])", list(product_ids))
    return [_product(r) for r in rows]  # type: ignore[misc]


# --------------------------------------------------------------------------- public view


async def store_public_views(conn: Connection, views: Mapping[uuid.UUID, str], key: str) -> None:
    """Keep each product's rendered public view with it (`key`: what it was rendered with)."""
    await conn.execute(
        """UPDATE product p SET public_view = v.view, public_view_key = $3
           FROM unnest($1::uuid[], $2::text[]) AS v (id, view) WHERE p.id = v.id""",
        list(views),
        list(views.values()),
        key,
    )


class PublicView(NamedTuple):
    """What the public product page needs to decide and answer: who owns the product, whether
    the public sees it, and its stored rendering (None if rendered with another key)."""

    vendor_id: uuid.UUID
    public: bool
    view: str | None


async def get_public_view(conn: Connection, product_id: uuid.UUID, key: str) -> PublicView | None:
    record = await conn.fetchrow(
        """SELECT vendor_id, state = 'listed' AND etalase_open AS public,
                  CASE WHEN public_view_key = $2 THEN public_view END AS view
           FROM product WHERE id = $1""",
        product_id,
        key,
    )
    return None if record is None else PublicView(*record.values())


async def lock_unrendered(
    conn: Connection, key: str, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """Up to `limit` products after `after` (id order) whose view was not rendered with `key`,
    locked; those a command holds are skipped (the command renders them)."""
    rows = await conn.fetch(
        """SELECT id FROM product
           WHERE ($2::uuid IS NULL OR id > $2) AND public_view_key IS DISTINCT FROM $1
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED""",
        key,
        after,
        limit,
    )
    return [r["id"] for r in rows]


class ReadProduct(NamedTuple):
    """A product read without a lock, and its row's xmin, on which a write of it is guarded."""

    product: Product
    xmin: int


async def read_product(
    conn: Connection, product_id: uuid.UUID, *, lock: bool = False
) -> ReadProduct | None:
    """The product as it is, locked until the transaction ends with `lock`."""
    record = await conn.fetchrow(
        f"{_PRODUCT_READ} WHERE p.id = $1{' FOR UPDATE OF p' if lock else ''}", product_id
    )
    if record is None:
        return None
    return ReadProduct(_product(record), int(record["row_xmin"]))  # type: ignore[arg-type]


# Guarded on the row as it was read; returns `saved`, false when it was not (see `saved_stock`).
_SAVE_STOCK = """saved AS (
    UPDATE product SET stock = $2, version = $3, updated_at = $4, public_view = $5,
        public_view_key = $6
    WHERE id = $1 AND xmin = $7::text::xid RETURNING id)"""


def saved_stock(read: ReadProduct, product: Product, view: str, view_key: str) -> StateChange:
    """`product`, the one `read` with another stock at its next version, stored with its public
    view in its event's statement, if the row is still as it was read: otherwise nothing is
    written and the statement returns `saved` false."""
    return StateChange(
        _SAVE_STOCK,
        (
            product.id,
            product.stock,
            product.version,
            product.updated_at,
            view,
            view_key,
            str(read.xmin),
        ),
        returns="EXISTS (SELECT FROM saved) AS saved",
        guard="saved",
    )


# A product's rendered public view, in the statement of the event that changed it.
_VIEWED = """viewed AS (
    UPDATE product SET public_view = $2, public_view_key = $3 WHERE id = $1)"""


def viewed(product_id: uuid.UUID, view: str, view_key: str) -> StateChange:
    return StateChange(_VIEWED, (product_id, view, view_key))


async def lock_product(conn: Connection, product_id: uuid.UUID) -> Product | None:
    return (await lock_products(conn, [product_id])).get(product_id)


class StockHeld(NamedTuple):
    """A locked product's owner and stock, read with the lock (so they are the latest)."""

    vendor_id: uuid.UUID
    stock: int


# Vendors first (shared), then products in id order (exclusive): the uncorrelated subquery is
# evaluated once, before the first product row reaches the locking step above the sort.
_LOCK_PRODUCTS = """
SELECT p.id, p.vendor_id, p.stock FROM product p
WHERE p.id = ANY($1::uuid[])
  AND (SELECT count(*) FROM (
          SELECT 1 FROM vendor_projection WHERE vendor_id IN
              (SELECT vendor_id FROM product WHERE id = ANY($1::uuid[]))
          ORDER BY vendor_id FOR SHARE) AS vendors) >= 0
ORDER BY p.id FOR UPDATE OF p
"""


async def lock_stock(
    conn: Connection, product_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, StockHeld]:
    """Lock products with their vendors' projection rows (one round trip).

    Everything locks vendor first (shared here, exclusive in the vendor event handler) and then
    products in id order: a review cannot list a product while a suspension is taking the
    vendor's products down, and two commands cannot deadlock.
    """
    rows = await conn.fetch(_LOCK_PRODUCTS, list(product_ids))
    return {r["id"]: StockHeld(r["vendor_id"], r["stock"]) for r in rows}


async def lock_products(
    conn: Connection, product_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Product]:
    """Lock products as `lock_stock` does, then read them whole.

    The read is a statement of its own: one that waited for a lock would still see the other
    rows (storefront, pending revision) as they were when it started.
    """
    ids = list(await lock_stock(conn, product_ids))
    return {p.id: p for p in await get_products(conn, ids)}


# Each product's units taken and its reservations counted (one version, one event each), as
# one set-wise update of products the caller has locked; the products as they are now come back
# in the same round trip.
_TAKE_STOCK = f"""
WITH updated AS (
    UPDATE product p
    SET stock = p.stock - d.quantity, version = p.version + d.reservations, updated_at = now()
    FROM unnest($1::uuid[], $2::int[], $3::int[]) AS d(id, quantity, reservations)
    WHERE p.id = d.id AND p.stock >= d.quantity
    RETURNING p.*)
{_UPDATED_PRODUCT}
"""


async def take_stock(
    conn: Connection, taken: Mapping[uuid.UUID, tuple[int, int]]
) -> dict[uuid.UUID, Product]:
    """Take `quantity` units of each locked product for `reservations` reservations (product id
    -> (quantity, reservations)). A product that has fewer units is left alone and missing from
    the answer: the caller checked the stock under the lock, so that would be a defect."""
    ids = list(taken)
    rows = await conn.fetch(
        _TAKE_STOCK, ids, [taken[i][0] for i in ids], [taken[i][1] for i in ids]
    )
    return {r["id"]: _product(r) for r in rows}  # type: ignore[misc]


async def update_product(
    conn: Connection, product_id: uuid.UUID, changes: Mapping[str, Any]
) -> Product:
    """Apply `changes` and count one more version (one event follows each update)."""
    columns = list(changes)
    assignments = _set_clause(columns, PRODUCT_COLUMNS, 2)
    separator = ", " if assignments else ""
    if "search_words" in changes:
        await add_search_words(conn, changes["search_words"])
    # The product as it is now, in the same round trip; the subquery's snapshot is this
    # statement's, taken after the caller locked the product.
    record = await conn.fetchrow(
        f"""WITH updated AS (
                UPDATE product SET {assignments}{separator}version = version + 1,
                    updated_at = now()
                WHERE id = $1 RETURNING *)
            {_UPDATED_PRODUCT}""",
        product_id,
        *(changes[c] for c in columns),
    )
    return _product(record)  # type: ignore[return-value]


async def list_products(
    conn: Connection,
    *,
    vendor_id: uuid.UUID | None,
    etalase_id: uuid.UUID | None,
    state: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Product]:
    """Products for the manager, auditor or owning vendor, in id order (keyset by id)."""
    rows = await conn.fetch(
        f"""{_PRODUCT_SELECT}
            WHERE ($1::uuid IS NULL OR p.vendor_id = $1)
              AND ($2::uuid IS NULL OR p.etalase_id = $2)
              AND ($3::text IS NULL OR p.state = $3)
              AND ($4::uuid IS NULL OR p.id > $4)
            ORDER BY p.id LIMIT $5""",
        vendor_id,
        etalase_id,
        state,
        after,
        limit,
    )
    return [_product(r) for r in rows]  # type: ignore[misc]


# --------------------------------------------------------------------------- revisions


async def insert_revision(
    conn: Connection,
    product_id: uuid.UUID,
    revision: int,
    changes: Mapping[str, Any],
    status: str,
    created_by: str,
) -> None:
    await conn.execute(
        """INSERT INTO product_revision (product_id, revision, changes, status, created_by)
           VALUES ($1, $2, $3, $4, $5)""",
        product_id,
        revision,
        dict(changes),
        status,
        created_by,
    )


async def next_revision(conn: Connection, product_id: uuid.UUID) -> int:
    return int(
        await conn.fetchval(
            "SELECT coalesce(max(revision), 1) + 1 FROM product_revision WHERE product_id = $1",
            product_id,
        )
    )


async def pending_revision(conn: Connection, product_id: uuid.UUID) -> Row | None:
    return _row(
        await conn.fetchrow(
            "SELECT * FROM product_revision WHERE product_id = $1 AND status = 'pending'",
            product_id,
        )
    )


async def decide_revision(
    conn: Connection,
    product_id: uuid.UUID,
    revision: int,
    status: str,
    reasons: Sequence[str],
    decided_by: str,
) -> None:
    await conn.execute(
        """UPDATE product_revision SET status = $3, reasons = $4, decided_by = $5,
               decided_at = now()
           WHERE product_id = $1 AND revision = $2""",
        product_id,
        revision,
        status,
        list(reasons),
        decided_by,
    )


async def revisions(conn: Connection, product_id: uuid.UUID) -> list[Row]:
    rows = await conn.fetch(
        "SELECT * FROM product_revision WHERE product_id = $1 ORDER BY revision", product_id
    )
    return [_row(r) for r in rows]  # type: ignore[misc]


async def record_price(
    conn: Connection,
    product_id: uuid.UUID,
    revision: int,
    price: int,
    regional_prices: Mapping[str, int],
) -> None:
    await conn.execute(
        """INSERT INTO product_price_history (product_id, revision, price, regional_prices)
           VALUES ($1, $2, $3, $4)""",
        product_id,
        revision,
        price,
        dict(regional_prices),
    )


async def price_history(conn: Connection, product_id: uuid.UUID) -> list[Row]:
    rows = await conn.fetch(
        """SELECT revision, price, regional_prices, effective_from FROM product_price_history
           WHERE product_id = $1 ORDER BY effective_from, revision""",
        product_id,
    )
    return [_row(r) for r in rows]  # type: ignore[misc]


# --------------------------------------------------------------------------- search

# Trigram similarity from which a catalogue word counts as a variant of a query word: one wrong
# or missing letter in a five-letter word ("batk" for "batik") is still about 0.37.
SIMILARITY_THRESHOLD = 0.35
# Variants kept per query word, best first; more only add noise at the bottom of the ranking.
MAX_VARIANTS = 8
_SORT_KEY = {
    Sort.PRICE_ASC: "p.price",
    Sort.PRICE_DESC: "p.price",
    Sort.TKDN: "p.tkdn_bmp",
}
# Catalogue words close to a query word: itself (1.0), words it starts (0.9), then by
# similarity. `%` finds candidates through the trigram index at pg_trgm's default threshold
# (0.3, below ours) and `similarity() >=` applies ours, so no session setting is needed.
_VARIANTS = """{name} AS (
    SELECT word, CASE WHEN word = {word} THEN 1.0
                      WHEN word LIKE {word} || '%' THEN 0.9
                      ELSE similarity(word, {word}) END::float8 AS score
    FROM search_word
    WHERE word = {word} OR word LIKE {word} || '%'
       OR (word % {word} AND similarity(word, {word}) >= {threshold})
    ORDER BY score DESC, word LIMIT {limit})"""


def _search_sql(query: SearchQuery, view_key: str) -> tuple[str, list[Any]]:
    """One statement: each query word's variants, then the page: each hit's id, its stored
    public view (if rendered with `view_key`) and its sort key.

    Every query word must match one of its variants; relevance is the mean over the query words
    of the best variant score a product matches.
    """
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    words = search_words(query.text)
    variants = [f"variants_{i}" for i in range(len(words))]
    ctes = []
    if words:
        threshold, limit = param(SIMILARITY_THRESHOLD), param(MAX_VARIANTS)
        ctes = [
            _VARIANTS.format(name=name, word=param(word), threshold=threshold, limit=limit)
            for name, word in zip(variants, words, strict=True)
        ]
    where = ["p.searchable"]
    for name in variants:
        where.append(f"p.search_words && (SELECT array_agg(word) FROM {name})")
    key: str | None = None
    if query.sort is not Sort.RELEVANCE:
        key = _SORT_KEY[query.sort]
    elif variants:
        scores = [
            f"COALESCE((SELECT max(score) FROM {name} WHERE word = ANY(p.search_words)), 0)"
            for name in variants
        ]
        key = f"(({' + '.join(scores)}) / {len(scores)})"
    filters: list[tuple[Any, str]] = [
        (query.etalase_id, "p.etalase_id = {}"),
        (query.category, "p.category_path @> ARRAY[{}]::text[]"),
        (query.min_tkdn_bmp, "p.tkdn_bmp >= {}"),
        (query.min_tkdn, "p.tkdn_verified AND p.tkdn >= {}"),
        (query.min_price, "p.price >= {}"),
        (query.max_price, "p.price <= {}"),
        (
            query.region and region_and_parents(query.region),
            "p.delivery_regions && {}::text[]",
        ),
        (query.pdn, "p.pdn_verified = {}"),
        (query.umkm_koperasi, "p.umkm_koperasi = {}"),
        (query.local_vendor, "p.vendor_is_local = {}"),
    ]
    for value, condition in filters:
        if value is not None:
            where.append(condition.format(param(value)))
    if query.in_stock is not None:
        where.append("p.stock > 0" if query.in_stock else "p.stock = 0")
    direction = "DESC" if query.sort.descending else "ASC"
    comparison = "<" if query.sort.descending else ">"
    if query.after is not None:
        after_key, after_id = query.after
        if key is None:
            where.append(f"p.id {comparison} {param(after_id)}")
        else:
            where.append(f"({key}, p.id) {comparison} ({param(after_key)}, {param(after_id)})")
    order = f"p.id {direction}" if key is None else f"{key} {direction}, p.id {direction}"
    sql = f"""
        {"WITH " + ", ".join(ctes) if ctes else ""}
        SELECT p.id, CASE WHEN p.public_view_key = {param(view_key)} THEN p.public_view END
                   AS view,
               {key or "NULL::float8"} AS sort_key
        FROM product p
        WHERE {" AND ".join(where)}
        ORDER BY {order}
        LIMIT {param(query.limit + 1)}"""
    return sql, params


class Hit(NamedTuple):
    """One search hit: the product's id, its stored public view (None when it was rendered with
    another key) and its sort key."""

    id: uuid.UUID
    view: str | None
    sort_key: float | int | None


async def search_products(conn: Connection, query: SearchQuery, view_key: str) -> list[Hit]:
    """One page plus one row more (to know whether there is a next page); one statement, so one
    snapshot and one round trip. The products are not decoded: the page is their renderings."""
    sql, params = _search_sql(query, view_key)
    rows = await conn.fetch(sql, *params)
    return [Hit(r["id"], r["view"], _sort_key(r["sort_key"])) for r in rows]


def _sort_key(value: Decimal | float | int | None) -> float | int | None:
    """Prices stay integers (the cursor checks it); TKDN and relevance are floats."""
    return float(value) if isinstance(value, Decimal) else value


# --------------------------------------------------------------------------- maintenance


async def lock_lapsed_tkdn(conn: Connection, today: date, limit: int) -> list[uuid.UUID]:
    """Products whose verified TKDN certificate ended before `today` (locked by the caller)."""
    rows = await conn.fetch(
        """SELECT id FROM product WHERE tkdn_status = 'verified' AND tkdn_valid_until < $1
           ORDER BY id LIMIT $2""",
        today,
        limit,
    )
    return [r["id"] for r in rows]


async def reindex_search_words(conn: Connection, version: int, limit: int) -> int:
    """Recompute the search words of up to `limit` products indexed with an older rule."""
    rows = await conn.fetch(
        """SELECT id, name, brand, specification FROM product WHERE search_version < $1
           ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED""",
        version,
        limit,
    )
    if not rows:
        return 0
    words = {r["id"]: product_search_words(r["name"], r["brand"], r["specification"]) for r in rows}
    await add_search_words(conn, sorted({w for ws in words.values() for w in ws}))
    await conn.executemany(
        "UPDATE product SET search_words = $2, search_version = $3 WHERE id = $1",
        [(product_id, ws, version) for product_id, ws in words.items()],
    )
    return len(rows)
