"""Upgrading an orders database that already holds orders: what each package's live orders hold
is filled in by the migration that adds it, and kept by its trigger afterwards."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg

from services.orders import app
from shared.db import PLATFORM_MIGRATIONS, apply_migrations
from tests.support import Infra, migrations_before, scratch_database

MIGRATIONS = Path(app.__file__).parent / "migrations"


async def add_order(conn: asyncpg.Connection, rup_code: str, total: int, live: bool) -> uuid.UUID:
    order_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO orders (id, version, state, opd_id, rup_code, procurement_type,
               fiscal_year, method, vendor_id, vendor, lines, product_ids, total, live,
               delivery_address, placed_by, placed_by_role, ppk_id, priority_compliant,
               placed_at, updated_at)
           VALUES ($1, 1, $4, 'DISDIK', $2, 'barang', 2026, 'direct', $1, '{}', '[]', '{}', $3,
                   $5, 'Jl. Mataram 1', 'pp-1', 'pp', 'ppk-1', true, now(), now())""",
        order_id,
        rup_code,
        total,
        "awaiting_approval" if live else "cancelled",
        live,
    )
    return order_id


async def held(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT rup_code, committed FROM rup_package ORDER BY rup_code")
    return {r["rup_code"]: r["committed"] for r in rows}


async def test_what_packages_hold_is_computed_from_the_orders_already_stored(
    infra: Infra, tmp_path: Path
) -> None:
    before = migrations_before(MIGRATIONS, "003", tmp_path / "before")
    async with scratch_database(infra) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await apply_migrations(conn, "platform", PLATFORM_MIGRATIONS)
            await apply_migrations(conn, "orders", before)
            for code in ("RUP-A", "RUP-B", "RUP-C"):
                await conn.execute(
                    """INSERT INTO rup_package (rup_code, opd_id, package_name, fiscal_year,
                           procurement_type, pagu, funding_source, method, version)
                       VALUES ($1, 'DISDIK', 'Seragam', 2026, 'barang', 10000000, 'APBD',
                               'e-purchasing', 1)""",
                    code,
                )
            first = await add_order(conn, "RUP-A", 1_000_000, live=True)
            await add_order(conn, "RUP-A", 2_500_000, live=True)
            await add_order(conn, "RUP-A", 4_000_000, live=False)
            second = await add_order(conn, "RUP-B", 700_000, live=True)
            assert await apply_migrations(conn, "orders", MIGRATIONS) == ["003_committed.sql"]
            assert await held(conn) == {"RUP-A": 3_500_000, "RUP-B": 700_000, "RUP-C": 0}
            # One statement ends an order of each package and renegotiates none: both move.
            await conn.execute(
                "UPDATE orders SET live = false WHERE id = ANY($1::uuid[])", [first, second]
            )
            assert await held(conn) == {"RUP-A": 2_500_000, "RUP-B": 0, "RUP-C": 0}
        finally:
            await conn.close()
