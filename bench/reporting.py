"""Reporting: rebuild rate against raw aiokafka, KPI API latency with 1,000,000 orders, and
event-to-API freshness at 200 orders/s.

    .venv/bin/python bench/reporting.py [--events 200000] [--orders 1000000] [--rate 200]
                                        [--runs 30] [--workers N]

Starts its own embedded PostgreSQL (durable commits) and tansu broker, then, in one run:
  raw consume   aiokafka, outside any group, every record of the five topics the rebuild reads
  rebuild       `ekatalog rebuild reporting` on the same records, staged by --workers processes
                (default one per CPU but one): parse, COPY per batch of 2,000, build, swap; the live
                projection holds them all. CPU per event: this process and its exited workers,
                and PostgreSQL's
  KPI API       GET /kpis and breakdowns through the service (in-process HTTP) with --orders
                orders of one fiscal year in the projection: p50 / p95 over the runs
  freshness     an order with an issued SP published every 1/--rate s to the running service
                (once its consumer group settled); time until GET /kpis counts it (the
                dashboard adds its polling interval)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from loadgen import tree_cpu_seconds

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.reporting import rebuild as rebuilding
from services.reporting import store
from services.reporting.app import ReportingSettings, create_app
from services.reporting.projection import rows_of
from shared.contracts import orders as o
from shared.db import migrate_service
from shared.embedded import EmbeddedPostgres, Tansu, free_port
from shared.events import Event, build_headers, encode
from shared.service import ensure_topics
from tests.reporting.helpers import (
    MIGRATIONS,
    PRODUCER_OF_TOPIC,
    Order,
    etalase,
    line,
    product,
    rup,
    vendor,
)
from tests.support import running

PARTITIONS = 6
YEAR = 2026
STEPS = (o.OrderPlaced, o.OrderApproved, o.OrderAcceptedByVendor, o.OrderReceived, o.OrderPaid)


def say(message: str) -> None:
    print(message, flush=True)


def city_events(count: int) -> list[Event]:
    """About `count` events of a busy city: vendors, storefronts, products, RUP, orders."""
    vendors = [vendor(uuid.uuid4(), scale=("mikro", "kecil", "besar")[i % 3]) for i in range(500)]
    storefronts = [etalase(uuid.uuid4(), f"ET{i}") for i in range(20)]
    products = [
        product(uuid.uuid4(), storefronts[i % 20].etalase_id, vendors[i % 500].vendor_id)
        for i in range(2000)
    ]
    rups = [rup(f"R{i}", f"opd-{i % 30}", YEAR, "barang", 10**10) for i in range(500)]
    events: list[Event] = [*vendors, *storefronts, *products, *rups]
    day = datetime(YEAR, 3, 2, tzinfo=UTC)
    while len(events) < count:
        i = len(events)
        order = Order(
            uuid.uuid4(),
            f"opd-{i % 30}",
            f"R{i % 500}",
            "barang",
            YEAR,
            vendors[i % 500],
            [line(products[i % 2000].product_id, 2, 150_000, pdn=True, tkdn=40, verified=True)],
        )
        events += [order.step(step, day) for step in STEPS]
    return events[:count]


def records(events: Sequence[Event], prefix: str) -> list[tuple[str, bytes, bytes, list[Any]]]:
    out = []
    for event in events:
        headers = build_headers(
            event_id=uuid.uuid4(),
            event_type=event.type,
            source=f"/ekatalog/{PRODUCER_OF_TOPIC[event.topic]}",
            subject=event.aggregate_id,
            time=datetime.now(UTC),
            correlation_id=None,
        )
        out.append(
            (
                f"{prefix}{event.topic}",
                event.aggregate_id.encode(),
                encode(event),
                [(k, v.encode()) for k, v in headers.items()],
            )
        )
    return out


async def produce(bootstrap: str, rows: Sequence[tuple[str, bytes, bytes, list[Any]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for start in range(0, len(rows), 5000):
            futures = [
                await producer.send(topic, value=value, key=key, headers=headers)
                for topic, key, value, headers in rows[start : start + 5000]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topics: list[str], count: int) -> float:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    started = time.perf_counter()
    await consumer.start()
    seen = 0
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            seen += sum(len(batch) for batch in batches.values())
    finally:
        await consumer.stop()
    return time.perf_counter() - started


async def fill_orders(dsn: str, orders: int, year: int) -> None:
    """`orders` orders of one fiscal year straight into the projection, with a line and their
    steps, spread over 30 OPDs, 500 vendors and the year's months."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """
            INSERT INTO rup (rup_code, version, occurred_at, opd_id, package_name, fiscal_year,
                             procurement_type, pagu)
            SELECT 'F' || g, 1, now(), 'opd-' || (g % 30), 'Paket', $1,
                   (ARRAY['barang', 'pekerjaan_konstruksi', 'jasa_lainnya'])[1 + g % 3],
                   10000000000
            FROM generate_series(1, 3000) g;
            """,
            year,
        )
        await conn.execute(
            """
            INSERT INTO orders
            SELECT md5(g::text)::uuid, 5, now(),
                   (ARRAY['completed', 'accepted', 'expired', 'cancelled'])[1 + g % 4],
                   'opd-' || (g % 30), 'F' || (1 + g % 3000),
                   (ARRAY['barang', 'pekerjaan_konstruksi', 'jasa_lainnya'])[1 + g % 3], $1,
                   'direct', md5('v' || (g % 500))::uuid, 'Penyedia ' || (g % 500),
                   (ARRAY['mikro', 'kecil', 'menengah', 'besar'])[1 + g % 4],
                   g % 4 < 2, g % 7 = 0, g % 3 > 0, 100000 + g % 1000,
                   CASE WHEN g % 4 < 3 THEN 'SP-' || g END,
                   make_timestamptz($1, 1 + g % 12, 1 + g % 28, 8, 0, 0, 'Asia/Jakarta'),
                   NULL, g % 11 > 0,
                   g % 4 < 2,
                   CASE WHEN g % 3 = 0 OR g % 2 = 0 THEN 100000 + g % 1000 ELSE 0 END,
                   CASE WHEN g % 3 = 0 THEN (100000 + g % 1000) * 0.4 ELSE 0 END,
                   CASE WHEN g % 3 = 0 THEN 100000 + g % 1000 ELSE 0 END,
                   (g % 11 = 0)::int
            FROM generate_series(1, $2) g
            """,
            year,
            orders,
        )
        await conn.execute(
            """
            INSERT INTO order_line
            SELECT md5(g::text)::uuid, 1, 5, md5('p' || (g % 2000))::uuid, 'Produk', 1,
                   100000 + g % 1000, 100000 + g % 1000, g % 2 = 0,
                   CASE WHEN g % 3 = 0 THEN 40 END, CASE WHEN g % 3 = 0 THEN 5 END, g % 3 = 0,
                   'none', 'none', g % 11 > 0, NULL,
                   CASE WHEN g % 3 = 0 THEN 'tkdn_bmp_40' WHEN g % 2 = 0 THEN 'pdn' ELSE 'none' END
            FROM generate_series(1, $1) g
            """,
            orders,
        )
        await conn.execute(
            """
            INSERT INTO order_step
            SELECT md5(g::text)::uuid, s.step, s.version,
                   make_timestamptz($1, 1 + g % 12, 1, 8, 0, 0, 'Asia/Jakarta')
                     + (s.version * (1 + g % 9)) * interval '1 day'
            FROM generate_series(1, $2) g,
                 (VALUES ('placed', 1), ('approved', 2), ('received', 4)) s(step, version)
            """,
            year,
            orders,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def own_cpu() -> float:
    """CPU seconds of this process and of its children that exited (the rebuild's workers);
    PostgreSQL and the broker, still running, are not counted."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


async def kpi_latency(client: Any, year: int, runs: int) -> dict[str, tuple[float, float]]:
    paths = {
        "/kpis (city)": ("/kpis", {"fiscal_year": year}),
        "/kpis (one OPD)": ("/kpis", {"fiscal_year": year, "opd": "opd-7"}),
        "/kpis/months": ("/kpis/months", {"fiscal_year": year}),
        "/kpis/funnel": ("/kpis/funnel", {"fiscal_year": year}),
        "/kpis/lead_times": ("/kpis/lead_times", {"fiscal_year": year}),
    }
    result = {}
    for name, (path, params) in paths.items():
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            response = await client.get(path, params=params)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        result[name] = (percentile(timings, 0.5), percentile(timings, 0.95))
    return result


async def settled(client: Any, app: Any, bootstrap: str, prefix: str) -> float:
    """Wait until the service's consumers hold their partitions for good: the group rebalances
    as each topic's subscriber joins, for some seconds after the service started. Probe orders
    (fiscal year 2030) until three in a row are counted within half a second; returns the
    seconds waited."""
    started = time.perf_counter()
    supplier = vendor(uuid.uuid4(), scale="mikro")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        quick = 0
        probes = 0
        while quick < 3:
            if time.perf_counter() - started > 120:
                raise RuntimeError("the service's consumers did not settle within 120 s")
            if getattr(app.state, "consumer_status", "") != "ok":
                await asyncio.sleep(0.1)
                continue
            order = Order(
                uuid.uuid4(), "opd-1", "R1", "barang", 2030, supplier, [line(uuid.uuid4(), 1, 1)]
            )
            ((topic, key, value, headers),) = records(
                [order.step(o.OrderApproved, datetime.now(UTC))], prefix
            )
            sent = time.perf_counter()
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
            probes += 1
            while True:
                response = await client.get("/kpis", params={"fiscal_year": 2030})
                if response.json()["totals"]["spend_sp"] >= probes:
                    break
                await asyncio.sleep(0.01)
            quick = quick + 1 if time.perf_counter() - sent < 0.5 else 0
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def freshness(
    client: Any, bootstrap: str, prefix: str, rate: float, seconds: float
) -> list[float]:
    """Publish one order with an SP every 1/rate s; poll /kpis; seconds from each publish to the
    first answer that counts it (orders of their own fiscal year, total 1 each)."""
    year = 2031
    supplier = vendor(uuid.uuid4(), scale="mikro")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    published: list[float] = []
    seen_at: list[tuple[float, int]] = []
    done = asyncio.Event()
    counted_all = asyncio.Event()
    total = int(rate * seconds)

    async def poll() -> None:
        while not done.is_set():
            response = await client.get("/kpis", params={"fiscal_year": year})
            counted = response.json()["totals"]["spend_sp"]
            seen_at.append((time.perf_counter(), counted))
            if counted >= total:
                counted_all.set()
            await asyncio.sleep(0.01)

    poller = asyncio.create_task(poll())
    try:
        started = time.perf_counter()
        for i in range(total):
            order = Order(
                uuid.uuid4(), "opd-1", "R1", "barang", year, supplier, [line(uuid.uuid4(), 1, 1)]
            )
            event = order.step(o.OrderApproved, datetime.now(UTC))
            ((topic, key, value, headers),) = records([event], prefix)
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            published.append(time.perf_counter())
            await producer.send(topic, value=value, key=key, headers=headers)
        await asyncio.wait_for(counted_all.wait(), timeout=120)
    finally:
        done.set()
        await poller
        await producer.stop()
    lags = []
    for index, sent in enumerate(published):
        first = next(t for t, counted in seen_at if counted >= index + 1 and t >= sent)
        lags.append(first - sent)
    return lags


async def main(count: int, orders: int, rate: float, runs: int, workers: int | None) -> None:
    with tempfile.TemporaryDirectory(prefix="ekatalog-bench-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        broker = Tansu(free_port())
        postgres.start(durable=True)
        broker.start()
        try:
            await run(postgres, broker.bootstrap_servers, count, orders, rate, runs, workers)
        finally:
            broker.stop()
            postgres.stop()


async def database(postgres: EmbeddedPostgres, name: str) -> str:
    conn = await asyncpg.connect(postgres.admin_dsn)
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    dsn = postgres.dsn(name)
    await migrate_service(dsn, "reporting", MIGRATIONS)
    return dsn


async def run(
    postgres: EmbeddedPostgres,
    bootstrap: str,
    count: int,
    orders: int,
    rate: float,
    runs: int,
    workers: int | None,
) -> None:
    say(f"embedded PostgreSQL (durable) and tansu, {PARTITIONS} partitions; {count:,} events")
    prefix = "b."
    topics = rebuilding.topics(prefix)
    await ensure_topics(bootstrap, topics, PARTITIONS)
    events = city_events(count)
    await produce(bootstrap, records(events, prefix))
    say("  events produced")

    cpu = time.process_time()
    raw_seconds = await raw_consume(bootstrap, topics, count)
    raw_cpu = (time.process_time() - cpu) / count * 1e6
    say(f"  raw consume: {count / raw_seconds:,.0f} events/s, {raw_cpu:.0f} µs CPU per event")

    dsn = await database(postgres, "rebuilt")
    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    for start in range(0, count, 2000):
        async with conn.transaction():
            await store.apply(conn, rows_of(events[start : start + 2000]))
    await conn.execute(
        "INSERT INTO inbox (consumer, event_id, event_type)"
        " SELECT 'reporting', gen_random_uuid(), 'x' FROM generate_series(1, $1)",
        count,
    )
    await conn.close()
    applied = count / (time.perf_counter() - started)
    say(f"  live projection filled (set-based apply alone: {applied:,.0f} events/s)")
    settings = ReportingSettings(
        database_url=dsn,
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        jwt_secret="b" * 32,
    )
    # The rebuild runs as its own command: it does not share its process with the bench's copy
    # of every event, which only makes the garbage collector's passes longer.
    del events
    gc.collect()
    assert postgres.process is not None
    postgres_cpu = functools.partial(tree_cpu_seconds, postgres.process.pid)
    cpu, server_cpu = own_cpu(), postgres_cpu()
    result = await rebuilding.rebuild(settings, idle_seconds=30, workers=workers)
    rebuild_cpu = (own_cpu() - cpu) / result.events * 1e6
    await asyncio.sleep(0.5)  # the rebuild's backend exits after its connection closed
    rebuild_server_cpu = (postgres_cpu() - server_cpu) / result.events * 1e6
    say(
        f"  rebuild ({workers or 'default'} workers): {result.events:,} events in"
        f" {result.seconds:.1f} s, {result.rate:,.0f}/s;"
        f" CPU per event {rebuild_cpu:.0f} µs here, {rebuild_server_cpu:.0f} µs in PostgreSQL"
    )
    ratio = result.rate / (count / raw_seconds)

    live_dsn = await database(postgres, "live")
    live = ReportingSettings(
        database_url=live_dsn,
        kafka_bootstrap_servers=bootstrap,
        topic_prefix="f.",
        jwt_secret="b" * 32,
        topic_partitions=PARTITIONS,
        consumer_session_timeout_ms=2000,
    )
    app = create_app(live)
    async with running(app) as client:
        await ensure_topics(bootstrap, rebuilding.topics("f."), PARTITIONS)
        waited = await settled(client, app, bootstrap, "f.")
        say(f"  service's consumers settled after {waited:.1f} s")
        lags = await freshness(client, bootstrap, "f.", rate, 10)
        p50, p99 = percentile(lags, 0.5) * 1000, percentile(lags, 0.99) * 1000
        say(f"  freshness: p50 {p50:.0f} ms, p99 {p99:.0f} ms")
        started = time.perf_counter()
        await fill_orders(live_dsn, orders, YEAR)
        say(f"  {orders:,} orders filled in {time.perf_counter() - started:.0f} s")
        latency = await kpi_latency(client, YEAR, runs)

    say("")
    say("| measure | figure |")
    say("|---|---:|")
    say(
        f"| raw aiokafka consume, {count:,} events | {count / raw_seconds:,.0f} events/s"
        f" ({raw_cpu:.0f} µs CPU per event) |"
    )
    say(
        f"| rebuild, same events | {result.rate:,.0f} events/s = **{ratio:.2f}** of raw consume"
        f" (CPU per event: {rebuild_cpu:.0f} µs in the rebuild, {rebuild_server_cpu:.0f} µs in"
        " PostgreSQL) |"
    )
    for name, (median, p95) in latency.items():
        say(f"| {name}, {orders:,} orders: p50 / p95 | {median:.0f} / {p95:.0f} ms |")
    say(f"| freshness at {rate:.0f} orders/s: p50 / p99 | {p50:.0f} / {p99:.0f} ms |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--workers", type=int, help="the rebuild's workers (default: CPUs - 1)")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.orders, args.rate, args.runs, args.workers))
