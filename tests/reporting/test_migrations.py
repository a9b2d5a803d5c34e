"""Upgrading a reporting database that already holds orders: the counts the funnel reads are
filled from them by the migration that adds them, and kept by its triggers afterwards."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from services.reporting import store
from services.reporting.projection import rows_of
from shared.contracts import orders as o
from shared.db import PLATFORM_MIGRATIONS, apply_migrations
from tests.reporting.helpers import MIGRATIONS
from tests.reporting.scenario import YEAR, City, at
from tests.support import Infra, migrations_before, scratch_database


async def counted(conn: asyncpg.Connection) -> list[tuple[str, bool, int]]:
    """The orders per state and SP, counted from the orders themselves."""
    records = await conn.fetch(
        "SELECT state, sp_number IS NOT NULL AS has_sp, count(*) AS orders"
        " FROM orders WHERE fiscal_year = $1 GROUP BY 1, 2",
        YEAR,
    )
    return sorted((r["state"], r["has_sp"], r["orders"]) for r in records)


async def test_order_states_are_counted_from_the_orders_already_stored(
    infra: Infra, tmp_path: Path
) -> None:
    before = migrations_before(MIGRATIONS, "003", tmp_path / "before")
    city = City()
    async with scratch_database(infra) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await apply_migrations(conn, "platform", PLATFORM_MIGRATIONS)
            await apply_migrations(conn, "reporting", before)
            await store.apply(conn, rows_of(city.order_events))
            assert len(await counted(conn)) > 2
            assert await apply_migrations(conn, "reporting", MIGRATIONS) == ["003_order_states.sql"]
            assert sorted(await store.orders_by_state(conn, YEAR, None)) == await counted(conn)
            order = city.approved_order(1, 11)  # placed, then approved
            await store.apply(conn, rows_of(order.events))
            await store.apply(conn, rows_of([order.step(o.OrderAcceptedByVendor, at(11, 9))]))
            assert sorted(await store.orders_by_state(conn, YEAR, None)) == await counted(conn)
        finally:
            await conn.close()
