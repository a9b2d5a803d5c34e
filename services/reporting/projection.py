"""Which rows each consumed event becomes: pure, no I/O.

Every producer's event carries its aggregate's full snapshot and a per-aggregate `version`. The
projection keeps one row per aggregate with the newest version; `rows_of` turns a batch of events
into those rows, one list per table, with at most one row per key (the newest), so that a batch
is stored with one statement per table whatever order its events came in. A row is a tuple in
its table's column order, read straight from the event's attributes: the database driver encodes
it without an intermediate dict or JSON text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter, itemgetter
from typing import Any

from services.reporting.domain import content_class, is_spent, tkdn_weighted
from shared.contracts.catalog import EtalaseEvent, ProductEvent
from shared.contracts.orders import OrderEvent, RupEvent
from shared.contracts.vendors import VendorEvent
from shared.events import Event

Row = dict[str, Any]
"""Column -> value, as a query answers."""

Values = tuple[Any, ...]
"""One projection row: its table's columns in order, as Python values the driver encodes."""


class Keep(StrEnum):
    """Which of two rows with one key a table keeps."""

    NEWEST = "newest"  # the aggregate's latest snapshot
    EARLIEST = "earliest"  # when something first happened
    FIRST = "first"  # one row per event: a repeated delivery changes nothing


@dataclass(frozen=True, eq=False)
class Table:
    """A projection table: its key, its columns, and which row wins for one key. Each table is
    one object, compared and hashed by identity: rows are grouped by table per event."""

    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    keep: Keep = Keep.NEWEST
    # The row's key and version, and a row from a mapping of its columns.
    key_of: Callable[[Values], Any] = field(init=False, repr=False, compare=False)
    _version: int = field(init=False, repr=False, compare=False)
    _pick: Callable[[Mapping[str, Any]], Values] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "key_of", itemgetter(*(self.columns.index(c) for c in self.key)))
        set_(self, "_version", self.columns.index("version"))
        set_(self, "_pick", itemgetter(*self.columns))

    @property
    def append_only(self) -> bool:
        """Rows are only ever added: a rebuild adds what is missing to the live table itself."""
        return self.keep is Keep.FIRST

    def row(self, values: Mapping[str, Any]) -> Values:
        """The row holding `values` (one per column)."""
        return self._pick(values)

    def named(self, row: Values) -> Row:
        """A row's values by column name."""
        return dict(zip(self.columns, row, strict=True))

    def replaces(self, held: Values, row: Values) -> bool:
        """Whether `row` replaces `held` (same key) under this table's rule."""
        if self.keep is Keep.NEWEST:
            return bool(held[self._version] < row[self._version])
        if self.keep is Keep.EARLIEST:
            return bool(held[self._version] > row[self._version])
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


def _numeric(value: float | None) -> Decimal | None:
    """A claimed percentage as the decimal it was written as (40.1, not 40.0999...)."""
    return None if value is None else Decimal(repr(value))


def _order_rows(event: Event) -> list[tuple[Table, Values]]:
    assert isinstance(event, OrderEvent)
    order_id, version = event.order_id, event.version
    rows: list[tuple[Table, Values]] = []
    spend_pdn = spend_tkdn_bmp_40 = lines_priority_skipped = 0
    spend_tkdn_weighted = Decimal(0)
    for number, line in enumerate(event.lines, start=1):
        kind = content_class(line.pdn, line.tkdn, line.bmp, line.tkdn_verified)
        if kind != "none":
            spend_pdn += line.line_total
        if kind == "tkdn_bmp_40":
            spend_tkdn_bmp_40 += line.line_total
        spend_tkdn_weighted += tkdn_weighted(line.line_total, line.tkdn, line.tkdn_verified)
        lines_priority_skipped += not line.priority_compliant
        rows.append(
            (
                ORDER_LINE,
                (
                    order_id,
                    number,
                    version,
                    line.product_id,
                    line.name,
                    line.quantity,
                    line.unit_price,
                    line.line_total,
                    line.pdn,
                    _numeric(line.tkdn),
                    _numeric(line.bmp),
                    line.tkdn_verified,
                    line.priority_tier,
                    line.best_available_tier,
                    line.priority_compliant,
                    line.priority_justification,
                    kind,
                ),
            )
        )
    vendor = event.vendor
    order = ORDER.row(
        {
            "order_id": order_id,
            "version": version,
            "occurred_at": event.occurred_at,
            "state": event.state,
            "opd_id": event.opd_id,
            "rup_code": event.rup_code,
            "procurement_type": event.procurement_type,
            "fiscal_year": event.fiscal_year,
            "method": event.method,
            "vendor_id": vendor.vendor_id,
            "vendor_name": vendor.legal_name,
            "vendor_scale": vendor.scale,
            "vendor_is_umk": vendor.is_umk,
            "vendor_is_koperasi": vendor.is_koperasi,
            "vendor_is_local": vendor.is_local,
            "total": event.total,
            "sp_number": event.sp_number,
            "sp_signed_at": event.sp_signed_at,
            "deadline_kind": event.deadline_kind,
            "priority_compliant": event.priority_compliant,
            "spent": is_spent(event.state, event.sp_number),
            "spend_pdn": spend_pdn,
            "spend_tkdn_weighted": spend_tkdn_weighted,
            "spend_tkdn_bmp_40": spend_tkdn_bmp_40,
            "lines_priority_skipped": lines_priority_skipped,
        }
    )
    rows.append((ORDER, order))
    rows.append((ORDER_STEP, (order_id, order_step(event.type), version, event.occurred_at)))
    return rows


def order_change(event: OrderEvent) -> Values:
    """The change an order event records, with the event as JSON as this service read it."""
    return (event.order_id, event.version, event.type, event.occurred_at, event.model_dump_json())


def _snapshot(table: Table) -> Callable[[Event], list[tuple[Table, Values]]]:
    read = attrgetter(*table.columns)
    numeric = [i for i, column in enumerate(table.columns) if column in ("tkdn", "bmp")]

    def rows(event: Event) -> list[tuple[Table, Values]]:
        values = read(event)
        if numeric:
            values = tuple(_numeric(v) if i in numeric else v for i, v in enumerate(values))
        return [(table, values)]

    return rows


# Event base class -> the rows an event of that family becomes.
_ROWS: dict[type[Event], Callable[[Event], list[tuple[Table, Values]]]] = {
    VendorEvent: _snapshot(VENDOR),
    EtalaseEvent: _snapshot(ETALASE),
    ProductEvent: _snapshot(PRODUCT),
    RupEvent: _snapshot(RUP),
    OrderEvent: _order_rows,
}


def event_rows(event: Event, *, changes: bool = True) -> list[tuple[Table, Values]]:
    """The rows one event becomes; an event of a family this projection ignores gives none."""
    for family, rows in _ROWS.items():
        if isinstance(event, family):
            found = rows(event)
            if changes and isinstance(event, OrderEvent):
                found.append((ORDER_CHANGE, order_change(event)))
            return found
    return []


def rows_of(events: Iterable[Event], *, changes: bool = True) -> Mapping[Table, list[Values]]:
    """The rows a batch of events becomes, one per key, chosen by each table's `keep` rule.
    Without `changes`, no order changes: a rebuild writes only those the live table misses,
    and serialises only those."""
    newest: dict[Table, dict[Any, Values]] = {}
    for event in events:
        for table, row in event_rows(event, changes=changes):
            rows = newest.setdefault(table, {})
            key = table.key_of(row)
            held = rows.get(key)
            if held is None or table.replaces(held, row):
                rows[key] = row
    return {table: list(rows.values()) for table, rows in newest.items()}
