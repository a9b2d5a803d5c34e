"""HTTP routes of reporting (public, read-only): KPIs and breakdowns as JSON and CSV, the
dashboard, OCDS open data and the order change feed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import StringConstraints

from services.reporting import domain, ocds, page, store
from services.reporting.charts import Bar, Lang, bar_chart, number, rupiah
from services.reporting.projection import Row
from shared.db import Connection
from shared.problems import Problem, field_error
from shared.types import SingleLine

router = APIRouter(tags=["kpis"])

FiscalYear = Annotated[
    int | None, Query(ge=2000, le=2100, description="fiscal year; the current one by default")
]
# An OPD id as the orders' events carry it; control characters are refused (and documented).
OpdId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$"
    ),
    SingleLine,
]
Opd = Annotated[OpdId | None, Query(description="an OPD id; the whole city when absent")]


@dataclass(frozen=True)
class Scope:
    """Which figures a request asks for: one fiscal year, of one OPD or of the whole city."""

    year: int
    opd: str | None


def _settings(request: Request) -> Any:
    return request.app.state.settings


def scope_of(request: Request, fiscal_year: int | None, opd: str | None) -> Scope:
    if fiscal_year is None:
        fiscal_year = datetime.now(ZoneInfo(_settings(request).timezone)).year
    return Scope(fiscal_year, opd)


def targets(settings: Any, year: int) -> dict[str, float | None]:
    return {
        "ekatalog_share_target": settings.ekatalog_share_target,
        "umk_koperasi_target": settings.umk_koperasi_target,
        "local_target": settings.local_target,
        "pdn_target": domain.target_in_force(settings.pdn_targets, year),
    }


async def kpis(conn: Connection, settings: Any, scope: Scope) -> dict[str, Any]:
    """The figures the dashboard's tiles show."""
    totals = await store.totals(conn, scope.year, scope.opd)
    counts = await store.counts(conn)
    return {
        "fiscal_year": scope.year,
        "opd": scope.opd,
        "shares": domain.share_figures(totals, targets(settings, scope.year)),
        "totals": totals,
        "counts": [
            {"id": key, "value": counts[key], "label": {"id": label[0], "en": label[1]}}
            for key, label in domain.COUNTS.items()
        ],
    }


Fetch = Callable[[Connection, Any, Scope], Awaitable[list[Row]]]


@dataclass(frozen=True)
class Breakdown:
    """One table of figures: its columns (in CSV order), how it is read, what it means."""

    columns: tuple[str, ...]
    fetch: Fetch
    definition: str


def _with_shares(rows: list[Row]) -> list[Row]:
    for row in rows:
        row["share_sp"] = domain.percent(row["spend_sp"], row["pagu"])
        row["share_completed"] = domain.percent(row["spend_completed"], row["pagu"])
    return rows


async def _shares(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    figures = (await kpis(conn, settings, scope))["shares"]
    return [{**f, "label": f["label"]["id"]} for f in figures]


async def _counts(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    counts = await store.counts(conn)
    return [{"count": key, "value": counts[key]} for key in domain.COUNTS]


async def _procurement_types(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    return _with_shares(await store.pagu_and_spend(conn, scope.year, scope.opd, "procurement_type"))


async def _opds(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    return _with_shares(await store.pagu_and_spend(conn, scope.year, scope.opd, "opd_id"))


async def _months(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    return await store.by_month(conn, scope.year, scope.opd, settings.timezone)


async def _storefronts(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    return await store.by_etalase(conn, scope.year, scope.opd)


async def _vendor_classes(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    return await store.by_vendor_class(conn, scope.year, scope.opd)


async def _content_classes(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    return await store.by_content(conn, scope.year, scope.opd)


async def _top_vendors(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    return await store.top_vendors(conn, scope.year, scope.opd, settings.top_vendors)


async def _funnel(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    return domain.funnel_stages(await store.orders_by_state(conn, scope.year, scope.opd))


async def _lead_times(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    row = await store.lead_times(conn, scope.year, scope.opd)
    p50, p90, p95 = row["pct"] or (None, None, None)
    return [
        {
            "orders": row["orders"],
            "p50_days": domain.days(p50),
            "p90_days": domain.days(p90),
            "p95_days": domain.days(p95),
            "mean_days": domain.days(row["mean"]),
            "max_days": domain.days(row["max"]),
        }
    ]


async def _missed_deadlines(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    return await store.missed_deadlines(conn, scope.year, scope.opd)


async def _priority_skipped(conn: Connection, settings: Any, scope: Scope) -> list[Row]:
    return await store.priority_skipped(conn, scope.year, scope.opd)


_SPEND = "spend_sp: totals of orders with an issued SP (see the e-Katalog share KPI)"
BREAKDOWNS: dict[str, Breakdown] = {
    "shares": Breakdown(
        ("id", "label", "value", "numerator", "denominator", "target", "meets_target"),
        _shares,
        "Every share KPI of the fiscal year with its parts and target.",
    ),
    "counts": Breakdown(
        ("count", "value"),
        _counts,
        "Open storefronts, products registered (any state) and listed, verified vendors by "
        "scale, koperasi and local: the projection's state now, not per fiscal year.",
    ),
    "procurement_types": Breakdown(
        ("procurement_type", "pagu", "spend_sp", "share_sp", "spend_completed", "share_completed"),
        _procurement_types,
        "RUP pagu and e-Katalog spend per procurement type (jenis pengadaan). " + _SPEND,
    ),
    "opds": Breakdown(
        ("opd_id", "pagu", "spend_sp", "share_sp", "spend_completed", "share_completed"),
        _opds,
        "RUP pagu and e-Katalog spend per OPD. " + _SPEND,
    ),
    "months": Breakdown(
        ("month", "spend_sp", "orders"),
        _months,
        "e-Katalog spend by the month the SP was signed, in the city's time zone. " + _SPEND,
    ),
    "storefronts": Breakdown(
        ("etalase_code", "etalase_name", "spend_sp", "orders"),
        _storefronts,
        "Line totals per storefront of the product ordered; empty code: the product's catalog "
        "events have not arrived yet. " + _SPEND,
    ),
    "vendor_classes": Breakdown(
        ("vendor_class", "spend_sp", "orders"),
        _vendor_classes,
        "Spend per vendor class at order time: koperasi, else the PP 7/2021 scale. " + _SPEND,
    ),
    "content_classes": Breakdown(
        ("content_class", "spend_sp", "lines"),
        _content_classes,
        "Line totals by verified domestic content, in the Perpres 46/2025 art. 66 order: "
        "tkdn_bmp_40, tkdn_25, tkdn_lower, pdn (no TKDN), none. " + _SPEND,
    ),
    "top_vendors": Breakdown(
        ("vendor_id", "vendor_name", "vendor_class", "spend_sp", "orders"),
        _top_vendors,
        "Vendors with the highest e-Katalog spend. " + _SPEND,
    ),
    "funnel": Breakdown(
        ("stage", "orders"),
        _funnel,
        "Orders of the fiscal year that ever reached each stage (rejected: by the platform "
        "before the SP or by the vendor).",
    ),
    "lead_times": Breakdown(
        ("orders", "p50_days", "p90_days", "p95_days", "mean_days", "max_days"),
        _lead_times,
        "Days from placing an order to the signed BAST (order received), over the orders that "
        "have one; continuous percentiles.",
    ),
    "missed_deadlines": Breakdown(
        ("deadline_kind", "orders", "value"),
        _missed_deadlines,
        "Orders that expired because the PPK (ppk_approval) or the vendor (vendor_answer) did "
        "not act within the working-day deadline.",
    ),
    "priority_skipped": Breakdown(
        (
            "order_id",
            "opd_id",
            "line_no",
            "product_name",
            "line_total",
            "priority_tier",
            "best_available_tier",
            "justification",
        ),
        _priority_skipped,
        "Lines of orders with an issued SP that chose a lower domestic-product tier than the "
        "best listed in their category, with the buyer's justification.",
    ),
}


@router.get("/kpis", summary="Every KPI tile of a fiscal year, city-wide or of one OPD")
async def get_kpis(request: Request, fiscal_year: FiscalYear = None, opd: Opd = None) -> Any:
    scope = scope_of(request, fiscal_year, opd)
    async with request.app.state.pool.acquire() as conn:
        return await kpis(conn, _settings(request), scope)


@router.get("/kpis/filters", summary="Fiscal years and OPDs the projection knows")
async def get_filters(request: Request, fiscal_year: FiscalYear = None) -> Any:
    scope = scope_of(request, fiscal_year, None)
    async with request.app.state.pool.acquire() as conn:
        return {
            "fiscal_years": await store.fiscal_years(conn),
            "opds": await store.opds(conn, scope.year),
        }


def _breakdown(name: str) -> Breakdown:
    breakdown = BREAKDOWNS.get(name)
    if breakdown is None:
        raise Problem(
            404, "Not Found", f"no breakdown {name!r}; known: {', '.join(sorted(BREAKDOWNS))}"
        )
    return breakdown


async def _read(request: Request, name: str, fiscal_year: int | None, opd: str | None) -> Any:
    breakdown = _breakdown(name)
    scope = scope_of(request, fiscal_year, opd)
    async with request.app.state.pool.acquire() as conn:
        rows = await breakdown.fetch(conn, _settings(request), scope)
    return breakdown, scope, rows


def _document(media_type: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a 200 answer that is not JSON."""
    return {200: {"content": {media_type: {"schema": {"type": "string"}}}}}


@router.get(
    "/kpis/{name}.csv",
    summary="One breakdown as CSV (spreadsheet-safe)",
    response_class=Response,
    responses=_document("text/csv"),
)
async def get_breakdown_csv(
    request: Request, name: str, fiscal_year: FiscalYear = None, opd: Opd = None
) -> Response:
    breakdown, scope, rows = await _read(request, name, fiscal_year, opd)
    filename = f"{name}-{scope.year}{'-' + scope.opd if scope.opd else ''}.csv"
    return Response(
        domain.to_csv(breakdown.columns, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{domain.safe_filename(filename)}"'},
    )


@router.get("/kpis/{name}", summary="One breakdown as JSON")
async def get_breakdown(
    request: Request, name: str, fiscal_year: FiscalYear = None, opd: Opd = None
) -> Any:
    breakdown, scope, rows = await _read(request, name, fiscal_year, opd)
    return {
        "name": name,
        "fiscal_year": scope.year,
        "opd": scope.opd,
        "definition": breakdown.definition,
        "columns": list(breakdown.columns),
        "rows": rows,
    }


# ------------------------------------------------------------------------------ dashboard

Language = Annotated[Literal["id", "en"], Query(description="label language")]


# chart -> (the breakdown column naming a bar, its value column, how its value is written):
# a count, a rupiah amount, a rupiah amount with its share of the pagu or of the chart's total.
CHART_BARS: dict[str, tuple[str, str, str]] = {
    "months": ("month", "spend_sp", "rupiah"),
    "opds": ("opd_id", "spend_sp", "of_pagu"),
    "procurement_types": ("procurement_type", "spend_sp", "of_pagu"),
    "vendor_classes": ("vendor_class", "spend_sp", "of_total"),
    "content_classes": ("content_class", "spend_sp", "of_total"),
    "funnel": ("stage", "orders", "count"),
}


async def chart_bars(
    conn: Connection, settings: Any, scope: Scope, name: str, lang: Lang
) -> list[Bar]:
    """The bars of one dashboard chart, read from the breakdown of the same name."""
    key, column, written = CHART_BARS[name]
    rows = await BREAKDOWNS[name].fetch(conn, settings, scope)
    total = sum(row[column] for row in rows)

    def text(row: Row) -> str:
        value = row[column]
        if written == "count":
            return number(value, lang)
        share = {"of_pagu": row.get("share_sp"), "of_total": domain.percent(value, total)}.get(
            written
        )
        suffix = "" if share is None else f" ({number(share, lang, 2)}%)"
        return rupiah(value, lang) + suffix

    return [Bar(str(row[key]), float(row[column]), text(row)) for row in rows]


@router.get("/dashboard", summary="The KPI dashboard page", response_class=HTMLResponse)
async def get_dashboard(request: Request, lang: Language = "id") -> HTMLResponse:
    return HTMLResponse(
        page.html(lang, _settings(request).dashboard_refresh_seconds),
        headers={"Content-Security-Policy": page.CONTENT_SECURITY_POLICY},
    )


@router.get("/dashboard/app.js", include_in_schema=False)
async def get_dashboard_script() -> Response:
    return Response(page.SCRIPT, media_type="text/javascript; charset=utf-8")


@router.get("/dashboard/style.css", include_in_schema=False)
async def get_dashboard_style() -> Response:
    return Response(page.STYLE, media_type="text/css; charset=utf-8")


@router.get(
    "/dashboard/charts/{name}.svg",
    summary="One dashboard chart as SVG",
    response_class=Response,
    responses=_document("image/svg+xml"),
)
async def get_chart(
    request: Request,
    name: str,
    fiscal_year: FiscalYear = None,
    opd: Opd = None,
    lang: Language = "id",
) -> Response:
    if name not in CHART_BARS:
        raise Problem(404, "Not Found", f"no chart {name!r}; known: {', '.join(page.CHARTS)}")
    scope = scope_of(request, fiscal_year, opd)
    async with request.app.state.pool.acquire() as conn:
        bars = await chart_bars(conn, _settings(request), scope, name, lang)
    return Response(bar_chart(name, bars, lang), media_type="image/svg+xml")


# ------------------------------------------------------------------------------ open data

Cursor = Annotated[
    str | None,
    Query(
        max_length=200,
        pattern=r"^[A-Za-z0-9_-]*$",
        description="`next_page.cursor` of the previous page; none: the start",
    ),
]
Limit = Annotated[int | None, Query(ge=1, le=1000, description="changes per page")]


def _published() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _changes(rows: list[Row]) -> list[Row]:
    return [{**row, "snapshot": json.loads(row["snapshot"])} for row in rows]


async def _ocds_package(request: Request, order_id: UUID, kind: str) -> Any:
    """The OCDS record package (`kind` = "records") or release package of one order."""
    settings = _settings(request)
    async with request.app.state.pool.acquire() as conn:
        changes = _changes(await store.order_changes(conn, order_id))
    if not changes:
        raise Problem(404, "Not Found", f"no order {order_id} in the open data")
    items = (
        [ocds.record(settings.ocid_prefix, changes)]
        if kind == "records"
        else ocds.releases(settings.ocid_prefix, changes)
    )
    return ocds.package(kind, str(request.url), _published(), settings.ocds_publisher, items)


@router.get("/ocds/records/{order_id}", summary="OCDS record package of one order", tags=["ocds"])
async def get_record(request: Request, order_id: UUID) -> Any:
    return await _ocds_package(request, order_id, "records")


@router.get("/ocds/releases/{order_id}", summary="OCDS release package of one order", tags=["ocds"])
async def get_releases(request: Request, order_id: UUID) -> Any:
    return await _ocds_package(request, order_id, "releases")


@router.get("/feed/orders", summary="Public change feed of orders, oldest first", tags=["ocds"])
async def get_feed(request: Request, cursor: Cursor = None, limit: Limit = None) -> Any:
    """Pages of order changes, each with its OCDS release. Follow `next_page` until `changes` is
    empty, then poll the same `next_page` later: no change is skipped or served twice."""
    settings = _settings(request)
    try:
        after = domain.decode_cursor(cursor) if cursor else (0, 0)
    except domain.BadCursor as exc:
        raise field_error("cursor", str(exc)) from None
    async with request.app.state.pool.acquire() as conn:
        rows = _changes(await store.feed_page(conn, after, limit or settings.feed_page_size))
        paid = _changes(await store.payments(conn, list({r["order_id"] for r in rows})))
    entries = []
    for row in rows:
        payments = [
            p["snapshot"]
            for p in paid
            if p["order_id"] == row["order_id"] and p["version"] <= row["version"]
        ]
        entries.append(
            {
                "ocid": ocds.ocid(settings.ocid_prefix, str(row["order_id"])),
                "order_id": str(row["order_id"]),
                "version": row["version"],
                "event_type": row["event_type"],
                "occurred_at": row["snapshot"]["occurred_at"],
                "release": ocds.release(
                    settings.ocid_prefix, row["event_type"], row["snapshot"], payments
                ),
            }
        )
    position = (rows[-1]["txid"], rows[-1]["seq"]) if rows else after
    next_cursor = domain.encode_cursor(position)
    return {
        "changes": entries,
        "next_page": {
            "cursor": next_cursor,
            "uri": str(request.url.include_query_params(cursor=next_cursor)),
        },
    }
