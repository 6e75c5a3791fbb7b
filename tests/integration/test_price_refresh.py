"""Current prices through the service: ``overcast-manage pricing refresh``
against a local Retail Prices server re-ranks the offers of an Azure account
(its ARM API a replay), ``overcast offer list`` shows each price's source and
age, a dry run places on the new cheapest offer, and a refresh that meets a
garbled page keeps the last good prices and is counted."""

from __future__ import annotations

import dataclasses
import json
from contextlib import ExitStack
from typing import Any

import pytest
from click.testing import CliRunner

from services.cli.client import main
from services.worker import prices
from tests.functional.harness import (
    Service,
    cli_environment,
    service_config,
    start_service,
    stop_service,
)
from tests.helpers import Reply, ScriptedServer, wait_for
from tests.integration.azure_replay import azure_replay

pytestmark = pytest.mark.integration

CHEAP = 0.0005


def retail_item(size: str, region: str, price: float, **extra: Any) -> dict[str, Any]:
    """An item as the Retail Prices API documents it."""
    name = size.removeprefix("Standard_").replace("_", " ")
    return {
        "currencyCode": "USD",
        "retailPrice": price,
        "unitPrice": price,
        "armRegionName": region,
        "meterName": name,
        "productName": "Virtual Machines Series",
        "skuName": name,
        "serviceName": "Virtual Machines",
        "unitOfMeasure": "1 Hour",
        "type": "Consumption",
        "armSkuName": size,
        **extra,
    }


def retail_pages(base: str, items: list[dict[str, Any]], pages: int = 3) -> list[Reply]:
    """``items`` split over ``pages`` pages linked by NextPageLink."""
    share = -(-len(items) // pages)
    replies = []
    for number in range(pages):
        last = number == pages - 1
        body = {
            "BillingCurrency": "USD",
            "Items": items[number * share : (number + 1) * share],
            "NextPageLink": None if last else f"{base}/api/retail/prices?$skip={number + 1}",
        }
        replies.append(Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"}))
    return replies


def offers(service: Service, query: str = "") -> list[dict[str, Any]]:
    answer = service.call("GET", f"/v1/offers?limit=100{query}", key="member")
    assert answer.status == 200, answer.body
    return answer.body["offers"]  # type: ignore[no-any-return]


def cli(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_refresh_re_ranks_offers_shows_source_and_age_and_a_failed_one_keeps_prices(tmp_path):
    with ExitStack() as stack:
        _, credentials, options = stack.enter_context(azure_replay())
        price_api = stack.enter_context(ScriptedServer().running())
        config = service_config(tmp_path).replace(
            pricing={
                "cache_file": str(tmp_path / "pricing.json"),
                "refresh_interval": 0,
                "azure_endpoint": f"{price_api.url}/api/retail/prices",
            }
        )
        service = start_service(config)
        stack.callback(stop_service, service)
        service.add_account("alpha", "msft", "azure", credentials, **options)
        service.add_account("alpha", "demo", "dummy")

        before = offers(service, "&provider=azure")
        assert before and {o["price_source"] for o in before} <= {"bundled", None}
        # The new cheapest: the dearest size of the first location, at a price
        # below every bundled one; every other Azure offer gets dearer.
        target = max(before, key=lambda o: (o["price_per_hour"] or 0, o["size_id"]))
        items = [
            retail_item(
                o["size_id"],
                o["location_id"],
                CHEAP if o is target else round((o["price_per_hour"] or 0.1) * 3, 6),
            )
            for o in before
        ]
        items.append(retail_item(target["size_id"], target["location_id"], 0.0001, skuName="Spot"))
        price_api.script(*retail_pages(price_api.url, items))

        refreshed = service.manage("pricing", "refresh", "--provider", "azure")
        assert refreshed.exit_code == 0, refreshed.output
        # one spot price besides the on-demand ones
        assert f"azure: {len(before) + 1} prices ({len(before)} new, 0 gone" in refreshed.output
        assert len(price_api.requests) == 3  # every page followed

        env = stack.enter_context(cli_environment(service))
        listed = json.loads(cli(env, "--json", "offer", "list", "--limit", "50"))["offers"]
        first = listed[0]
        assert (first["size_id"], first["location_id"]) == (
            target["size_id"],
            target["location_id"],
        )
        assert first["price_per_hour"] == CHEAP and first["price_source"] == "fetched"
        assert first["spot_price_per_hour"] == 0.0001 and first["price_stale"] is False
        azure = [o for o in listed if o["provider"] == "azure"]
        assert [o["price_per_hour"] for o in azure] == sorted(o["price_per_hour"] for o in azure)
        assert {o["price_source"] for o in azure} == {"fetched"}
        dummy = [o for o in listed if o["provider"] == "dummy"]
        assert dummy and all(o["price_source"] == "bundled" and o["price_stale"] for o in dummy)
        table = cli(env, "offer", "list", "--limit", "50").splitlines()
        assert "PRICE_SOURCE" in table[0] and "PRICE_AGE" in table[0]
        assert "fetched" in table[1] and table[1].split()[-1].endswith("m")
        assert any(line.endswith("stale") for line in table if "bundled" in line)
        fresh = offers(service, "&skip_stale_prices=true")
        assert fresh and {o["provider"] for o in fresh} == {"azure"}

        images = service.call(
            "GET",
            f"/v1/images?account_id={target['account_id']}&location_id={target['location_id']}",
            key="member",
        ).body["images"]
        dry = service.call(
            "POST",
            "/v1/nodes",
            key="member",
            body={"name": "probe", "image": images[0]["name"], "dry_run": True},
        )
        assert dry.status == 200, dry.body
        placement = dry.body["placement"]
        assert (placement["size_id"], placement["price_per_hour"]) == (target["size_id"], CHEAP)
        assert placement["price_source"] == "fetched" and placement["price_as_of"]

        # A garbled second page: nothing changes, and the failure is counted.
        dearer = [{**item, "retailPrice": item["retailPrice"] * 2} for item in items]
        good, _, third = retail_pages(price_api.url, dearer)
        price_api.script(good, Reply(200, b"<html>maintenance</html>"), third)
        failed = service.manage("pricing", "refresh", "--provider", "azure")
        assert failed.exit_code == 1 and "azure: FAILED" in failed.output, failed.output
        assert offers(service)[0]["price_per_hour"] == CHEAP
        status = service.manage("pricing", "status")
        assert "1 failed (1 in a row)" in status.output and "unreadable page" in status.output
        assert "openstack  no price API: operator overrides only" in status.output

        # A good refresh again: the summary names the largest move.
        price_api.replies.clear()
        price_api.script(*retail_pages(price_api.url, dearer))
        again = service.manage("pricing", "refresh")  # every provider in use: azure
        assert again.exit_code == 0, again.output
        assert f"{len(before)} changed" in again.output and "(+100.0%)" in again.output
        assert offers(service)[0]["price_per_hour"] == CHEAP * 2

        # The workers' periodic refresh runs once per interval across processes.
        periodic = dataclasses.replace(
            service.context, config=config.replace(pricing={"refresh_interval": 3600})
        )
        price_api.script(*retail_pages(price_api.url, items))
        assert [r.ok for r in prices.refresh_due(periodic)] == [True]
        assert prices.refresh_due(periodic) == []
        wait_for(lambda: offers(service)[0]["price_per_hour"] == CHEAP, what="re-ranked")


def test_a_node_keeps_the_source_and_date_of_its_price(tmp_path):
    service = start_service(service_config(tmp_path))
    try:
        service.add_account("alpha", "demo", "dummy")
        node = service.create_node("priced")
        assert node["price_source"] == "bundled" and node["price_per_hour"] > 0
        assert node["price_as_of"].startswith("2025-")
    finally:
        stop_service(service)


def test_providers_without_a_price_api_are_refused_with_the_reason(tmp_path):
    service = start_service(service_config(tmp_path))
    try:
        refused = service.manage("pricing", "refresh", "--provider", "openstack")
        assert refused.exit_code == 2 and "operator overrides" in refused.output
        nothing = service.manage("pricing", "refresh")
        assert nothing.exit_code == 1 and "no account uses a provider" in nothing.output
    finally:
        stop_service(service)
