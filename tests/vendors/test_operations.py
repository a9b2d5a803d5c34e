"""Settings, the scheduled check as the running service does it, and concurrent writers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from services.vendors.app import VendorsSettings
from services.vendors.commands import VendorCommands
from services.vendors.domain import IllegalTransition
from shared.settings import SettingsError
from tests.support import TEST_JWT_SECRET, Infra, eventually
from tests.unit.vendors.profiles import TODAY
from tests.vendors.helpers import (
    Service,
    assert_problem,
    profile,
    start_service,
    vendor_auth,
)


def test_city_region_and_time_zone_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VENDORS_DATABASE_URL", "postgresql://x/y")
    monkeypatch.setenv("VENDORS_KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    monkeypatch.setenv("VENDORS_JWT_SECRET", TEST_JWT_SECRET)
    defaults = VendorsSettings.from_env()
    assert (defaults.city_region_code, defaults.timezone) == ("33.75", "Asia/Jakarta")
    monkeypatch.setenv("VENDORS_CITY_REGION_CODE", "33.26")
    assert VendorsSettings.from_env().city_region_code == "33.26"
    for variable, value in (("VENDORS_CITY_REGION_CODE", "3326"), ("VENDORS_TIMEZONE", "Mars/X")):
        monkeypatch.setenv(variable, value)
        with pytest.raises(SettingsError, match=variable):
            VendorsSettings.from_env()
        monkeypatch.delenv(variable)


async def test_the_service_runs_the_daily_check_itself(
    infra: Infra, database: str, topic_prefix: str
) -> None:
    async with start_service(
        infra, database, topic_prefix, daily_check_interval_seconds=0.1, city_region_code="33.26"
    ) as service:
        vendor = await service.verified(region_code="33.26.05")
        assert vendor["is_local"] is True
        vid = vendor["vendor_id"]
        until = TODAY + timedelta(days=3)
        await service.act(vid, "suspend", {"reason": "x", "until": until.isoformat()})
        # time passes: the end date of the sanction now lies behind us
        async with service.app.state.pool.acquire() as conn:
            await conn.execute(
                "UPDATE vendors SET suspended_until = $1 WHERE vendor_id = $2",
                TODAY - timedelta(days=1),
                uuid.UUID(vid),
            )

        async def reinstated() -> bool:
            return (await service.get(vid))["state"] == "verified"

        await eventually(reinstated, timeout=5)


async def test_registration_racing_another_writer_of_its_nib_is_409(service: Service) -> None:
    existing = await service.register()
    rival, nib = uuid.uuid4(), "7" * 13
    pool = service.app.state.pool
    async with pool.acquire() as conn, pool.acquire() as observer:
        # another writer holds an uncommitted row with the NIB: the request's own check passes,
        # its insert waits on the unique index and fails once the rival commits
        rivalry = conn.transaction()
        await rivalry.start()
        await conn.execute(
            """INSERT INTO vendors (vendor_id, state, version, profile, legal_name, legal_form,
                   nib, npwp, kbli, region_code, scale, kswp_valid_until, kswp_status,
                   suspended_until, registered_at, updated_at)
               SELECT $1, state, version, profile, legal_name, legal_form, $2, npwp, kbli,
                      region_code, scale, kswp_valid_until, kswp_status, suspended_until,
                      registered_at, updated_at
               FROM vendors WHERE vendor_id = $3""",
            rival,
            nib,
            uuid.UUID(existing["vendor_id"]),
        )
        request = asyncio.create_task(
            service.client.post(
                "/vendors", json=profile(nib=nib), headers=vendor_auth(str(uuid.uuid4()))
            )
        )
        try:

            async def insert_waits_on_the_rival() -> bool:
                waiting = await observer.fetchval(
                    """SELECT count(*) FROM pg_stat_activity
                       WHERE datname = current_database() AND wait_event_type = 'Lock'
                         AND query LIKE '%INSERT INTO vendors%'"""
                )
                return bool(waiting == 1)

            await eventually(insert_waits_on_the_rival, timeout=10)
            assert not request.done()
            await rivalry.commit()
            problem = assert_problem(await request, 409, "duplicate-nib")
        finally:
            request.cancel()
    assert problem["existing_vendor_id"] == str(rival)


async def test_concurrent_registrations_under_one_id(service: Service) -> None:
    same_id = str(uuid.uuid4())
    responses = await asyncio.gather(
        *(
            service.client.post("/vendors", json=profile(), headers=vendor_auth(same_id))
            for _ in range(3)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409]


async def test_concurrent_decisions_on_one_vendor_apply_once(service: Service) -> None:
    vendor = await service.register()
    responses = await asyncio.gather(
        service.act(vendor["vendor_id"], "verify"),
        service.act(vendor["vendor_id"], "reject", {"reasons": ["x"]}),
        service.act(vendor["vendor_id"], "verify"),
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409]
    assert (await service.get(vendor["vendor_id"]))["version"] == 2


async def test_openapi_documents_the_vendor_routes(service: Service) -> None:
    spec = (await service.client.get("/openapi.json")).json()
    assert {"/vendors", "/vendors/{vendor_id}", "/vendor-blacklist/{npwp}"} <= set(spec["paths"])
    assert {
        "RegistrationBody",
        "DeclarationBody",
        "KswpRenewalBody",
        "VendorView",
        "VendorDetail",
        "VendorPage",
    } <= set(spec["components"]["schemas"])


async def test_commands_join_the_callers_transaction(service: Service) -> None:
    vendor = await service.register()
    vid = uuid.UUID(vendor["vendor_id"])
    outbox, city = service.app.state.outbox, service.settings.city_region_code
    async with service.app.state.pool.acquire() as conn:
        # a handler or saga composes commands on its own connection: all or nothing
        caller = conn.transaction()
        await caller.start()
        commands = VendorCommands(conn, outbox, city)
        await commands.verify(vid, "ukpbj-1", TODAY)
        await commands.suspend(vid, "uji", None, "ukpbj-1")
        await caller.rollback()
        assert (await service.get(str(vid)))["version"] == 1
        async with conn.transaction():
            await commands.verify(vid, "ukpbj-1", TODAY)
            # a refused command rolls back its own savepoint only
            with pytest.raises(IllegalTransition):
                await commands.reinstate(vid, "ukpbj-1", TODAY)
            await commands.suspend(vid, "uji", None, "ukpbj-1")
    after = await service.get(str(vid))
    assert (after["state"], after["version"]) == ("suspended", 3)
    events = await service.events(min_count=3)
    assert [e.type.split(".")[2] for e in events] == ["registered", "verified", "suspended"]
