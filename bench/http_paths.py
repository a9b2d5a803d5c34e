"""HTTP throughput and latency of each service against a bare FastAPI + asyncpg floor.

    .venv/bin/python bench/http_paths.py [--duration 12] [--connections 32] [--threads 2]
                                         [--paths ping read write] [--vendors 32]
                                         [--rounds 1] [--profile DIR [--native]]

It starts its own embedded PostgreSQL and tansu broker on free ports, runs the vendors and
catalog services as `ekatalog serve` processes (as `ekatalog up` does), seeds them through their
public API (vendors register and are verified; the catalog learns it from the vendors' events;
storefront and products are created and approved), and starts the floor: a bare FastAPI +
asyncpg app on the same PostgreSQL and the same uvicorn options as the services, whose write is a
two-row insert transaction and whose read is one indexed select of the same 45 rows a search
returns. The load comes from wrk (Debian's `wrk` package; installed with apt-get when missing
and running as root), `--threads` threads holding `--connections` connections, for `--duration`
seconds per path after a short warm-up. It prints requests per second, p50 and p99 of each path
next to the floor, the ratios, and the server process's CPU time per request (which depends less
on what else the machine runs); non-2xx answers are counted and reported as errors.

`--rounds N` measures each kind of path N times, the floor and the services taking turns in each
round (all rounds of the reads before the writes, which add data), and ends with each path's
median ratio and each round's: on a machine whose speed drifts from one minute to the next, one
floor measure taken minutes before a service's can make a ratio of the drift.

`--profile DIR` also records py-spy samples of each service process while its paths run, as
collapsed stacks (one line per stack and its count; `flamegraph.pl` or speedscope draw them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI, Request
from loadgen import Load, Result, profiling, run_wrk, say, serve, wait_ready

from ekatalog.cli import SERVICES
from shared.auth import Role, mint_token
from shared.db import ensure_database
from shared.embedded import EmbeddedPostgres, Tansu, free_port, stop_process

SECRET = "bench-secret-0123456789-0123456789-0123456789"
VENDORS = 32
PRODUCTS = 45
SEARCH_WORD = "kertas"
PATH_KINDS = ("ping", "read", "write")


# ------------------------------------------------------------------------------ the floor


def floor_app(dsn: str) -> FastAPI:
    """The least an HTTP + PostgreSQL service can do: what the platform is compared with."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.put("/floor/{item_id}")
    async def write(item_id: uuid.UUID, request: Request) -> dict[str, Any]:
        body = await request.json()
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO floor_change (item_id, stock) VALUES ($1, $2)", item_id, body["stock"]
            )
            await conn.execute(
                "INSERT INTO floor_outbox (item_id, payload) VALUES ($1, $2)",
                item_id,
                json.dumps(body),
            )
        return {"id": str(item_id), "stock": body["stock"]}

    @app.get("/floor/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/floor/search")
    async def read(q: str, request: Request) -> list[dict[str, Any]]:
        async with request.app.state.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, name, price, stock FROM floor_item"
                " WHERE word = $1 ORDER BY id LIMIT 20",
                q,
            )
        return [{**dict(r), "id": str(r["id"])} for r in rows]

    return app


FLOOR_SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_change (
    id bigserial PRIMARY KEY, item_id uuid NOT NULL, stock int NOT NULL,
    at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS floor_outbox (
    id bigserial PRIMARY KEY, item_id uuid NOT NULL, payload jsonb NOT NULL,
    at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS floor_item (
    id uuid PRIMARY KEY, word text NOT NULL, name text NOT NULL, price bigint NOT NULL,
    stock int NOT NULL);
CREATE INDEX IF NOT EXISTS floor_item_word ON floor_item (word);
"""


async def seed_floor(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(FLOOR_SCHEMA)
        await conn.executemany(
            "INSERT INTO floor_item VALUES ($1, $2, $3, $4, $5)",
            [
                (uuid.uuid4(), SEARCH_WORD, f"kertas hvs a4 {i}", 50_000 + i, 10)
                for i in range(PRODUCTS)
            ],
        )
        await conn.execute("ANALYZE floor_item")
    finally:
        await conn.close()


def serve_floor(dsn: str, port: int) -> None:
    serve(floor_app(dsn), port)


# ------------------------------------------------------------------------------ processes


@dataclass
class Process:
    name: str
    url: str
    process: subprocess.Popen[bytes]


def spawn_service(name: str, dsn: str, bootstrap: str, log: Path) -> Process:
    prefix, _ = SERVICES[name]
    port = free_port()
    env = {
        **os.environ,
        f"{prefix}_DATABASE_URL": dsn,
        f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        f"{prefix}_HTTP_PORT": str(port),
        f"{prefix}_JWT_SECRET": SECRET,
        f"{prefix}_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ekatalog.cli", "serve", name],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    return Process(name, f"http://127.0.0.1:{port}", process)


def spawn_floor(dsn: str, log: Path) -> Process:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-floor", dsn, str(port)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    return Process("floor", f"http://127.0.0.1:{port}", process)


# ------------------------------------------------------------------------------ seeding


def bearer(role: Role, **claims: str) -> str:
    return "Bearer " + mint_token(SECRET, role=role, ttl_seconds=86_400, **claims)


MANAGER = bearer(Role.CATALOGUE_MANAGER, subject="ukpbj-bench")


def vendor_profile(n: int) -> dict[str, Any]:
    return {
        "legal_name": f"CV Kertas Nusantara {n}",
        "legal_form": "CV",
        "nib": f"{random.randrange(10**12, 10**13)}",
        "npwp": f"{random.randrange(10**14, 10**15)}",
        "kbli": ["47611"],
        "address": f"Jl. Hayam Wuruk {n}, Pekalongan",
        "region_code": "33.75.01",
        "capital": 800_000_000,
        "annual_sales": 1_500_000_000,
        "kswp_status": "valid",
        "kswp_valid_until": (date.today() + timedelta(days=180)).isoformat(),
        "is_pkp": True,  # the catalog lets only PKP vendors charge VAT (tax_percent 11)
        "contact": {"name": "Siti Aminah", "email": "siti@kertas.example", "phone": "+62285123"},
        "documents": {
            "nib_certificate": "https://docs.example/nib.pdf",
            "npwp_card": "https://docs.example/npwp.pdf",
            "deed_of_establishment": "https://docs.example/akta.pdf",
            "kswp_certificate": "https://docs.example/kswp.pdf",
        },
    }


def declaration(profile: dict[str, Any]) -> dict[str, Any]:
    """What a vendor may replace: the profile without the KSWP result (renewed separately)."""
    return {k: v for k, v in profile.items() if not k.startswith("kswp_")}


def expect(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        raise SystemExit(f"{response.request.method} {response.request.url}: {response.text}")
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Seeded:
    vendors: list[tuple[str, str, dict[str, Any]]]  # vendor id, its token, its profile
    products: list[tuple[str, str]]  # product id, its vendor's token


async def seed_platform(vendors_url: str, catalog_url: str, vendor_count: int) -> Seeded:
    async with httpx.AsyncClient(timeout=30) as http:
        vendors = []
        for n in range(vendor_count):
            vendor_id = str(uuid.uuid4())
            token = bearer(Role.VENDOR, vendor_id=vendor_id, subject=f"vendor-{n}")
            profile = vendor_profile(n)
            expect(
                await http.post(
                    f"{vendors_url}/vendors", json=profile, headers={"Authorization": token}
                ),
                201,
            )
            expect(
                await http.post(
                    f"{vendors_url}/vendors/{vendor_id}/verify", headers={"Authorization": MANAGER}
                ),
                200,
            )
            vendors.append((vendor_id, token, profile))
        etalase = expect(
            await http.post(
                f"{catalog_url}/etalase",
                json={
                    "code": "ATK-BENCH",
                    "name": "Alat tulis kantor",
                    "categories": [{"code": "ATK", "name": "Alat tulis kantor"}],
                },
                headers={"Authorization": MANAGER},
            ),
            201,
        )
        expect(
            await http.post(
                f"{catalog_url}/etalase/{etalase['id']}/open", headers={"Authorization": MANAGER}
            ),
            200,
        )
        products = []
        for n in range(PRODUCTS):
            _, token, _ = vendors[n % vendor_count]
            body = {
                "etalase_id": etalase["id"],
                "vendor_type": "producer",
                "category_code": "ATK",
                "name": f"Kertas HVS A4 80 gram varian {n}",
                "description": "Kertas fotokopi putih, 500 lembar per rim",
                "specification": {"ukuran": "A4", "gramatur": "80"},
                "kbki": "32141",
                "unit": "rim",
                "price": 55_000 + n,
                "tax_percent": 11,
                "pdn": True,
                "stock": 100,
                "delivery_regions": ["33.75"],
            }
            # The catalog learns of the verification from the vendors' events: retry until then.
            deadline = time.monotonic() + 60
            while True:
                response = await http.post(
                    f"{catalog_url}/products", json=body, headers={"Authorization": token}
                )
                if response.status_code == 201 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            product = expect(response, 201)
            expect(
                await http.post(
                    f"{catalog_url}/products/{product['id']}/approve",
                    headers={"Authorization": MANAGER},
                ),
                200,
            )
            products.append((product["id"], token))
        found = expect(await http.get(f"{catalog_url}/search", params={"q": SEARCH_WORD}), 200)
        say(f"seeded {vendor_count} verified vendors, {PRODUCTS} listed products")
        say(f"GET /search?q={SEARCH_WORD} returns {len(found.get('items', []))} products per page")
    return Seeded(vendors, products)


# ------------------------------------------------------------------------------ load


def measure(
    process: Process, path: Load, args: argparse.Namespace, directory: Path, number: int
) -> Result:
    pid, options = process.process.pid, {"connections": args.connections, "threads": args.threads}
    run_wrk(process.url, pid, path, directory, seconds=2, **options)  # warm-up: connections, caches
    label = f"{process.name}-{path.label.split(':')[0]}"
    if args.rounds > 1:
        label += f"-{number}"
    with profiling(pid, args.profile, label, native=args.native):
        result = run_wrk(process.url, pid, path, directory, seconds=args.duration, **options)
    say(
        f"  {process.name:8} {path.label:34} {result.requests_per_second:8.0f} req/s  "
        f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  "
        f"CPU {result.cpu_ms:.2f} ms/request  errors {result.errors}"
    )
    return result


# ------------------------------------------------------------------------------ main


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ekatalog-bench-http-") as tmp:
        work = Path(tmp)
        postgres = EmbeddedPostgres(work / "pg", free_port())
        broker = Tansu(free_port())
        postgres.start()
        broker.start()
        processes: list[Process] = []
        try:
            dsns = {}
            for name in ("vendors", "catalog", "floor"):
                await ensure_database(postgres.admin_dsn, f"ekatalog_{name}")
                dsns[name] = postgres.dsn(f"ekatalog_{name}")
            await seed_floor(dsns["floor"])
            log = work / "services.log"
            vendors = spawn_service("vendors", dsns["vendors"], broker.bootstrap_servers, log)
            catalog = spawn_service("catalog", dsns["catalog"], broker.bootstrap_servers, log)
            floor = spawn_floor(dsns["floor"], log)
            processes = [vendors, catalog, floor]
            for process in processes:
                await wait_ready(process.url + "/openapi.json", process=process.process)
            for process in (vendors, catalog):
                await wait_ready(process.url + "/readyz", process=process.process)
            say(
                f"wrk: {args.threads} threads, {args.connections} connections, "
                f"{args.duration} s per path; processes: "
                + ", ".join(f"{p.name} pid {p.process.pid}" for p in processes)
            )
            seeded = await seed_platform(vendors.url, catalog.url, args.vendors)
            write_body = json.dumps({"stock": "__N__"}).replace('"__N__"', "__N__")
            floor_write = Load(
                "write: two-row insert transaction",
                "PUT",
                [(f"/floor/{uuid.uuid4()}", None, write_body) for _ in range(PRODUCTS)],
            )
            floor_read = Load(
                "read: one indexed select",
                "GET",
                [(f"/floor/search?q={SEARCH_WORD}", None, None)],
            )
            vendor_write = Load(
                "write: PUT /vendors/{id}",
                "PUT",
                [
                    (
                        f"/vendors/{vendor_id}",
                        token,
                        json.dumps(
                            {
                                **declaration(profile),
                                "address": "Jl. Hayam Wuruk __N__, Pekalongan",
                            }
                        ),
                    )
                    for vendor_id, token, profile in seeded.vendors
                ],
            )
            vendor_read = Load(
                "read: GET /vendors/{id}",
                "GET",
                [(f"/vendors/{vendor_id}", MANAGER, None) for vendor_id, _, _ in seeded.vendors],
            )
            stock_write = Load(
                "write: PUT /products/{id}/stock",
                "PUT",
                [
                    (f"/products/{product_id}/stock", token, write_body)
                    for product_id, token in seeded.products
                ],
            )
            search_read = Load(
                f"read: GET /search?q={SEARCH_WORD}",
                "GET",
                [(f"/search?q={SEARCH_WORD}", None, None)],
            )
            # The fixed cost of the platform's HTTP path: a route without database or auth.
            floor_ping = Load("no database: GET /floor/ping", "GET", [("/floor/ping", None, None)])
            healthz = Load("no database: GET /healthz", "GET", [("/healthz", None, None)])
            paths = {
                "floor ping": (floor, floor_ping),
                "catalog ping": (catalog, healthz),
                "floor read": (floor, floor_read),
                "vendors read": (vendors, vendor_read),
                "catalog read": (catalog, search_read),
                "floor write": (floor, floor_write),
                "vendors write": (vendors, vendor_write),
                "catalog write": (catalog, stock_write),
            }
            rounds: list[dict[str, Result]] = [{} for _ in range(args.rounds)]
            # Reads first: they measure the seeded data, not what the writes then added.
            for kind in (k for k in PATH_KINDS if k in args.paths):
                for number, results in enumerate(rounds, 1):
                    if args.rounds > 1:
                        say(f"{kind}, round {number} of {args.rounds}")
                    for name, (process, load) in paths.items():
                        if name.split()[1] == kind:
                            results[name] = measure(process, load, args, work, number)
            for results in rounds:
                report(results)
            if args.rounds > 1:
                report_rounds(rounds)
        finally:
            for process in processes:
                stop_process(process.process)
            broker.stop()
            postgres.stop()


def ratio(mine: Result, floor: Result) -> str:
    # Refused requests are cheap: a path that mostly fails measures nothing.
    for result in (mine, floor):
        if result.errors > result.requests / 100:
            return f"not measured: {result.errors} errors"
    return f"{mine.requests_per_second / floor.requests_per_second:.2f}"


ROWS = ("catalog ping", "vendors read", "catalog read", "vendors write", "catalog write")


def report_rounds(rounds: list[dict[str, Result]]) -> None:
    """Per path, over the rounds: the median ratio, each round's, the median CPU times."""
    say("")
    say(f"over {len(rounds)} rounds (medians; the ratio of each round):")
    say("| path | ratio | ratios | service CPU ms/req | floor CPU ms/req | worst p99 ms |")
    say("|---|---|---|---|---|---|")
    for row in ROWS:
        pairs = [(r[row], r[f"floor {row.split()[1]}"]) for r in rounds if row in r]
        if not pairs:
            continue
        ratios = [mine.requests_per_second / floor.requests_per_second for mine, floor in pairs]
        say(
            f"| {row} | {statistics.median(ratios):.2f} | "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f" | {statistics.median(m.cpu_ms for m, _ in pairs):.2f}"
            f" | {statistics.median(f.cpu_ms for _, f in pairs):.2f}"
            f" | {max(m.p99_ms for m, _ in pairs):.1f} |"
        )


def report(results: dict[str, Result]) -> None:
    say("")
    say(
        "| path | service req/s | p50 ms | p99 ms | CPU ms/req | floor req/s | floor p99 ms "
        "| floor CPU ms/req | ratio |"
    )
    say("|---|---|---|---|---|---|---|---|---|")
    for row in ROWS:
        if row not in results:
            continue
        mine, floor = results[row], results[f"floor {row.split()[1]}"]
        say(
            f"| {row} | {mine.requests_per_second:,.0f} | {mine.p50_ms:.1f} | "
            f"{mine.p99_ms:.1f} | {mine.cpu_ms:.2f} | {floor.requests_per_second:,.0f} | "
            f"{floor.p99_ms:.1f} | {floor.cpu_ms:.2f} | {ratio(mine, floor)} |"
        )
    errors = {k: r.errors for k, r in results.items() if r.errors}
    if errors:
        say(f"non-2xx or failed requests: {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=12, help="seconds per path")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--vendors",
        type=int,
        default=VENDORS,
        help="vendors seeded; each vendor write picks one at random, so with few of them "
        "concurrent writes queue for the same vendor's row lock",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure each path this many times, taking turns"
    )
    parser.add_argument("--profile", type=Path, help="write py-spy flame graphs here")
    parser.add_argument(
        "--native", action="store_true", help="with --profile: C frames too (py-spy --native)"
    )
    parser.add_argument(
        "--paths",
        nargs="+",
        choices=PATH_KINDS,
        default=PATH_KINDS,
        help="which kinds of path to measure (each beside the floor's)",
    )
    parser.add_argument("--serve-floor", nargs=2, metavar=("DSN", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.serve_floor[0], int(args.serve_floor[1]))
        return
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
