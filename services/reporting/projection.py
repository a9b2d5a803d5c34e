"""Which rows each consumed event becomes: pure, no I/O.

Every producer's event carries its aggregate's full snapshot and a per-aggregate `version`. The
projection keeps one row per aggregate with the newest version; `rows_of` turns a batch of events
into those rows, one list per table, with at most one row per key (the newest), so that a batch
is stored with one statement per table whatever order its events came in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from services.reporting.domain import content_class, is_spent, tkdn_weighted
from shared.contracts.catalog import EtalaseEvent, ProductEvent
from shared.contracts.orders import OrderEvent, RupEvent
from shared.contracts.vendors import VendorEvent
from shared.events import Event

Row = dict[str, Any]
"""Column -> value; values are JSON types, or UUIDs and datetimes, which are stored by their
string form."""


class Keep(StrEnum):
    """Which of two rows with one key a table keeps."""

    NEWEST = "newest"  # the aggregate's latest snapshot
    EARLIEST = "earliest"  # when something first happened
    FIRST = "first"  # one row per event: a repeated delivery changes nothing


@dataclass(frozen=True)
class Table:
    """A projection table: its key, its columns, and which row wins for one key."""

    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    keep: Keep = Keep.NEWEST

    @property
    def append_only(self) -> bool:
        """Rows are only ever added: a rebuild adds what is missing to the live table itself."""
        return self.keep is Keep.FIRST

    def replaces(self, held: Row, row: Row) -> bool:
        """Whether `row` replaces `held` (same key) under this table's rule."""
        if self.keep is Keep.NEWEST:
            return bool(held["version"] < row["version"])
        if self.keep is Keep.EARLIEST:
            return bool(held["version"] > row["version"])
        return False


VENDOR = Table(
    "vendor",
    ("vendor_id",),
    (
        "vendor_id",
        "version",
        "occurred_at",
        "state",
        "legal_name",
        "legal_form",
        "region_code",
        "scale",
        "is_umk",
        "is_koperasi",
        "is_local",
    ),
)
ETALASE = Table(
    "etalase",
    ("etalase_id",),
    ("etalase_id", "version", "occurred_at", "code", "name", "state"),
)
PRODUCT = Table(
    "product",
    ("product_id",),
    (
        "product_id",
        "version",
        "occurred_at",
        "etalase_id",
        "vendor_id",
        "state",
        "price",
        "pdn",
        "tkdn",
        "bmp",
        "tkdn_verified",
    ),
)

RUP = Table(
    "rup",
    ("rup_code",),
    (
        "rup_code",
        "version",
        "occurred_at",
        "opd_id",
        "package_name",
        "fiscal_year",
        "procurement_type",
        "pagu",
    ),
)
ORDER = Table(
    "orders",
    ("order_id",),
    (
        "order_id",
        "version",
        "occurred_at",
        "state",
        "opd_id",
        "rup_code",
        "procurement_type",
        "fiscal_year",
        "method",
        "vendor_id",
        "vendor_name",
        "vendor_scale",
        "vendor_is_umk",
        "vendor_is_koperasi",
        "vendor_is_local",
        "total",
        "sp_number",
        "sp_signed_at",
        "deadline_kind",
        "priority_compliant",
        "spent",
        "spend_pdn",
        "spend_tkdn_weighted",
        "spend_tkdn_bmp_40",
        "lines_priority_skipped",
    ),
)
ORDER_LINE = Table(
    "order_line",
    ("order_id", "line_no"),
    (
        "order_id",
        "line_no",
        "version",
        "product_id",
        "name",
        "quantity",
        "unit_price",
        "line_total",
        "pdn",
        "tkdn",
        "bmp",
        "tkdn_verified",
        "priority_tier",
        "best_available_tier",
        "priority_compliant",
        "priority_justification",
        "content_class",
    ),
)
ORDER_STEP = Table(
    "order_step",
    ("order_id", "step"),
    ("order_id", "step", "version", "occurred_at"),
    keep=Keep.EARLIEST,
)
ORDER_CHANGE = Table(
    "order_change",
    ("order_id", "version"),
    ("order_id", "version", "event_type", "occurred_at", "snapshot"),
    keep=Keep.FIRST,
)

TABLES: tuple[Table, ...] = (
    VENDOR,
    ETALASE,
    PRODUCT,
    RUP,
    ORDER,
    ORDER_LINE,
    ORDER_STEP,
    ORDER_CHANGE,
)


def order_step(event_type: str) -> str:
    """The step an order event type records: `ekatalog.order.approved.v1` -> `approved`."""
    return event_type.split(".")[2]


def _order_rows(event: Event) -> list[tuple[Table, Row]]:
    assert isinstance(event, OrderEvent)
    data = event.model_dump()
    vendor = data["vendor"]
    order = {c: data[c] for c in ORDER.columns if c in data}
    order.update(
        vendor_id=vendor["vendor_id"],
        vendor_name=vendor["legal_name"],
        vendor_scale=vendor["scale"],
        vendor_is_umk=vendor["is_umk"],
        vendor_is_koperasi=vendor["is_koperasi"],
        vendor_is_local=vendor["is_local"],
    )
    lines = []
    for number, line in enumerate(data["lines"], start=1):
        values = {c: line[c] for c in ORDER_LINE.columns if c in line}
        values.update(
            order_id=data["order_id"],
            line_no=number,
            version=data["version"],
            content_class=content_class(
                line["pdn"], line["tkdn"], line["bmp"], line["tkdn_verified"]
            ),
        )
        lines.append(values)
    order.update(
        spent=is_spent(data["state"], data["sp_number"]),
        spend_pdn=sum(line["line_total"] for line in lines if line["content_class"] != "none"),
        spend_tkdn_weighted=sum(
            (
                tkdn_weighted(line["line_total"], line["tkdn"], line["tkdn_verified"])
                for line in lines
            ),
            Decimal(0),
        ),
        spend_tkdn_bmp_40=sum(
            line["line_total"] for line in lines if line["content_class"] == "tkdn_bmp_40"
        ),
        lines_priority_skipped=sum(1 for line in lines if not line["priority_compliant"]),
    )
    rows: list[tuple[Table, Row]] = [(ORDER, order), *((ORDER_LINE, line) for line in lines)]
    ids = {"order_id": data["order_id"], "version": data["version"]}
    rows.append(
        (ORDER_STEP, {**ids, "step": order_step(event.type), "occurred_at": data["occurred_at"]})
    )
    change = {
        **ids,
        "event_type": event.type,
        "occurred_at": data["occurred_at"],
        "snapshot": event.model_dump_json(),
    }
    rows.append((ORDER_CHANGE, change))
    return rows


def _snapshot(table: Table) -> Callable[[Event], list[tuple[Table, Row]]]:
    def rows(event: Event) -> list[tuple[Table, Row]]:
        return [(table, event.model_dump(include=set(table.columns)))]

    return rows


# Event base class -> the rows an event of that family becomes.
_ROWS: dict[type[Event], Callable[[Event], list[tuple[Table, Row]]]] = {
    VendorEvent: _snapshot(VENDOR),
    EtalaseEvent: _snapshot(ETALASE),
    ProductEvent: _snapshot(PRODUCT),
    RupEvent: _snapshot(RUP),
    OrderEvent: _order_rows,
}


def event_rows(event: Event) -> list[tuple[Table, Row]]:
    """The rows one event becomes; an event of a family this projection ignores gives none."""
    for family, rows in _ROWS.items():
        if isinstance(event, family):
            return rows(event)
    return []


def _key(table: Table, row: Row) -> tuple[Any, ...]:
    return tuple(row[column] for column in table.key)


def rows_of(events: Iterable[Event]) -> Mapping[Table, list[Row]]:
    """The rows a batch of events becomes, one per key, chosen by each table's `keep` rule."""
    newest: dict[Table, dict[tuple[Any, ...], Row]] = {}
    for event in events:
        for table, row in event_rows(event):
            rows = newest.setdefault(table, {})
            key = _key(table, row)
            held = rows.get(key)
            if held is None or table.replaces(held, row):
                rows[key] = row
    return {table: list(rows.values()) for table, rows in newest.items()}
