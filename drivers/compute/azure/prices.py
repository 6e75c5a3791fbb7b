"""Azure VM prices from the Retail Prices API (no authentication).

``GET <endpoint>?$filter=serviceName eq 'Virtual Machines' and priceType eq
'Consumption'`` answers ``{"Items": [...], "NextPageLink": url}``; every page
is followed. Kept: Linux consumption prices per hour, per VM size (its ARM
name, as the driver lists sizes) and region; Windows meters are left out.
Spot and Low Priority meters are kept as ``spot``. A page that cannot be
read raises, so the caller keeps its last good prices.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import requests

from drivers.compute.azure.driver import size_key
from drivers.errors import ProviderError
from drivers.pricing import FetchedPrice

PROVIDER = "azure"
DEFAULT_ENDPOINT = "https://prices.azure.com/api/retail/prices"
FILTER = "serviceName eq 'Virtual Machines' and priceType eq 'Consumption'"
MAX_PAGES = 10_000


def fetch_prices(
    endpoint: str = DEFAULT_ENDPOINT,
    *,
    timeout: float = 30.0,
    session: requests.Session | None = None,
) -> list[FetchedPrice]:
    """Every Linux VM price of the Retail Prices API, following ``NextPageLink``."""
    http = session or requests.Session()
    now = datetime.datetime.now(datetime.UTC)
    prices = []
    for item in _items(http, endpoint, timeout):
        price = _price(item, now)
        if price is not None:
            prices.append(price)
    return prices


def _items(http: requests.Session, endpoint: str, timeout: float) -> Iterator[dict[str, Any]]:
    url: str | None = endpoint
    params: dict[str, str] | None = {"$filter": FILTER}
    for _ in range(MAX_PAGES):
        if url is None:
            return
        try:
            response = http.get(url, params=params, timeout=timeout)
            response.raise_for_status()
            page = response.json()
            items = page["Items"]
            if not isinstance(items, list):
                raise TypeError("Items is not a list")
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            raise ProviderError(
                f"Azure retail prices: an unreadable page ({type(error).__name__})",
                transient=True,
                provider=PROVIDER,
            ) from None
        yield from items
        url, params = page.get("NextPageLink"), None  # the link carries the query
    raise ProviderError("Azure retail prices: too many pages", provider=PROVIDER)


def _price(item: dict[str, Any], now: datetime.datetime) -> FetchedPrice | None:
    """The item as a price, or None for what is not a Linux VM hour."""
    try:
        product = str(item.get("productName", ""))
        sku = str(item.get("skuName", ""))
        if "Windows" in product or item.get("unitOfMeasure") != "1 Hour":
            return None
        size, region = str(item["armSkuName"]), str(item["armRegionName"])
        price = float(item["retailPrice"])
    except (KeyError, TypeError, ValueError):
        return None  # a garbled item is skipped, not guessed
    if not size or not region or price <= 0:
        return None
    spot = "Spot" in sku or "Low Priority" in sku
    return FetchedPrice(
        provider=PROVIDER,
        region=region,
        size=size_key(size),
        price=price,
        currency=str(item.get("currencyCode") or "USD"),
        kind="spot" if spot else "on_demand",
        source="azure retail prices",
        fetched_at=now,
    )
