"""Vendor use cases. Each runs in one transaction: lock the vendor, change it, write its events.

Every event bumps the vendor's `version`, adds a history row and an outbox row, so the history a
reader sees and the events a consumer receives are the same sequence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.vendors import store
from services.vendors.domain import (
    Action,
    AlreadyRegistered,
    DuplicateNib,
    KswpNotValid,
    MissingDocuments,
    NpwpBlacklisted,
    Profile,
    Vendor,
    VendorNotFound,
    changed_fields,
    classify,
    kswp_action,
    missing_documents,
    needs_review,
    npwp_aliases,
    suspension_over,
    transition,
)
from shared.contracts.vendors import (
    VendorEvent,
    VendorExpired,
    VendorProfileUpdated,
    VendorRegistered,
    VendorReinstated,
    VendorRejected,
    VendorState,
    VendorSuspended,
    VendorVerified,
)
from shared.db import Connection
from shared.outbox import Outbox

# Actors recorded for transitions nobody clicked.
SYSTEM_DAILY_CHECK = "system:daily-check"
SYSTEM_KSWP_RENEWAL = "system:kswp-renewal"


@dataclass(frozen=True)
class DailyCheckResult:
    """What one run of the daily check changed."""

    reinstated: list[UUID]
    expired: list[UUID]


def _event_name(event_type: type[VendorEvent]) -> str:
    return event_type.type.split(".")[2]  # ekatalog.vendor.<name>.v1


class VendorCommands:
    """The vendor use cases over one database pool and outbox."""

    def __init__(self, pool: asyncpg.Pool, outbox: Outbox, city_region_code: str) -> None:
        self.pool = pool
        self.outbox = outbox
        self.city_region_code = city_region_code

    # ------------------------------------------------------------------------------ plumbing

    @asynccontextmanager
    async def _transaction(self, profile: Profile | None = None) -> AsyncIterator[Connection]:
        """A transaction whose NIB unique-key race (two writers at once) becomes DuplicateNib."""
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    yield conn
            except asyncpg.UniqueViolationError as exc:
                if profile is None or exc.constraint_name != "vendors_nib_key":
                    raise
                existing = await store.vendor_with_nib(conn, profile.nib)
                if existing is None:  # the other writer rolled back after all
                    raise
                raise DuplicateNib(profile.nib, existing) from None

    async def _write(
        self,
        conn: Connection,
        vendor: Vendor,
        from_state: VendorState | None,
        event_type: type[VendorEvent],
        actor: str,
        *,
        insert: bool = False,
        **fields: Any,
    ) -> Vendor:
        """Store `vendor` (already at its new version) with its history row and its event."""
        c = classify(vendor.profile, self.city_region_code)
        if insert:
            await store.insert_vendor(conn, vendor, c.scale)
        else:
            await store.update_vendor(conn, vendor, c.scale)
        p = vendor.profile
        event = event_type(
            vendor_id=vendor.vendor_id,
            version=vendor.version,
            occurred_at=vendor.updated_at,
            state=vendor.state,
            legal_name=p.legal_name,
            legal_form=p.legal_form,
            nib=p.nib,
            npwp=p.npwp,
            kbli=p.kbli,
            region_code=p.region_code,
            scale=c.scale,
            is_umk=c.is_umk,
            is_koperasi=c.is_koperasi,
            is_local=c.is_local,
            kswp_valid_until=p.kswp_valid_until,
            is_pkp=p.is_pkp,
            capital=p.capital,
            annual_sales=p.annual_sales,
            **fields,
        )
        detail = event.model_dump(mode="json", include=set(fields))
        await store.add_history(
            conn,
            vendor,
            event=_event_name(event_type),
            from_state=from_state,
            actor=actor,
            detail=detail,
        )
        await self.outbox.add(conn, event)
        return vendor

    async def _apply(
        self,
        conn: Connection,
        vendor: Vendor,
        action: Action,
        event_type: type[VendorEvent],
        actor: str,
        *,
        profile: Profile | None = None,
        suspended_until: date | None = None,
        **fields: Any,
    ) -> Vendor:
        """Move the vendor along the state machine (IllegalTransition if it may not)."""
        changed = replace(
            vendor,
            state=transition(vendor.state, action),
            version=vendor.version + 1,
            profile=profile or vendor.profile,
            suspended_until=suspended_until,
            updated_at=datetime.now(UTC),
        )
        return await self._write(conn, changed, vendor.state, event_type, actor, **fields)

    async def _locked(self, conn: Connection, vendor_id: UUID) -> Vendor:
        vendor = await store.lock_vendor(conn, vendor_id)
        if vendor is None:
            raise VendorNotFound(vendor_id)
        return vendor

    async def _check_submission(self, conn: Connection, profile: Profile) -> None:
        """Registration checks: NPWP not blacklisted, then the documents the form needs."""
        reason = await store.blacklist_entry(conn, sorted(npwp_aliases(profile.npwp)))
        if reason is not None:
            raise NpwpBlacklisted(profile.npwp, reason)
        missing = missing_documents(profile)
        if missing:
            raise MissingDocuments(missing)

    async def _settle_kswp(
        self, conn: Connection, vendor: Vendor, today: date, actor: str
    ) -> Vendor:
        """Expire a verified vendor whose KSWP lapsed; renew an expired one whose KSWP is valid."""
        match kswp_action(vendor.state, vendor.profile, today):
            case Action.EXPIRE:
                return await self._apply(conn, vendor, Action.EXPIRE, VendorExpired, actor)
            case Action.RENEW:
                return await self._apply(
                    conn,
                    vendor,
                    Action.RENEW,
                    VendorVerified,
                    actor,
                    verified_by=SYSTEM_KSWP_RENEWAL,
                )
        return vendor

    # ------------------------------------------------------------------------------ use cases

    async def register(self, vendor_id: UUID, profile: Profile, actor: str) -> Vendor:
        """A vendor submits its registration under the id its token names."""
        async with self._transaction(profile) as conn:
            await self._check_submission(conn, profile)
            if await store.get_vendor(conn, vendor_id) is not None:
                raise AlreadyRegistered(vendor_id)
            existing = await store.vendor_with_nib(conn, profile.nib)
            if existing is not None:
                raise DuplicateNib(profile.nib, existing)
            now = datetime.now(UTC)
            vendor = Vendor(
                vendor_id=vendor_id,
                state=VendorState.SUBMITTED,
                version=1,
                profile=profile,
                suspended_until=None,
                registered_at=now,
                updated_at=now,
            )
            try:
                async with conn.transaction():  # a savepoint: the id race is told apart below
                    return await self._write(
                        conn, vendor, None, VendorRegistered, actor, insert=True
                    )
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "vendors_pkey":
                    raise AlreadyRegistered(vendor_id) from None
                raise

    async def update_profile(
        self, vendor_id: UUID, profile: Profile, actor: str, today: date
    ) -> Vendor:
        """The vendor replaces its profile; review fields send it back to verification."""
        async with self._transaction(profile) as conn:
            vendor = await self._locked(conn, vendor_id)
            changes = changed_fields(vendor.profile, profile)
            if not changes:
                return vendor
            review = needs_review(vendor.state, vendor.profile, profile)
            if profile.npwp != vendor.profile.npwp:
                await self._check_submission(conn, profile)
            elif missing := missing_documents(profile):
                raise MissingDocuments(missing)
            if profile.nib != vendor.profile.nib:
                existing = await store.vendor_with_nib(conn, profile.nib)
                if existing is not None:
                    raise DuplicateNib(profile.nib, existing)
            fields: dict[str, Any] = {"changed_fields": changes, "requires_review": review}
            if review:
                vendor = await self._apply(
                    conn,
                    vendor,
                    Action.RESUBMIT,
                    VendorProfileUpdated,
                    actor,
                    profile=profile,
                    **fields,
                )
            else:
                changed = replace(
                    vendor,
                    version=vendor.version + 1,
                    profile=profile,
                    updated_at=datetime.now(UTC),
                )
                vendor = await self._write(
                    conn, changed, vendor.state, VendorProfileUpdated, actor, **fields
                )
            return await self._settle_kswp(conn, vendor, today, actor)

    async def verify(self, vendor_id: UUID, actor: str, today: date) -> Vendor:
        async with self._transaction() as conn:
            vendor = await self._locked(conn, vendor_id)
            transition(vendor.state, Action.VERIFY)  # an illegal move is reported first
            if not vendor.profile.kswp_valid_on(today):
                raise KswpNotValid(today)
            return await self._apply(
                conn, vendor, Action.VERIFY, VendorVerified, actor, verified_by=actor
            )

    async def reject(self, vendor_id: UUID, reasons: list[str], actor: str) -> Vendor:
        async with self._transaction() as conn:
            vendor = await self._locked(conn, vendor_id)
            return await self._apply(
                conn,
                vendor,
                Action.REJECT,
                VendorRejected,
                actor,
                reasons=reasons,
                rejected_by=actor,
            )

    async def suspend(self, vendor_id: UUID, reason: str, until: date | None, actor: str) -> Vendor:
        """A sanction; with `until` it ends by itself on the first daily check after that day."""
        async with self._transaction() as conn:
            vendor = await self._locked(conn, vendor_id)
            return await self._apply(
                conn,
                vendor,
                Action.SUSPEND,
                VendorSuspended,
                actor,
                suspended_until=until,
                reason=reason,
                until=until,
                suspended_by=actor,
            )

    async def reinstate(self, vendor_id: UUID, actor: str, today: date) -> Vendor:
        async with self._transaction() as conn:
            vendor = await self._locked(conn, vendor_id)
            return await self._reinstate(conn, vendor, actor, today)

    async def _reinstate(self, conn: Connection, vendor: Vendor, actor: str, today: date) -> Vendor:
        vendor = await self._apply(
            conn, vendor, Action.REINSTATE, VendorReinstated, actor, reinstated_by=actor
        )
        # A KSWP that lapsed during the sanction expires the vendor straight away.
        return await self._settle_kswp(conn, vendor, today, actor)

    async def run_daily_checks(self, today: date) -> DailyCheckResult:
        """End suspensions whose end date passed, then expire vendors whose KSWP lapsed.

        Each vendor goes in its own transaction, re-checked under its lock, so a run that races
        a manager's action or another run changes nothing twice.
        """
        async with self.pool.acquire() as conn:
            due = await store.due_for_daily_check(conn, today)
        result = DailyCheckResult(reinstated=[], expired=[])
        for vendor_id in due:
            async with self._transaction() as conn:
                vendor = before = await self._locked(conn, vendor_id)
                if vendor.state is VendorState.SUSPENDED and suspension_over(
                    vendor.suspended_until, today
                ):
                    vendor = await self._reinstate(conn, vendor, SYSTEM_DAILY_CHECK, today)
                    result.reinstated.append(vendor_id)
                else:
                    vendor = await self._settle_kswp(conn, vendor, today, SYSTEM_DAILY_CHECK)
                if vendor.state is VendorState.EXPIRED and before.state is not vendor.state:
                    result.expired.append(vendor_id)
        return result

    # ----------------------------------------------------------------------------- blacklist

    async def blacklist(self, npwp: str, reason: str, actor: str) -> None:
        async with self.pool.acquire() as conn:
            await store.blacklist_put(conn, npwp, reason, actor)

    async def unblacklist(self, npwp: str) -> bool:
        async with self.pool.acquire() as conn:
            return await store.blacklist_delete(conn, npwp)
