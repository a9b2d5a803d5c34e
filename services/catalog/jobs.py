"""Periodic work of the catalog: TKDN certificates that lapse, and the search re-index."""

from __future__ import annotations

from fastapi import FastAPI

from services.catalog import commands
from shared.service import BackgroundJob

# The re-index matters at start (after a change of the search-word rule); once a day is a
# safety net for products it skipped because a command held them locked.
REINDEX_INTERVAL_SECONDS = 24 * 3600


async def lapse_tkdn_claims(app: FastAPI) -> None:
    today = commands.local_today(app.state.settings.timezone)
    await commands.lapse_tkdn_claims(app.state.pool, app.state.outbox, today)


async def reindex_search(app: FastAPI) -> None:
    await commands.reindex_search(app.state.pool)


def background_jobs(claims_check_interval: float) -> list[BackgroundJob]:
    return [
        BackgroundJob("tkdn-expiry", claims_check_interval, lapse_tkdn_claims),
        BackgroundJob("search-reindex", REINDEX_INTERVAL_SECONDS, reindex_search),
    ]
