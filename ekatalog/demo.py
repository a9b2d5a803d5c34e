"""`ekatalog demo`: a demo city (Kota Pekalongan, region 33.75) filled through the public APIs.

Everything goes through the services' HTTP APIs with tokens signed by the platform's secret, as
the city's users would act: vendors register and the catalogue manager verifies them, storefronts
open, vendors offer products whose claims the manager curates, OPDs register their RUP packages
and their PP, PPK and treasurer drive orders to every state. Identities, codes and names are
derived from the plan, so a second run finds what the first one made and adds nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import httpx

from shared.auth import Role, mint_token

FISCAL_YEAR = 2026
NAMESPACE = uuid.UUID("4f1c6a52-9d0e-4c3b-8a57-33750000d3e0")
PROCUREMENT_TYPES = ("barang", "pekerjaan_konstruksi", "jasa_konsultansi", "jasa_lainnya")
CONCURRENCY = 8
WAIT_SECONDS = 60.0
CITY_TIME = ZoneInfo("Asia/Jakarta")


class DemoError(RuntimeError):
    """The platform refused a step the demo needs."""


# ------------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class Opd:
    """A regional department (organisasi perangkat daerah) and its buyers."""

    code: str
    name: str
    address: str


OPDS = (
    Opd("DISDIK", "Dinas Pendidikan", "Jl. Mataram No. 1, Pekalongan"),
    Opd("DINKES", "Dinas Kesehatan", "Jl. Sriwijaya No. 44, Pekalongan"),
    Opd("DPUPR", "Dinas Pekerjaan Umum dan Penataan Ruang", "Jl. Majapahit No. 3, Pekalongan"),
    Opd("DINPERKIM", "Dinas Perumahan dan Kawasan Permukiman", "Jl. Kusuma Bangsa, Pekalongan"),
    Opd("DINDAGKOP", "Dinas Perdagangan, Koperasi dan UKM", "Jl. Hayam Wuruk, Pekalongan"),
    Opd("SETDA", "Sekretariat Daerah", "Jl. Mataram No. 1, Pekalongan"),
)

# code, name, [(category code, category name)], procurement types it serves
STOREFRONTS: tuple[tuple[str, str, tuple[tuple[str, str], ...], tuple[str, ...]], ...] = (
    (
        "MAMIN",
        "Makanan dan Minuman",
        (("NASI", "Nasi kotak dan katering"), ("SNACK", "Kudapan"), ("MINUM", "Minuman")),
        ("barang",),
    ),
    (
        "ATK",
        "Alat Tulis Kantor",
        (("KERTAS", "Kertas"), ("TULIS", "Alat tulis"), ("TINTA", "Tinta dan toner")),
        ("barang",),
    ),
    (
        "BATIK",
        "Batik dan Seragam",
        (("TULIS", "Batik tulis"), ("CAP", "Batik cap"), ("SERAGAM", "Seragam")),
        ("barang",),
    ),
    (
        "KONSTRUKSI",
        "Konstruksi dan Bahan Bangunan",
        (("SEMEN", "Semen"), ("BESI", "Besi beton"), ("PAVING", "Paving dan saluran")),
        ("pekerjaan_konstruksi",),
    ),
    (
        "JASA",
        "Jasa Lainnya dan Konsultansi",
        (("CETAK", "Percetakan"), ("BERSIH", "Kebersihan"), ("KONSUL", "Konsultansi")),
        ("jasa_lainnya", "jasa_konsultansi"),
    ),
)

# name, category, unit, price, pdn, tkdn, bmp, claims decided by the manager
Offer = tuple[str, str, str, int, bool, float | None, float | None, dict[str, str]]
VERIFIED = {"pdn": "verified", "tkdn": "verified", "bmp": "verified"}
OFFERS: dict[str, tuple[Offer, ...]] = {
    "MAMIN": (
        ("Nasi kotak ayam bakar", "NASI", "kotak", 35_000, True, None, None, {"pdn": "verified"}),
        ("Snack box tradisional", "SNACK", "kotak", 15_000, True, None, None, {}),
        ("Air mineral 600 ml", "MINUM", "karton", 48_000, True, 60.0, None, VERIFIED),
        ("Teh poci kemasan", "MINUM", "karton", 52_000, True, 45.0, 5.0, {"tkdn": "refused"}),
    ),
    "ATK": (
        ("Kertas HVS A4 70 gsm", "KERTAS", "rim", 52_000, True, 42.0, 3.0, VERIFIED),
        ("Pulpen gel hitam", "TULIS", "lusin", 36_000, True, 30.0, None, VERIFIED),
        ("Toner printer laser", "TINTA", "buah", 850_000, False, None, None, {}),
        ("Map ordner", "KERTAS", "buah", 28_000, True, None, None, {"pdn": "verified"}),
    ),
    "BATIK": (
        (
            "Kain batik tulis motif jlamprang",
            "TULIS",
            "lembar",
            750_000,
            True,
            45.5,
            10.0,
            VERIFIED,
        ),
        ("Kain batik cap motif buketan", "CAP", "lembar", 225_000, True, 40.0, 5.0, VERIFIED),
        ("Seragam batik guru", "SERAGAM", "stel", 185_000, True, 35.0, None, VERIFIED),
        ("Seragam PDH ASN", "SERAGAM", "stel", 210_000, True, None, None, {"pdn": "pending"}),
    ),
    "KONSTRUKSI": (
        ("Semen portland 50 kg", "SEMEN", "sak", 68_000, True, 85.0, 10.0, VERIFIED),
        ("Besi beton polos 10 mm", "BESI", "batang", 95_000, True, 55.0, None, VERIFIED),
        ("Paving block K-300", "PAVING", "m2", 120_000, True, 90.0, 5.0, VERIFIED),
        ("U-ditch beton 40x40", "PAVING", "buah", 450_000, True, 80.0, None, {"tkdn": "pending"}),
    ),
    "JASA": (
        ("Cetak spanduk flexi", "CETAK", "m2", 25_000, True, None, None, {"pdn": "verified"}),
        ("Jasa kebersihan gedung", "BERSIH", "bulan", 12_500_000, True, None, None, {}),
        ("Kajian teknis drainase", "KONSUL", "paket", 95_000_000, True, None, None, {}),
        ("Cetak buku rapor", "CETAK", "eksemplar", 18_000, True, 25.0, None, VERIFIED),
    ),
}


@dataclass(frozen=True)
class VendorPlan:
    """A vendor of the demo city (name, legal form, region, annual sales, storefront)."""

    name: str
    legal_form: str
    region: str
    annual_sales: int
    storefront: str
    pkp: bool

    @property
    def vendor_id(self) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, f"vendor/{self.name}")


VENDORS = (
    VendorPlan("Koperasi Batik Setono", "Koperasi", "33.75.02", 1_800_000_000, "BATIK", False),
    VendorPlan("CV Batik Pesisir Jlamprang", "CV", "33.75.01", 6_000_000_000, "BATIK", True),
    VendorPlan("UD Sumber Rejeki Katering", "UD", "33.75.03", 900_000_000, "MAMIN", False),
    VendorPlan("Koperasi Wanita Srikandi", "Koperasi", "33.75.04", 3_000_000_000, "MAMIN", False),
    VendorPlan("CV Kertas Mulia", "CV", "33.75.01", 20_000_000_000, "ATK", True),
    VendorPlan("PT Sarana Kantor Nusantara", "PT", "31.71", 120_000_000_000, "ATK", True),
    VendorPlan("PT Bangun Karya Pantura", "PT", "33.26", 40_000_000_000, "KONSTRUKSI", True),
    VendorPlan("CV Paving Mandiri", "CV", "33.75.02", 4_000_000_000, "KONSTRUKSI", True),
    VendorPlan("PT Baja Prima Indonesia", "PT", "32.73", 90_000_000_000, "KONSTRUKSI", True),
    VendorPlan("PT Bersih Sejahtera", "PT Perorangan", "33.75.03", 700_000_000, "JASA", False),
    VendorPlan("CV Cahaya Grafika", "CV", "33.75.04", 2_500_000_000, "JASA", True),
    VendorPlan("Aminah Snack", "perorangan", "33.75.01", 300_000_000, "MAMIN", False),
)

# The states the demo drives orders to, in proportion (completed ones dominate, as in a city
# half-way through its year). Orders finished or past their deadlines are dated over the year's
# past months; those waiting for the PPK or the vendor are placed now, or they would expire.
TARGETS = (
    ["completed"] * 7
    + ["received", "shipped", "delivery_disputed", "accepted", "accepted"]
    + ["awaiting_vendor", "awaiting_approval", "negotiating", "rejected_by_vendor"]
    + ["cancelled", "rejected"]
)
ORDERS_PER_OPD = 9
WAITING = frozenset({"awaiting_vendor", "awaiting_approval"})


@dataclass(frozen=True)
class OrderPlan:
    opd: Opd
    rup_code: str
    vendor: VendorPlan
    lines: tuple[tuple[str, int], ...]  # product name, quantity
    target: str
    negotiate: bool


@dataclass
class Plan:
    vendors: list[VendorPlan]
    orders: list[OrderPlan]
    pagu: dict[tuple[str, str], int]  # (OPD, procurement type) -> pagu

    @property
    def steps(self) -> int:
        return len(STOREFRONTS) + len(self.vendors) * 5 + len(self.pagu) + len(self.orders)


def rup_code(opd: Opd, procurement_type: str) -> str:
    short = "".join(word[0] for word in procurement_type.split("_")).upper()
    return f"RUP-{FISCAL_YEAR}-{opd.code}-{short}"


def offer_price(name: str) -> int:
    return next(o[3] for offers in OFFERS.values() for o in offers if o[0] == name)


def make_plan(scale: int) -> Plan:
    """The city at `scale` (1: 12 vendors, 48 products, 54 orders): the same every time."""
    rng = random.Random(3375)
    vendors = [v if copy == 0 else _copy(v, copy) for copy in range(scale) for v in VENDORS]
    by_type: dict[str, list[VendorPlan]] = {t: [] for t in PROCUREMENT_TYPES}
    for vendor in vendors:
        for procurement_type in _storefront(vendor.storefront)[3]:
            by_type[procurement_type].append(vendor)
    orders: list[OrderPlan] = []
    spend: dict[tuple[str, str], int] = {}
    for opd in OPDS:
        for n in range(ORDERS_PER_OPD * scale):
            procurement_type = rng.choices(PROCUREMENT_TYPES, weights=(6, 2, 1, 2))[0]
            vendor = rng.choice(by_type[procurement_type])
            stocked = OFFERS[vendor.storefront]
            target = TARGETS[len(orders) % len(TARGETS)]
            chosen = rng.sample(stocked, k=rng.randint(1, 2))
            lines = tuple(
                (o[0], max(1, min(rng.randint(5, 120), 40_000_000 // o[3]))) for o in chosen
            )
            if target == "rejected":  # more than the vendor has: the stock saga refuses it
                lines = ((min(stocked, key=lambda o: o[3])[0], STOCK + 1),)
            orders.append(
                OrderPlan(
                    opd,
                    rup_code(opd, procurement_type),
                    vendor,
                    lines,
                    target,
                    n % 3 == 1 or target == "negotiating",
                )
            )
            key = (opd.code, procurement_type)
            spend[key] = spend.get(key, 0) + sum(offer_price(p) * q for p, q in lines)
    pagu = {
        (opd.code, t): _round_up(spend.get((opd.code, t), 0) + 25_000_000)
        for opd in OPDS
        for t in PROCUREMENT_TYPES
    }
    return Plan(vendors, orders, pagu)


STOCK = 5_000


def _round_up(amount: int, step: int = 25_000_000) -> int:
    return -(-amount // step) * step


def _copy(vendor: VendorPlan, copy: int) -> VendorPlan:
    return VendorPlan(
        f"{vendor.name} {copy + 1}",
        vendor.legal_form,
        vendor.region,
        vendor.annual_sales,
        vendor.storefront,
        vendor.pkp,
    )


def _storefront(code: str) -> tuple[str, str, tuple[tuple[str, str], ...], tuple[str, ...]]:
    return next(s for s in STOREFRONTS if s[0] == code)


def _digits(seed: str, count: int) -> str:
    number = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return str(number)[-count:].rjust(count, "7")


def registration(vendor: VendorPlan) -> dict[str, Any]:
    """The vendor's registration form, with its identifiers derived from its name."""
    individual = vendor.legal_form in ("UD", "perorangan")
    npwp = "3375" + _digits(f"nik/{vendor.name}", 12) if individual else _digits(vendor.name, 15)
    documents = {
        "nib_certificate": "https://dokumen.pekalongankota.go.id/nib.pdf",
        "npwp_card": "https://dokumen.pekalongankota.go.id/npwp.pdf",
        "kswp_certificate": "https://dokumen.pekalongankota.go.id/kswp.pdf",
    }
    if vendor.legal_form == "PT Perorangan":
        documents["founding_statement"] = "https://dokumen.pekalongankota.go.id/pernyataan.pdf"
    elif not individual:
        documents["deed_of_establishment"] = "https://dokumen.pekalongankota.go.id/akta.pdf"
    return {
        "legal_name": vendor.name,
        "legal_form": vendor.legal_form,
        "nib": _digits(f"nib/{vendor.name}", 13),
        "npwp": npwp,
        "kbli": ["47711", "13134", "10792", "41012", "82190"],
        "address": f"Jl. Demo {_digits(vendor.name, 2)}, kode wilayah {vendor.region}",
        "region_code": vendor.region,
        "annual_sales": vendor.annual_sales,
        "capital": vendor.annual_sales // 4,
        "kswp_status": "valid",
        "kswp_valid_until": (date.today() + timedelta(days=365)).isoformat(),
        "is_pkp": vendor.pkp,
        "contact": {
            "name": "Admin " + vendor.name.split()[-1],
            "email": f"admin@{_digits(vendor.name, 6)}.example",
            "phone": "+62285" + _digits(f"tel/{vendor.name}", 6),
        },
        "documents": documents,
    }


def storefront_body(code: str) -> dict[str, Any]:
    _, name, categories, _ = _storefront(code)
    return {
        "code": f"DEMO-{code}",
        "name": name,
        "description": f"Etalase {name.lower()} Kota Pekalongan",
        "categories": [
            {
                "code": code,
                "name": name,
                "children": [{"code": f"{code}.{c}", "name": n} for c, n in categories],
            }
        ],
        "collections": [
            {"code": "tkdn40", "name": "TKDN + BMP >= 40%", "min_tkdn_bmp": 40, "pdn_only": True}
        ],
    }


def product_body(vendor: VendorPlan, offer: Offer, etalase_id: str) -> dict[str, Any]:
    name, category, unit, price, pdn, tkdn, bmp, _ = offer
    body: dict[str, Any] = {
        "etalase_id": etalase_id,
        "vendor_type": "producer",
        "category_code": f"{vendor.storefront}.{category}",
        "name": name,
        "description": f"{name} dari {vendor.name}",
        "kbki": "26290",
        "unit": unit,
        "price": price,
        "tax_percent": 11 if vendor.pkp else 0,
        "pdn": pdn,
        "stock": STOCK,
        "delivery_regions": ["33.75"],
        "brand": vendor.name.split()[-1],
    }
    if tkdn is not None:
        body |= {
            "tkdn": tkdn,
            "tkdn_certificate": f"TKDN-{_digits(vendor.name + name, 6)}",
            "tkdn_valid_until": f"{FISCAL_YEAR + 4}-12-31",
        }
        if bmp is not None:
            body["bmp"] = bmp
    return body


# ---------------------------------------------------------------------------------- running it


@dataclass
class Urls:
    vendors: str
    catalog: str
    orders: str
    reporting: str

    @classmethod
    def local(cls, host: str = "127.0.0.1", base_port: int = 8001) -> Urls:
        return cls(*(f"http://{host}:{base_port + i}" for i in range(4)))


@dataclass
class Progress:
    """A one-line progress bar on a terminal stream."""

    total: int
    stream: IO[str] = field(default_factory=lambda: sys.stderr)
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    def step(self, what: str) -> None:
        self.done += 1
        width = 30
        filled = width * min(self.done, self.total) // max(self.total, 1)
        elapsed = time.monotonic() - self.started
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"{elapsed:5.1f}s {what[:40]:<40}"
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


@dataclass
class Summary:
    created: dict[str, int] = field(default_factory=dict)
    existing: dict[str, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, created: bool) -> None:
        bucket = self.created if created else self.existing
        bucket[kind] = bucket.get(kind, 0) + 1


class OrdersClock:
    """The orders service's clock file (`ORDERS_CLOCK_FILE`; `ekatalog up` points it at
    `<data dir>/orders-clock`): the demo shifts it into a past month while it places and
    drives that month's orders, then removes it (real time again)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def shift_to(self, when: datetime) -> None:
        fresh = self.path.with_name(f"{self.path.name}.new")
        try:
            fresh.write_text(f"{(when - datetime.now(UTC)).total_seconds():+.0f}\n")
            os.replace(fresh, self.path)
        except OSError as exc:
            raise DemoError(f"cannot set the orders clock: {exc}") from None

    def real_time(self) -> None:
        self.path.unlink(missing_ok=True)


def past_months(today: date) -> list[int]:
    """The fiscal year's months before `today`'s, to date finished orders in."""
    if today.year > FISCAL_YEAR:
        return list(range(1, 13))
    return list(range(1, today.month)) if today.year == FISCAL_YEAR else []


def by_month(orders: list[OrderPlan], months: list[int]) -> dict[int | None, list[OrderPlan]]:
    """Orders by the month they are dated in (None: now): those not left waiting for the PPK or
    the vendor round-robin over `months` and this one, the waiting ones now."""
    slots: list[int | None] = [*months, None]
    batches: dict[int | None, list[OrderPlan]] = {slot: [] for slot in slots}
    dated = [o for o in orders if o.target not in WAITING]
    for n, order in enumerate(dated):
        batches[slots[n % len(slots)]].append(order)
    batches[None] += [o for o in orders if o.target in WAITING]
    return batches


class City:
    """Drives the platform's APIs to the plan."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        urls: Urls,
        secret: str,
        progress: Progress,
        clock: OrdersClock | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.undated: list[str] = []  # orders meant for a past month that the clock did not date
        self.urls = urls
        self.secret = secret
        self.progress = progress
        self.summary = Summary()
        self.limit = asyncio.Semaphore(CONCURRENCY)
        self.manager = self.token(Role.CATALOGUE_MANAGER, "ukpbj-pekalongan")
        self.auditor = self.token(Role.AUDITOR, "inspektorat-pekalongan")
        self.etalase: dict[str, str] = {}  # storefront code -> id
        self.products: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}

    def token(self, role: Role, subject: str, **claims: str) -> dict[str, str]:
        jwt = mint_token(self.secret, role=role, subject=subject, ttl_seconds=3600, **claims)
        return {"Authorization": f"Bearer {jwt}"}

    def buyer(self, opd: Opd, role: Role) -> dict[str, str]:
        return self.token(role, buyer_subject(opd, role), opd_id=opd.code)

    def seller(self, vendor: VendorPlan) -> dict[str, str]:
        vendor_id = str(vendor.vendor_id)
        return self.token(Role.VENDOR, f"penyedia-{vendor_id[:8]}", vendor_id=vendor_id)

    async def call(
        self, method: str, url: str, headers: dict[str, str], body: Any = None
    ) -> httpx.Response:
        async with self.limit:
            return await self.client.request(method, url, json=body, headers=headers)

    async def must(
        self, method: str, url: str, headers: dict[str, str], body: Any = None
    ) -> dict[str, Any]:
        response = await self.call(method, url, headers, body)
        if not response.is_success:
            raise DemoError(f"{method} {url}: {response.status_code} {response.text}")
        result: dict[str, Any] = response.json()
        return result

    async def until(
        self, retry: set[str], method: str, url: str, headers: dict[str, str], body: Any
    ) -> httpx.Response:
        """Repeat a request the platform refuses only because an event has not arrived yet."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            response = await self.call(method, url, headers, body)
            rule = _rule(response)
            if rule not in retry or time.monotonic() > deadline:
                return response
            await asyncio.sleep(0.2)

    # -- storefronts, vendors, products

    async def storefronts(self) -> None:
        existing = {
            e["code"]: e
            for e in (await self.call("GET", f"{self.urls.catalog}/etalase", self.manager)).json()
        }
        for code, *_ in STOREFRONTS:
            body = storefront_body(code)
            etalase = existing.get(body["code"])
            self.summary.count("storefronts", etalase is None)
            if etalase is None:
                etalase = await self.must(
                    "POST", f"{self.urls.catalog}/etalase", self.manager, body
                )
            if etalase["state"] != "open":
                url = f"{self.urls.catalog}/etalase/{etalase['id']}/open"
                etalase = await self.must("POST", url, self.manager)
            self.etalase[code] = etalase["id"]
            self.progress.step(f"etalase {etalase['name']}")

    async def vendor(self, vendor: VendorPlan) -> None:
        url = f"{self.urls.vendors}/vendors"
        response = await self.call("POST", url, self.seller(vendor), registration(vendor))
        if response.status_code == 409:
            found = await self.must("GET", f"{url}/{vendor.vendor_id}", self.manager)
        elif response.status_code == 201:
            found = response.json()
        else:
            raise DemoError(f"register {vendor.name}: {response.status_code} {response.text}")
        self.summary.count("vendors", response.status_code == 201)
        if found["state"] == "submitted":
            await self.must("POST", f"{url}/{vendor.vendor_id}/verify", self.manager)
        self.progress.step(f"penyedia {vendor.name}")
        await self.offers(vendor)

    async def offers(self, vendor: VendorPlan) -> None:
        page = await self.must(
            "GET",
            f"{self.urls.catalog}/products?vendor_id={vendor.vendor_id}&limit=200",
            self.manager,
        )
        existing = {p["name"]: p for p in page["items"]}
        for offer in OFFERS[vendor.storefront]:
            product = existing.get(offer[0])
            self.summary.count("products", product is None)
            if product is None:
                body = product_body(vendor, offer, self.etalase[vendor.storefront])
                url = f"{self.urls.catalog}/products"
                response = await self.until(
                    {"vendor_verified"}, "POST", url, self.seller(vendor), body
                )
                if response.status_code != 201:
                    raise DemoError(f"offer {offer[0]}: {response.status_code} {response.text}")
                product = response.json()
            if product["state"] == "submitted":
                url = f"{self.urls.catalog}/products/{product['id']}/approve"
                product = await self.must("POST", url, self.manager, {"claims": claims(offer)})
            self.products[(vendor.vendor_id, offer[0])] = product
            self.progress.step(f"produk {offer[0]}")

    # -- RUP packages and orders

    async def packages(self, plan: Plan) -> None:
        for opd in OPDS:
            for procurement_type in PROCUREMENT_TYPES:
                code = rup_code(opd, procurement_type)
                body = {
                    "rup_code": code,
                    "opd_id": opd.code,
                    "package_name": f"Belanja {procurement_type.replace('_', ' ')} {opd.name}",
                    "fiscal_year": FISCAL_YEAR,
                    "procurement_type": procurement_type,
                    "pagu": plan.pagu[(opd.code, procurement_type)],
                }
                await self.must("POST", f"{self.urls.orders}/rup", self.manager, body)
                self.progress.step(f"RUP {code}")

    async def orders(self, plan: Plan) -> None:
        placed: dict[str, int] = {}
        for order in plan.orders:
            placed.setdefault(order.rup_code, 0)
        for code in placed:
            placed[code] = await self.count_orders(code)
        pending: list[OrderPlan] = []
        for order in plan.orders:
            if placed[order.rup_code] > 0:
                placed[order.rup_code] -= 1
                self.summary.count("orders", False)
                self.progress.step(f"pesanan {order.rup_code}")
                continue
            pending.append(order)
        # One month at a time: the clock is the whole orders service's.
        months = past_months(datetime.now(CITY_TIME).date()) if self.clock else []
        batches = by_month(pending, months)
        try:
            for month in months:
                if batches[month]:
                    assert self.clock is not None
                    self.clock.shift_to(datetime(FISCAL_YEAR, month, 12, 9, tzinfo=CITY_TIME))
                    await asyncio.gather(*(self.order(o, month) for o in batches[month]))
        finally:
            if months:
                assert self.clock is not None
                self.clock.real_time()
        await asyncio.gather(*(self.order(o) for o in batches[None]))

    async def count_orders(self, rup_code: str) -> int:
        count, cursor = 0, ""
        while True:
            url = f"{self.urls.orders}/orders?rup_code={rup_code}&limit=100{cursor}"
            page = await self.must("GET", url, self.auditor)
            count += len(page["items"])
            if not page["next_cursor"]:
                return count
            cursor = f"&cursor={page['next_cursor']}"

    async def order(self, plan: OrderPlan, month: int | None = None) -> None:
        pp = self.buyer(plan.opd, Role.PP)
        ppk = self.buyer(plan.opd, Role.PPK)
        seller = self.seller(plan.vendor)
        lines = [
            {"product_id": self.products[(plan.vendor.vendor_id, name)]["id"], "quantity": q}
            for name, q in plan.lines
        ]
        body = {
            "rup_code": plan.rup_code,
            "vendor_id": str(plan.vendor.vendor_id),
            "method": "negotiation" if plan.negotiate else "direct",
            "ppk_id": buyer_subject(plan.opd, Role.PPK),
            "delivery_address": plan.opd.address,
            "lines": lines,
        }
        url = f"{self.urls.orders}/orders"
        # A PP may sign up to its limit; the PPK places the large (doomed) order.
        buyer = ppk if plan.target == "rejected" else pp
        waiting = {"vendor_unknown", "product_not_listed"}
        response = await self.until(waiting, "POST", url, buyer, body)
        if _rule(response) == "domestic_priority":
            for line in lines:
                line["justification"] = "Spesifikasi teknis hanya dipenuhi produk ini"
            response = await self.call("POST", url, buyer, body)
        if response.status_code != 201:
            raise DemoError(f"order {plan.rup_code}: {response.status_code} {response.text}")
        order = response.json()
        self.summary.count("orders", True)
        placed_at = datetime.fromisoformat(order["placed_at"]).astimezone(CITY_TIME)
        if month is not None and placed_at.month != month:
            self.undated.append(order["id"])
        order = await self.drive(order, plan, pp, ppk, seller)
        self.summary.states[order["state"]] = self.summary.states.get(order["state"], 0) + 1
        self.progress.step(f"pesanan {plan.rup_code} {order['state']}")

    async def drive(
        self,
        order: dict[str, Any],
        plan: OrderPlan,
        pp: dict[str, str],
        ppk: dict[str, str],
        seller: dict[str, str],
    ) -> dict[str, Any]:
        order = await self.settled(order["id"])
        if order["state"] == "rejected" or plan.target == "rejected":
            return order
        act = self.acts(order["id"])
        if plan.negotiate:
            prices = {
                line["product_id"]: line["listed_price"] * 95 // 100 for line in order["lines"]
            }
            order = await act("negotiation/proposals", pp, {"prices": prices})
            if plan.target == "negotiating":
                return order
            order = await act("negotiation/agree", seller)
        if plan.target == "awaiting_approval":
            return order
        if plan.target == "cancelled":
            return await act("cancel", pp, {"reason": "anggaran dialihkan ke kegiatan prioritas"})
        order = await act("approve", ppk)
        if plan.target == "awaiting_vendor":
            return order
        if plan.target == "rejected_by_vendor":
            return await act("reject", seller, {"reason": "stok bahan baku tidak mencukupi"})
        order = await act("accept", seller)
        if plan.target == "accepted":
            return order
        shipment = {"carrier": "JNE", "tracking_number": f"JNE{order['id'][:8].upper()}"}
        order = await act("ship", seller, shipment)
        if plan.target == "shipped":
            return order
        if plan.target == "delivery_disputed":
            return await act("dispute", ppk, {"reason": "sebagian barang tidak sesuai spesifikasi"})
        bast = f"BAST/{plan.opd.code}/{order['id'][:8].upper()}"
        order = await act("receive", ppk, {"bast_number": bast})
        if plan.target == "received":
            return order
        treasurer = self.buyer(plan.opd, Role.TREASURER)
        payment = {"payment_reference": f"SP2D-{order['id'][:8].upper()}", "amount": order["total"]}
        return await act("pay", treasurer, payment)

    def acts(self, order_id: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        async def act(step: str, headers: dict[str, str], body: Any = None) -> dict[str, Any]:
            return await self.must(
                "POST", f"{self.urls.orders}/orders/{order_id}/{step}", headers, body
            )

        return act

    async def settled(self, order_id: str) -> dict[str, Any]:
        """The order once the catalog answered its stock reservation."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            order = await self.must("GET", f"{self.urls.orders}/orders/{order_id}", self.auditor)
            if order["state"] != "placed":
                return order
            if time.monotonic() > deadline:
                raise DemoError(f"order {order_id}: no stock answer within {WAIT_SECONDS:.0f}s")
            await asyncio.sleep(0.2)


def claims(offer: Offer) -> dict[str, str]:
    """The manager's decisions on the claims the offer makes."""
    _, _, _, _, pdn, tkdn, bmp, decisions = offer
    made = {"pdn": pdn, "tkdn": tkdn is not None, "bmp": bmp is not None}
    return {claim: decision for claim, decision in decisions.items() if made[claim]}


def buyer_subject(opd: Opd, role: Role) -> str:
    prefix = {Role.PP: "pp", Role.PPK: "ppk", Role.TREASURER: "bendahara"}[role]
    return f"{prefix}-{opd.code.lower()}"


def _rule(response: httpx.Response) -> str | None:
    if response.is_success or "json" not in response.headers.get("content-type", ""):
        return None
    body = response.json()
    return body.get("rule") if isinstance(body, dict) else None


async def run(
    urls: Urls,
    secret: str,
    scale: int = 1,
    stream: IO[str] | None = None,
    clock: OrdersClock | None = None,
) -> Summary:
    """Fill the platform at `urls` with the demo city; returns what was created and found.
    With the orders service's `clock`, finished orders are dated over the fiscal year."""
    plan = make_plan(scale)
    progress = Progress(plan.steps, stream or sys.stderr)
    async with httpx.AsyncClient(timeout=30) as client:
        city = City(client, urls, secret, progress, clock)
        await city.storefronts()
        await asyncio.gather(*(city.vendor(v) for v in plan.vendors))
        await city.packages(plan)
        await city.orders(plan)
    progress.close()
    if city.undated and clock is not None:
        print(
            f"note: the orders service does not follow {clock.path}, so {len(city.undated)}"
            " orders meant for past months are dated today (`ekatalog up` sets"
            " ORDERS_CLOCK_FILE to it)",
            file=stream or sys.stderr,
        )
    return city.summary
