"""Price fetchers against local servers answering the providers' documented
formats: exact prices, every page followed, and an unreadable page raised
(so the caller keeps its last good prices)."""

from __future__ import annotations

import datetime
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from drivers.compute.azure.prices import FILTER
from drivers.compute.azure.prices import fetch_prices as azure_prices
from drivers.compute.ec2.prices import fetch_prices as aws_prices
from drivers.compute.ec2.signing import Credentials, sign
from drivers.compute.gce.prices import fetch_prices as gce_prices
from drivers.errors import ProviderError
from tests.helpers import Reply


def azure_item(sku: str, region: str, price: float, **extra: object) -> dict[str, object]:
    """An item as the Retail Prices API documents it."""
    name = sku.removeprefix("Standard_").replace("_", " ")
    return {
        "currencyCode": "USD",
        "tierMinimumUnits": 0.0,
        "retailPrice": price,
        "unitPrice": price,
        "armRegionName": region,
        "location": region,
        "meterName": name,
        "productName": "Virtual Machines DSv3 Series",
        "skuName": name,
        "serviceName": "Virtual Machines",
        "serviceFamily": "Compute",
        "unitOfMeasure": "1 Hour",
        "type": "Consumption",
        "armSkuName": sku,
        **extra,
    }


def page(items: list[dict[str, object]], next_link: str | None) -> Reply:
    body = {
        "BillingCurrency": "USD",
        "Items": items,
        "NextPageLink": next_link,
        "Count": len(items),
    }
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def test_azure_linux_prices_are_read_across_pages_spot_apart(http_server):
    base = http_server.url
    http_server.script(
        page(
            [
                azure_item("Standard_D2s_v3", "eastus", 0.096),
                azure_item(
                    "Standard_D2s_v3",
                    "eastus",
                    0.188,
                    productName="Virtual Machines DSv3 Series Windows",
                ),
            ],
            f"{base}/api/retail/prices?$skip=100",
        ),
        page(
            [
                azure_item("Standard_D2s_v3", "eastus", 0.0192, skuName="D2s v3 Spot"),
                {"retailPrice": 0.5, "armRegionName": "eastus"},  # garbled: no size
                azure_item("Standard_B1s", "eastus", 0.0104, unitOfMeasure="1/Month"),
            ],
            f"{base}/api/retail/prices?$skip=200",
        ),
        page([azure_item("Standard_D2s_v3", "westeurope", 0.11)], None),
    )
    prices = azure_prices(f"{base}/api/retail/prices")
    assert [(p.size, p.region, p.price, p.kind) for p in prices] == [
        ("standardd2sv3", "eastus", 0.096, "on_demand"),
        ("standardd2sv3", "eastus", 0.0192, "spot"),
        ("standardd2sv3", "westeurope", 0.11, "on_demand"),
    ]
    assert {p.currency for p in prices} == {"USD"} and {p.provider for p in prices} == {"azure"}
    first, *others = http_server.requests
    assert parse_qs(urlsplit(first.path).query)["$filter"] == [FILTER]
    assert [urlsplit(r.path).query for r in others] == ["$skip=100", "$skip=200"]


@pytest.mark.parametrize("garbled", [b"<html>oops</html>", b'{"Items": 3}', b"{}"])
def test_an_unreadable_azure_page_raises_instead_of_returning_part(http_server, garbled):
    http_server.script(
        page([azure_item("Standard_D2s_v3", "eastus", 0.096)], f"{http_server.url}/next"),
        Reply(200, garbled),
    )
    with pytest.raises(ProviderError, match="unreadable page"):
        azure_prices(f"{http_server.url}/api/retail/prices")


def gce_sku(description: str, regions: list[str], units: int, nanos: int, **category: str) -> dict:
    """A SKU as the Cloud Billing Catalog API documents it."""
    unit = "GiBy.h" if "Ram" in description else "h"
    return {
        "name": f"services/6F81-5844-456A/skus/{abs(hash(description)) % 10**4:04d}-0000-0000",
        "description": description,
        "category": {
            "serviceDisplayName": "Compute Engine",
            "resourceFamily": "Compute",
            "resourceGroup": "N1Standard",
            "usageType": "OnDemand",
            **category,
        },
        "serviceRegions": regions,
        "pricingInfo": [
            {
                "pricingExpression": {
                    "usageUnit": unit,
                    "tieredRates": [
                        {
                            "startUsageAmount": 0,
                            "unitPrice": {
                                "currencyCode": "USD",
                                "units": str(units),
                                "nanos": nanos,
                            },
                        }
                    ],
                },
                "currencyConversionRate": 1,
            }
        ],
    }


def gce_page(skus: list[dict], token: str | None) -> Reply:
    body = {"skus": skus, **({"nextPageToken": token} if token else {})}
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def test_gce_machine_types_are_composed_from_the_catalogs_rates(http_server):
    """The worked example: n1-standard-2 in us-central1 is 2 vCPUs x $0.031611
    + 7.5 GB x $0.004237 = $0.0950; its preemptible price is composed alike."""
    http_server.script(
        gce_page(
            [
                gce_sku(
                    "N1 Predefined Instance Core running in Americas", ["us-central1"], 0, 31611000
                )
            ],
            "p2",
        ),
        gce_page(
            [
                gce_sku(
                    "N1 Predefined Instance Ram running in Americas", ["us-central1"], 0, 4237000
                ),
                gce_sku(
                    "Commitment v1: Cpu in Americas for 1 Year",
                    ["us-central1"],
                    0,
                    19915000,
                    usageType="Commit1Yr",
                ),
                {"description": "N1 Predefined Instance Core running in EMEA", "category": {}},
            ],
            "p3",
        ),
        gce_page(
            [
                gce_sku(
                    "Spot Preemptible N1 Predefined Instance Core running in Americas",
                    ["us-central1"],
                    0,
                    6655000,
                    usageType="Preemptible",
                ),
                gce_sku(
                    "Spot Preemptible N1 Predefined Instance Ram running in Americas",
                    ["us-central1"],
                    0,
                    892000,
                    usageType="Preemptible",
                ),
                gce_sku(
                    "Micro Instance with burstable CPU running in Americas",
                    ["us-central1", "us-east1"],
                    0,
                    7600000,
                ),
            ],
            None,
        ),
    )
    prices = gce_prices(http_server.url, api_key="test-key")
    found = {(p.size, p.region, p.kind): p.price for p in prices}
    assert found[("n1-standard-2", "us-central1", "on_demand")] == 0.095
    assert found[("n1-standard-2", "us-central1", "spot")] == round(
        2 * 0.006655 + 7.5 * 0.000892, 6
    )
    assert found[("f1-micro", "us-east1", "on_demand")] == 0.0076
    assert ("n1-standard-2", "europe-west1", "on_demand") not in found  # the garbled SKU
    assert not any(size.startswith("e2-") for size, _, _ in found)  # no E2 rates were given
    tokens = [parse_qs(urlsplit(r.path).query).get("pageToken") for r in http_server.requests]
    assert tokens == [None, ["p2"], ["p3"]]
    assert parse_qs(urlsplit(http_server.requests[0].path).query)["key"] == ["test-key"]


def test_an_unreadable_gce_page_raises_instead_of_returning_part(http_server):
    http_server.script(
        gce_page(
            [gce_sku("N1 Predefined Instance Core running in Americas", ["us-central1"], 0, 1)],
            "p2",
        ),
        Reply(500, b"backend error"),
    )
    with pytest.raises(ProviderError, match="unreadable page"):
        gce_prices(http_server.url)


def aws_document(instance_type: str, region: str, usd: str, unit: str = "Hrs") -> str:
    """A PriceList entry as GetProducts documents it (a JSON string)."""
    sku = f"SKU{abs(hash((instance_type, region))) % 10**6}"
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "sku": sku,
                "attributes": {
                    "instanceType": instance_type,
                    "regionCode": region,
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                    "preInstalledSw": "NA",
                    "capacitystatus": "Used",
                },
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": unit,
                                "pricePerUnit": {"USD": usd},
                                "description": f"${usd} per On Demand Linux {instance_type}",
                            }
                        },
                        "sku": sku,
                    }
                }
            },
            "version": "20250301000000",
        }
    )


def aws_page(documents: list[str], token: str | None) -> Reply:
    body = {
        "FormatVersion": "aws_v1",
        "PriceList": documents,
        **({"NextToken": token} if token else {}),
    }
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/x-amz-json-1.1"})


def test_aws_prices_are_read_across_pages_from_signed_requests(http_server):
    http_server.script(
        aws_page([aws_document("m5.large", "us-east-1", "0.0960000000")], "t2"),
        aws_page(
            [
                aws_document("m5.large", "eu-west-3", "0.1120000000"),
                aws_document("m5.large", "eu-west-3", "0.0000000000"),  # unknown: dropped
                json.dumps({"product": {}}),  # garbled: skipped
            ],
            "t3",
        ),
        aws_page([aws_document("t3.micro", "us-east-1", "0.0104000000")], None),
    )
    endpoint = f"{http_server.url}/"
    prices = aws_prices("AKIDEXAMPLE", "secret-key", endpoint=endpoint, instance_type="m5.large")
    assert [(p.size, p.region, p.price) for p in prices] == [
        ("m5.large", "us-east-1", 0.096),
        ("m5.large", "eu-west-3", 0.112),
        ("t3.micro", "us-east-1", 0.0104),
    ]
    bodies = [json.loads(r.body) for r in http_server.requests]
    assert [b.get("NextToken") for b in bodies] == [None, "t2", "t3"]
    assert {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "m5.large"} in bodies[0][
        "Filters"
    ]
    assert {f["Field"] for f in bodies[0]["Filters"]} >= {
        "operatingSystem",
        "tenancy",
        "capacitystatus",
    }
    first = http_server.requests[0]
    assert first.headers["X-Amz-Target"] == "AWSPriceListService.GetProducts"
    moment = datetime.datetime.strptime(first.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.UTC
    )
    signed = sign(
        "POST",
        endpoint,
        {
            "Content-Type": first.headers["Content-Type"],
            "X-Amz-Target": first.headers["X-Amz-Target"],
        },
        first.body,
        Credentials("AKIDEXAMPLE", "secret-key"),
        "us-east-1",
        "pricing",
        moment,
    )
    assert first.headers["Authorization"] == signed["Authorization"]  # a valid SigV4
    assert "secret-key" not in json.dumps(first.headers)


def test_an_unreadable_aws_page_raises_instead_of_returning_part(http_server):
    http_server.script(
        aws_page([aws_document("m5.large", "us-east-1", "0.096")], "t2"),
        Reply(200, b'{"PriceList": ["not json"]}'),
    )
    with pytest.raises(ProviderError, match="unreadable page"):
        aws_prices("AKIDEXAMPLE", "secret-key", endpoint=f"{http_server.url}/")
