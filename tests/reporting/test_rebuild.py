"""`ekatalog rebuild reporting`: every event replayed into fresh tables and swapped in while the
live projection keeps serving; the result equals the live projection, the public feed keeps
its positions, and the live consumer goes on writing into the swapped-in tables."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import uuid
from typing import Any

import pytest

from ekatalog.cli import main
from services.reporting import store
from services.reporting.projection import rows_of
from services.reporting.rebuild import RebuildFailed, rebuild
from tests.reporting.helpers import Reporting, every_figure, vendor
from tests.reporting.scenario import YEAR, City, M


@pytest.fixture(scope="module")
async def city(reporting: Reporting) -> City:
    city = City()
    events = [*city.order_events, *reversed(city.catalog), *city.vendors, *city.rups]
    ids = [await reporting.publish(event) for event in events]
    await reporting.publish(city.o1.events[0], ids[0])  # a duplicate delivery
    await reporting.processed(ids)
    return city


async def figures(reporting: Reporting) -> Any:
    async with reporting.pool.acquire() as conn:
        return await every_figure(conn, reporting.settings, YEAR)


async def whole_feed(reporting: Reporting) -> tuple[list[Any], str]:
    changes: list[Any] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        body = await reporting.get("/feed/orders", **params)
        cursor = body["next_page"]["cursor"]
        if not body["changes"]:
            return changes, cursor
        changes += body["changes"]


async def test_rebuild_equals_live_while_live_keeps_serving(
    reporting: Reporting, city: City
) -> None:
    before = await figures(reporting)
    feed_before, cursor = await whole_feed(reporting)
    served: list[int] = []
    progress: list[tuple[int, int]] = []

    async def keep_reading() -> None:
        while True:
            response = await reporting.client.get("/kpis", params={"fiscal_year": YEAR})
            served.append(response.status_code)
            assert response.json()["totals"]["spend_sp"] == 600 * M
            await asyncio.sleep(0.01)

    reader = asyncio.create_task(keep_reading())
    try:
        result = await rebuild(
            reporting.settings,
            progress=lambda done, total: progress.append((done, total)),
            batch_size=7,
            workers=2,
        )
    finally:
        reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert result.events >= len(city.all_events)
    assert progress and progress[-1][0] == result.events
    assert served and set(served) == {200}
    assert await figures(reporting) == before
    feed_after, same = await whole_feed(reporting)
    assert feed_after == feed_before, "the rebuild moved changes in the public feed"
    assert same == cursor
    tables = await reporting.pool.fetch(
        "SELECT tablename FROM pg_tables WHERE tablename LIKE 'rebuild_%'"
    )
    assert tables == []
    indexes = {
        r["indexname"] for r in await reporting.pool.fetch("SELECT indexname FROM pg_indexes")
    }
    assert {"orders_year", "order_change_feed", "vendor_pkey", "order_change_pkey"} <= indexes

    # The live consumer writes into the tables it now has.
    order = city.approved_order(50 * M, 10)
    await reporting.deliver(order.events)
    totals = (await reporting.get("/kpis", fiscal_year=YEAR))["totals"]
    assert totals["spend_sp"] == 650 * M
    changes = (await reporting.get("/feed/orders", cursor=cursor))["changes"]
    assert [(c["order_id"], c["version"]) for c in changes] == [
        (str(order.order_id), 1),
        (str(order.order_id), 2),
    ]


async def test_rebuild_gives_up_when_the_topics_lost_events(
    reporting: Reporting, city: City
) -> None:
    """A row the topics cannot reproduce (the broker forgot its events): the rebuild refuses
    to swap, says what to do, and the live projection stays as it was."""
    lost = vendor(uuid.uuid4(), scale="besar")
    async with reporting.pool.acquire() as conn:
        await store.apply(conn, rows_of([lost]))
    before = await figures(reporting)
    with pytest.raises(RebuildFailed, match="replay the producers' event logs"):
        await rebuild(reporting.settings, idle_seconds=1.0)
    assert await figures(reporting) == before
    assert (
        await reporting.pool.fetchval(
            "SELECT count(*) FROM vendor WHERE vendor_id = $1", lost.vendor_id
        )
        == 1
    )
    async with reporting.pool.acquire() as conn:
        await conn.execute("DELETE FROM vendor WHERE vendor_id = $1", lost.vendor_id)


async def test_command_line(
    reporting: Reporting, city: City, monkeypatch: Any, capsys: Any
) -> None:
    settings = reporting.settings
    monkeypatch.setenv("REPORTING_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REPORTING_KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)
    monkeypatch.setenv("REPORTING_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("REPORTING_JWT_SECRET", "x" * 32)
    before = await figures(reporting)
    assert await asyncio.to_thread(main, ["rebuild", "reporting"]) == 0
    captured = capsys.readouterr()
    assert "rebuilt reporting from" in captured.out
    assert "events" in captured.err and "[" in captured.err  # the progress bar
    assert await figures(reporting) == before


class Interrupted(Exception):
    """Stands for the rebuild's process dying between two batches."""


async def rebuild_tables(reporting: Reporting) -> list[str]:
    records = await reporting.pool.fetch(
        "SELECT tablename FROM pg_tables WHERE tablename LIKE 'rebuild%' ORDER BY 1"
    )
    return [r["tablename"] for r in records]


async def test_an_interrupted_rebuild_leaves_the_live_projection_and_the_next_one_works(
    reporting: Reporting, city: City
) -> None:
    before = await figures(reporting)
    feed_before, _ = await whole_feed(reporting)

    def die(done: int, total: int) -> None:
        if done > 20:
            raise Interrupted

    with pytest.raises(Interrupted):
        await rebuild(reporting.settings, progress=die, batch_size=7, workers=2)
    assert "rebuild_staged_orders" in await rebuild_tables(reporting)
    assert await figures(reporting) == before
    assert (await whole_feed(reporting))[0] == feed_before
    await rebuild(reporting.settings, batch_size=7)
    assert await rebuild_tables(reporting) == []
    assert await figures(reporting) == before
    assert (await whole_feed(reporting))[0] == feed_before


async def test_a_worker_killed_mid_rebuild_fails_it_and_the_live_projection_stays(
    reporting: Reporting, city: City
) -> None:
    """kill -9 of one of the processes staging the events: the rebuild stops its other workers,
    says a worker failed and swaps nothing in; the next rebuild (read in one process) works."""
    before = await figures(reporting)
    feed_before, _ = await whole_feed(reporting)
    killed: list[int] = []

    def kill_a_worker(done: int, total: int) -> None:
        if killed:
            return
        workers = [p for p in multiprocessing.active_children() if p.name == "rebuild-worker-0"]
        assert workers, "the rebuild staged without worker processes"
        assert workers[0].pid is not None
        os.kill(workers[0].pid, signal.SIGKILL)
        killed.append(workers[0].pid)

    # Each worker waits `poll_ms` for more records before it stops: still alive when killed.
    with pytest.raises(RebuildFailed, match="a rebuild worker failed"):
        await rebuild(
            reporting.settings, progress=kill_a_worker, batch_size=7, workers=2, poll_ms=2000
        )
    assert killed
    assert [p for p in multiprocessing.active_children() if p.name.startswith("rebuild-")] == []
    assert await figures(reporting) == before
    assert (await whole_feed(reporting))[0] == feed_before
    result = await rebuild(reporting.settings, batch_size=7, workers=1)
    assert result.events >= len(city.all_events)
    assert await rebuild_tables(reporting) == []
    assert await figures(reporting) == before
    assert (await whole_feed(reporting))[0] == feed_before


async def test_events_stored_after_the_shadow_tables_are_built_are_swapped_in(
    reporting: Reporting, city: City, monkeypatch: Any
) -> None:
    """The live consumer stores an order while the rebuild builds its shadow tables: the rebuild
    reads it from the topics, upserts it into the shadow tables and only then swaps."""
    order = city.approved_order(70 * M, 11)
    spend = (await reporting.get("/kpis", fiscal_year=YEAR))["totals"]["spend_sp"]
    build = store.build_shadow_tables
    live: list[Any] = []

    async def build_while_the_live_consumer_goes_on(conn: Any, tables: Any) -> None:
        await build(conn, tables)
        await reporting.deliver(order.events)
        live.append(await figures(reporting))

    monkeypatch.setattr(store, "build_shadow_tables", build_while_the_live_consumer_goes_on)
    await rebuild(reporting.settings, batch_size=7)
    assert len(live) == 1
    assert await figures(reporting) == live[0]
    totals = (await reporting.get("/kpis", fiscal_year=YEAR))["totals"]
    assert totals["spend_sp"] == spend + 70 * M


async def test_the_rebuild_adds_the_order_changes_the_live_table_misses(
    reporting: Reporting, city: City
) -> None:
    lost = "SELECT snapshot FROM order_change WHERE order_id = $1 AND version = 2"
    snapshot = await reporting.pool.fetchval(lost, city.o1.order_id)
    assert snapshot is not None
    await reporting.pool.execute(
        "DELETE FROM order_change WHERE order_id = $1 AND version = 2", city.o1.order_id
    )
    changes = await reporting.pool.fetchval("SELECT count(*) FROM order_change")
    await rebuild(reporting.settings, batch_size=7)
    assert await reporting.pool.fetchval(lost, city.o1.order_id) == snapshot
    assert await reporting.pool.fetchval("SELECT count(*) FROM order_change") == changes + 1
