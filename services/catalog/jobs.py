"""Periodic work of the catalog: TKDN certificates that lapse, the search re-index, and the
public views of products rendered by another version of the view."""

from __future__ import annotations

from fastapi import FastAPI

from services.catalog import commands
from shared.service import BackgroundJob

# The re-index matters at start (after a change of the search-word rule or of the public view);
# once a day is a safety net for products it skipped because a command held them locked.
REINDEX_INTERVAL_SECONDS = 24 * 3600


async def lapse_tkdn_claims(app: FastAPI) -> None:
    today = commands.local_today(app.state.settings.timezone)
    await commands.lapse_tkdn_claims(app.state.pool, app.state.outbox, today)


async def reindex(app: FastAPI) -> None:
    """Search words, then public views, made by an older rule: one after the other, since each
    skips the rows the other holds locked."""
    await commands.reindex_search(app.state.pool)
    await commands.render_public_views(app.state.pool)


def background_jobs(claims_check_interval: float) -> list[BackgroundJob]:
    return [
        BackgroundJob("tkdn-expiry", claims_check_interval, lapse_tkdn_claims),
        BackgroundJob("search-reindex", REINDEX_INTERVAL_SECONDS, reindex),
    ]
