"""SQL for the vendors service's tables; nothing else in the service talks to the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.vendors.domain import STORED, KswpRenewal, Profile, Vendor
from shared.contracts.vendors import (
    BusinessScale,
    KbliEdition,
    LegalForm,
    VendorSnapshot,
    VendorState,
)
from shared.db import Connection
from shared.outbox import StateChange

# The profile as its JSON text: pydantic reads that in one pass, where the jsonb codec's
# Python objects would be walked again.
_COLUMNS = (
    "vendor_id, state, version, profile::text AS profile, suspended_until, registered_at,"
    " updated_at, kswp_renewal"
)
# Columns that copy a snapshot field of the same name, for constraints, filters and the checks.
_SNAPSHOT_COLUMNS = (
    "legal_name",
    "legal_form",
    "nib",
    "npwp",
    "kbli",
    "region_code",
    "scale",
    "kswp_valid_until",
)


def _vendor(row: asyncpg.Record) -> Vendor:
    renewal = row["kswp_renewal"]
    return Vendor(
        vendor_id=row["vendor_id"],
        state=VendorState(row["state"]),
        version=row["version"],
        profile=Profile.model_validate_json(row["profile"], context={STORED: True}),
        suspended_until=row["suspended_until"],
        registered_at=row["registered_at"],
        updated_at=row["updated_at"],
        kswp_renewal=KswpRenewal.model_validate(renewal) if renewal is not None else None,
    )


_VENDOR_READ = {
    lock: f"SELECT {_COLUMNS} FROM vendors WHERE vendor_id = $1" + (" FOR UPDATE" if lock else "")
    for lock in (False, True)
}


async def get_vendor(conn: Connection, vendor_id: UUID, *, lock: bool = False) -> Vendor | None:
    """The vendor; with `lock`, its row stays locked until the transaction ends."""
    row = await conn.fetchrow(_VENDOR_READ[lock], vendor_id)
    return _vendor(row) if row else None


async def vendor_with_nib(conn: Connection, nib: str) -> UUID | None:
    vendor_id: UUID | None = await conn.fetchval(
        "SELECT vendor_id FROM vendors WHERE nib = $1", nib
    )
    return vendor_id


_ALL_COLUMNS = (
    "vendor_id",
    "state",
    "version",
    "profile",
    "kswp_status",
    "suspended_until",
    "registered_at",
    "updated_at",
    "kswp_renewal",
    *_SNAPSHOT_COLUMNS,
)


def _row_values(vendor: Vendor, snapshot: VendorSnapshot) -> list[Any]:
    return [
        vendor.vendor_id,
        vendor.state.value,
        vendor.version,
        vendor.profile,  # the jsonb codec serialises a model in one pass
        vendor.profile.kswp_status.value,
        vendor.suspended_until,
        vendor.registered_at,
        vendor.updated_at,
        vendor.kswp_renewal,
        *(getattr(snapshot, name) for name in _SNAPSHOT_COLUMNS),
    ]


_PLACEHOLDERS = ", ".join(f"${i}" for i in range(1, len(_ALL_COLUMNS) + 1))
_ASSIGNMENTS = ", ".join(f"{name} = ${i}" for i, name in enumerate(_ALL_COLUMNS, 1) if i > 1)


_HISTORY_COLUMNS = "vendor_id, version, event, from_state, to_state, actor, detail, occurred_at"


def _param(column: str) -> str:
    return f"${_ALL_COLUMNS.index(column) + 1}"


# The vendor row and its history row, as the state change of the vendor's event (one statement
# with the outbox's); the history row repeats the vendor's id, version, state and time from the
# row's own parameters.
_N = len(_ALL_COLUMNS)
_HISTORY_ROW = f"""history AS (
    INSERT INTO vendor_history ({_HISTORY_COLUMNS})
    SELECT vendor_id, {_param("version")}, ${_N + 1}, ${_N + 2}, {_param("state")}, ${_N + 3},
           ${_N + 4}, {_param("updated_at")}
    FROM saved)"""
_INSERT = f"""saved AS (
    INSERT INTO vendors ({", ".join(_ALL_COLUMNS)}) VALUES ({_PLACEHOLDERS}) RETURNING vendor_id
), {_HISTORY_ROW}"""
# Guarded on the version the new one follows: a write that read an older vendor changes
# nothing (and its events are not written, see `StateChange.guard`). A pending snapshot
# correction is thereby published and cleared.
_UPDATE = f"""saved AS (
    UPDATE vendors SET {_ASSIGNMENTS}, correction = NULL
    WHERE vendor_id = $1 AND version = {_param("version")} - 1 RETURNING vendor_id
), {_HISTORY_ROW}"""


def saved_vendor(
    vendor: Vendor,
    snapshot: VendorSnapshot,
    *,
    insert: bool,
    event: str,
    from_state: VendorState | None,
    actor: str,
    detail: dict[str, Any],
) -> StateChange:
    """The vendor stored (a new row with `insert`) with its history row, written by the outbox
    in its event's statement, which returns `saved`: false when an update found the vendor at
    another version than the one before `vendor.version`, and wrote nothing.

    An insert raises asyncpg.UniqueViolationError naming `vendors_pkey` or `vendors_nib_key`.
    """
    return StateChange(
        _INSERT if insert else _UPDATE,
        (
            *_row_values(vendor, snapshot),
            event,
            from_state.value if from_state else None,
            actor,
            detail,
        ),
        returns="EXISTS (SELECT FROM saved) AS saved",
        guard="saved",
    )


_HISTORY_SELECTED = "version, event, from_state, to_state, actor, detail, occurred_at"
# GET /vendors/{id} embeds this many of the latest events; the rest are paged.
LATEST_HISTORY = 20


async def latest_history(conn: Connection, vendor_id: UUID) -> list[dict[str, Any]]:
    """The vendor's latest `LATEST_HISTORY` events, oldest first."""
    rows = await conn.fetch(
        f"""SELECT {_HISTORY_SELECTED} FROM vendor_history WHERE vendor_id = $1
            ORDER BY version DESC LIMIT $2""",
        vendor_id,
        LATEST_HISTORY,
    )
    return [dict(r) for r in reversed(rows)]


async def history(
    conn: Connection, vendor_id: UUID, after_version: int, limit: int
) -> list[dict[str, Any]]:
    """The vendor's events after `after_version`, oldest first."""
    rows = await conn.fetch(
        f"""SELECT {_HISTORY_SELECTED} FROM vendor_history WHERE vendor_id = $1 AND version > $2
            ORDER BY version LIMIT $3""",
        vendor_id,
        after_version,
        limit,
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
    kbli_edition: KbliEdition | None = None
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
    if where.kbli_edition is not None:
        activity = {"edition": where.kbli_edition.value}
        if where.kbli is not None:
            activity["code"] = where.kbli  # that code in that edition
        clauses.append(f"profile->'kbli' @> {arg([activity])}::jsonb")
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


async def blacklist_entry(conn: Connection, npwp: str) -> str | None:
    """Why this (canonical, 16-digit) NPWP is blacklisted, or None."""
    reason: str | None = await conn.fetchval(
        "SELECT reason FROM npwp_blacklist WHERE npwp = $1", npwp
    )
    return reason


async def pending_corrections(conn: Connection) -> list[UUID]:
    """Vendors whose snapshot a corrected rule changed and that is not yet published."""
    rows = await conn.fetch(
        "SELECT vendor_id FROM vendors WHERE correction IS NOT NULL ORDER BY vendor_id"
    )
    return [r["vendor_id"] for r in rows]


async def lock_correction(conn: Connection, vendor_id: UUID) -> dict[str, Any] | None:
    """The vendor's pending correction, locked with the vendor row; None once published."""
    correction: dict[str, Any] | None = await conn.fetchval(
        "SELECT correction FROM vendors WHERE vendor_id = $1 FOR UPDATE", vendor_id
    )
    return correction


async def clear_correction(conn: Connection, vendor_id: UUID) -> None:
    await conn.execute("UPDATE vendors SET correction = NULL WHERE vendor_id = $1", vendor_id)


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
