"""Each KPI against the hand-computed figures of the seeded city (tests/reporting/scenario.py),
delivered out of order: orders before their vendors, products and RUP packages, each order's
events newest first, and every order event twice."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.reporting.helpers import Reporting, every_figure, recomputed
from tests.reporting.scenario import (
    EXPECTED_COUNTS,
    EXPECTED_SHARES,
    EXPECTED_TOTALS,
    YEAR,
    City,
    M,
)
from tests.support import Infra


@pytest.fixture(scope="module")
async def city(reporting: Reporting) -> City:
    city = City()
    newest_first = [event for order in city.orders for event in reversed(order.events)]
    ids = [await reporting.publish(event) for event in newest_first]
    for event, event_id in zip(newest_first, ids, strict=True):
        await reporting.publish(event, event_id)  # a relay's re-publish keeps the event id
    ids += [await reporting.publish(event) for event in [*city.rups, *city.catalog, *city.vendors]]
    await reporting.processed(ids)
    return city


async def breakdown(reporting: Reporting, name: str, **params: Any) -> list[dict[str, Any]]:
    body = await reporting.get(f"/kpis/{name}", fiscal_year=YEAR, **params)
    assert body["definition"]
    return list(body["rows"])


async def test_totals_and_shares_against_their_targets(reporting: Reporting, city: City) -> None:
    body = await reporting.get("/kpis", fiscal_year=YEAR)
    assert body["totals"] == EXPECTED_TOTALS
    shares = {s["id"]: (s["value"], s["target"], s["meets_target"]) for s in body["shares"]}
    assert shares == EXPECTED_SHARES
    assert all(s["definition"] and s["label"]["id"] and s["label"]["en"] for s in body["shares"])


async def test_counts(reporting: Reporting, city: City) -> None:
    body = await reporting.get("/kpis", fiscal_year=YEAR)
    assert {c["id"]: c["value"] for c in body["counts"]} == EXPECTED_COUNTS


async def test_one_opd(reporting: Reporting, city: City) -> None:
    body = await reporting.get("/kpis", fiscal_year=YEAR, opd="dinkes")
    assert body["totals"]["pagu"] == 1500 * M
    assert body["totals"]["spend_sp"] == 400 * M
    share = next(s for s in body["shares"] if s["id"] == "ekatalog_share")
    assert (share["value"], share["meets_target"]) == (26.67, False)


async def test_other_fiscal_year_is_separate(reporting: Reporting, city: City) -> None:
    body = await reporting.get("/kpis", fiscal_year=YEAR - 1)
    assert body["totals"]["pagu"] == 999 * M
    assert body["totals"]["spend_sp"] == 0
    assert next(s for s in body["shares"] if s["id"] == "umk_koperasi_share")["value"] is None


async def test_share_per_procurement_type(reporting: Reporting, city: City) -> None:
    rows = await breakdown(reporting, "procurement_types")
    assert [(r["procurement_type"], r["pagu"], r["spend_sp"], r["share_sp"]) for r in rows] == [
        ("barang", 1000 * M, 400 * M, 40.0),
        ("jasa_lainnya", 500 * M, 0, 0.0),
        ("pekerjaan_konstruksi", 500 * M, 200 * M, 40.0),
    ]
    assert [r["spend_completed"] for r in rows] == [300 * M, 0, 0]


async def test_spend_by_opd_month_storefront_and_vendor_class(
    reporting: Reporting, city: City
) -> None:
    opds = await breakdown(reporting, "opds")
    assert [(r["opd_id"], r["pagu"], r["spend_sp"]) for r in opds] == [
        ("dinkes", 1500 * M, 400 * M),
        ("dispupr", 500 * M, 200 * M),
    ]
    months = await breakdown(reporting, "months")
    assert [(r["month"], r["spend_sp"], r["orders"]) for r in months] == [
        ("2026-03", 300 * M, 1),
        ("2026-04", 200 * M, 1),
        ("2026-05", 100 * M, 1),
    ]
    storefronts = await breakdown(reporting, "storefronts")
    assert [(r["etalase_code"], r["spend_sp"], r["orders"]) for r in storefronts] == [
        ("ATK", 500 * M, 2),
        ("SERAGAM", 100 * M, 1),
    ]
    classes = await breakdown(reporting, "vendor_classes")
    assert [(r["vendor_class"], r["spend_sp"]) for r in classes] == [
        ("besar", 200 * M),
        ("koperasi", 100 * M),
        ("mikro", 300 * M),
    ]


async def test_domestic_content_mix_and_skipped_priority(reporting: Reporting, city: City) -> None:
    mix = await breakdown(reporting, "content_classes")
    assert {r["content_class"]: r["spend_sp"] for r in mix} == {
        "none": 100 * M,
        "pdn": 100 * M,
        "tkdn_25": 200 * M,
        "tkdn_bmp_40": 200 * M,
    }
    skipped = await breakdown(reporting, "priority_skipped")
    assert [
        (r["order_id"], r["line_no"], r["line_total"], r["justification"]) for r in skipped
    ] == [(str(city.o1.order_id), 2, 100 * M, "stok PDN habis")]


async def test_top_vendors(reporting: Reporting, city: City) -> None:
    rows = await breakdown(reporting, "top_vendors")
    assert [(r["vendor_id"], r["spend_sp"]) for r in rows] == [
        (str(city.v1.vendor_id), 300 * M),
        (str(city.v2.vendor_id), 200 * M),
        (str(city.v3.vendor_id), 100 * M),
    ]


async def test_funnel_lead_times_and_missed_deadlines(reporting: Reporting, city: City) -> None:
    funnel = await breakdown(reporting, "funnel")
    assert {r["stage"]: r["orders"] for r in funnel} == {
        "placed": 5,
        "approved": 4,
        "accepted": 3,
        "received": 2,
        "paid": 1,
        "expired": 1,
        "rejected": 0,
        "cancelled": 1,
    }
    (lead,) = await breakdown(reporting, "lead_times")
    # BAST after 10 days (O1) and 4 days (O5).
    assert lead == {
        "orders": 2,
        "p50_days": 7.0,
        "p90_days": 9.4,
        "p95_days": 9.7,
        "mean_days": 7.0,
        "max_days": 10.0,
    }
    missed = await breakdown(reporting, "missed_deadlines")
    assert missed == [{"deadline_kind": "vendor_answer", "orders": 1, "value": 50 * M}]


async def test_csv_export_matches_the_json(reporting: Reporting, city: City) -> None:
    response = await reporting.client.get(
        "/kpis/opds.csv", params={"fiscal_year": YEAR, "opd": "dinkes"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="opds-2026-dinkes.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows == [
        {
            "opd_id": "dinkes",
            "pagu": str(1500 * M),
            "spend_sp": str(400 * M),
            "share_sp": "26.67",
            "spend_completed": str(300 * M),
            "share_completed": "20.0",
        }
    ]


async def test_every_breakdown_has_a_csv(reporting: Reporting, city: City) -> None:
    names = [
        "shares",
        "counts",
        "procurement_types",
        "opds",
        "months",
        "storefronts",
        "vendor_classes",
        "content_classes",
        "top_vendors",
        "funnel",
        "lead_times",
        "missed_deadlines",
        "priority_skipped",
    ]
    for name in names:
        body = await reporting.get(f"/kpis/{name}", fiscal_year=YEAR)
        response = await reporting.client.get(f"/kpis/{name}.csv", params={"fiscal_year": YEAR})
        assert response.status_code == 200, name
        parsed = list(csv.reader(io.StringIO(response.text)))
        assert parsed[0] == body["columns"], name
        assert len(parsed) == len(body["rows"]) + 1, name


async def test_bad_filters_are_refused(reporting: Reporting) -> None:
    for params in ({"fiscal_year": "abc"}, {"fiscal_year": 99999}, {"opd": "a\x00b"}):
        response = await reporting.client.get("/kpis", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
    response = await reporting.client.get("/kpis/nonsense")
    assert response.status_code == 404
    assert "funnel" in response.json()["detail"]


async def test_live_projection_equals_a_recomputation_from_scratch(
    infra: Infra, reporting: Reporting, city: City
) -> None:
    settings = reporting.settings
    async with reporting.pool.acquire() as conn:
        live = await every_figure(conn, settings, YEAR)
    assert live == await recomputed(infra, settings, city.all_events, YEAR)
    assert live["kpis:dinkes"]["totals"]["spend_sp"] == 400 * M
