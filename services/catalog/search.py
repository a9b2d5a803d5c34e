"""Public catalogue search parameters and the opaque keyset cursor (pure, no I/O)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from uuid import UUID

from services.catalog.domain import collection_filters
from shared.contracts.catalog import CuratedCollection


class Sort(StrEnum):
    """Relevance needs text (otherwise newest id first); ties are always broken by id."""

    RELEVANCE = "relevance"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    TKDN = "tkdn"

    @property
    def descending(self) -> bool:
        return self is not Sort.PRICE_ASC


@dataclass(frozen=True)
class SearchQuery:
    text: str | None = None
    etalase_id: UUID | None = None
    category: str | None = None
    pdn: bool | None = None
    min_tkdn_bmp: float | None = None
    min_tkdn: float | None = None
    min_price: int | None = None
    max_price: int | None = None
    umkm_koperasi: bool | None = None
    local_vendor: bool | None = None
    region: str | None = None
    in_stock: bool | None = None
    sort: Sort = Sort.RELEVANCE
    limit: int = 20
    after: tuple[float | int, UUID] | None = None

    def fingerprint(self) -> str:
        """Identifies the query a cursor belongs to, so a cursor cannot be reused elsewhere."""
        fields = asdict(replace(self, limit=0, after=None))
        raw = json.dumps(fields, sort_keys=True, default=str).encode()
        return hashlib.blake2s(raw, digest_size=6).hexdigest()


def cursor_parts(query: SearchQuery, key: float | int, last_id: UUID) -> list[str]:
    """What a page's cursor holds (encoded by `shared.cursor`): the query's fingerprint, so it
    cannot be reused with other parameters, and the last row's sort key and id."""
    return [query.fingerprint(), repr(key), str(last_id)]


# Prices are bigint; a key outside it could only come from a forged cursor.
_MAX_KEY = 2**63 - 1


def _key(sort: Sort, text: str) -> float | int:
    key: float | int = int(text) if sort in (Sort.PRICE_ASC, Sort.PRICE_DESC) else float(text)
    if not math.isfinite(key) or abs(key) > _MAX_KEY:
        raise ValueError("key out of range")
    return key


def continue_after(query: SearchQuery, parts: list[str]) -> SearchQuery:
    """The query continued after the cursor's position; ValueError for a foreign or broken one."""
    fingerprint, key, last_id = parts
    if fingerprint != query.fingerprint():
        raise ValueError("the cursor belongs to a different query or sort")
    return replace(query, after=(_key(query.sort, key), UUID(last_id)))


def apply_collection(query: SearchQuery, collection: CuratedCollection) -> SearchQuery:
    """Narrow the query to a curated collection; the stricter of two minimums wins."""
    updates: dict[str, object] = {}
    for field, value in collection_filters(collection).items():
        current = getattr(query, field)
        if isinstance(value, bool) or current is None:
            updates[field] = value
        else:
            updates[field] = max(current, value)
    return replace(query, **updates)  # type: ignore[arg-type]
