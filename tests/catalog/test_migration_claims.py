"""Migration 002 on products stored by the previous release: the single TKDN mark becomes
per-claim curation, and products are re-indexed with the folding search-word rule at start."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg

from services.catalog import domain
from services.catalog.app import CatalogSettings, create_app
from shared.db import migrate_service
from tests.support import TEST_JWT_SECRET, Infra, eventually, running

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "catalog" / "migrations"


async def _seed_previous_release(conn: asyncpg.Connection) -> dict[str, uuid.UUID]:
    vendor, etalase = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        """INSERT INTO vendor_projection (vendor_id, version, state, legal_name, kbli,
               region_code, scale, is_umk, is_koperasi, is_local)
           VALUES ($1, 1, 'verified', 'CV Batik', '{13134}', '33.75', 'kecil',
                   true, false, true)""",
        vendor,
    )
    await conn.execute(
        """INSERT INTO etalase (id, code, name, state, categories, vendor_types, kbli, only_local,
               only_umk_koperasi, recurate_changes, collections, version)
           VALUES ($1, 'ET', 'Batik', 'open', '[{"code": "B", "name": "Batik"}]',
                   '{producer}', '{}', false, false, true, '[]', 1)""",
        etalase,
    )
    ids = {}
    for name, tkdn, bmp, verified, words in [
        ("Batik Señor", 45.0, 10.0, True, ["batik", "se", "or"]),
        ("Batik Łódź", 30.0, None, False, ["batik", "dz"]),
    ]:
        ids[name] = uuid.uuid4()
        await conn.execute(
            """INSERT INTO product (id, etalase_id, vendor_id, vendor_type, name, description,
                   specification, category_code, category_path, kbki, unit, price,
                   regional_prices, tax_percent, pdn, tkdn, bmp, tkdn_certificate,
                   tkdn_verified, stock, delivery_regions, photos, state, version,
                   etalase_open, vendor_is_umk, vendor_is_koperasi, vendor_is_local,
                   search_words)
               VALUES ($1, $2, $3, 'producer', $4, '', '{}', 'B', '{B}', '1234', 'lembar',
                       100000, '{}', 11, true, $5, $6, 'TKDN-1', $7, 1, '{33.75}', '{}',
                       'listed', 2, true, true, false, true, $8)""",
            ids[name],
            etalase,
            vendor,
            name,
            tkdn,
            bmp,
            verified,
            words,
        )
    return ids


async def test_previous_products_keep_their_verified_claims_and_are_reindexed(
    infra: Infra, database: str, topic_prefix: str, tmp_path: Path
) -> None:
    shutil.copy(MIGRATIONS / "001_catalog.sql", tmp_path)
    await migrate_service(database, "catalog", tmp_path)
    conn = await asyncpg.connect(database)
    try:
        ids = await _seed_previous_release(conn)
    finally:
        await conn.close()

    settings = CatalogSettings(
        database_url=database,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=topic_prefix,
        jwt_secret=TEST_JWT_SECRET,
    )
    app = create_app(settings)
    async with running(app) as client:
        pool = app.state.pool

        async def reindexed() -> bool:
            versions = await pool.fetch("SELECT search_version FROM product")
            return {r["search_version"] for r in versions} == {domain.SEARCH_VERSION}

        await eventually(reindexed, timeout=20)
        senor = (await client.get("/search", params={"q": "senor"})).json()["items"]
        assert [p["id"] for p in senor] == [str(ids["Batik Señor"])]
        # The old mark verified TKDN and BMP together; it implies PDN. The other claim waits.
        assert (senor[0]["tkdn"], senor[0]["bmp"], senor[0]["pdn"]) == (45.0, 10.0, True)
        lodz = (await client.get("/search", params={"q": "łódź"})).json()["items"]
        assert [p["id"] for p in lodz] == [str(ids["Batik Łódź"])]
        assert (lodz[0]["tkdn"], lodz[0]["pdn"], lodz[0]["tkdn_verified"]) == (None, False, False)
