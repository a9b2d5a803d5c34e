"""Server-rendered SVG charts and the dashboard's labels in Indonesian and English. Pure.

Every text that reaches a chart is escaped here: OPD ids and storefront names come from other
services' events and the page inserts the SVG into its document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

Lang = Literal["id", "en"]
LANGS: tuple[Lang, ...] = ("id", "en")

LABELS: dict[str, tuple[str, str]] = {
    "title": ("Dasbor e-Katalog Lokal", "Local e-Katalog dashboard"),
    "fiscal_year": ("Tahun anggaran", "Fiscal year"),
    "opd": ("Perangkat daerah (OPD)", "Department (OPD)"),
    "all_opds": ("Seluruh kota", "Whole city"),
    "target": ("Target", "Target"),
    "met": ("Tercapai", "Met"),
    "not_met": ("Belum tercapai", "Not met"),
    "no_target": ("Tanpa target", "No target"),
    "no_data": ("Belum ada data", "No data yet"),
    "updated": ("Diperbarui", "Updated"),
    "language": ("English", "Bahasa Indonesia"),
    "months": ("Belanja per bulan (SP terbit)", "Spend by month (SP issued)"),
    "opds": ("Belanja per OPD", "Spend by OPD"),
    "procurement_types": ("Belanja per jenis pengadaan", "Spend by procurement type"),
    "vendor_classes": ("Komposisi kelas penyedia", "Vendor class mix"),
    "content_classes": ("Komposisi PDN/TKDN", "PDN/TKDN mix"),
    "funnel": ("Corong pesanan", "Order funnel"),
    "counts": ("Katalog dan penyedia", "Catalogue and vendors"),
    # categories shown on the charts
    "barang": ("Barang", "Goods"),
    "pekerjaan_konstruksi": ("Pekerjaan konstruksi", "Construction works"),
    "jasa_konsultansi": ("Jasa konsultansi", "Consultancy"),
    "jasa_lainnya": ("Jasa lainnya", "Other services"),
    "mikro": ("Mikro", "Micro"),
    "kecil": ("Kecil", "Small"),
    "menengah": ("Menengah", "Medium"),
    "besar": ("Besar", "Large"),
    "koperasi": ("Koperasi", "Cooperative"),
    "tkdn_bmp_40": ("TKDN+BMP >= 40%", "TKDN+BMP >= 40%"),
    "tkdn_25": ("TKDN >= 25%", "TKDN >= 25%"),
    "tkdn_lower": ("TKDN < 25%", "TKDN < 25%"),
    "pdn": ("PDN tanpa TKDN", "PDN without TKDN"),
    "none": ("Impor / belum terverifikasi", "Imported / unverified"),
    "placed": ("Dipesan", "Placed"),
    "approved": ("SP terbit", "SP issued"),
    "accepted": ("Diterima penyedia", "Accepted by vendor"),
    "received": ("BAST", "BAST signed"),
    "paid": ("Dibayar", "Paid"),
    "expired": ("Kedaluwarsa", "Expired"),
    "rejected": ("Ditolak", "Rejected"),
    "cancelled": ("Dibatalkan", "Cancelled"),
}


def label(key: str, lang: Lang) -> str:
    """The label of `key` in `lang`; a key without one (an OPD id, a month) is shown as is."""
    pair = LABELS.get(key)
    return key if pair is None else pair[LANGS.index(lang)]


def number(value: float, lang: Lang, decimals: int = 0) -> str:
    """A number with the language's separators: 1.234.567,5 (id) or 1,234,567.5 (en)."""
    text = f"{value:,.{decimals}f}"
    if lang == "id":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def rupiah(value: float, lang: Lang) -> str:
    return "Rp" + number(value, lang)


@dataclass(frozen=True)
class Bar:
    key: str
    value: float
    text: str


_ROW = 30
_LABEL_WIDTH = 150
_WIDTH = 560


def bar_chart(name: str, bars: Sequence[Bar], lang: Lang) -> str:
    """A horizontal bar chart: one row per bar, its label, its bar and its value text."""
    title = escape(label(name, lang))
    if not bars:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} 60" role="img"'
            f' aria-label="{title}" data-chart="{escape(name)}">'
            f'<text x="0" y="20" class="chart-title">{title}</text>'
            f'<text x="0" y="48" class="chart-empty">{escape(label("no_data", lang))}</text></svg>'
        )
    height = 34 + _ROW * len(bars)
    largest = max((bar.value for bar in bars), default=0) or 1
    span = _WIDTH - _LABEL_WIDTH - 190  # room for the value text
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" role="img"'
        f' aria-label="{title}" data-chart="{escape(name)}">',
        f'<text x="0" y="20" class="chart-title">{title}</text>',
    ]
    for index, bar in enumerate(bars):
        y = 34 + index * _ROW
        width = max(bar.value, 0) / largest * span
        parts.append(
            f'<g class="bar" data-key="{escape(bar.key)}" data-value="{bar.value:.15g}">'
            f'<text x="0" y="{y + 18}" class="bar-label">{escape(label(bar.key, lang)[:22])}</text>'
            f'<rect x="{_LABEL_WIDTH}" y="{y + 4}" width="{width:.1f}" height="{_ROW - 10}"'
            f' rx="3"></rect>'
            f'<text x="{_LABEL_WIDTH + width + 6:.1f}" y="{y + 18}" class="bar-value">'
            f"{escape(bar.text)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
