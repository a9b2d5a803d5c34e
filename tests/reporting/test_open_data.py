"""Open data: OCDS releases and records valid against the OCDS 1.1 schemas (../shared/ocds), and
the public change feed, which never skips or repeats a change, even under concurrent writes."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.reporting import store
from services.reporting.projection import rows_of
from shared.contracts import orders as o
from tests.reporting.helpers import Order, Reporting, line
from tests.reporting.scenario import YEAR, City, at

OCDS = Path(__file__).resolve().parents[3] / "shared" / "ocds" / "1.1"


def ocds_validator(package_schema: str) -> Any:
    """A validator of an OCDS package with the release schemas registered under their ids."""
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT4

    if not (OCDS / package_schema).exists():
        pytest.skip(f"the OCDS 1.1 schemas are not at {OCDS} (see ../shared/ocds/README.md)")
    resources = []
    for name in ("release-schema.json", "versioned-release-validation-schema.json"):
        contents = json.loads((OCDS / name).read_text())
        resources.append((contents["id"], referencing.Resource.from_contents(contents, DRAFT4)))
    registry = referencing.Registry().with_resources(resources)
    schema = json.loads((OCDS / package_schema).read_text())
    return jsonschema.Draft4Validator(
        schema, registry=registry, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )


def assert_valid(validator: Any, document: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


@pytest.fixture(scope="module")
async def city(reporting: Reporting) -> City:
    city = City()
    await reporting.deliver(city.all_events)
    return city


async def test_releases_of_an_order_are_valid_ocds(reporting: Reporting, city: City) -> None:
    validator = ocds_validator("release-package-schema.json")
    for order in city.orders:
        body = await reporting.get(f"/ocds/releases/{order.order_id}")
        assert_valid(validator, body)
        assert len(body["releases"]) == len(order.events)
    body = await reporting.get(f"/ocds/releases/{city.o1.order_id}")
    assert [r["tag"] for r in body["releases"]] == [
        ["tender"],
        ["tenderUpdate"],
        ["award", "contract"],
        ["contractUpdate"],
        ["implementation"],
        ["implementation"],
        ["implementation"],
        ["implementation"],
    ]
    last = body["releases"][-1]
    assert last["ocid"] == f"ocds-ekatalog-{city.o1.order_id}"
    assert {p["id"]: p.get("details") for p in last["parties"]} == {
        "dinkes": None,
        str(city.v1.vendor_id): {"scale": "micro"},
    }
    (contract,) = last["contracts"]
    assert contract["status"] == "terminated"
    assert contract["value"] == {"amount": city.o1.total, "currency": "IDR"}
    assert [t["value"]["amount"] for t in contract["implementation"]["transactions"]] == [
        city.o1.total
    ]
    assert len({r["id"] for r in body["releases"]}) == len(body["releases"])


async def test_record_of_an_order_is_valid_ocds(reporting: Reporting, city: City) -> None:
    validator = ocds_validator("record-package-schema.json")
    for order in city.orders:
        body = await reporting.get(f"/ocds/records/{order.order_id}")
        assert_valid(validator, body)
    expired = (await reporting.get(f"/ocds/records/{city.o3.order_id}"))["records"][0]
    compiled = expired["compiledRelease"]
    assert compiled["tag"] == ["compiled"]
    assert compiled["awards"][0]["status"] == "cancelled"
    assert expired["releases"][-1]["tag"] == ["awardCancellation", "contractTermination"]
    cancelled = (await reporting.get(f"/ocds/records/{city.o4.order_id}"))["records"][0]
    assert cancelled["compiledRelease"]["tender"]["status"] == "cancelled"
    assert "awards" not in cancelled["compiledRelease"]
    assert cancelled["compiledRelease"]["parties"][1]["details"] == {"scale": "micro"}


async def test_unknown_order_and_bad_ids(reporting: Reporting) -> None:
    response = await reporting.client.get(f"/ocds/records/{uuid.uuid4()}")
    assert response.status_code == 404
    response = await reporting.client.get("/ocds/releases/not-a-uuid")
    assert response.status_code == 422


async def read_feed(reporting: Reporting, cursor: str | None, limit: int) -> tuple[list[Any], str]:
    params: dict[str, Any] = {"limit": limit}
    if cursor:
        params["cursor"] = cursor
    body = await reporting.get("/feed/orders", **params)
    return body["changes"], body["next_page"]["cursor"]


async def drain(reporting: Reporting, cursor: str | None, limit: int) -> tuple[list[Any], str]:
    changes: list[Any] = []
    while True:
        page, cursor = await read_feed(reporting, cursor, limit)
        if not page:
            assert cursor is not None
            return changes, cursor
        changes += page


async def test_feed_pages_through_every_change_once(reporting: Reporting, city: City) -> None:
    changes, cursor = await drain(reporting, None, 3)
    seen = [(c["order_id"], c["version"]) for c in changes]
    assert len(seen) == len(set(seen))
    expected = {(str(o.order_id), e.version) for o in city.orders for e in o.events}
    assert expected <= set(seen)
    assert all(c["release"]["ocid"] == c["ocid"] for c in changes)
    again, same = await read_feed(reporting, cursor, 3)
    assert again == [] and same == cursor
    validator = ocds_validator("release-package-schema.json")
    sample = await reporting.get(f"/ocds/releases/{city.o1.order_id}")
    assert_valid(validator, {**sample, "releases": [c["release"] for c in changes]})


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "Yz",
        "YzEuMS4y!",
        "",
        "YzIuMS4y",
        "YzEuLTEuMg",
        "YzEuMS4",
        "YzEuMSAuMg",
        "x" * 201,
    ],
)
async def test_forged_cursors_are_refused(reporting: Reporting, cursor: str) -> None:
    response = await reporting.client.get("/feed/orders", params={"cursor": cursor})
    if cursor == "":
        assert response.status_code == 200  # no cursor: the start
        return
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_feed_neither_skips_nor_repeats_under_concurrent_writes(
    reporting: Reporting, city: City
) -> None:
    """Writers commit in another order than they took their sequence numbers (each holds its
    transaction open a random while); a reader polls the feed all along."""
    _, cursor = await drain(reporting, None, 50)
    written: set[tuple[str, int]] = set()

    async def writer(number: int) -> None:
        async with reporting.pool.acquire() as conn:
            for _ in range(6):
                # Each writer buys for its own OPD: writers of one OPD would queue on its
                # KPI totals row and commit in sequence order.
                order = Order(
                    uuid.uuid4(),
                    f"opd-{number}",
                    "R1",
                    "barang",
                    YEAR,
                    city.v1,
                    [line(city.p1, 1, 7)],
                )
                events = [
                    order.step(o.OrderPlaced, at(9, 1)),
                    order.step(o.OrderCancelled, at(9, 2)),
                ]
                async with conn.transaction():
                    await store.apply(conn, rows_of(events[:1]))
                    await asyncio.sleep(random.uniform(0, 0.05))
                    await store.apply(conn, rows_of(events[1:]))
                    await asyncio.sleep(random.uniform(0, 0.05))
                written.update((str(order.order_id), e.version) for e in events)

    read: list[tuple[str, int]] = []
    writers = asyncio.gather(*(writer(n) for n in range(6)))
    try:
        while not writers.done():
            page, cursor = await read_feed(reporting, cursor, 4)
            read += [(c["order_id"], c["version"]) for c in page]
        await writers
    finally:
        if not writers.done():
            writers.cancel()
    rest, _ = await drain(reporting, cursor, 4)
    read += [(c["order_id"], c["version"]) for c in rest]
    assert len(written) == 72
    assert len(read) == len(set(read)), "a change was served twice"
    assert set(read) == written, f"{len(written - set(read))} changes skipped"


async def test_the_feed_waits_for_a_transaction_still_open(
    reporting: Reporting, city: City
) -> None:
    """A change written before another but committed after it is served after it, not lost."""
    _, cursor = await drain(reporting, None, 50)
    early = Order(uuid.uuid4(), "opd-a", "R1", "barang", YEAR, city.v1, [line(city.p1, 1, 7)])
    late = Order(uuid.uuid4(), "opd-b", "R1", "barang", YEAR, city.v1, [line(city.p1, 1, 7)])
    async with reporting.pool.acquire() as first:
        transaction = first.transaction()
        await transaction.start()
        try:
            await store.apply(first, rows_of([early.step(o.OrderPlaced, at(9, 1))]))
            async with reporting.pool.acquire() as second:
                await store.apply(second, rows_of([late.step(o.OrderPlaced, at(9, 1))]))
            page, after = await read_feed(reporting, cursor, 10)
            assert page == [] and after == cursor, "served past a transaction still open"
        finally:
            await transaction.commit()
    changes, _ = await drain(reporting, cursor, 10)
    assert [c["order_id"] for c in changes] == [str(early.order_id), str(late.order_id)]
