"""Every service's API reference renders in a real browser with nothing loaded from outside."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from ekatalog.cli import SERVICES, _service_module, _settings_class
from shared.embedded import free_port
from tests.support import TEST_JWT_SECRET, eventually

# Debian's package (apt-get install chromium), never a browser downloaded by Playwright.
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
)


def service_app(name: str) -> FastAPI:
    # The docs need neither the database nor the broker: the server runs without the lifespan.
    settings = _settings_class(name)(
        database_url="postgresql://127.0.0.1:1/unused",
        kafka_bootstrap_servers="127.0.0.1:1",
        jwt_secret=TEST_JWT_SECRET,
    )
    app: FastAPI = _service_module(name).create_app(settings)
    return app


@pytest.fixture
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, FastAPI]]:
    app = service_app(request.param)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:

        async def up() -> bool:
            async with httpx.AsyncClient() as http:
                try:
                    return (await http.get(f"{base}/openapi.json")).status_code == 200
                except httpx.TransportError:
                    return False

        await eventually(up, timeout=30)
        yield base, app
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


@pytest.mark.parametrize("served", list(SERVICES), indirect=True)
async def test_swagger_ui_renders_every_operation_offline(served: tuple[str, FastAPI]) -> None:
    from playwright.async_api import async_playwright

    base, app = served
    operations = [
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    ]
    requested: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        try:
            page = await browser.new_page()
            page.on("request", lambda r: requested.append(r.url))
            await page.goto(f"{base}/docs")
            await page.wait_for_selector(".opblock", timeout=30_000)
            shown = await page.eval_on_selector_all(
                ".opblock",
                """blocks => blocks.map(b => [
                    b.querySelector('.opblock-summary-method').textContent.trim(),
                    b.querySelector('.opblock-summary-path').getAttribute('data-path'),
                ])""",
            )
            title = await page.text_content(".info .title")
        finally:
            await browser.close()
    # An operation with two tags is shown under each of them.
    assert sorted(set(map(tuple, shown))) == sorted(operations)
    assert title is not None and app.title in title
    outside = [url for url in requested if urlsplit(url).hostname != "127.0.0.1"]
    assert outside == [], f"requests left localhost: {outside}"
    assert f"{base}/docs/assets/swagger-ui-bundle.js" in requested
