"""Open data: an OCDS 1.1 release per order change and a record per order. Pure.

An e-purchasing order is one contracting process: checkout opens it (tender), the Surat Pesanan
awards and contracts it (award, contract), delivery, BAST and payment implement it. Each release
carries the whole state after its change, as the order events do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

OCDS_VERSION = "1.1"
PARTY_SCALE_EXTENSION = (
    "https://raw.githubusercontent.com/open-contracting-extensions/ocds_partyScale_extension/"
    "master/extension.json"
)
CURRENCY = "IDR"

# PP 7/2021 classes -> the partyScale codelist.
PARTY_SCALE = {"mikro": "micro", "kecil": "small", "menengah": "medium", "besar": "large"}
PROCUREMENT_CATEGORY = {
    "barang": "goods",
    "pekerjaan_konstruksi": "works",
    "jasa_konsultansi": "services",
    "jasa_lainnya": "services",
}
_ENDED_BEFORE_SP = {"rejected", "cancelled", "expired"}
_CONTRACT_STATUS = {
    "awaiting_vendor": "pending",
    "accepted": "active",
    "shipped": "active",
    "delivery_disputed": "active",
    "received": "active",
    "paid": "active",
    "completed": "terminated",
    "rejected_by_vendor": "cancelled",
    "cancelled": "cancelled",
    "expired": "cancelled",
}
_IMPLEMENTATION_STEPS = {"shipped", "delivery_disputed", "received", "paid", "completed"}


def ocid(prefix: str, order_id: str) -> str:
    return f"{prefix}{order_id}"


def _amount(value: int) -> dict[str, Any]:
    return {"amount": value, "currency": CURRENCY}


def _step(event_type: str) -> str:
    return event_type.split(".")[2]


def tags(event_type: str, snapshot: Mapping[str, Any]) -> list[str]:
    """The release tags of one change, by how far the order had come."""
    step = _step(event_type)
    has_sp = snapshot.get("sp_number") is not None
    if step == "placed":
        return ["tender"]
    if step == "approved":
        return ["award", "contract"]
    if step in _IMPLEMENTATION_STEPS:
        return ["implementation"]
    if not has_sp:
        return ["tenderCancellation"] if step in _ENDED_BEFORE_SP else ["tenderUpdate"]
    if step in ("rejected_by_vendor", "cancelled", "expired"):
        return ["awardCancellation", "contractTermination"]
    return ["contractUpdate"]


def _tender_status(state: str, has_sp: bool) -> str:
    if has_sp:
        return "complete"
    return "cancelled" if state in _ENDED_BEFORE_SP else "active"


def release(
    prefix: str, event_type: str, snapshot: Mapping[str, Any], payments: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The OCDS release of one order change; `payments` are the order's payments so far."""
    order_id = snapshot["order_id"]
    vendor = snapshot["vendor"]
    state = snapshot["state"]
    has_sp = snapshot.get("sp_number") is not None
    buyer = {"id": snapshot["opd_id"], "name": snapshot["opd_id"]}
    supplier = {"id": vendor["vendor_id"], "name": vendor["legal_name"]}
    items = [
        {
            "id": str(number),
            "description": line["name"],
            "quantity": line["quantity"],
            "unit": {"name": line["unit"], "value": _amount(line["unit_price"])},
            "classification": {"scheme": "e-Katalog", "id": line["category_code"]},
        }
        for number, line in enumerate(snapshot["lines"], start=1)
    ]
    value = _amount(snapshot["total"])
    data: dict[str, Any] = {
        "ocid": ocid(prefix, order_id),
        "id": f"{ocid(prefix, order_id)}-{snapshot['version']}",
        "date": snapshot["occurred_at"],
        "tag": tags(event_type, snapshot),
        "initiationType": "tender",
        "language": "id",
        "parties": [
            {**buyer, "roles": ["buyer", "procuringEntity"]},
            {
                **supplier,
                "roles": ["supplier"],
                "details": {"scale": PARTY_SCALE.get(vendor["scale"], vendor["scale"])},
            },
        ],
        "buyer": buyer,
        "planning": {"budget": {"id": snapshot["rup_code"], "description": "RUP"}},
        "tender": {
            "id": order_id,
            "status": _tender_status(state, has_sp),
            "procurementMethod": "direct",
            "procurementMethodDetails": f"e-Purchasing ({snapshot['method']})",
            "mainProcurementCategory": PROCUREMENT_CATEGORY[snapshot["procurement_type"]],
            "procuringEntity": buyer,
            "value": value,
            "items": items,
        },
    }
    if has_sp:
        award_id = f"{order_id}-award"
        award_cancelled = state in ("rejected_by_vendor", "cancelled", "expired")
        data["awards"] = [
            {
                "id": award_id,
                "status": "cancelled" if award_cancelled else "active",
                "date": snapshot.get("sp_signed_at"),
                "value": value,
                "suppliers": [supplier],
                "items": items,
            }
        ]
        contract: dict[str, Any] = {
            "id": snapshot["sp_number"],
            "awardID": award_id,
            "title": f"Surat Pesanan {snapshot['sp_number']}",
            "status": _CONTRACT_STATUS.get(state, "pending"),
            "dateSigned": snapshot.get("sp_signed_at"),
            "value": value,
            "items": items,
        }
        if payments:
            contract["implementation"] = {
                "transactions": [
                    {
                        "id": p["payment_reference"],
                        "source": snapshot["rup_code"],
                        "date": p["occurred_at"],
                        "value": _amount(p["amount"]),
                        "payer": buyer,
                        "payee": supplier,
                    }
                    for p in payments
                ]
            }
        data["contracts"] = [contract]
    return data


def releases(prefix: str, changes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The releases of one order's changes (oldest first): each knows the payments before it."""
    payments: list[Mapping[str, Any]] = []
    result = []
    for change in changes:
        snapshot = change["snapshot"]
        if "payment_reference" in snapshot:
            payments.append(snapshot)
        result.append(release(prefix, change["event_type"], snapshot, list(payments)))
    return result


def record(prefix: str, changes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The record of one order: every release, and the latest state compiled from them."""
    all_releases = releases(prefix, changes)
    compiled = {**all_releases[-1], "tag": ["compiled"]}
    compiled["id"] = f"{compiled['ocid']}-compiled"
    return {"ocid": compiled["ocid"], "releases": all_releases, "compiledRelease": compiled}


def package(
    kind: str, uri: str, published: str, publisher: str, items: list[dict[str, Any]]
) -> dict[str, Any]:
    """A release package (`kind` = "releases") or a record package (`kind` = "records")."""
    return {
        "uri": uri,
        "version": OCDS_VERSION,
        "extensions": [PARTY_SCALE_EXTENSION],
        "publishedDate": published,
        "publisher": {"name": publisher},
        kind: items,
    }
