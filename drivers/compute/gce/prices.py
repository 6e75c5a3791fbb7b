"""Compute Engine machine-type prices from the Cloud Billing Catalog API.

``GET <endpoint>/v1/services/6F81-5844-456A/skus`` (Compute Engine's SKUs,
every page followed through ``nextPageToken``) gives per-vCPU and per-GB-of-
RAM hourly rates per machine family, usage type and region; a machine type
is billed as its vCPUs and GB at its family's rates, and that is how its
price is composed here (shared-core f1 and g1 have one instance rate).
Preemptible (spot) rates are kept apart. A page that cannot be read raises,
so the caller keeps its last good prices.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any

import requests

from drivers.errors import ProviderError
from drivers.pricing import FetchedPrice

PROVIDER = "gce"
DEFAULT_ENDPOINT = "https://cloudbilling.googleapis.com"
COMPUTE_SERVICE = "6F81-5844-456A"
MAX_PAGES = 10_000

#: Machine types priced from their family's rates: (vCPUs, GB of RAM).
MACHINE_TYPES: dict[str, tuple[int, float]] = {
    **{f"n1-standard-{n}": (n, 3.75 * n) for n in (1, 2, 4, 8, 16, 32, 64, 96)},
    **{f"n1-highmem-{n}": (n, 6.5 * n) for n in (2, 4, 8, 16, 32, 64, 96)},
    **{f"n1-highcpu-{n}": (n, 0.9 * n) for n in (2, 4, 8, 16, 32, 64, 96)},
    **{f"n2-standard-{n}": (n, 4.0 * n) for n in (2, 4, 8, 16, 32, 48, 64, 80)},
    **{f"n2-highmem-{n}": (n, 8.0 * n) for n in (2, 4, 8, 16, 32, 48, 64, 80)},
    **{f"n2d-standard-{n}": (n, 4.0 * n) for n in (2, 4, 8, 16, 32, 48, 64, 96)},
    **{f"e2-standard-{n}": (n, 4.0 * n) for n in (2, 4, 8, 16, 32)},
    **{f"e2-highmem-{n}": (n, 8.0 * n) for n in (2, 4, 8, 16)},
    **{f"e2-highcpu-{n}": (n, 1.0 * n) for n in (2, 4, 8, 16, 32)},
    **{f"c2-standard-{n}": (n, 4.0 * n) for n in (4, 8, 16, 30, 60)},
    "f1-micro": (1, 0.6),
    "g1-small": (1, 1.7),
}

#: SKU descriptions: "N1 Predefined Instance Core running in Americas",
#: "E2 Instance Ram running in Belgium", "Spot Preemptible N2 Instance Core ...".
RATE = re.compile(
    r"^(?:Spot )?(?:Preemptible )?(?P<family>N1|N2D|N2|E2|C2) (?:Predefined )?Instance "
    r"(?P<part>Core|Ram)\b"
)
SHARED = {"Micro Instance with burstable CPU": "f1-micro", "Small Instance with 1 VCPU": "g1-small"}

Rates = dict[tuple[str, str, str], dict[str, float]]  # (family, part, kind) -> region -> price


def fetch_prices(
    endpoint: str = DEFAULT_ENDPOINT,
    *,
    api_key: str | None = None,
    timeout: float = 30.0,
    session: requests.Session | None = None,
) -> list[FetchedPrice]:
    """Machine-type prices per region, composed from the catalog's rates."""
    http = session or requests.Session()
    rates: Rates = {}
    for sku in _skus(http, endpoint.rstrip("/"), api_key, timeout):
        _collect(sku, rates)
    return compose(rates, datetime.datetime.now(datetime.UTC))


def _skus(
    http: requests.Session, endpoint: str, api_key: str | None, timeout: float
) -> Iterator[dict[str, Any]]:
    url = f"{endpoint}/v1/services/{COMPUTE_SERVICE}/skus"
    token = ""
    for _ in range(MAX_PAGES):
        params = {"currencyCode": "USD", **({"key": api_key} if api_key else {})}
        if token:
            params["pageToken"] = token
        try:
            response = http.get(url, params=params, timeout=timeout)
            response.raise_for_status()
            page = response.json()
            skus = page["skus"]
            if not isinstance(skus, list):
                raise TypeError("skus is not a list")
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            raise ProviderError(
                f"GCE billing catalog: an unreadable page ({type(error).__name__})",
                transient=True,
                provider=PROVIDER,
            ) from None
        yield from skus
        token = page.get("nextPageToken") or ""
        if not token:
            return
    raise ProviderError("GCE billing catalog: too many pages", provider=PROVIDER)


def _hourly(sku: dict[str, Any]) -> float | None:
    """The SKU's first-tier USD price per hour (per GiB-hour for RAM)."""
    try:
        expression = sku["pricingInfo"][-1]["pricingExpression"]
        if expression["usageUnit"] not in ("h", "GiBy.h"):
            return None
        rate = expression["tieredRates"][-1]["unitPrice"]
        if rate.get("currencyCode", "USD") != "USD":
            return None
        return int(rate.get("units") or 0) + int(rate.get("nanos") or 0) / 1e9
    except (KeyError, IndexError, TypeError, ValueError):
        return None  # a garbled SKU is skipped, not guessed


def _collect(sku: dict[str, Any], rates: Rates) -> None:
    category = sku.get("category") or {}
    if category.get("resourceFamily") != "Compute":
        return
    usage = category.get("usageType")
    if usage not in ("OnDemand", "Preemptible"):
        return  # commitments are not hourly list prices
    kind = "spot" if usage == "Preemptible" else "on_demand"
    description = str(sku.get("description", ""))
    price = _hourly(sku)
    if price is None or price <= 0:
        return
    match = RATE.match(description)
    if match:
        key = (match["family"].lower(), match["part"].lower(), kind)
    else:
        shared = next((t for prefix, t in SHARED.items() if description.startswith(prefix)), None)
        if shared is None:
            return
        key = (shared, "instance", kind)
    for region in sku.get("serviceRegions") or ():
        rates.setdefault(key, {})[str(region)] = price


def compose(rates: Rates, now: datetime.datetime) -> list[FetchedPrice]:
    """Machine-type prices: vCPUs x the family's core rate + GB x its RAM rate."""
    prices: list[FetchedPrice] = []
    for size, (vcpus, ram_gb) in sorted(MACHINE_TYPES.items()):
        family = size.split("-")[0]
        for kind in ("on_demand", "spot"):
            if family in ("f1", "g1"):
                regional = dict(rates.get((size, "instance", kind), {}))
            else:
                core = rates.get((family, "core", kind), {})
                ram = rates.get((family, "ram", kind), {})
                regional = {
                    region: round(vcpus * core[region] + ram_gb * ram[region], 6)
                    for region in set(core) & set(ram)
                }
            prices.extend(
                FetchedPrice(
                    provider=PROVIDER,
                    region=region,
                    size=size,
                    price=price,
                    currency="USD",
                    kind=kind,
                    source="gce billing catalog",
                    fetched_at=now,
                )
                for region, price in sorted(regional.items())
            )
    return prices
