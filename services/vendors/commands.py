"""Vendor use cases. Each reads the vendor, decides, and writes it with its events.

Every event bumps the vendor's `version`, adds a history row and an outbox row, so the history a
reader sees and the events a consumer receives are the same sequence. The write is one statement
guarded on the version read (`store.saved_vendor`): a use case with one change reads without a
lock and retries from the read when another write came first (`optimistically`); scheduled work
that changes a vendor twice locks it in a unit of work. A command takes `db`, a pool or a
caller's connection (joined, see `unit_of_work`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.vendors import store
from services.vendors.domain import (
    Action,
    AlreadyRegistered,
    Declaration,
    DuplicateNib,
    KswpNotValid,
    KswpRenewal,
    MissingDocuments,
    NoKswpRenewal,
    NpwpBlacklisted,
    Profile,
    Vendor,
    VendorNotFound,
    changed_fields,
    lapsed,
    missing_documents,
    needs_review,
    renewed,
    snapshot_changes,
    suspension_over,
    transition,
)
from shared.contracts.vendors import (
    VendorEvent,
    VendorExpired,
    VendorKswpRenewalAccepted,
    VendorKswpRenewalRejected,
    VendorKswpRenewalSubmitted,
    VendorProfileUpdated,
    VendorRegistered,
    VendorReinstated,
    VendorRejected,
    VendorSnapshotCorrected,
    VendorState,
    VendorSuspended,
    VendorVerified,
)
from shared.db import Connection, StaleWrite, optimistically, unit_of_work
from shared.outbox import Outbox

# Actors recorded for changes nobody clicked.
SYSTEM_DAILY_CHECK = "system:daily-check"
SYSTEM_RULE_CORRECTION = "system:rule-correction"

Database = asyncpg.Pool | Connection


@dataclass(frozen=True)
class DailyCheckResult:
    """What one run of the daily check changed."""

    reinstated: list[UUID]
    expired: list[UUID]
    corrected: list[UUID]


def _event_name(event_type: type[VendorEvent]) -> str:
    return event_type.type.split(".")[2]  # ekatalog.vendor.<name>.v1


class VendorCommands:
    """The vendor use cases over one database (pool or connection) and outbox."""

    def __init__(self, db: Database, outbox: Outbox, city_region_code: str) -> None:
        self.db = db
        self.outbox = outbox
        self.city_region_code = city_region_code

    # ------------------------------------------------------------------------------ plumbing

    async def _duplicate_nib(self, exc: asyncpg.UniqueViolationError, nib: str) -> DuplicateNib:
        """The NIB unique-key race (two writers at once) as the domain error, once the
        failed unit of work rolled back; the original error when it was another key."""
        if exc.constraint_name == "vendors_nib_key":
            async with unit_of_work(self.db) as conn:
                existing = await store.vendor_with_nib(conn, nib)
            if existing is not None:
                return DuplicateNib(nib, existing)
        raise exc

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
        snapshot = vendor.snapshot(self.city_region_code)
        # vars(), not dict(): dict() of a pydantic model first asks for `keys`, which the model
        # answers by raising AttributeError, several microseconds on every write.
        event = event_type(**vars(snapshot), occurred_at=vendor.updated_at, **fields)
        change = store.saved_vendor(
            vendor,
            snapshot,
            insert=insert,
            event=_event_name(event_type),
            from_state=from_state,
            actor=actor,
            detail=fields,  # the event's own values; the jsonb codec writes them as JSON
        )
        _, written = await self.outbox.add_returning(conn, event, change=change)
        if not written["saved"]:
            raise StaleWrite(vendor.vendor_id)
        return vendor

    async def _change(
        self,
        conn: Connection,
        vendor: Vendor,
        event_type: type[VendorEvent],
        actor: str,
        *,
        action: Action | None = None,
        **changes_and_fields: Any,
    ) -> Vendor:
        """The next version of the vendor, moved along the state machine by `action`
        (IllegalTransition if it may not); `profile`, `suspended_until` and `kswp_renewal`
        replace the vendor's, other keywords go into the event."""
        aggregate = {
            name: changes_and_fields.pop(name)
            for name in ("profile", "suspended_until", "kswp_renewal")
            if name in changes_and_fields
        }
        changed = replace(
            vendor,
            state=transition(vendor.state, action) if action else vendor.state,
            version=vendor.version + 1,
            updated_at=datetime.now(UTC),
            **aggregate,
        )
        return await self._write(
            conn, changed, vendor.state, event_type, actor, **changes_and_fields
        )

    async def _decided(
        self, vendor_id: UUID, decide: Callable[[Connection, Vendor], Awaitable[Vendor]]
    ) -> Vendor:
        """Read the vendor, `decide` and write its change, guarded on the version read; from
        the read again while another write gets there first (see `optimistically`)."""

        async def attempt(conn: Connection, lock: bool) -> Vendor:
            vendor = await store.get_vendor(conn, vendor_id, lock=lock)
            if vendor is None:
                raise VendorNotFound(vendor_id)
            return await decide(conn, vendor)

        return await optimistically(self.db, attempt)

    async def _locked(self, conn: Connection, vendor_id: UUID) -> Vendor:
        vendor = await store.get_vendor(conn, vendor_id, lock=True)
        if vendor is None:
            raise VendorNotFound(vendor_id)
        return vendor

    async def _check_submission(self, conn: Connection, profile: Profile) -> None:
        """Registration checks: NPWP not blacklisted, then the documents the form needs."""
        reason = await store.blacklist_entry(conn, profile.npwp)
        if reason is not None:
            raise NpwpBlacklisted(profile.npwp, reason)
        missing = missing_documents(profile)
        if missing:
            raise MissingDocuments(missing)

    async def _expire_if_lapsed(
        self, conn: Connection, vendor: Vendor, today: date, actor: str
    ) -> Vendor:
        if lapsed(vendor.state, vendor.profile, today):
            return await self._change(conn, vendor, VendorExpired, actor, action=Action.EXPIRE)
        return vendor

    # ------------------------------------------------------------------------------ use cases

    async def register(self, vendor_id: UUID, profile: Profile, actor: str) -> Vendor:
        """A vendor submits its registration under the id its token names."""
        try:
            async with unit_of_work(self.db) as conn:
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
                return await self._write(conn, vendor, None, VendorRegistered, actor, insert=True)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "vendors_pkey":
                raise AlreadyRegistered(vendor_id) from None
            raise await self._duplicate_nib(exc, profile.nib) from None

    async def update_profile(
        self, vendor_id: UUID, declaration: Declaration, actor: str, today: date
    ) -> Vendor:
        """The vendor replaces what it declares; review fields send it back to verification.

        Its KSWP stays as accepted (a new one is a renewal), and an NPWP compares in its
        canonical form, so giving the 16-digit form of the same number changes nothing.
        """

        async def decide(conn: Connection, vendor: Vendor) -> Vendor:
            profile = vendor.profile.declare(declaration)
            changes = changed_fields(vendor.profile, profile)
            if not changes:
                return vendor
            review = needs_review(vendor.state, changes)
            if profile.npwp != vendor.profile.npwp:
                await self._check_submission(conn, profile)
            elif missing := missing_documents(profile):
                raise MissingDocuments(missing)
            if profile.nib != vendor.profile.nib:
                existing = await store.vendor_with_nib(conn, profile.nib)
                if existing is not None:
                    raise DuplicateNib(profile.nib, existing)
            action = Action.RESUBMIT if review else None
            state = transition(vendor.state, action) if action else vendor.state
            # A vendor whose KSWP lapsed expires with the update: two versions, written together.
            writes: AbstractAsyncContextManager[Connection] = (
                unit_of_work(conn) if lapsed(state, profile, today) else nullcontext(conn)
            )
            async with writes as tx:
                vendor = await self._change(
                    tx,
                    vendor,
                    VendorProfileUpdated,
                    actor,
                    action=action,
                    profile=profile,
                    changed_fields=changes,
                    requires_review=review,
                )
                return await self._expire_if_lapsed(tx, vendor, today, actor)

        try:
            return await self._decided(vendor_id, decide)
        except asyncpg.UniqueViolationError as exc:
            raise await self._duplicate_nib(exc, declaration.nib) from None

    async def verify(self, vendor_id: UUID, actor: str, today: date) -> Vendor:
        async def decide(conn: Connection, vendor: Vendor) -> Vendor:
            transition(vendor.state, Action.VERIFY)  # an illegal move is reported first
            if not vendor.profile.kswp_valid_on(today):
                raise KswpNotValid(today)
            return await self._change(
                conn, vendor, VendorVerified, actor, action=Action.VERIFY, verified_by=actor
            )

        return await self._decided(vendor_id, decide)

    async def reject(self, vendor_id: UUID, reasons: list[str], actor: str) -> Vendor:
        async def decide(conn: Connection, vendor: Vendor) -> Vendor:
            return await self._change(
                conn,
                vendor,
                VendorRejected,
                actor,
                action=Action.REJECT,
                reasons=reasons,
                rejected_by=actor,
            )

        return await self._decided(vendor_id, decide)

    async def suspend(self, vendor_id: UUID, reason: str, until: date | None, actor: str) -> Vendor:
        """A sanction; with `until` it ends by itself on the first daily check after that day."""

        async def decide(conn: Connection, vendor: Vendor) -> Vendor:
            return await self._change(
                conn,
                vendor,
                VendorSuspended,
                actor,
                action=Action.SUSPEND,
                suspended_until=until,
                reason=reason,
                until=until,
                suspended_by=actor,
            )

        return await self._decided(vendor_id, decide)

    async def reinstate(self, vendor_id: UUID, actor: str, today: date) -> Vendor:
        async with unit_of_work(self.db) as conn:
            vendor = await self._locked(conn, vendor_id)
            return await self._reinstate(conn, vendor, actor, today)

    async def _reinstate(self, conn: Connection, vendor: Vendor, actor: str, today: date) -> Vendor:
        vendor = await self._change(
            conn,
            vendor,
            VendorReinstated,
            actor,
            action=Action.REINSTATE,
            suspended_until=None,
            reinstated_by=actor,
        )
        # A KSWP that lapsed during the sanction expires the vendor straight away.
        return await self._expire_if_lapsed(conn, vendor, today, actor)

    # --------------------------------------------------------------------------- KSWP renewal

    async def submit_kswp_renewal(
        self, vendor_id: UUID, valid_until: date, certificate: str, actor: str
    ) -> Vendor:
        """The vendor uploads a new KSWP confirmation; it waits for the catalogue manager, and
        a later submission replaces one still waiting."""

        async def decide(conn: Connection, vendor: Vendor) -> Vendor:
            renewal = KswpRenewal(
                valid_until=valid_until,
                certificate=certificate,
                submitted_at=datetime.now(UTC),
                submitted_by=actor,
            )
            return await self._change(
                conn,
                vendor,
                VendorKswpRenewalSubmitted,
                actor,
                kswp_renewal=renewal,
                renewal_valid_until=valid_until,
            )

        return await self._decided(vendor_id, decide)

    async def accept_kswp_renewal(self, vendor_id: UUID, actor: str, today: date) -> Vendor:
        """The catalogue manager accepts the pending renewal; an expired vendor may sell again."""

        async def decide(conn: Connection, vendor: Vendor) -> Vendor:
            if vendor.kswp_renewal is None:
                raise NoKswpRenewal(vendor_id)
            profile = renewed(vendor.profile, vendor.kswp_renewal)
            if not profile.kswp_valid_on(today):
                raise KswpNotValid(today)
            return await self._change(
                conn,
                vendor,
                VendorKswpRenewalAccepted,
                actor,
                action=Action.RENEW if vendor.state is VendorState.EXPIRED else None,
                profile=profile,
                kswp_renewal=None,
                accepted_by=actor,
            )

        return await self._decided(vendor_id, decide)

    async def reject_kswp_renewal(self, vendor_id: UUID, reasons: list[str], actor: str) -> Vendor:
        async def decide(conn: Connection, vendor: Vendor) -> Vendor:
            if vendor.kswp_renewal is None:
                raise NoKswpRenewal(vendor_id)
            return await self._change(
                conn,
                vendor,
                VendorKswpRenewalRejected,
                actor,
                kswp_renewal=None,
                reasons=reasons,
                rejected_by=actor,
            )

        return await self._decided(vendor_id, decide)

    # ------------------------------------------------------------------------- scheduled work

    async def run_daily_checks(self, today: date) -> DailyCheckResult:
        """Publish corrected snapshots, end suspensions whose end date passed, then expire
        vendors whose KSWP lapsed.

        Each vendor goes in its own unit of work, re-checked under its lock, so a run that
        races a manager's action or another run changes nothing twice.
        """
        result = DailyCheckResult(reinstated=[], expired=[], corrected=[])
        result.corrected.extend(await self.publish_corrections())
        async with unit_of_work(self.db) as conn:
            due = await store.due_for_daily_check(conn, today)
        for vendor_id in due:
            async with unit_of_work(self.db) as conn:
                vendor = before = await self._locked(conn, vendor_id)
                if vendor.state is VendorState.SUSPENDED and suspension_over(
                    vendor.suspended_until, today
                ):
                    vendor = await self._reinstate(conn, vendor, SYSTEM_DAILY_CHECK, today)
                    result.reinstated.append(vendor_id)
                else:
                    vendor = await self._expire_if_lapsed(conn, vendor, today, SYSTEM_DAILY_CHECK)
                if vendor.state is VendorState.EXPIRED and before.state is not vendor.state:
                    result.expired.append(vendor_id)
        return result

    async def publish_corrections(self) -> list[UUID]:
        """Publish the snapshot of each vendor a migration marked as changed by a corrected
        rule (business scale, NPWP form, KBLI edition); the ids of those that changed."""
        async with unit_of_work(self.db) as conn:
            pending = await store.pending_corrections(conn)
        corrected = []
        for vendor_id in pending:
            async with unit_of_work(self.db) as conn:
                before = await store.lock_correction(conn, vendor_id)
                if before is None:  # another run or an event of the vendor published it
                    continue
                vendor = await self._locked(conn, vendor_id)
                changes = snapshot_changes(before, vendor.snapshot(self.city_region_code))
                if not changes:
                    await store.clear_correction(conn, vendor_id)
                    continue
                await self._change(
                    conn,
                    vendor,
                    VendorSnapshotCorrected,
                    SYSTEM_RULE_CORRECTION,
                    corrected_fields=changes,
                )
                corrected.append(vendor_id)
        return corrected

    # ----------------------------------------------------------------------------- blacklist

    async def blacklist(self, npwp: str, reason: str, actor: str) -> None:
        async with unit_of_work(self.db) as conn:
            await store.blacklist_put(conn, npwp, reason, actor)

    async def unblacklist(self, npwp: str) -> bool:
        async with unit_of_work(self.db) as conn:
            return await store.blacklist_delete(conn, npwp)
