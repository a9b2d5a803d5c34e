"""The city's KPIs: what each figure means, its target, and how a share is computed. Pure."""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

# After an SP, these states mean the order did not go through after all.
_UNDONE_AFTER_SP = frozenset({"rejected_by_vendor", "cancelled", "expired"})


def is_spent(state: str, sp_number: str | None) -> bool:
    """An order counts as e-Katalog spend once its Surat Pesanan was issued, unless the vendor
    then declined it or it was cancelled or expired before the vendor accepted."""
    return sp_number is not None and state not in _UNDONE_AFTER_SP


def content_class(pdn: bool, tkdn: float | None, bmp: float | None, tkdn_verified: bool) -> str:
    """A line's verified domestic content, in the order of Perpres 46/2025 art. 66: TKDN+BMP of
    at least 40% with TKDN of at least 25%, TKDN of at least 25%, a lower TKDN, a domestic product
    without TKDN, or none. Only verified TKDN counts; the order carries PDN as verified; a TKDN
    makes a product domestic."""
    verified_tkdn = tkdn if tkdn_verified and tkdn else 0.0
    if verified_tkdn >= 25 and verified_tkdn + (bmp or 0) >= 40:
        return "tkdn_bmp_40"
    if verified_tkdn >= 25:
        return "tkdn_25"
    if verified_tkdn > 0:
        return "tkdn_lower"
    return "pdn" if pdn else "none"


def tkdn_weighted(line_total: int, tkdn: float | None, tkdn_verified: bool) -> Decimal:
    """A line total weighted by its verified TKDN %, exactly (no binary rounding)."""
    if not tkdn_verified or not tkdn:
        return Decimal(0)
    return Decimal(line_total) * Decimal(str(tkdn)) / 100


_ACCEPTED = frozenset({"accepted", "shipped", "delivery_disputed", "received", "paid", "completed"})
_RECEIVED = frozenset({"received", "paid", "completed"})
_PAID = frozenset({"paid", "completed"})


def funnel_reached(state: str, has_sp: bool) -> list[str]:
    """The funnel stages an order in `state` has passed. An order only moves forward (a disputed
    delivery goes back to shipping, still accepted), so its state says how far it came."""
    checks = (
        ("placed", True),
        ("approved", has_sp),
        ("accepted", state in _ACCEPTED),
        ("received", state in _RECEIVED),
        ("paid", state in _PAID),
        ("expired", state == "expired"),
        ("rejected", state in ("rejected", "rejected_by_vendor")),
        ("cancelled", state == "cancelled"),
    )
    return [stage for stage, reached in checks if reached]


FUNNEL_STAGES = (
    "placed",
    "approved",
    "accepted",
    "received",
    "paid",
    "expired",
    "rejected",
    "cancelled",
)
"""The funnel's stages, in the order `funnel_reached` lists them."""


@dataclass(frozen=True)
class Share:
    """A share KPI: numerator over denominator (both totals from the projection's figures)."""

    id: str
    numerator: str
    denominator: str
    label_id: str
    label_en: str
    definition: str
    target_setting: str | None = None


SHARES: tuple[Share, ...] = (
    Share(
        "ekatalog_share",
        "spend_sp",
        "pagu",
        "Belanja e-Katalog terhadap pagu RUP",
        "e-Katalog spend against RUP pagu",
        "Sum of the totals of orders whose Surat Pesanan was issued and was not then declined, "
        "cancelled or expired, over the sum of the pagu of the RUP packages of the fiscal year.",
        "ekatalog_share_target",
    ),
    Share(
        "ekatalog_share_completed",
        "spend_completed",
        "pagu",
        "Belanja e-Katalog selesai terhadap pagu RUP",
        "Completed e-Katalog spend against RUP pagu",
        "Sum of the totals of completed orders (paid after the BAST) over the RUP pagu.",
        "ekatalog_share_target",
    ),
    Share(
        "umk_koperasi_share",
        "spend_umk_koperasi",
        "spend_sp",
        "Belanja ke usaha mikro, kecil dan koperasi",
        "Spend with micro and small businesses and cooperatives",
        "e-Katalog spend (SP issued) with vendors that were mikro, kecil or koperasi when the "
        "order was placed, over all e-Katalog spend (Perpres 12/2021 art. 65(3)).",
        "umk_koperasi_target",
    ),
    Share(
        "local_share",
        "spend_local",
        "spend_sp",
        "Belanja ke penyedia lokal",
        "Spend with local vendors",
        "e-Katalog spend with vendors registered inside the city when the order was placed.",
        "local_target",
    ),
    Share(
        "pdn_share",
        "spend_pdn",
        "spend_sp",
        "Belanja produk dalam negeri (PDN)",
        "Spend on domestic products (PDN)",
        "Line totals of products whose PDN claim or TKDN was verified at order time, over all "
        "e-Katalog spend; unverified claims do not count.",
        "pdn_target",
    ),
    Share(
        "tkdn_weighted_share",
        "spend_tkdn_weighted",
        "spend_sp",
        "Belanja tertimbang TKDN",
        "TKDN-weighted spend",
        "Each line total times its verified TKDN %, summed, over all e-Katalog spend.",
    ),
    Share(
        "tkdn_bmp_40_share",
        "spend_tkdn_bmp_40",
        "spend_sp",
        "Belanja produk TKDN+BMP >= 40%",
        "Spend on products with TKDN+BMP >= 40%",
        "Line totals of products with a verified TKDN of at least 25% and TKDN + BMP of at "
        "least 40% (Perpres 46/2025 art. 66 first priority), over all e-Katalog spend.",
    ),
)

COUNTS: Mapping[str, tuple[str, str]] = {
    "open_storefronts": ("Etalase dibuka", "Open storefronts"),
    "products_registered": ("Produk terdaftar", "Products registered"),
    "products_listed": ("Produk tayang", "Products listed"),
    "vendors_verified": ("Penyedia terverifikasi", "Verified vendors"),
    "vendors_mikro": ("Penyedia mikro", "Micro vendors"),
    "vendors_kecil": ("Penyedia kecil", "Small vendors"),
    "vendors_menengah": ("Penyedia menengah", "Medium vendors"),
    "vendors_besar": ("Penyedia besar", "Large vendors"),
    "vendors_koperasi": ("Koperasi", "Cooperatives"),
    "vendors_local": ("Penyedia lokal", "Local vendors"),
}


def percent(numerator: int, denominator: int) -> float | None:
    """A share in percent, rounded to two decimals; None when there is nothing to divide by."""
    if denominator == 0:
        return None
    return round(100 * numerator / denominator, 2)


def target_in_force(targets: Mapping[int, float], year: int) -> float | None:
    """The target set for `year` or, failing that, for the latest year before it: a policy
    target stays in force until a later one replaces it."""
    years = [y for y in targets if y <= year]
    return targets[max(years)] if years else None


def share_figures(
    totals: Mapping[str, int], targets: Mapping[str, float | None]
) -> list[dict[str, Any]]:
    """Every share KPI with its value, parts, target and whether the target is met."""
    figures = []
    for share in SHARES:
        value = percent(totals[share.numerator], totals[share.denominator])
        target = targets.get(share.target_setting) if share.target_setting else None
        figures.append(
            {
                "id": share.id,
                "value": value,
                "numerator": totals[share.numerator],
                "denominator": totals[share.denominator],
                "unit": "percent",
                "target": target,
                "meets_target": None if value is None or target is None else value >= target,
                "label": {"id": share.label_id, "en": share.label_en},
                "definition": share.definition,
            }
        )
    return figures


def funnel_stages(orders_by_state: Iterable[tuple[str, bool, int]]) -> list[dict[str, Any]]:
    """Orders that reached each funnel stage, from (state, SP issued, orders) counts."""
    reached = dict.fromkeys(FUNNEL_STAGES, 0)
    for state, has_sp, orders in orders_by_state:
        for stage in funnel_reached(state, has_sp):
            reached[stage] += orders
    return [{"stage": stage, "orders": count} for stage, count in reached.items()]


# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([spreadsheet_safe(row.get(c)) for c in columns])
    return out.getvalue()


def days(value: float | None) -> float | None:
    """A duration in days, rounded to two decimals."""
    return None if value is None else round(float(value), 2)


def safe_filename(name: str) -> str:
    """A download file name with only letters, digits, dot, dash and underscore."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)


class BadCursor(ValueError):
    """A feed cursor this service did not issue."""


_CURSOR_VERSION = "c1"
_MAX_POSITION = 2**63 - 1


def encode_cursor(position: tuple[int, int]) -> str:
    """An opaque feed position: the transaction and the sequence of the last change served."""
    text = f"{_CURSOR_VERSION}.{position[0]}.{position[1]}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode("ascii")
        version, txid, seq = text.split(".")
        position = (int(txid), int(seq))
    except (ValueError, binascii.Error):
        raise BadCursor("not a cursor this feed issued") from None
    if version != _CURSOR_VERSION or not all(0 <= p <= _MAX_POSITION for p in position):
        raise BadCursor("not a cursor this feed issued")
    if not all(part.isdigit() for part in (txid, seq)):
        raise BadCursor("not a cursor this feed issued")
    return position
