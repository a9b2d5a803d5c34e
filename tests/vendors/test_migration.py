"""Vendors stored by the previous release: migration 002 corrects them and the service publishes
their corrected snapshots once, through the outbox."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from services.vendors import app
from shared.db import PLATFORM_MIGRATIONS, apply_migrations
from tests.support import Infra, eventually
from tests.vendors.helpers import MANAGER, start_service

MIGRATIONS = Path(app.__file__).parent / "migrations"
BN = 1_000_000_000
VALID_UNTIL = date.today() + timedelta(days=90)


def _old_profile(
    legal_form: str, npwp: str, capital: int | None, sales: int | None
) -> dict[str, Any]:
    """A profile as release 001 stored it: 15- or 16-digit NPWP, KBLI codes without edition."""
    return {
        "legal_name": f"{legal_form} Lama",
        "legal_form": legal_form,
        "nib": "".join(str(uuid.uuid4().int)[:13]),
        "npwp": npwp,
        "kbli": ["13134", "47711"],
        "address": "Jl. Lama 1",
        "region_code": "33.75.01",
        "capital": capital,
        "annual_sales": sales,
        "kswp_status": "valid",
        "kswp_valid_until": VALID_UNTIL.isoformat(),
        "is_pkp": False,
        "contact": {"name": "Ani", "email": "ani@lama.example", "phone": "+62285000111"},
        "documents": {
            "nib_certificate": "https://d/nib.pdf",
            "npwp_card": "https://d/npwp.pdf",
            "deed_of_establishment": "https://d/akta.pdf",
            "kswp_certificate": "https://d/kswp.pdf",
        },
    }


async def _store_old(conn: asyncpg.Connection, profile: dict[str, Any], scale: str) -> str:
    vendor_id = uuid.uuid4()
    now = datetime.now(UTC)
    await conn.execute(
        """INSERT INTO vendors (vendor_id, state, version, profile, legal_name, legal_form, nib,
               npwp, kbli, region_code, scale, kswp_valid_until, kswp_status, suspended_until,
               registered_at, updated_at)
           VALUES ($1, 'verified', 2, $2::text::jsonb, $3, $4, $5, $6, $7, $8, $9, $10,
                   'valid', NULL, $11, $11)""",
        vendor_id,
        json.dumps(profile),
        profile["legal_name"],
        profile["legal_form"],
        profile["nib"],
        profile["npwp"],
        profile["kbli"],
        profile["region_code"],
        scale,
        VALID_UNTIL,
        now,
    )
    return str(vendor_id)


async def test_existing_vendors_are_corrected_and_republished(
    infra: Infra, database: str, topic_prefix: str, tmp_path: Path
) -> None:
    previous_release = tmp_path / "migrations"
    previous_release.mkdir()
    shutil.copy(MIGRATIONS / "001_vendors.sql", previous_release)
    conn = await asyncpg.connect(database)
    try:
        await apply_migrations(conn, "platform", PLATFORM_MIGRATIONS)
        await apply_migrations(conn, "vendors", previous_release)
        # capital Rp1 bn with Rp60 bn of sales: release 001 said mikro, annual sales say besar
        big = await _store_old(
            conn, _old_profile("CV", "012345678901000", 1 * BN, 60 * BN), "mikro"
        )
        # an individual with the old 15-digit NPWP; its scale was right
        owner = await _store_old(conn, _old_profile("UD", "023456789012000", None, 1 * BN), "mikro")
        # already 16 digits, classified by capital alone: only the KBLI editions are new
        entity = await _store_old(
            conn, _old_profile("PT", "0034567890123000", 20 * BN, None), "besar"
        )
        await conn.execute(
            """INSERT INTO npwp_blacklist (npwp, reason, added_by)
               VALUES ('045678901234000', 'sanksi', 'ukpbj'), ('056789012345000', 'lama', 'ukpbj'),
                      ('0056789012345000', 'baru', 'ukpbj')"""
        )
    finally:
        await conn.close()

    async with start_service(infra, database, topic_prefix) as service:
        # the start-up run of the daily check publishes the corrections
        async def corrected() -> dict[str, Any]:
            response = await service.client.get(f"/vendors/{big}", headers=MANAGER)
            body: dict[str, Any] = response.json()
            assert body["history"] and body["history"][-1]["event"] == "snapshot_corrected"
            return body

        vendor = await eventually(corrected)
        assert (vendor["npwp"], vendor["scale"], vendor["is_umk"]) == (
            "0012345678901000",
            "besar",
            False,
        )
        assert vendor["kbli_editions"] == {"13134": "2020", "47711": "2020"}
        assert (vendor["version"], vendor["state"]) == (3, "verified")
        assert vendor["history"][-1]["actor"] == "system:rule-correction"

        events = await service.events(min_count=3)
        corrections = {e.key: e.data for e in events}
        assert {e.type for e in events} == {"ekatalog.vendor.snapshot_corrected.v1"}
        assert corrections[big]["corrected_fields"] == ["is_umk", "kbli_editions", "npwp", "scale"]
        assert corrections[owner]["corrected_fields"] == ["kbli_editions", "npwp"]
        assert corrections[owner]["npwp"] == "0023456789012000"
        assert corrections[entity]["corrected_fields"] == ["kbli_editions"]
        assert all(e.data["version"] == 3 for e in events)

        # once published, nothing is published again
        assert await service.commands.publish_corrections() == []
        async with service.app.state.pool.acquire() as db:
            blacklist = await db.fetch("SELECT npwp, reason FROM npwp_blacklist ORDER BY npwp")
        assert [tuple(r) for r in blacklist] == [
            ("0045678901234000", "sanksi"),
            ("0056789012345000", "baru"),
        ]
    assert len(await service.events(min_count=4, timeout=1)) == 3
