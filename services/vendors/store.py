"""SQL for the vendors service's tables; nothing else in the service talks to the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.vendors.domain import Profile, Vendor
from shared.contracts.vendors import BusinessScale, LegalForm, VendorState
from shared.db import Connection

_COLUMNS = "vendor_id, state, version, profile, suspended_until, registered_at, updated_at"


def _vendor(row: asyncpg.Record) -> Vendor:
    return Vendor(
        vendor_id=row["vendor_id"],
        state=VendorState(row["state"]),
        version=row["version"],
        profile=Profile.model_validate(row["profile"]),
        suspended_until=row["suspended_until"],
        registered_at=row["registered_at"],
        updated_at=row["updated_at"],
    )


async def get_vendor(conn: Connection, vendor_id: UUID) -> Vendor | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM vendors WHERE vendor_id = $1", vendor_id)
    return _vendor(row) if row else None


async def lock_vendor(conn: Connection, vendor_id: UUID) -> Vendor | None:
    """The vendor row, locked until the transaction ends (commands lock before writing events)."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM vendors WHERE vendor_id = $1 FOR UPDATE", vendor_id
    )
    return _vendor(row) if row else None


async def vendor_with_nib(conn: Connection, nib: str) -> UUID | None:
    vendor_id: UUID | None = await conn.fetchval(
        "SELECT vendor_id FROM vendors WHERE nib = $1", nib
    )
    return vendor_id


def _row_values(vendor: Vendor, scale: BusinessScale) -> tuple[Any, ...]:
    p = vendor.profile
    return (
        vendor.vendor_id,
        vendor.state.value,
        vendor.version,
        p.model_dump(mode="json"),
        p.legal_name,
        p.legal_form.value,
        p.nib,
        p.npwp,
        p.kbli,
        p.region_code,
        scale.value,
        p.kswp_valid_until,
        p.kswp_status.value,
        vendor.suspended_until,
        vendor.registered_at,
        vendor.updated_at,
    )


_ALL_COLUMNS = (
    "vendor_id, state, version, profile, legal_name, legal_form, nib, npwp, kbli, region_code,"
    " scale, kswp_valid_until, kswp_status, suspended_until, registered_at, updated_at"
)


async def insert_vendor(conn: Connection, vendor: Vendor, scale: BusinessScale) -> None:
    """Raises asyncpg.UniqueViolationError naming `vendors_pkey` or `vendors_nib_key`."""
    await conn.execute(
        f"INSERT INTO vendors ({_ALL_COLUMNS}) VALUES"
        " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        *_row_values(vendor, scale),
    )


async def update_vendor(conn: Connection, vendor: Vendor, scale: BusinessScale) -> None:
    await conn.execute(
        """UPDATE vendors SET state = $2, version = $3, profile = $4, legal_name = $5,
               legal_form = $6, nib = $7, npwp = $8, kbli = $9, region_code = $10, scale = $11,
               kswp_valid_until = $12, kswp_status = $13, suspended_until = $14,
               registered_at = $15, updated_at = $16
           WHERE vendor_id = $1""",
        *_row_values(vendor, scale),
    )


async def add_history(
    conn: Connection,
    vendor: Vendor,
    *,
    event: str,
    from_state: VendorState | None,
    actor: str,
    detail: dict[str, Any],
) -> None:
    await conn.execute(
        """INSERT INTO vendor_history
               (vendor_id, version, event, from_state, to_state, actor, detail, occurred_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        vendor.vendor_id,
        vendor.version,
        event,
        from_state.value if from_state else None,
        vendor.state.value,
        actor,
        detail,
        vendor.updated_at,
    )


async def history(conn: Connection, vendor_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT version, event, from_state, to_state, actor, detail, occurred_at
           FROM vendor_history WHERE vendor_id = $1 ORDER BY version""",
        vendor_id,
    )
    return [dict(r) for r in rows]


@dataclass(frozen=True)
class VendorFilter:
    """Listing filters; None means "any". `text` matches the legal name, case-insensitively."""

    state: VendorState | None = None
    scale: BusinessScale | None = None
    koperasi: bool | None = None
    local_region: str | None = None  # the city's region code, when filtering on `local`
    local: bool | None = None
    kbli: str | None = None
    text: str | None = None


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_vendors(
    conn: Connection,
    where: VendorFilter,
    *,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Vendor]:
    """Vendors in registration order, keyset-paginated after (registered_at, vendor_id)."""
    clauses: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if where.state is not None:
        clauses.append(f"state = {arg(where.state.value)}")
    if where.scale is not None:
        clauses.append(f"scale = {arg(where.scale.value)}")
    if where.koperasi is not None:
        op = "=" if where.koperasi else "<>"
        clauses.append(f"legal_form {op} {arg(LegalForm.KOPERASI.value)}")
    if where.local is not None and where.local_region is not None:
        city = arg(where.local_region)
        inside = f"(region_code = {city} OR starts_with(region_code, {city} || '.'))"
        clauses.append(inside if where.local else f"NOT {inside}")
    if where.kbli is not None:
        clauses.append(f"{arg(where.kbli)} = ANY(kbli)")
    if where.text:
        clauses.append(f"legal_name ILIKE {arg(_like_pattern(where.text))}")
    if after is not None:
        clauses.append(f"(registered_at, vendor_id) > ({arg(after[0])}, {arg(after[1])})")
    sql = f"SELECT {_COLUMNS} FROM vendors"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += f" ORDER BY registered_at, vendor_id LIMIT {arg(limit)}"
    return [_vendor(r) for r in await conn.fetch(sql, *args)]


async def due_for_daily_check(conn: Connection, today: date) -> list[UUID]:
    """Verified vendors whose KSWP lapsed and suspended vendors whose end date passed."""
    rows = await conn.fetch(
        """SELECT vendor_id FROM vendors
           WHERE (state = 'verified' AND (kswp_status <> 'valid' OR kswp_valid_until IS NULL
                                          OR kswp_valid_until < $1))
              OR (state = 'suspended' AND suspended_until < $1)
           ORDER BY vendor_id""",
        today,
    )
    return [r["vendor_id"] for r in rows]


async def blacklist_entry(conn: Connection, npwps: Sequence[str]) -> str | None:
    """The reason one of these NPWP forms is blacklisted, or None."""
    reason: str | None = await conn.fetchval(
        "SELECT reason FROM npwp_blacklist WHERE npwp = ANY($1::text[]) LIMIT 1", list(npwps)
    )
    return reason


async def blacklist_put(conn: Connection, npwp: str, reason: str, actor: str) -> None:
    await conn.execute(
        """INSERT INTO npwp_blacklist (npwp, reason, added_by) VALUES ($1, $2, $3)
           ON CONFLICT (npwp) DO UPDATE
           SET reason = EXCLUDED.reason, added_by = EXCLUDED.added_by, added_at = now()""",
        npwp,
        reason,
        actor,
    )


async def blacklist_delete(conn: Connection, npwp: str) -> bool:
    deleted = await conn.fetchval("DELETE FROM npwp_blacklist WHERE npwp = $1 RETURNING 1", npwp)
    return bool(deleted == 1)


async def blacklist_all(conn: Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT npwp, reason, added_by, added_at FROM npwp_blacklist ORDER BY npwp"
    )
    return [dict(r) for r in rows]
