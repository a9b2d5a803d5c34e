"""Public catalogue search parameters and the opaque keyset cursor (pure, no I/O)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from uuid import UUID

from services.catalog.domain import RuleViolation, collection_filters
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


def encode_cursor(query: SearchQuery, key: float | int, last_id: UUID) -> str:
    raw = json.dumps([query.fingerprint(), key, str(last_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# Prices are bigint; a key outside it could only come from a forged cursor.
_MAX_KEY = 2**63 - 1


def _check_key(sort: Sort, key: object) -> None:
    integral = sort in (Sort.PRICE_ASC, Sort.PRICE_DESC)
    kinds = (int,) if integral else (int, float)
    if isinstance(key, bool) or not isinstance(key, kinds) or not math.isfinite(key):
        raise ValueError(f"bad key {key!r}")
    if abs(key) > _MAX_KEY:
        raise ValueError("key out of range")


def decode_cursor(query: SearchQuery, cursor: str) -> SearchQuery:
    """The query continued after the cursor's position; a foreign or broken cursor is refused."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        fingerprint, key, last_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        _check_key(query.sort, key)
        position = (key, UUID(str(last_id)))
    except (ValueError, TypeError):
        # The reason stays internal: it would only describe the decoder to whoever forged it.
        raise RuleViolation("cursor", "the cursor is not valid") from None
    if fingerprint != query.fingerprint():
        raise RuleViolation("cursor", "the cursor belongs to a different query or sort")
    return replace(query, after=position)


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
