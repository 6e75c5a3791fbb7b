"""EC2 on-demand Linux prices from the AWS Price List Query API.

``GetProducts`` (JSON protocol, SigV4 for the ``pricing`` service in
us-east-1) for ``AmazonEC2``, filtered on operatingSystem=Linux,
tenancy=Shared, preInstalledSw=NA and capacitystatus=Used (plus
instanceType or location when asked), followed through ``NextToken``.
Every ``PriceList`` entry is a JSON document of its own: its product's
instance type and region code, and its On-Demand USD price per hour. A page
that cannot be read raises, so the caller keeps its last good prices.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import requests

from drivers.compute.ec2.signing import Credentials, sign
from drivers.errors import AuthError, ProviderError
from drivers.pricing import FetchedPrice

PROVIDER = "ec2"
DEFAULT_ENDPOINT = "https://api.pricing.us-east-1.amazonaws.com/"
TARGET = "AWSPriceListService.GetProducts"
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_PAGES = 100_000
FILTERS = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
}


def fetch_prices(
    key: str,
    secret: str,
    *,
    endpoint: str = DEFAULT_ENDPOINT,
    instance_type: str | None = None,
    location: str | None = None,
    token: str | None = None,
    timeout: float = 60.0,
    session: requests.Session | None = None,
) -> list[FetchedPrice]:
    """On-Demand Linux prices per instance type and region."""
    http = session or requests.Session()
    credentials = Credentials(key, secret, token)
    filters = {**FILTERS}
    if instance_type:
        filters["instanceType"] = instance_type
    if location:
        filters["location"] = location
    now = datetime.datetime.now(datetime.UTC)
    prices = []
    for document in _documents(http, endpoint, credentials, filters, timeout):
        prices.extend(_prices(document, now))
    return prices


def _documents(
    http: requests.Session,
    endpoint: str,
    credentials: Credentials,
    filters: dict[str, str],
    timeout: float,
) -> Iterator[dict[str, Any]]:
    next_token: str | None = None
    for _ in range(MAX_PAGES):
        request: dict[str, Any] = {
            "ServiceCode": "AmazonEC2",
            "FormatVersion": "aws_v1",
            "MaxResults": 100,
            "Filters": [
                {"Type": "TERM_MATCH", "Field": field, "Value": value}
                for field, value in filters.items()
            ],
        }
        if next_token:
            request["NextToken"] = next_token
        body = json.dumps(request).encode()
        headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET}
        headers.update(sign("POST", endpoint, headers, body, credentials, "us-east-1", "pricing"))
        try:
            response = http.post(endpoint, data=body, headers=headers, timeout=timeout)
        except requests.RequestException as error:
            raise ProviderError(
                f"AWS price list unreachable ({type(error).__name__})",
                transient=True,
                provider=PROVIDER,
            ) from None
        if response.status_code in (400, 403) and "ignature" in response.text:
            raise AuthError("AWS price list refused the signature", provider=PROVIDER)
        try:
            response.raise_for_status()
            page = response.json()
            documents = [json.loads(text) for text in page["PriceList"]]
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            raise ProviderError(
                f"AWS price list: an unreadable page ({type(error).__name__})",
                transient=True,
                provider=PROVIDER,
            ) from None
        yield from documents
        next_token = page.get("NextToken")
        if not next_token:
            return
    raise ProviderError("AWS price list: too many pages", provider=PROVIDER)


def _prices(document: dict[str, Any], now: datetime.datetime) -> list[FetchedPrice]:
    """The document's hourly USD On-Demand prices (none for a garbled one)."""
    try:
        attributes = document["product"]["attributes"]
        size, region = str(attributes["instanceType"]), str(attributes["regionCode"])
        terms = document["terms"]["OnDemand"].values()
    except (KeyError, TypeError, AttributeError):
        return []
    found = []
    for term in terms:
        for dimension in (term.get("priceDimensions") or {}).values():
            try:
                price = float(dimension["pricePerUnit"]["USD"])
            except (KeyError, TypeError, ValueError):
                continue
            if dimension.get("unit") == "Hrs" and price > 0:
                found.append(
                    FetchedPrice(
                        provider=PROVIDER,
                        region=region,
                        size=size,
                        price=price,
                        currency="USD",
                        kind="on_demand",
                        source="aws price list",
                        fetched_at=now,
                    )
                )
    return found
