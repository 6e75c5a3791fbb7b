"""Placement across three accounts: policies, failover, dry runs, batches, quota, health.

cheap  -- eu-west-3 (FR, 1 zone),          prices x0.8
mid    -- eu-central-1 (DE, zones a and b), prices x1.0
pricey -- us-east-1, us-west-2 (US),        prices x1.5
"""

from collections import Counter

import pytest
from sqlalchemy import update

from services.common import quotas
from services.common.db.models import Account, utcnow
from services.common.db.session import session_scope
from tests.functional.harness import service_config, start_service, stop_service

EUROPE = {"countries": ["DE", "FR"]}


@pytest.fixture
def clouds(tmp_path):
    running = start_service(service_config(tmp_path))
    try:
        running.add_account("alpha", "cheap", regions=["eu-west-3"], price_factor=0.8)
        running.add_account("alpha", "mid", regions=["eu-central-1"])
        running.add_account("alpha", "pricey", regions=["us-east-1", "us-west-2"], price_factor=1.5)
        yield running
    finally:
        stop_service(running)


def account_names(clouds, nodes):
    names = {account_id: name for name, account_id in clouds.accounts.items()}
    return Counter(names[node["account_id"]] for node in nodes)


def create_batch(clouds, count, **spec):
    answer = clouds.call(
        "POST", "/v1/nodes", body={"name": "batch", "image": "ubuntu", "count": count, **spec}
    )
    assert answer.status == 202, answer.body
    assert len(answer.body["nodes"]) == count
    operation = clouds.wait_operation(answer.body["operation"]["id"])
    nodes = [clouds.node(node["id"]) for node in answer.body["nodes"]]
    return operation, nodes


def test_cheapest_picks_the_cheapest_matching_offer(clouds):
    node = clouds.create_node("a", min_ram_mb=4096)
    assert (node["account_id"], node["location_id"], node["size_id"]) == (
        clouds.accounts["cheap"],
        "eu-west-3a",
        "large",
    )
    assert node["price_per_hour"] == pytest.approx(0.0538 * 0.8)
    us = clouds.create_node("b", min_ram_mb=4096, countries=["US"])
    assert us["account_id"] == clouds.accounts["pricey"] and us["location_id"] == "us-east-1a"


def test_round_robin_rotates_across_accounts(clouds):
    operation, nodes = create_batch(clouds, 30, policy="round_robin")
    assert operation["status"] == "succeeded"
    assert account_names(clouds, nodes) == {"cheap": 10, "mid": 10, "pricey": 10}


def test_zone_aware_spreads_a_group_evenly(clouds):
    operation, nodes = create_batch(clouds, 6, policy="zone_aware", group="web", **EUROPE)
    assert operation["status"] == "succeeded"
    assert Counter(node["location_id"] for node in nodes) == {
        "eu-west-3a": 2,
        "eu-central-1a": 2,
        "eu-central-1b": 2,
    }


def test_strict_anti_affinity_fails_the_node_that_has_no_zone_left(clouds):
    operation, nodes = create_batch(
        clouds, 4, policy="zone_aware", group="db", anti_affinity="strict", **EUROPE
    )
    running = [node for node in nodes if node["state"] == "running"]
    failed = [node for node in nodes if node["state"] == "error"]
    assert len({node["location_id"] for node in running}) == 3 and len(failed) == 1
    assert "strict anti-affinity" in failed[0]["error"]
    assert "every eligible zone (eu-central-1a, eu-central-1b, eu-west-3a)" in failed[0]["error"]
    assert operation["status"] == "failed" and "strict anti-affinity" in operation["error"]


def test_a_capacity_error_fails_over_to_the_next_alternate(clouds):
    clouds.add_account(
        "alpha",
        "cheapest-but-full",
        regions=["eu-west-3"],
        price_factor=0.5,
        faults={"capacity_locations": ["eu-west-3a"]},
    )
    node = clouds.create_node("a", min_ram_mb=4096)
    assert node["account_id"] == clouds.accounts["cheap"]
    operation = clouds.operation(node["operation_id"])
    messages = [event["message"] for event in operation["events"]]
    assert messages[:3] == [
        "a: placed by cheapest",
        "a: placement dummy/eu-west-3a/large failed",
        "a: created at dummy/eu-west-3a/large",
    ]
    failure = operation["events"][1]["data"]
    assert failure["error_class"] == "CapacityError" and "insufficient capacity" in failure["error"]


def test_when_every_placement_fails_the_node_says_why_each_failed(clouds):
    for name in ("cheap", "mid", "pricey"):
        with session_scope(clouds.context.sessions) as session:
            session.execute(
                update(Account)
                .where(Account.id == clouds.accounts[name])
                .values(deleted_at=utcnow())
            )
    for name, region in (("full-1", "eu-west-3"), ("full-2", "eu-central-1")):
        clouds.add_account("alpha", name, regions=[region], faults={"capacity_locations": [region]})
    answer = clouds.call("POST", "/v1/nodes", body={"name": "x", "image": "ubuntu"})
    operation = clouds.wait_operation(answer.body["operation"]["id"])
    assert operation["status"] == "failed"
    assert operation["error"].count("insufficient capacity") == 3  # placement + 2 alternates
    assert "every placement failed" in operation["error"]


def test_dry_run_plans_without_creating(clouds):
    answer = clouds.call(
        "POST",
        "/v1/nodes",
        body={
            "name": "plan",
            "image": "ubuntu",
            "min_ram_mb": 4096,
            "exclude_countries": ["FR"],
            "dry_run": True,
        },
    )
    assert answer.status == 200
    body = answer.body
    assert body["placeable"] and body["policy"] == "cheapest"
    assert body["placement"]["location_id"] == "eu-central-1a"
    assert body["price_per_hour"] == pytest.approx(0.0552)
    assert [a["location_id"] for a in body["alternates"]] == [
        "eu-central-1b",
        "us-east-1a",
        "us-east-1b",
    ]
    assert clouds.call("GET", "/v1/nodes").body["nodes"] == []

    batch = clouds.call(
        "POST",
        "/v1/nodes",
        body={
            "name": "plan",
            "image": "ubuntu",
            "count": 3,
            "policy": "zone_aware",
            "group": "g",
            "dry_run": True,
            **EUROPE,
        },
    ).body
    assert sorted(p["zone"] for p in batch["placements"]) == [
        "eu-central-1a",
        "eu-central-1b",
        "eu-west-3a",
    ]
    assert batch["total_price_per_hour"] == pytest.approx(
        sum(p["price_per_hour"] for p in batch["placements"])
    )

    impossible = clouds.call(
        "POST",
        "/v1/nodes",
        body={"name": "plan", "image": "ubuntu", "min_ram_mb": 10**7, "dry_run": True},
    ).body
    assert impossible == {
        "dry_run": True,
        "placeable": False,
        "policy": "cheapest",
        "reason": "no offer matches the request (min_ram_mb=10000000, image=ubuntu)",
    }
    assert clouds.call("GET", "/v1/nodes").body["nodes"] == []


def test_project_quota_is_enforced(clouds):
    with session_scope(clouds.context.sessions) as session:
        quotas.set_limits(session, clouds.projects["alpha"], {"nodes": 2})
    clouds.create_node("one")
    answer = clouds.call("POST", "/v1/nodes", body={"name": "x", "image": "ubuntu", "count": 2})
    assert answer.status == 403 and answer.error["code"] == "quota_exceeded"
    clouds.create_node("two")
    assert clouds.call("POST", "/v1/nodes", body={"name": "x", "image": "ubuntu"}).status == 403


def test_an_account_that_keeps_failing_is_skipped_until_it_cools_down(clouds):
    clouds.add_account(
        "alpha",
        "broken",
        regions=["eu-west-3"],
        price_factor=0.1,
        faults={"transient_error_rate": 1.0, "operations": ["create_node"]},
    )
    clouds.context.config = clouds.context.config.replace(
        scheduler={"health_failures": 2, "health_cooldown": 3600.0}
    )
    for name in ("first", "second"):
        answer = clouds.call("POST", "/v1/nodes", body={"name": name, "image": "ubuntu"})
        operation = clouds.wait_operation(answer.body["operation"]["id"])
        assert operation["status"] == "failed" and "injected" in operation["error"]
    # The breaker is open: the next node skips the broken account.
    node = clouds.create_node("third")
    assert node["account_id"] == clouds.accounts["cheap"]
