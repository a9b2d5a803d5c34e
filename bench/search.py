"""Public catalogue search latency with a large listing.

    .venv/bin/python bench/search.py [--products 100000] [--runs 300] [--dsn postgresql://...]

Without --dsn it starts its own embedded PostgreSQL in a temporary directory. It applies the
catalog migrations, bulk-loads vendors, storefronts and products with COPY, runs ANALYZE, then
times representative queries through `store.search_products` (the function the /search route
calls), with the same cursor handling as the route for the paging query, and prints p50/p95/p99.
With --http it also times the /search route itself in-process (ASGI, no network), which adds
parsing, validation and JSON serialisation; that needs no broker because only the route runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.catalog import store
from services.catalog.domain import SEARCH_VERSION, product_search_words
from services.catalog.search import SearchQuery, Sort, continue_after, cursor_parts
from shared.cursor import decode_cursor, encode_cursor
from shared.db import Connection, create_pool, ensure_database, migrate_service
from shared.embedded import EmbeddedPostgres, free_port

MIGRATIONS = Path(__file__).resolve().parent.parent / "services" / "catalog" / "migrations"
REGIONS = ["33.75", "33.26", "33.25", "33.27", "33.74", "33.29", "31.71", "32.73"]
GOODS = [
    ("ATK", "kertas hvs", ["a4 80 gram", "f4 70 gram", "a3 100 gram"]),
    ("ATK", "pulpen gel", ["hitam 0.5 mm", "biru 0.7 mm"]),
    ("ATK", "map plastik", ["folio", "kancing"]),
    ("MEBEL", "meja kantor", ["kayu jati", "besi", "kaca"]),
    ("MEBEL", "kursi lipat", ["besi", "plastik", "rotan"]),
    ("MEBEL", "lemari arsip", ["4 laci", "2 pintu"]),
    ("TEKSTIL", "kain batik tulis", ["motif jlamprang", "motif buketan", "sutra"]),
    ("TEKSTIL", "seragam dinas", ["harian pegawai", "lapangan", "batik"]),
    ("ELEKTRONIK", "laptop", ["core i5 16 gb", "ryzen 5 8 gb"]),
    ("ELEKTRONIK", "printer", ["laser mono", "inkjet warna"]),
    ("ELEKTRONIK", "proyektor", ["3500 lumen", "full hd"]),
    ("KONSTRUKSI", "semen portland", ["50 kg", "40 kg"]),
    ("KONSTRUKSI", "pipa pvc", ["3 inci", "4 inci"]),
    ("KONSTRUKSI", "cat tembok", ["putih 25 kg", "eksterior 20 liter"]),
    ("PANGAN", "beras premium", ["5 kg", "25 kg"]),
    ("PANGAN", "air mineral", ["600 ml dus", "galon 19 liter"]),
]
BRANDS = ["Sinar", "Nusantara", "Jaya", "Makmur", "Garuda", "Pekalongan", "Merapi", "Samudra"]


def say(message: str) -> None:
    print(message, flush=True)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _binary_jsonb(conn: Connection) -> None:
    # COPY sends binary rows; the pool's jsonb codec is a text one.
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: b"\x01" + json.dumps(value).encode(),
        decoder=lambda data: json.loads(data[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def seed(pool: asyncpg.Pool, products: int, rng: random.Random) -> uuid.UUID:
    """Load vendors, storefronts and products; returns the id of the textile storefront."""
    vendor_rows = []
    for i in range(2000):
        is_umk = i % 3 != 0
        vendor_rows.append(
            (
                uuid.UUID(int=i + 1),
                1,
                "verified",
                f"Vendor {i}",
                ["47611"],
                rng.choice(REGIONS),
                "kecil" if is_umk else "besar",
                is_umk,
                i % 17 == 0,
                i % 2 == 0,
                is_umk,
            )
        )
    etalase_ids: dict[str, uuid.UUID] = {}
    etalase_rows = []
    for code in sorted({g[0] for g in GOODS}):
        etalase_ids[code] = uuid.uuid4()
        categories = [
            {"code": code, "name": code, "children": [{"code": f"{code}.UMUM", "name": "Umum"}]}
        ]
        etalase_rows.append(
            (etalase_ids[code], code, code, "", "open", categories, ["producer"], [], False)
        )
    async with pool.acquire() as conn:
        await _binary_jsonb(conn)
        await conn.copy_records_to_table(
            "vendor_projection",
            records=vendor_rows,
            columns=[
                "vendor_id",
                "version",
                "state",
                "legal_name",
                "kbli",
                "region_code",
                "scale",
                "is_umk",
                "is_koperasi",
                "is_local",
                "is_pkp",
            ],
        )
        await conn.copy_records_to_table(
            "etalase",
            records=[(*r, False, None, True, [], 1) for r in etalase_rows],
            columns=["id", *store.ETALASE_COLUMNS, "version"],
        )
    columns = ["id", *store.PRODUCT_COLUMNS, "version"]
    batch: list[tuple[Any, ...]] = []
    started = time.perf_counter()
    for n in range(products):
        code, noun, variants = rng.choice(GOODS)
        vendor = vendor_rows[rng.randrange(len(vendor_rows))]
        brand = rng.choice(BRANDS)
        name = f"{noun} {rng.choice(variants)} {brand}"
        spec = {"bahan": rng.choice(["lokal", "impor", "daur ulang"]), "seri": f"S{n % 997}"}
        tkdn = rng.choice([None, 15.0, 25.0, 40.0, 45.5, 60.0, 80.0])
        listed = rng.random() < 0.97
        row = {
            "etalase_id": etalase_ids[code],
            "vendor_id": vendor[0],
            "vendor_type": "producer",
            "name": name,
            "description": f"{name}, garansi resmi",
            "specification": spec,
            "category_code": f"{code}.UMUM",
            "category_path": [code, f"{code}.UMUM"],
            "kbki": "26290",
            "unit": "unit",
            "price": rng.randrange(5, 50_000) * 1_000,
            "regional_prices": {},
            "tax_percent": 11,
            "pdn": tkdn is not None or rng.random() < 0.3,
            "tkdn": tkdn,
            "bmp": 10.0 if tkdn and tkdn >= 40 else None,
            "tkdn_certificate": "TKDN-BENCH" if tkdn else None,
            "tkdn_valid_until": date(2030, 12, 31) if tkdn else None,
            "tkdn_status": "verified" if tkdn else "pending",
            "bmp_status": "verified" if tkdn and tkdn >= 40 else "pending",
            "pdn_status": "verified",
            "sni_status": "pending",
            "sni": None,
            "brand": brand,
            "stock": rng.choice([0, 5, 20, 100, 1000]),
            "delivery_regions": rng.sample(REGIONS, 3),
            "photos": [],
            "state": "listed" if listed else "submitted",
            "taken_down_by": None,
            "state_reasons": [],
            "revision": 1,
            "etalase_open": True,
            "vendor_is_umk": vendor[7],
            "vendor_is_koperasi": vendor[8],
            "vendor_is_local": vendor[9],
            "search_words": product_search_words(name, brand, spec),
            "search_version": SEARCH_VERSION,
        }
        batch.append((uuid.uuid4(), *(row[c] for c in store.PRODUCT_COLUMNS), 2))
        if len(batch) == 10_000 or n == products - 1:
            async with pool.acquire() as conn:
                await _binary_jsonb(conn)
                await conn.copy_records_to_table("product", records=batch, columns=columns)
            batch = []
            say(f"  loaded {n + 1:,} products ({time.perf_counter() - started:.1f} s)")
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO search_word SELECT DISTINCT unnest(search_words) FROM product"
            " ON CONFLICT DO NOTHING"
        )
        await conn.execute("VACUUM ANALYZE search_word")
        await conn.execute("VACUUM ANALYZE product")
        await conn.execute("VACUUM ANALYZE etalase")
    return etalase_ids["TEKSTIL"]


def queries(textile: uuid.UUID) -> dict[str, SearchQuery]:
    return {
        "browse (no filter, newest id)": SearchQuery(),
        "text 'kertas hvs'": SearchQuery(text="kertas hvs"),
        "text with typo 'kertaz hvss'": SearchQuery(text="kertaz hvss"),
        "text rare 'jlamprang'": SearchQuery(text="jlamprang"),
        "text very common 'sinar' (1 in 8)": SearchQuery(text="sinar"),
        "text prefix 'lapt'": SearchQuery(text="lapt"),
        "text 'meja' + in stock, price asc": SearchQuery(
            text="meja", in_stock=True, sort=Sort.PRICE_ASC
        ),
        "pdn + tkdn_bmp>=40, sort tkdn": SearchQuery(pdn=True, min_tkdn_bmp=40, sort=Sort.TKDN),
        "etalase + price range, price asc": SearchQuery(
            etalase_id=textile, min_price=100_000, max_price=2_000_000, sort=Sort.PRICE_ASC
        ),
        "region + umkm + in stock, price desc": SearchQuery(
            region="33.75", umkm_koperasi=True, in_stock=True, sort=Sort.PRICE_DESC
        ),
        "category + local vendor, price asc": SearchQuery(
            category="ELEKTRONIK", local_vendor=True, sort=Sort.PRICE_ASC
        ),
        "selective: koperasi + tkdn_bmp>=90 + region": SearchQuery(
            umkm_koperasi=True, min_tkdn_bmp=90, region="31.71", sort=Sort.TKDN
        ),
    }


async def page_five(pool: asyncpg.Pool, query: SearchQuery) -> Callable[[], Awaitable[Any]]:
    """A query positioned at its fifth page, as a client following cursors would be."""
    position = query
    for _ in range(4):
        async with pool.acquire() as conn:
            rows = await store.search_products(conn, position)
        last, key = rows[query.limit - 1]
        cursor = encode_cursor(cursor_parts(query, key or 0, last.id))
        position = decode_cursor(cursor, partial(continue_after, query))

    async def run() -> Any:
        async with pool.acquire() as conn:
            return await store.search_products(conn, position)

    return run


async def measure(name: str, run: Callable[[], Awaitable[Any]], runs: int) -> list[float]:
    print(f"{name:<44} ", end="", flush=True)
    for _ in range(10):
        await run()
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        result = await run()
        samples.append((time.perf_counter() - started) * 1000)
        if (i + 1) % max(1, runs // 3) == 0:
            print(".", end="", flush=True)
    rows = len(result) if isinstance(result, list) else "-"
    say(
        f" p50 {statistics.median(samples):6.2f} ms"
        f"  p95 {percentile(samples, 95):6.2f} ms  p99 {percentile(samples, 99):6.2f} ms"
        f"  rows {rows}"
    )
    return samples


async def bench(dsn: str, products: int, runs: int, http: bool) -> None:
    say("applying the catalog migrations")
    await migrate_service(dsn, "catalog", MIGRATIONS)
    pool = await create_pool(dsn, 2, 4)
    rng = random.Random(20261126)
    say(f"seeding {products:,} products")
    textile = await seed(pool, products, rng)
    listed = await pool.fetchval("SELECT count(*) FROM product WHERE searchable")
    say(f"{listed:,} searchable products; {runs} timed runs per query (after 10 warm-up runs)\n")
    say("store.search_products (the code path of GET /search)")
    for name, query in queries(textile).items():

        async def run(q: SearchQuery = query) -> Any:
            async with pool.acquire() as conn:
                return await store.search_products(conn, q)

        await measure(name, run, runs)
    for name, query in {
        "page 5 of 'kertas', price asc (cursor)": SearchQuery(text="kertas", sort=Sort.PRICE_ASC),
        "page 5 of browse, tkdn (cursor)": SearchQuery(sort=Sort.TKDN),
        "page 5 of 'kursi besi', relevance (cursor)": SearchQuery(text="kursi besi"),
    }.items():
        await measure(name, await page_five(pool, query), runs)
    if http:
        await bench_http(pool, textile, runs)
    await pool.close()


async def bench_http(pool: asyncpg.Pool, textile: uuid.UUID, runs: int) -> None:
    import httpx
    from fastapi import FastAPI

    from services.catalog import api
    from shared.problems import install_problem_handlers

    app = FastAPI()
    app.state.pool = pool
    app.include_router(api.router)
    install_problem_handlers(app, api.ERRORS)
    say("\nGET /search in-process (ASGI): routing, validation, serialisation included")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for name, params in {
            "GET /search?q=kertas hvs": {"q": "kertas hvs"},
            "GET /search?pdn&min_tkdn_bmp=40&sort=tkdn": {
                "pdn": "true",
                "min_tkdn_bmp": "40",
                "sort": "tkdn",
            },
            "GET /search?etalase_id&price range": {
                "etalase_id": str(textile),
                "min_price": "100000",
                "max_price": "2000000",
                "sort": "price_asc",
            },
        }.items():

            async def run(p: dict[str, str] = params) -> Any:
                response = await client.get("/search", params=p)
                assert response.status_code == 200, response.text
                return response.json()["items"]

            await measure(name, run, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--dsn", help="an empty database to use instead of an embedded server")
    parser.add_argument("--http", action="store_true", help="also time GET /search in-process")
    args = parser.parse_args()
    if args.dsn:
        asyncio.run(bench(args.dsn, args.products, args.runs, args.http))
        return
    with tempfile.TemporaryDirectory(prefix="ekatalog-search-bench-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        say("starting an embedded PostgreSQL")
        postgres.start(durable=False)
        try:
            asyncio.run(ensure_database(postgres.admin_dsn, "search_bench"))
            asyncio.run(bench(postgres.dsn("search_bench"), args.products, args.runs, args.http))
        finally:
            postgres.stop()


if __name__ == "__main__":
    main()
