"""Verification, rejection, sanctions, KSWP expiry and renewal, profile updates."""

from __future__ import annotations

from datetime import timedelta

from services.vendors.api import DeclarationBody
from tests.unit.vendors.profiles import TODAY
from tests.vendors.helpers import Service, assert_problem, vendor_auth


async def test_verify_and_reject(service: Service) -> None:
    vendor = await service.register()
    verified = await service.act(vendor["vendor_id"], "verify")
    assert verified.status_code == 200
    assert (verified.json()["state"], verified.json()["version"]) == ("verified", 2)

    other = await service.register()
    rejected = await service.act(
        other["vendor_id"], "reject", {"reasons": ["akta tidak terbaca", "NIB tidak aktif"]}
    )
    assert rejected.json()["state"] == "rejected"
    history = (await service.get(other["vendor_id"]))["history"]
    assert [(h["event"], h["from_state"], h["to_state"]) for h in history] == [
        ("registered", None, "submitted"),
        ("rejected", "submitted", "rejected"),
    ]
    assert history[1]["actor"] == "ukpbj-1"
    assert history[1]["detail"]["reasons"] == ["akta tidak terbaca", "NIB tidak aktif"]

    assert_problem(await service.act(other["vendor_id"], "reject", {"reasons": []}), 422)
    assert_problem(
        await service.act("00000000-0000-0000-0000-000000000000", "verify"),
        404,
        "vendor-not-found",
    )
    assert_problem(await service.act("not-a-uuid", "verify"), 422)


async def test_illegal_transitions_are_409_with_the_current_state(service: Service) -> None:
    submitted = await service.register()
    verified = await service.verified()
    rejected = await service.register()
    await service.act(rejected["vendor_id"], "reject", {"reasons": ["x"]})
    cases = [
        (submitted, "suspend", {"reason": "x"}, "submitted"),
        (submitted, "reinstate", None, "submitted"),
        (verified, "verify", None, "verified"),
        (verified, "reject", {"reasons": ["x"]}, "verified"),
        (verified, "reinstate", None, "verified"),
        (rejected, "verify", None, "rejected"),
        (rejected, "suspend", {"reason": "x"}, "rejected"),
    ]
    for vendor, action, body, state in cases:
        problem = assert_problem(
            await service.act(vendor["vendor_id"], action, body), 409, "illegal-transition"
        )
        assert (problem["current_state"], problem["action"]) == (state, action)


async def test_verification_needs_valid_tax_compliance(service: Service) -> None:
    lapsed = await service.register(kswp_valid_until=(TODAY - timedelta(days=1)).isoformat())
    assert_problem(await service.act(lapsed["vendor_id"], "verify"), 409, "kswp-not-valid")
    invalid = await service.register(kswp_status="invalid", kswp_valid_until=None)
    assert_problem(await service.act(invalid["vendor_id"], "verify"), 409, "kswp-not-valid")


async def test_suspension_and_reinstatement(service: Service) -> None:
    vendor = await service.verified()
    vid = vendor["vendor_id"]
    past = (TODAY - timedelta(days=1)).isoformat()
    assert_problem(await service.act(vid, "suspend", {"reason": "x", "until": past}), 422)
    assert_problem(await service.act(vid, "suspend", {"reason": ""}), 422)

    suspended = await service.act(vid, "suspend", {"reason": "wanprestasi pesanan 12"})
    assert (suspended.json()["state"], suspended.json()["suspended_until"]) == ("suspended", None)
    # a suspension without an end date stays until the manager lifts it
    assert (await service.commands.run_daily_checks(TODAY + timedelta(days=365))).reinstated == []
    reinstated = await service.act(vid, "reinstate")
    assert (reinstated.json()["state"], reinstated.json()["version"]) == ("verified", 4)

    until = TODAY + timedelta(days=10)
    timed = await service.act(
        vid, "suspend", {"reason": "sanksi 10 hari", "until": until.isoformat()}
    )
    assert timed.json()["suspended_until"] == until.isoformat()
    assert (await service.commands.run_daily_checks(until)).reinstated == []
    result = await service.commands.run_daily_checks(until + timedelta(days=1))
    assert [str(v) for v in result.reinstated] == [vid]
    after = await service.get(vid)
    assert (after["state"], after["suspended_until"]) == ("verified", None)
    assert after["history"][-1]["actor"] == "system:daily-check"


async def test_kswp_expiry_and_renewal(service: Service) -> None:
    valid_until = TODAY + timedelta(days=30)
    vendor = await service.verified(kswp_valid_until=valid_until.isoformat())
    vid = vendor["vendor_id"]
    untouched = await service.verified()

    assert (await service.commands.run_daily_checks(valid_until)).expired == []
    result = await service.commands.run_daily_checks(valid_until + timedelta(days=1))
    assert [str(v) for v in result.expired] == [vid]
    assert (await service.get(vid))["state"] == "expired"
    assert (await service.get(untouched["vendor_id"]))["state"] == "verified"
    again = await service.commands.run_daily_checks(valid_until + timedelta(days=1))
    assert again.expired == [] and again.reinstated == []

    # the vendor cannot renew its own tax compliance through its profile
    expired = await service.get(vid)
    later = (TODAY + timedelta(days=365)).isoformat()
    own_date = await service.client.put(
        f"/vendors/{vid}",
        json={**{k: expired[k] for k in DeclarationBody.model_fields}, "kswp_valid_until": later},
        headers=vendor_auth(vid),
    )
    assert_problem(own_date, 422, "validation-error")
    own_certificate = await service.update(
        expired, documents={**expired["documents"], "kswp_certificate": "https://x.example/k"}
    )
    body = assert_problem(own_certificate, 422, "kswp-renewal-required")
    assert body["errors"][0]["field"] == "documents.kswp_certificate"
    stale = await service.client.post(
        f"/vendors/{vid}/kswp-renewal",
        json={"valid_until": (TODAY - timedelta(days=1)).isoformat(), "certificate": "https://k/1"},
        headers=vendor_auth(vid),
    )
    assert assert_problem(stale, 422)["errors"][0]["field"] == "valid_until"

    # a renewal waits for the catalogue manager; until then the vendor stays unable to sell
    pending = await service.renew_kswp(vid, TODAY + timedelta(days=365))
    assert pending["state"] == "expired"
    assert pending["kswp_renewal"]["valid_until"] == later
    assert pending["kswp_valid_until"] == valid_until.isoformat()
    assert (await service.commands.run_daily_checks(TODAY)).reinstated == []
    assert (await service.get(vid))["state"] == "expired"
    by_vendor = await service.client.post(
        f"/vendors/{vid}/kswp-renewal/accept", headers=vendor_auth(vid)
    )
    assert_problem(by_vendor, 403)
    accepted = await service.act(vid, "kswp-renewal/accept")
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert (body["state"], body["kswp_valid_until"], body["kswp_renewal"]) == (
        "verified",
        later,
        None,
    )
    assert body["documents"]["kswp_certificate"] == pending["kswp_renewal"]["certificate"]
    history = (await service.get(vid))["history"]
    assert [h["event"] for h in history][-2:] == [
        "kswp_renewal_submitted",
        "kswp_renewal_accepted",
    ]
    assert history[-1]["actor"] == history[-1]["detail"]["accepted_by"] == "ukpbj-1"

    # a refused renewal leaves the accepted validity as it was
    await service.renew_kswp(vid, TODAY + timedelta(days=700))
    refused = await service.act(vid, "kswp-renewal/reject", {"reasons": ["bukan dari DJP"]})
    assert (refused.json()["kswp_valid_until"], refused.json()["kswp_renewal"]) == (later, None)
    assert_problem(await service.act(vid, "kswp-renewal/accept"), 409, "no-kswp-renewal")


async def test_suspended_vendor_whose_kswp_lapsed_expires_when_reinstated(
    service: Service,
) -> None:
    valid_until = TODAY + timedelta(days=5)
    vendor = await service.verified(kswp_valid_until=valid_until.isoformat())
    vid = vendor["vendor_id"]
    await service.act(vid, "suspend", {"reason": "x", "until": valid_until.isoformat()})
    # during the sanction the lapse does not touch the vendor
    assert (await service.commands.run_daily_checks(valid_until)).expired == []
    result = await service.commands.run_daily_checks(valid_until + timedelta(days=1))
    assert [str(v) for v in result.reinstated] == [vid]
    assert [str(v) for v in result.expired] == [vid]
    history = (await service.get(vid))["history"]
    assert [h["to_state"] for h in history] == [
        "submitted",
        "verified",
        "suspended",
        "verified",
        "expired",
    ]


async def test_profile_updates(service: Service) -> None:
    vendor = await service.verified()
    vid = vendor["vendor_id"]
    same = await service.update(vendor)
    assert same.json()["version"] == vendor["version"]

    moved = await service.update(vendor, address="Jl. Sultan Agung 5", annual_sales=3_000_000_000)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["state"], moved.json()["scale"]) == ("verified", "kecil")
    last = (await service.get(vid))["history"][-1]
    assert last["detail"] == {
        "changed_fields": ["address", "annual_sales"],
        "requires_review": False,
    }

    for change in ({"kbli": ["13134"]}, {"legal_form": "PT"}, {"nib": "9" * 13}):
        current = await service.get(vid)
        if current["state"] == "submitted":
            await service.act(vid, "verify")
            current = await service.get(vid)
        response = await service.update(current, **change)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "submitted", change
        detail = (await service.get(vid))["history"][-1]["detail"]
        assert detail == {"changed_fields": sorted(change), "requires_review": True}

    other = await service.register()
    assert_problem(await service.update(other, nib="9" * 13), 409, "duplicate-nib")

    await service.act(vid, "verify")
    await service.act(vid, "suspend", {"reason": "x"})
    suspended = await service.get(vid)
    blocked = await service.update(suspended, npwp="1" * 15)
    assert assert_problem(blocked, 409, "illegal-transition")["current_state"] == "suspended"
    contact = await service.update(suspended, legal_name="CV Batik Pesisir Jaya")
    assert contact.json()["state"] == "suspended"

    rejected = await service.register()
    await service.act(rejected["vendor_id"], "reject", {"reasons": ["foto akta buram"]})
    resubmitted = await service.update(
        await service.get(rejected["vendor_id"]),
        documents={**rejected["documents"], "deed_of_establishment": "https://d/akta-2.pdf"},
    )
    assert resubmitted.json()["state"] == "submitted"
