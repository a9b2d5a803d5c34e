"""Vendor writes read without a lock and write on the version they read: concurrent writers of
one vendor each get their own version, a stale write reads again, a refused one writes nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from services.vendors import store
from services.vendors.api import DeclarationBody
from services.vendors.domain import Vendor
from shared.db import Connection
from tests.vendors.helpers import Service, assert_problem


async def _history(service: Service, vendor_id: str) -> list[tuple[int, str]]:
    rows = await service.app.state.pool.fetch(
        "SELECT version, event FROM vendor_history WHERE vendor_id = $1 ORDER BY version",
        uuid.UUID(vendor_id),
    )
    return [(r["version"], r["event"]) for r in rows]


async def _logged_versions(service: Service, vendor_id: str) -> list[int]:
    rows = await service.app.state.pool.fetch(
        "SELECT (convert_from(payload, 'UTF8')::jsonb ->> 'version')::int AS version"
        " FROM event_log WHERE aggregate_id = $1 ORDER BY position",
        vendor_id,
    )
    return [r["version"] for r in rows]


def _declaration(vendor: dict[str, Any], **changes: Any) -> Any:
    body = {k: vendor[k] for k in DeclarationBody.model_fields}
    return DeclarationBody.model_validate({**body, **changes}).declaration()


async def test_concurrent_profile_updates_each_take_one_version(service: Service) -> None:
    """Twenty updates of one vendor at once: all apply, on consecutive versions, each with one
    history row and one event, in the same order."""
    vendor = await service.verified()
    vid = vendor["vendor_id"]
    responses = await asyncio.gather(
        *(service.update(vendor, address=f"Jl. Gajah Mada {n}, Pekalongan") for n in range(20))
    )
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
    versions = list(range(3, 23))
    assert sorted(r.json()["version"] for r in responses) == versions
    history = await _history(service, vid)
    assert history[2:] == [(v, "profile_updated") for v in versions]
    assert await _logged_versions(service, vid) == [1, 2, *versions]
    last = max(responses, key=lambda r: r.json()["version"]).json()
    stored = await service.get(vid)
    assert (stored["version"], stored["address"]) == (22, last["address"])


async def test_a_stale_profile_update_reads_again_and_applies(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KSWP renewal lands between the update's read and its write: the update writes nothing,
    reads again and applies on top, keeping the renewal."""
    vendor = await service.verified()
    vid = uuid.UUID(vendor["vendor_id"])
    reads = 0
    get_vendor = store.get_vendor

    async def read_then_overtaken(
        conn: Connection, vendor_id: uuid.UUID, *, lock: bool = False
    ) -> Vendor | None:
        nonlocal reads
        reads += 1
        read = await get_vendor(conn, vendor_id, lock=lock)
        if reads == 1:  # the renewal's own read is the second
            await service.commands.submit_kswp_renewal(
                vendor_id, date.today() + timedelta(days=400), "https://x.example/k", "vendor"
            )
        return read

    monkeypatch.setattr(store, "get_vendor", read_then_overtaken)
    updated = await service.commands.update_profile(
        vid, _declaration(vendor, address="Jl. Baru 2"), "vendor", date.today()
    )
    assert reads == 3
    assert updated.version == 4 and updated.profile.address == "Jl. Baru 2"
    assert updated.kswp_renewal is not None
    assert (await _history(service, str(vid)))[2:] == [
        (3, "kswp_renewal_submitted"),
        (4, "profile_updated"),
    ]
    assert await _logged_versions(service, str(vid)) == [1, 2, 3, 4]


async def test_a_contended_profile_update_takes_the_lock(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overtaken on every read without a lock, the update reads under the lock and applies."""
    vendor = await service.verified()
    vid = uuid.UUID(vendor["vendor_id"])
    get_vendor = store.get_vendor
    overtaking = False

    async def always_overtaken(
        conn: Connection, vendor_id: uuid.UUID, *, lock: bool = False
    ) -> Vendor | None:
        """The update's reads without a lock are overtaken; the renewal overtaking it, and the
        read under the lock, are not."""
        nonlocal overtaking
        read = await get_vendor(conn, vendor_id, lock=lock)
        if not overtaking and not lock:
            overtaking = True
            try:
                await service.commands.submit_kswp_renewal(
                    vendor_id, date.today() + timedelta(days=400), "https://x.example/k", "v"
                )
            finally:
                overtaking = False
        return read

    monkeypatch.setattr(store, "get_vendor", always_overtaken)
    updated = await service.commands.update_profile(
        vid, _declaration(vendor, address="Jl. Baru 2"), "vendor", date.today()
    )
    assert updated.version == 6 and updated.profile.address == "Jl. Baru 2"
    assert (await _history(service, str(vid)))[2:] == [
        (3, "kswp_renewal_submitted"),
        (4, "kswp_renewal_submitted"),
        (5, "kswp_renewal_submitted"),
        (6, "profile_updated"),
    ]
    assert await _logged_versions(service, str(vid)) == [1, 2, 3, 4, 5, 6]


async def test_a_refused_update_writes_nothing(service: Service) -> None:
    vendor = await service.verified()
    other = await service.verified()
    response = await service.update(vendor, nib=other["nib"], address="Jl. Baru 3")
    assert_problem(response, 409, "duplicate-nib")
    response = await service.update(vendor, documents={}, address="Jl. Baru 3")
    assert response.status_code in (409, 422), response.text
    stored = await service.get(vendor["vendor_id"])
    assert (stored["version"], stored["address"]) == (2, vendor["address"])
    assert len(await _history(service, vendor["vendor_id"])) == 2
    assert await _logged_versions(service, vendor["vendor_id"]) == [1, 2]


async def test_an_update_of_a_vendor_whose_kswp_lapsed_expires_it_in_the_same_write(
    service: Service,
) -> None:
    """Two versions from one update (updated, then expired): both or neither."""
    valid_until = date.today() + timedelta(days=30)
    vendor = await service.verified(kswp_valid_until=valid_until.isoformat())
    vid = uuid.UUID(vendor["vendor_id"])
    updated = await service.commands.update_profile(
        vid, _declaration(vendor, address="Jl. Baru 4"), "vendor", valid_until + timedelta(days=1)
    )
    assert (updated.state.value, updated.version) == ("expired", 4)
    assert (await _history(service, str(vid)))[2:] == [(3, "profile_updated"), (4, "expired")]
    assert await _logged_versions(service, str(vid)) == [1, 2, 3, 4]
