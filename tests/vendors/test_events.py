"""What reaches the topic: every event type, in per-vendor version order, matching its schema."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from shared.contracts.vendors import VENDOR_EVENTS
from shared.events import event_json_schemas
from tests.unit.vendors.profiles import TODAY
from tests.vendors.helpers import SCHEMAS, Service, assert_problem


async def test_lifecycle_events_on_the_topic(service: Service) -> None:
    valid_until = TODAY + timedelta(days=20)
    vendor = await service.register(kswp_valid_until=valid_until.isoformat(), is_pkp=True)
    vid = vendor["vendor_id"]
    await service.act(vid, "verify")
    await service.update(await service.get(vid), address="Jl. Baru 9")
    await service.act(
        vid, "suspend", {"reason": "terlambat kirim", "until": valid_until.isoformat()}
    )
    await service.act(vid, "reinstate")
    await service.commands.run_daily_checks(valid_until + timedelta(days=1))
    await service.renew_kswp(vid, TODAY + timedelta(days=400))
    await service.act(vid, "kswp-renewal/accept")
    await service.update(await service.get(vid), kbli=["47711"])
    await service.renew_kswp(vid, TODAY + timedelta(days=800))
    await service.act(vid, "kswp-renewal/reject", {"reasons": ["bukan dokumen DJP"]})
    rejected = await service.register(legal_form="Koperasi")
    await service.act(rejected["vendor_id"], "reject", {"reasons": ["NIB tidak cocok"]})
    # a corrected rule: the snapshot as last published said "besar"
    async with service.app.state.pool.acquire() as conn:
        await conn.execute(
            """UPDATE vendors SET correction = '{"scale": "besar", "is_umk": false}'
               WHERE vendor_id = $1""",
            uuid.UUID(rejected["vendor_id"]),
        )
    await service.commands.publish_corrections()
    # refused commands leave no event behind
    assert_problem(await service.act(vid, "reinstate"), 409)
    assert_problem(await service.act(vid, "kswp-renewal/accept"), 409, "no-kswp-renewal")

    events = await service.events(min_count=14)
    assert len(events) == 14
    mine = [e for e in events if e.key == vid]
    assert [(e.type.split(".")[2], e.data["state"]) for e in mine] == [
        ("registered", "submitted"),
        ("verified", "verified"),
        ("profile_updated", "verified"),
        ("suspended", "suspended"),
        ("reinstated", "verified"),
        ("expired", "expired"),
        ("kswp_renewal_submitted", "expired"),
        ("kswp_renewal_accepted", "verified"),
        ("profile_updated", "submitted"),
        ("kswp_renewal_submitted", "submitted"),
        ("kswp_renewal_rejected", "submitted"),
    ]
    assert [e.data["version"] for e in mine] == list(range(1, 12))
    assert {e.type for e in events} == {e.type for e in VENDOR_EVENTS}
    for e in events:
        assert e.headers["ce_subject"] == e.key == e.data["vendor_id"]
        assert e.headers["ce_type"] == e.type

    registered, verified, updated, suspended, reinstated = (e.data for e in mine[:5])
    assert (registered["scale"], registered["is_umk"], registered["is_local"]) == (
        "mikro",
        True,
        True,
    )
    assert (registered["is_pkp"], registered["capital"]) == (True, 800_000_000)
    assert registered["kswp_valid_until"] == valid_until.isoformat()
    assert registered["npwp"] == "0" + vendor["npwp"][1:] and len(registered["npwp"]) == 16
    assert registered["kbli_editions"] == {"13134": "2025", "47711": "2025"}
    assert registered["pt_perorangan"] is False
    assert verified["verified_by"] == "ukpbj-1"
    assert updated["changed_fields"] == ["address"] and updated["requires_review"] is False
    assert (suspended["reason"], suspended["until"]) == ("terlambat kirim", valid_until.isoformat())
    assert reinstated["reinstated_by"] == "ukpbj-1"
    submitted, accepted = mine[6].data, mine[7].data
    # the submission changes nothing the catalogue relies on until it is accepted
    assert submitted["renewal_valid_until"] == (TODAY + timedelta(days=400)).isoformat()
    assert submitted["kswp_valid_until"] == valid_until.isoformat()
    assert accepted["accepted_by"] == "ukpbj-1"
    assert accepted["kswp_valid_until"] == (TODAY + timedelta(days=400)).isoformat()
    assert mine[8].data["requires_review"] is True
    assert mine[10].data["reasons"] == ["bukan dokumen DJP"]
    assert mine[10].data["kswp_valid_until"] == accepted["kswp_valid_until"]
    other = [e.data for e in events if e.key == rejected["vendor_id"]]
    assert other[0]["is_koperasi"] is True
    assert (other[1]["reasons"], other[1]["rejected_by"]) == (["NIB tidak cocok"], "ukpbj-1")
    assert (other[2]["corrected_fields"], other[2]["scale"]) == (["is_umk", "scale"], "mikro")

    # history rows and events are written together: one of each per change, none for refusals
    async with service.app.state.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM vendor_history") == len(events)
    assert len(await service.events(min_count=len(events) + 1, timeout=1)) == len(events)


def test_committed_schemas_match_the_event_models() -> None:
    schemas = event_json_schemas()
    for event in VENDOR_EVENTS:
        committed = json.loads((SCHEMAS / f"{event.type}.json").read_text())
        assert committed == schemas[event.type], f"run `ekatalog schemas` for {event.type}"
