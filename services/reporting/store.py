"""SQL of the reporting service: the projection's upserts and the KPI queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal
from uuid import UUID

from services.reporting.projection import Keep, Row, Table, Values
from shared.db import Connection

# Tables the rebuild swaps in carry this prefix until then; the rows it reads are collected in
# staging tables first.
SHADOW_PREFIX = "rebuild_"
STAGING_PREFIX = "rebuild_staged_"


# Column -> SQL type of each projection table, read from the catalog once per process: the
# upserts pass each column as one typed array.
_column_types: dict[str, tuple[str, ...]] = {}


async def _types(conn: Connection, table: Table) -> tuple[str, ...]:
    types = _column_types.get(table.name)
    if types is None:
        records = await conn.fetch(
            "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute"
            " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            table.name,
        )
        of = {r["attname"]: r["type"] for r in records}
        types = _column_types[table.name] = tuple(of[c] for c in table.columns)
    return types


def _upsert_sql(table: Table, types: Sequence[str], prefix: str) -> str:
    name = f"{prefix}{table.name}"
    columns = ", ".join(table.columns)
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start=1))
    key = ", ".join(table.key)
    updates = ", ".join(f"{c} = excluded.{c}" for c in table.columns if c not in table.key)
    if table.keep is Keep.NEWEST:
        conflict = f"DO UPDATE SET {updates} WHERE {name}.version < excluded.version"
    elif table.keep is Keep.EARLIEST:
        conflict = f"DO UPDATE SET {updates} WHERE {name}.version > excluded.version"
    else:
        conflict = "DO NOTHING"
    return (
        f"INSERT INTO {name} ({columns}) SELECT * FROM unnest({arrays})"
        f" ON CONFLICT ({key}) {conflict}"
    )


async def apply(conn: Connection, rows: Mapping[Table, list[Values]], prefix: str = "") -> None:
    """Store a batch's rows: one statement per table; older versions never replace newer."""
    for table, table_rows in rows.items():
        if table_rows:
            types = await _types(conn, table)
            await conn.execute(_upsert_sql(table, types, prefix), *zip(*table_rows, strict=True))


# One fiscal year, of one OPD or of the whole city: $1 the year, $2 the OPD or NULL.
_SCOPE = "o.fiscal_year = $1 AND ($2::text IS NULL OR o.opd_id = $2)"
_RUP_SCOPE = "r.fiscal_year = $1 AND ($2::text IS NULL OR r.opd_id = $2)"
_LINES = "JOIN order_line l ON l.order_id = o.order_id AND l.version = o.version"
VENDOR_CLASS = "CASE WHEN o.vendor_is_koperasi THEN 'koperasi' ELSE o.vendor_scale END"
SPENT = "o.spent"


def _rows(records: list[Any]) -> list[Row]:
    return [dict(r) for r in records]


async def totals(conn: Connection, year: int, opd: str | None) -> Row:
    """Pagu and the spend figures every share is computed from (kept per OPD by a trigger)."""
    row = await conn.fetchrow(
        f"""
        SELECT
          (SELECT coalesce(sum(r.pagu), 0) FROM rup r WHERE {_RUP_SCOPE})::bigint AS pagu,
          coalesce(sum(o.spend_sp), 0)::bigint AS spend_sp,
          coalesce(sum(o.spend_completed), 0)::bigint AS spend_completed,
          coalesce(sum(o.spend_umk_koperasi), 0)::bigint AS spend_umk_koperasi,
          coalesce(sum(o.spend_local), 0)::bigint AS spend_local,
          coalesce(sum(o.spend_pdn), 0)::bigint AS spend_pdn,
          coalesce(round(sum(o.spend_tkdn_weighted)), 0)::bigint AS spend_tkdn_weighted,
          coalesce(sum(o.spend_tkdn_bmp_40), 0)::bigint AS spend_tkdn_bmp_40,
          coalesce(sum(o.lines_priority_skipped), 0)::bigint AS lines_priority_skipped
        FROM kpi_totals o WHERE {_SCOPE}
        """,
        year,
        opd,
    )
    assert row is not None
    return dict(row)


async def counts(conn: Connection) -> Row:
    """Storefronts, products and verified vendors as the projection holds them now."""
    row = await conn.fetchrow(
        """
        SELECT
          (SELECT count(*) FROM etalase WHERE state = 'open') AS open_storefronts,
          (SELECT count(*) FROM product) AS products_registered,
          (SELECT count(*) FROM product WHERE state = 'listed') AS products_listed,
          count(*) FILTER (WHERE v.state = 'verified') AS vendors_verified,
          count(*) FILTER (WHERE v.state = 'verified' AND v.scale = 'mikro') AS vendors_mikro,
          count(*) FILTER (WHERE v.state = 'verified' AND v.scale = 'kecil') AS vendors_kecil,
          count(*) FILTER (WHERE v.state = 'verified' AND v.scale = 'menengah')
            AS vendors_menengah,
          count(*) FILTER (WHERE v.state = 'verified' AND v.scale = 'besar') AS vendors_besar,
          count(*) FILTER (WHERE v.state = 'verified' AND v.is_koperasi) AS vendors_koperasi,
          count(*) FILTER (WHERE v.state = 'verified' AND v.is_local) AS vendors_local
        FROM vendor v
        """
    )
    assert row is not None
    return dict(row)


async def pagu_and_spend(
    conn: Connection, year: int, opd: str | None, by: Literal["procurement_type", "opd_id"]
) -> list[Row]:
    """RUP pagu and spend (SP issued, completed) per procurement type or per OPD."""
    return _rows(
        await conn.fetch(
            f"""
            WITH pagu AS (
              SELECT r.{by}, sum(r.pagu)::bigint AS pagu
              FROM rup r WHERE {_RUP_SCOPE} GROUP BY 1),
            spend AS (
              SELECT o.{by},
                     coalesce(sum(o.total) FILTER (WHERE {SPENT}), 0)::bigint AS spend_sp,
                     coalesce(sum(o.total) FILTER (WHERE o.state = 'completed'), 0)::bigint
                       AS spend_completed
              FROM orders o WHERE {_SCOPE} GROUP BY 1)
            SELECT {by}, coalesce(pagu, 0)::bigint AS pagu,
                   coalesce(spend_sp, 0)::bigint AS spend_sp,
                   coalesce(spend_completed, 0)::bigint AS spend_completed
            FROM pagu FULL JOIN spend USING ({by})
            ORDER BY {"spend_sp DESC NULLS LAST, " if by == "opd_id" else ""}{by}
            """,
            year,
            opd,
        )
    )


async def by_month(conn: Connection, year: int, opd: str | None, timezone: str) -> list[Row]:
    return _rows(
        await conn.fetch(
            f"""
            SELECT to_char(o.sp_signed_at AT TIME ZONE $3, 'YYYY-MM') AS month,
                   sum(o.total)::bigint AS spend_sp, count(*) AS orders
            FROM orders o WHERE {_SCOPE} AND {SPENT}
            GROUP BY 1 ORDER BY 1
            """,
            year,
            opd,
            timezone,
        )
    )


async def by_etalase(conn: Connection, year: int, opd: str | None) -> list[Row]:
    # The product's storefront comes from the catalog's events; a line whose product the
    # projection has not heard of yet counts under no storefront until it does.
    return _rows(
        await conn.fetch(
            f"""
            SELECT coalesce(e.code, '') AS etalase_code, coalesce(e.name, '') AS etalase_name,
                   sum(l.line_total)::bigint AS spend_sp, count(DISTINCT o.order_id) AS orders
            FROM orders o {_LINES}
            LEFT JOIN product p ON p.product_id = l.product_id
            LEFT JOIN etalase e ON e.etalase_id = p.etalase_id
            WHERE {_SCOPE} AND {SPENT}
            GROUP BY 1, 2 ORDER BY spend_sp DESC, 1
            """,
            year,
            opd,
        )
    )


async def by_vendor_class(conn: Connection, year: int, opd: str | None) -> list[Row]:
    return _rows(
        await conn.fetch(
            f"""
            SELECT {VENDOR_CLASS} AS vendor_class,
                   sum(o.total)::bigint AS spend_sp, count(*) AS orders
            FROM orders o WHERE {_SCOPE} AND {SPENT}
            GROUP BY 1 ORDER BY 1
            """,
            year,
            opd,
        )
    )


async def by_content(conn: Connection, year: int, opd: str | None) -> list[Row]:
    return _rows(
        await conn.fetch(
            f"""
            SELECT l.content_class,
                   sum(l.line_total)::bigint AS spend_sp, count(*) AS lines
            FROM orders o {_LINES} WHERE {_SCOPE} AND {SPENT}
            GROUP BY 1 ORDER BY 1
            """,
            year,
            opd,
        )
    )


async def top_vendors(conn: Connection, year: int, opd: str | None, limit: int) -> list[Row]:
    return _rows(
        await conn.fetch(
            f"""
            SELECT o.vendor_id::text AS vendor_id, max(o.vendor_name) AS vendor_name,
                   max({VENDOR_CLASS}) AS vendor_class,
                   sum(o.total)::bigint AS spend_sp, count(*) AS orders
            FROM orders o WHERE {_SCOPE} AND {SPENT}
            GROUP BY o.vendor_id ORDER BY spend_sp DESC, vendor_id LIMIT $3
            """,
            year,
            opd,
            limit,
        )
    )


async def orders_by_state(
    conn: Connection, year: int, opd: str | None
) -> list[tuple[str, bool, int]]:
    """How many orders are in each state, with or without an SP (kept per OPD by a trigger)."""
    records = await conn.fetch(
        f"""
        SELECT o.state, o.has_sp, sum(o.orders)::bigint AS orders
        FROM kpi_states o WHERE {_SCOPE} GROUP BY 1, 2 HAVING sum(o.orders) <> 0
        """,
        year,
        opd,
    )
    return [(r["state"], r["has_sp"], r["orders"]) for r in records]


async def lead_times(conn: Connection, year: int, opd: str | None) -> Row:
    """Days from placing an order to the signed BAST: count and percentiles."""
    row = await conn.fetchrow(
        f"""
        SELECT count(*) AS orders,
               percentile_cont(ARRAY[0.5, 0.9, 0.95]) WITHIN GROUP (ORDER BY days) AS pct,
               avg(days) AS mean, max(days) AS max
        FROM (
          SELECT extract(epoch FROM received.occurred_at - placed.occurred_at) / 86400 AS days
          FROM orders o
          JOIN order_step placed ON placed.order_id = o.order_id AND placed.step = 'placed'
          JOIN order_step received ON received.order_id = o.order_id
            AND received.step = 'received'
          WHERE {_SCOPE}) t
        """,
        year,
        opd,
    )
    assert row is not None
    return dict(row)


async def missed_deadlines(conn: Connection, year: int, opd: str | None) -> list[Row]:
    return _rows(
        await conn.fetch(
            f"""
            SELECT coalesce(o.deadline_kind, '') AS deadline_kind, count(*) AS orders,
                   sum(o.total)::bigint AS value
            FROM orders o WHERE {_SCOPE} AND o.state = 'expired'
            GROUP BY 1 ORDER BY 1
            """,
            year,
            opd,
        )
    )


async def priority_skipped(conn: Connection, year: int, opd: str | None) -> list[Row]:
    return _rows(
        await conn.fetch(
            f"""
            SELECT o.order_id::text AS order_id, o.opd_id, l.line_no, l.name AS product_name,
                   l.line_total, l.priority_tier, l.best_available_tier,
                   coalesce(l.priority_justification, '') AS justification
            FROM orders o {_LINES}
            WHERE {_SCOPE} AND {SPENT} AND NOT l.priority_compliant
            ORDER BY o.opd_id, o.order_id, l.line_no
            """,
            year,
            opd,
        )
    )


async def fiscal_years(conn: Connection) -> list[int]:
    records = await conn.fetch(
        "SELECT fiscal_year FROM rup UNION SELECT fiscal_year FROM orders ORDER BY 1 DESC"
    )
    return [r["fiscal_year"] for r in records]


async def opds(conn: Connection, year: int) -> list[str]:
    records = await conn.fetch(
        "SELECT opd_id FROM rup WHERE fiscal_year = $1"
        " UNION SELECT opd_id FROM orders WHERE fiscal_year = $1 ORDER BY 1",
        year,
    )
    return [r["opd_id"] for r in records]


async def order_changes(conn: Connection, order_id: UUID) -> list[Row]:
    """Every change of one order, oldest first."""
    return _rows(
        await conn.fetch(
            "SELECT version, event_type, snapshot::text AS snapshot FROM order_change"
            " WHERE order_id = $1 ORDER BY version",
            order_id,
        )
    )


async def payments(conn: Connection, order_ids: list[UUID]) -> list[Row]:
    """The payment changes of these orders."""
    return _rows(
        await conn.fetch(
            "SELECT order_id, version, snapshot::text AS snapshot FROM order_change"
            " WHERE order_id = ANY($1::uuid[]) AND event_type LIKE 'ekatalog.order.paid.%'"
            " ORDER BY order_id, version",
            order_ids,
        )
    )


async def feed_page(conn: Connection, after: tuple[int, int], limit: int) -> list[Row]:
    """Order changes after the position `after` = (transaction, sequence), in that order.

    Only changes whose transaction is older than every transaction still running are served:
    a sequence number is taken when a row is written but becomes visible at commit, so a
    cursor on the sequence alone would step over a change that commits late.
    """
    return _rows(
        await conn.fetch(
            """
            SELECT txid::text::bigint AS txid, seq, order_id, version, event_type,
                   snapshot::text AS snapshot
            FROM order_change
            WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
              AND (txid, seq) > ($1::bigint::text::xid8, $2::bigint)
            ORDER BY txid, seq
            LIMIT $3
            """,
            after[0],
            after[1],
            limit,
        )
    )


# --------------------------------------------------------------------------------- rebuild

# One rebuild at a time per database.
REBUILD_LOCK = 0x7265_6275_696C_64


# Tables the projection derives from `orders` by statement triggers, rebuilt alongside it; the
# function `<table>_apply(table)` keeps each one.
DERIVED_TABLES = ("kpi_totals", "kpi_states")


async def _kpi_triggers(conn: Connection, prefix: str) -> None:
    """The triggers that keep the derived tables up to date with the rows written to `orders`
    (the tables named with `prefix`)."""
    for derived in DERIVED_TABLES:
        for operation, transition in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ):
            name = f"orders_{derived}_{operation.lower()}"
            await conn.execute(f"DROP TRIGGER IF EXISTS {name} ON {prefix}orders")
            await conn.execute(
                f"CREATE TRIGGER {name} AFTER {operation} ON {prefix}orders"
                f" REFERENCING {transition}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {derived}_apply('{prefix}{derived}')"
            )


async def create_staging_tables(conn: Connection, tables: Sequence[Table]) -> None:
    """Empty staging tables for every row a rebuild reads: unlogged (they are disposable until
    the swap), without keys, indexes or triggers, so a batch is appended by COPY. What an
    interrupted rebuild left is dropped first."""
    for name in (*(table.name for table in tables), *DERIVED_TABLES):
        await conn.execute(f"DROP TABLE IF EXISTS {SHADOW_PREFIX}{name}")
    for table in tables:
        staged = STAGING_PREFIX + table.name
        await conn.execute(f"DROP TABLE IF EXISTS {staged}")
        await conn.execute(f"CREATE UNLOGGED TABLE {staged} (LIKE {table.name})")


async def stage(conn: Connection, rows: Mapping[Table, list[Values]]) -> None:
    """Append a batch's rows to the staging tables."""
    for table, table_rows in rows.items():
        if table_rows:
            await conn.copy_records_to_table(
                STAGING_PREFIX + table.name, records=table_rows, columns=table.columns
            )


async def build_shadow_tables(conn: Connection, tables: Sequence[Table]) -> None:
    """The shadow tables from the staging tables, which are dropped: per key the row the
    table's rule keeps, written once; then the live tables' keys and indexes; the derived
    totals computed by their trigger in one statement."""
    for table in tables:
        await conn.execute(
            f"CREATE TABLE {SHADOW_PREFIX}{table.name}"
            f" (LIKE {table.name} INCLUDING ALL EXCLUDING INDEXES)"
        )
    for name in DERIVED_TABLES:
        await conn.execute(f"CREATE TABLE {SHADOW_PREFIX}{name} (LIKE {name} INCLUDING ALL)")
    await _kpi_triggers(conn, SHADOW_PREFIX)
    for table in tables:
        columns = ", ".join(table.columns)
        key = ", ".join(table.key)
        order = "DESC" if table.keep is Keep.NEWEST else "ASC"
        await conn.execute(
            f"INSERT INTO {SHADOW_PREFIX}{table.name} ({columns})"
            f" SELECT DISTINCT ON ({key}) {columns} FROM {STAGING_PREFIX}{table.name}"
            f" ORDER BY {key}, version {order}"
        )
        await _copy_indexes(conn, table.name, SHADOW_PREFIX + table.name)
        await conn.execute(f"DROP TABLE {STAGING_PREFIX}{table.name}")


async def _copy_indexes(conn: Connection, table: str, shadow: str) -> None:
    """Give `shadow` the keys and indexes of `table`, named with the shadow prefix."""
    records = await conn.fetch(
        "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def,"
        " k.conname AS constraint, pg_get_constraintdef(k.oid) AS constraint_def"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.contype IN ('p', 'u')"
        " WHERE i.indrelid = $1::regclass",
        table,
    )
    for r in records:
        if r["constraint"] is not None:
            await conn.execute(
                f"ALTER TABLE {shadow} ADD CONSTRAINT {SHADOW_PREFIX}{r['constraint']}"
                f" {r['constraint_def']}"
            )
        else:
            unique = "UNIQUE " if r["def"].startswith("CREATE UNIQUE ") else ""
            method = r["def"].split(" USING ", 1)[1]
            await conn.execute(
                f"CREATE {unique}INDEX {SHADOW_PREFIX}{r['name']} ON {shadow} USING {method}"
            )


def _not_covered(table: Table, prefix: str) -> str:
    """Live rows whose state the shadow (or staging) table does not hold (yet)."""
    shadow = prefix + table.name
    same_key = " AND ".join(f"s.{c} = l.{c}" for c in table.key)
    if table.keep is Keep.NEWEST:
        covered = f"{same_key} AND s.version >= l.version"
    elif table.keep is Keep.EARLIEST:
        covered = f"{same_key} AND s.version <= l.version"
    else:
        covered = same_key
    return (
        f"SELECT count(*) FROM {table.name} l"
        f" WHERE NOT EXISTS (SELECT 1 FROM {shadow} s WHERE {covered})"
    )


async def not_covered(conn: Connection, tables: Sequence[Table], prefix: str) -> int:
    """How many live rows the shadow (or staging) tables are still behind on."""
    total = 0
    for table in tables:
        total += await conn.fetchval(_not_covered(table, prefix))
    return total


async def lock_live_tables(conn: Connection, tables: Sequence[Table]) -> None:
    """Stop the live consumer writing (readers go on) until this transaction ends."""
    names = ", ".join(table.name for table in tables)
    await conn.execute(f"LOCK TABLE {names} IN EXCLUSIVE MODE")


async def _indexes(conn: Connection, table: str) -> dict[str, str]:
    """Index definition (without its name and table) -> index name."""
    records = await conn.fetch(
        "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = $1::regclass",
        table,
    )
    return {
        f"{'UNIQUE ' if ' UNIQUE ' in r['def'] else ''}{r['def'].split(' USING ', 1)[1]}": r["name"]
        for r in records
    }


async def swap_in_shadow_tables(conn: Connection, tables: Sequence[Table]) -> None:
    """Replace each live table by its shadow, keeping table, index, sequence and trigger names."""
    for name in (*(table.name for table in tables), *DERIVED_TABLES):
        await _swap(conn, name)
    await _kpi_triggers(conn, "")


async def _swap(conn: Connection, table: str) -> None:
    shadow = SHADOW_PREFIX + table
    live_indexes = await _indexes(conn, table)
    shadow_indexes = await _indexes(conn, shadow)
    sequences = await conn.fetch(
        "SELECT a.attname AS column, pg_get_serial_sequence($1, a.attname) AS sequence"
        " FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0"
        " AND pg_get_serial_sequence($1, a.attname) IS NOT NULL",
        table,
    )
    for s in sequences:
        await conn.execute(f"ALTER SEQUENCE {s['sequence']} OWNED BY NONE")
    await conn.execute(f"DROP TABLE {table}")
    await conn.execute(f"ALTER TABLE {shadow} RENAME TO {table}")
    for definition, index in shadow_indexes.items():
        original = live_indexes.get(definition)
        if original is not None:
            await conn.execute(f"ALTER INDEX {index} RENAME TO {original}")
    for s in sequences:
        await conn.execute(f"ALTER SEQUENCE {s['sequence']} OWNED BY {table}.{s['column']}")


async def missing_order_changes(
    conn: Connection, keys: Sequence[tuple[UUID, int]]
) -> set[tuple[UUID, int]]:
    """Which of these (order, version) changes the order changes do not hold."""
    records = await conn.fetch(
        "SELECT k.order_id, k.version FROM unnest($1::uuid[], $2::integer[]) k(order_id, version)"
        " WHERE NOT EXISTS (SELECT 1 FROM order_change c"
        " WHERE c.order_id = k.order_id AND c.version = k.version)",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["order_id"], r["version"]) for r in records}


async def inbox_size(conn: Connection, consumer: str) -> int:
    """Events the live consumer has applied: what a rebuild will read, roughly."""
    return int(await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", consumer))
