"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against the service
served over HTTP. The figures shown equal the API's, the language switch relabels the page, a
new order moves the tiles without a reload, and screenshots are kept under test-artifacts/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.reporting.charts import LABELS, number
from tests.reporting.helpers import Reporting, serving
from tests.reporting.scenario import YEAR, City, M
from tests.support import Infra, eventually

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="Playwright for Python is not installed (pip install .[dev])"
)
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the browser test needs Debian's chromium at /usr/bin/chromium "
    "(apt-get install chromium)",
)


@pytest.fixture(scope="module")
async def served(infra: Infra) -> AsyncIterator[tuple[str, Reporting, City]]:
    """The reporting service over real HTTP, fed the seeded city."""
    async with serving(infra, dashboard_refresh_seconds=0.5) as (base, reporting):
        city = City()
        await reporting.deliver(city.all_events)
        yield base, reporting, city


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_dashboard(browser: Any, base: str, viewport: dict[str, int]) -> Any:
    page = await browser.new_page(viewport=viewport)
    await page.goto(f"{base}/dashboard?fiscal_year={YEAR}")
    await page.wait_for_selector("body[data-loaded]")
    return page


async def tiles(page: Any) -> dict[str, dict[str, str]]:
    return dict(
        await page.eval_on_selector_all(
            "[data-kpi]",
            """els => els.map(e => [e.dataset.kpi, {
                value: e.dataset.value,
                text: e.querySelector('.value').textContent,
                label: e.querySelector('h3').textContent}])""",
        )
    )


def shown_number(value: str) -> float | None:
    """A figure as the page holds it in `data-value` (JavaScript's String of a number)."""
    return None if value == "null" else float(value)


def percent_text(value: float | None, lang: str) -> str:
    return "\u2013" if value is None else number(value, lang, 2) + "%"  # type: ignore[arg-type]


async def test_figures_shown_equal_the_api(
    served: tuple[str, Reporting, City], browser: Any
) -> None:
    base, reporting, _ = served
    api = await reporting.get("/kpis", fiscal_year=YEAR)
    page = await open_dashboard(browser, base, LAPTOP)
    shown = await tiles(page)
    for share in api["shares"]:
        tile = shown[share["id"]]
        assert shown_number(tile["value"]) == share["value"], share["id"]
        assert tile["text"] == percent_text(share["value"], "id"), share["id"]
        assert tile["label"] == share["label"]["id"]
    for item in api["counts"]:
        assert shown_number(shown[item["id"]]["value"]) == item["value"]
        assert shown[item["id"]]["text"] == number(item["value"], "id")
    months = await reporting.get("/kpis/months", fiscal_year=YEAR)
    bars = await page.eval_on_selector_all(
        "[data-chart=months] .bar", "els => els.map(e => [e.dataset.key, e.dataset.value])"
    )
    assert bars == [[r["month"], str(r["spend_sp"])] for r in months["rows"]]
    assert len(bars) == 3
    funnel = await page.eval_on_selector_all(
        "[data-chart=funnel] .bar", "els => els.map(e => [e.dataset.key, Number(e.dataset.value)])"
    )
    api_funnel = await reporting.get("/kpis/funnel", fiscal_year=YEAR)
    assert funnel == [[r["stage"], r["orders"]] for r in api_funnel["rows"]]
    for chart in ("opds", "procurement_types", "vendor_classes", "content_classes"):
        assert await page.locator(f"[data-chart={chart}] .bar").count() > 0, chart
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "laptop-id.png"), full_page=True)
    await page.close()


async def test_language_switch_and_opd_filter(
    served: tuple[str, Reporting, City], browser: Any
) -> None:
    base, reporting, _ = served
    page = await open_dashboard(browser, base, LAPTOP)
    assert await page.text_content("h1") == LABELS["title"][0]
    await page.click("#language")
    await page.wait_for_selector("html[lang=en]")
    await eventually(lambda: _chart_title_is(page, "funnel", LABELS["funnel"][1]))
    assert await page.text_content("h1") == LABELS["title"][1]
    api = await reporting.get("/kpis", fiscal_year=YEAR)
    shown = await tiles(page)
    for share in api["shares"]:
        assert shown[share["id"]]["label"] == share["label"]["en"]
        assert shown[share["id"]]["text"] == percent_text(share["value"], "en")
    await page.select_option("#opd", "dinkes")
    dinkes = await reporting.get("/kpis", fiscal_year=YEAR, opd="dinkes")
    expected = next(s for s in dinkes["shares"] if s["id"] == "ekatalog_share")["value"]

    async def filtered() -> bool:
        return shown_number((await tiles(page))["ekatalog_share"]["value"]) == expected

    await eventually(filtered)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "laptop-en-dinkes.png"), full_page=True)
    await page.close()


async def _chart_title_is(page: Any, chart: str, title: str) -> bool:
    return bool(await page.text_content(f"[data-chart={chart}] .chart-title") == title)


async def test_readable_on_a_phone_and_updated_live(
    served: tuple[str, Reporting, City], browser: Any
) -> None:
    base, reporting, city = served
    page = await open_dashboard(browser, base, PHONE)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the page scrolls sideways on a phone"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "phone-id.png"), full_page=True)
    # A new order with an issued SP moves the e-Katalog share without a reload.
    order = city.approved_order(200 * M, 8)
    await reporting.deliver(order.events)
    api = await reporting.get("/kpis", fiscal_year=YEAR)
    share = next(s for s in api["shares"] if s["id"] == "ekatalog_share")
    assert share["value"] == 40.0

    async def moved() -> bool:
        return shown_number((await tiles(page))["ekatalog_share"]["value"]) == 40.0

    await eventually(moved, timeout=10)
    await page.close()
