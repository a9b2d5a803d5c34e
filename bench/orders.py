"""Order intake over HTTP against a bare FastAPI + asyncpg floor, and the stock saga's latency.

    .venv/bin/python bench/orders.py [--seconds 8] [--clients 8 32 64] [--no-fsync]
                                     [--threads 2] [--packages 64]
                                     [--profile DIR [--native]] [--statements]

Starts its own embedded PostgreSQL (durable commits unless --no-fsync) and tansu broker, then
the catalog and orders services (`ekatalog serve`) and the floor as separate uvicorn processes
with the same server options (httptools, uvloop), so that in one run and under the same load it
measures, per number of concurrent HTTP connections:
  floor    POST /floor: one transaction inserting two rows (an order row and an outbox row)
  orders   POST /orders: a PPK's one-line direct purchase (authorisation, projections, domestic
           priority, then the pagu check, order, timeline and outbox in one statement)
The load comes from wrk (a C process of its own, so the client does not compete with the servers
for a Python interpreter; see bench/loadgen): every request picks one of 2,048 bodies (drawn from
`--packages` RUP packages x 16 products x 2 PPKs, each PPK with its own token) and numbers its
delivery address. Orders on one package take turns at its row (the pagu check).
It prints requests/s, p50 and p99 latency, the server's CPU time per request, PostgreSQL's
(all its processes; for orders this includes the saga's statements during the measure) and the
ratio orders/floor. After each level it waits until no order waits for its stock (so the next floor
measure runs without a saga backlog) and prints the stock saga's completion time for that level's
orders (order.placed written -> catalog reservation -> stock.reserved -> order.stock_confirmed
written, from the orders' timeline) and the CPU time the saga cost per order in the two services
(their CPU during the level, less what the intake's requests took). Each product has ample stock.
`--profile DIR` records py-spy samples of the orders and catalog processes during each level
(intake and saga; collapsed stacks); with `--native` the C frames too (asyncpg's Cython).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from loadgen import (
    Load,
    Result,
    cpu_seconds,
    profiling,
    run_wrk,
    say,
    serve,
    tree_cpu_seconds,
    wait_ready,
)

from shared.auth import Role, mint_token
from shared.contracts.vendors import VendorVerified
from shared.embedded import EmbeddedPostgres, Tansu, free_port, stop_process
from shared.events import build_headers, encode

SECRET = "bench-secret-0123456789-0123456789-0123456789"
PRODUCTS = 16


# --------------------------------------------------------------------------- the floor


def floor_app(dsn: str) -> FastAPI:
    """The least a service can do per order: one transaction writing two rows."""
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/floor", status_code=201)
    async def floor(request: Request) -> dict[str, str]:
        body = await request.json()
        order_id = uuid.uuid4()
        assert pool is not None
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO floor_order (id, body) VALUES ($1, $2)", order_id, str(body)
            )
            await conn.execute(
                "INSERT INTO floor_outbox (aggregate_id, payload) VALUES ($1, $2)",
                order_id,
                str(body),
            )
        return {"id": str(order_id)}

    return app


def serve_floor(port: int, dsn: str) -> None:
    serve(floor_app(dsn), port)


# --------------------------------------------------------------------------- set-up


def spawn(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def bearer(role: Role, **claims: str) -> str:
    return "Bearer " + mint_token(SECRET, role=role, ttl_seconds=86_400, **claims)


def token(role: Role, **claims: str) -> dict[str, str]:
    return {"Authorization": bearer(role, **claims)}


async def seed(
    catalog: str, orders: str, bootstrap: str, orders_dsn: str, package_count: int
) -> tuple[list[str], list[str], str]:
    vendor_id = uuid.uuid4()
    event = VendorVerified(
        vendor_id=vendor_id,
        version=1,
        occurred_at=datetime.now(UTC),
        state="verified",
        legal_name="CV Batik Jaya",
        legal_form="CV",
        nib="1234567890123",
        npwp="012345678901234",
        kbli=["13134"],
        region_code="33.75",
        scale="kecil",
        is_umk=True,
        is_koperasi=False,
        is_local=True,
        is_pkp=True,
        verified_by="bench",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    headers = build_headers(
        event_id=uuid.uuid4(),
        event_type=event.type,
        source="/ekatalog/vendors",
        subject=str(vendor_id),
        time=datetime.now(UTC),
        correlation_id=None,
    )
    await producer.send_and_wait(
        event.topic,
        encode(event),
        key=str(vendor_id).encode(),
        headers=[(k, v.encode()) for k, v in headers.items()],
    )
    await producer.stop()
    manager = token(Role.CATALOGUE_MANAGER)
    vendor = token(Role.VENDOR, vendor_id=str(vendor_id))
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(200):  # until the catalog knows the vendor
            etalase = await client.post(
                f"{catalog}/etalase",
                json={
                    "code": f"ET-{uuid.uuid4().hex[:6]}",
                    "name": "Tekstil",
                    "categories": [{"code": "TEX", "name": "Tekstil"}],
                    "vendor_types": ["producer"],
                    "kbli": [],
                },
                headers=manager,
            )
            etalase_id = etalase.json()["id"]
            await client.post(f"{catalog}/etalase/{etalase_id}/open", headers=manager)
            product = await client.post(
                f"{catalog}/products", json=product_body(etalase_id), headers=vendor
            )
            if product.status_code == 201:
                break
            await asyncio.sleep(0.2)
        if product.status_code != 201:
            raise SystemExit(f"the catalog refused the product: {product.text}")
        products = [product.json()["id"]]
        products += [
            (
                await client.post(
                    f"{catalog}/products", json=product_body(etalase_id), headers=vendor
                )
            ).json()["id"]
            for _ in range(PRODUCTS - 1)
        ]
        for product_id in products:
            approved = await client.post(
                f"{catalog}/products/{product_id}/approve", headers=manager
            )
            assert approved.status_code == 200, approved.text
        packages = []
        for i in range(package_count):
            code = f"RUP-BENCH-{i:03d}"
            response = await client.post(
                f"{orders}/rup",
                json={
                    "rup_code": code,
                    "opd_id": "DISDIK",
                    "package_name": f"Paket {i}",
                    "fiscal_year": 2026,
                    "procurement_type": "barang",
                    "pagu": 10**14,
                },
                headers=manager,
            )
            assert response.status_code == 200, response.text
            packages.append(code)
    conn = await asyncpg.connect(orders_dsn)
    try:
        listed = "SELECT count(*) FROM product_projection WHERE state = 'listed'"
        while await conn.fetchval(listed) < PRODUCTS:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return packages, products, str(vendor_id)


def product_body(etalase_id: str) -> dict[str, Any]:
    return {
        "etalase_id": etalase_id,
        "vendor_type": "producer",
        "category_code": "TEX",
        "name": "Kain batik tulis",
        "description": "Batik tulis Pekalongan",
        "specification": {"bahan": "katun"},
        "kbki": "26290",
        "unit": "lembar",
        "price": 750_000,
        "regional_prices": {},
        "tax_percent": 11,
        "pdn": True,
        "tkdn": 45.5,
        "bmp": 10,
        "tkdn_certificate": "TKDN-1",
        "tkdn_valid_until": "2031-06-30",
        "stock": 2_000_000_000,
        "delivery_regions": ["33.75"],
        "photos": [],
    }


# --------------------------------------------------------------------------- load


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


async def saga_seconds(conn: asyncpg.Connection, since: datetime) -> list[float]:
    """Once no order is waiting for its stock: for each order placed since `since`, the time
    from `order.placed` to `order.stock_confirmed` (or `order.rejected`) being written."""
    waited = time.monotonic()
    pending = "SELECT count(*) FROM orders WHERE state = 'placed'"
    while await conn.fetchval(pending):
        if time.monotonic() - waited > 300:
            raise SystemExit("orders still placed after 300 s")
        await asyncio.sleep(0.5)
    rows = await conn.fetch(
        """SELECT extract(epoch FROM c.at - p.at) AS seconds
           FROM order_timeline p JOIN order_timeline c
             ON c.order_id = p.order_id AND c.version = 2 AND p.version = 1
           WHERE p.at >= $1""",
        since,
    )
    return [float(r["seconds"]) for r in rows]


async def print_statements(conn: asyncpg.Connection, orders: int) -> None:
    """PostgreSQL's execution time per order by statement, all databases, since the level
    began (the floor's included): where the database's share goes."""
    rows = await conn.fetch(
        """SELECT d.datname, s.calls, s.total_exec_time, s.total_plan_time, s.rows,
                  left(regexp_replace(s.query, '\\s+', ' ', 'g'), 110) AS query
           FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
           ORDER BY s.total_exec_time + s.total_plan_time DESC LIMIT 25"""
    )
    say("  database | calls | exec / planning ms per order | statement")
    for r in rows:
        say(
            f"  {r['datname']} | {r['calls']} | {r['total_exec_time'] / orders:.3f}"
            f" / {r['total_plan_time'] / orders:.3f} | {r['query']}"
        )


def milliseconds(latencies: list[float]) -> str:
    """p50 / p99 in milliseconds."""
    return f"{percentile(latencies, 0.5) * 1000:.1f} / {percentile(latencies, 0.99) * 1000:.1f}"


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ekatalog-bench-") as tmp:
        work = Path(tmp)
        postgres = EmbeddedPostgres(work / "pg", free_port())
        broker = Tansu(free_port())
        statements = (
            ("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track_planning=on")
            if args.statements
            else ()
        )
        postgres.start(durable=not args.no_fsync, settings=statements)
        broker.start()
        processes: dict[str, subprocess.Popen[bytes]] = {}
        try:
            admin = await asyncpg.connect(postgres.admin_dsn)
            for name in ("catalog", "orders", "floor"):
                await admin.execute(f'CREATE DATABASE "bench_{name}"')
            await admin.close()
            dsn = {n: postgres.dsn(f"bench_{n}") for n in ("catalog", "orders", "floor")}
            conn = await asyncpg.connect(dsn["floor"])
            await conn.execute(
                "CREATE TABLE floor_order (id uuid PRIMARY KEY, body text NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT now());"
                "CREATE TABLE floor_outbox (id bigserial PRIMARY KEY, aggregate_id uuid NOT NULL,"
                " payload text NOT NULL)"
            )
            await conn.close()
            ports = {n: free_port() for n in ("catalog", "orders", "floor")}
            for name in ("catalog", "orders"):
                prefix = name.upper()
                processes[name] = spawn(
                    [str(Path(sys.executable).parent / "ekatalog"), "serve", name],
                    {
                        f"{prefix}_DATABASE_URL": dsn[name],
                        f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                        f"{prefix}_JWT_SECRET": SECRET,
                        f"{prefix}_HTTP_PORT": str(ports[name]),
                        f"{prefix}_LOG_LEVEL": "warning",
                        f"{prefix}_CONSUMER_SESSION_TIMEOUT_MS": "2000",
                    },
                )
            processes["floor"] = spawn(
                [sys.executable, __file__, "--floor", str(ports["floor"]), dsn["floor"]]
            )
            base = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
            for name in ("catalog", "orders"):
                await wait_ready(f"{base[name]}/readyz")
            await wait_ready(f"{base['floor']}/docs")
            packages, products, vendor_id = await seed(
                base["catalog"],
                base["orders"],
                broker.bootstrap_servers,
                dsn["orders"],
                args.packages,
            )
            # 2,048 different combinations of package, product and PPK (token).
            ppks = [f"ppk-bench-{i}" for i in range(8)]
            targets = [
                (
                    bearer(Role.PPK, opd_id="DISDIK", subject=ppk),
                    json.dumps(
                        {
                            "rup_code": package,
                            "vendor_id": vendor_id,
                            "method": "direct",
                            "ppk_id": ppk,
                            "delivery_address": "Jl. Mataram No. __N__, Pekalongan",
                            "lines": [{"product_id": product, "quantity": 1 + i % 3}],
                        }
                    ),
                )
                for i, (package, product, ppk) in enumerate(
                    random.sample(list(itertools.product(packages, products, ppks[:2])), 2048)
                )
            ]
            random.shuffle(targets)
            floor = Load("floor", "POST", [("/floor", auth, body) for auth, body in targets])
            intake = Load("orders", "POST", [("/orders", auth, body) for auth, body in targets])
            pids = {name: process.pid for name, process in processes.items()}

            assert postgres.process is not None
            database_pid = postgres.process.pid
            database_ms: dict[str, float] = {}

            def measure(name: str, load: Load, clients: int, seconds: float) -> Result:
                before = tree_cpu_seconds(database_pid)
                result = run_wrk(
                    base[name],
                    pids[name],
                    load,
                    work,
                    seconds=seconds,
                    connections=clients,
                    threads=args.threads,
                )
                spent = tree_cpu_seconds(database_pid) - before
                database_ms[name] = 1000 * spent / max(1, result.requests)
                return result

            say(
                f"wrk: {args.threads} threads, {args.seconds:.0f} s per measure after a 2 s"
                f" warm-up of each endpoint; {len(targets)} different order bodies; processes:"
                f" catalog {pids['catalog']}, orders {pids['orders']}, floor {pids['floor']}"
            )
            measure("floor", floor, 8, 2)
            conn = await asyncpg.connect(dsn["orders"])
            try:
                measure("orders", intake, 8, 2)
                await saga_seconds(conn, datetime.now(UTC))
                say(
                    "| clients | floor req/s | floor p50 / p99 ms | floor CPU ms/req "
                    "| orders req/s | orders p50 / p99 ms | orders API CPU ms/req | ratio "
                    "| saga p50 / p99 ms | saga within 1 s | saga CPU ms/order orders + catalog "
                    "| PostgreSQL CPU ms/req floor / orders |"
                )
                say("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
                for clients in args.clients:
                    if args.statements:
                        await conn.execute(
                            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"
                            " SELECT pg_stat_statements_reset()"
                        )
                    base_line = measure("floor", floor, clients, args.seconds)
                    since = datetime.now(UTC)
                    cpu_before = {n: cpu_seconds(pids[n]) for n in ("orders", "catalog")}
                    with (
                        profiling(
                            pids["orders"], args.profile, f"orders-{clients}", native=args.native
                        ),
                        profiling(
                            pids["catalog"], args.profile, f"catalog-{clients}", native=args.native
                        ),
                    ):
                        orders = measure("orders", intake, clients, args.seconds)
                        for name, result in (("floor", base_line), ("orders", orders)):
                            if result.errors:
                                raise SystemExit(
                                    f"{name}: {result.errors} of {result.requests} failed"
                                )
                        # The next floor runs only once this level's sagas are done.
                        saga = await saga_seconds(conn, since)
                    cpu = {n: cpu_seconds(pids[n]) - cpu_before[n] for n in cpu_before}
                    api_ms = orders.cpu_ms * orders.requests
                    saga_ms = 1000 * (cpu["orders"] + cpu["catalog"]) - api_ms
                    saga_cpu = saga_ms / max(1, len(saga))
                    within = sum(s <= 1.0 for s in saga) / len(saga)
                    say(
                        f"| {clients} | {base_line.requests_per_second:,.0f} "
                        f"| {base_line.p50_ms:.1f} / {base_line.p99_ms:.1f} "
                        f"| {base_line.cpu_ms:.2f} | {orders.requests_per_second:,.0f} "
                        f"| {orders.p50_ms:.1f} / {orders.p99_ms:.1f} | {orders.cpu_ms:.2f} "
                        f"| {orders.requests_per_second / base_line.requests_per_second:.2f} "
                        f"| {milliseconds(saga)} | {within:.1%} | {saga_cpu:.2f} "
                        f"| {database_ms['floor']:.2f} / {database_ms['orders']:.2f} |"
                    )
                    if args.statements:
                        await print_statements(conn, max(1, len(saga)))
            finally:
                await conn.close()
        finally:
            for process in processes.values():
                stop_process(process)
            broker.stop()
            postgres.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--packages",
        type=int,
        default=64,
        help="RUP packages the orders spread over (orders on one package wait for each other)",
    )
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL without fsync")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="print PostgreSQL's time per statement for each level (pg_stat_statements)",
    )
    parser.add_argument("--profile", type=Path, help="py-spy samples of orders and catalog go here")
    parser.add_argument(
        "--native", action="store_true", help="with --profile: C frames too (py-spy --native)"
    )
    parser.add_argument("--floor", nargs=2, metavar=("PORT", "DSN"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.floor:
        serve_floor(int(arguments.floor[0]), arguments.floor[1])
    else:
        asyncio.run(main(arguments))
