"""Quotas beyond the node count: vCPUs, RAM and price per hour of live nodes.

The node count is charged when a create is accepted; the size's vCPUs, RAM and
price when the scheduler places it. Both come back when the node is deleted or
fails before anything exists at a provider.
"""

from __future__ import annotations

import logging

from sqlalchemy import update

from services.common import quotas
from services.common.db.models import Lease, ProjectQuota, utcnow
from services.common.db.session import session_scope
from services.worker.service import reconcile_quotas
from tests.functional.harness import Service


def set_limits(service: Service, **limits: float | None) -> None:
    with session_scope(service.context.sessions) as session:
        quotas.set_limits(session, service.projects["alpha"], limits)


NODE_RESOURCES = ("nodes", "vcpus", "ram_mb", "price_per_hour")


def usage(service: Service) -> dict[str, object]:
    """What the project's nodes use."""
    quota = service.call("GET", "/v1/quota", key="member").body["quota"]
    return {name: quota[name]["used"] for name in NODE_RESOURCES}


def create(service: Service, name: str, **spec: object) -> dict[str, object]:
    answer = service.call(
        "POST", "/v1/nodes", key="member", body={"name": name, "image": "ubuntu", **spec}
    )
    assert answer.status == 202, answer.body
    return service.wait_operation(answer.body["operation"]["id"], key="member")


def test_vcpus_are_charged_at_placement_and_given_back_on_delete(service):
    set_limits(service, vcpus=3)
    first = create(service, "two-cpus", min_vcpus=2)
    assert first["status"] == "succeeded"
    node = service.node(first["node_id"])
    assert usage(service) == {"nodes": 1, "vcpus": 2, "ram_mb": 2048, "price_per_hour": 0.024}

    second = create(service, "two-more", min_vcpus=2)
    assert second["status"] == "failed"
    assert "quota leaves no room" in second["error"] and "vcpus 1" in second["error"]
    # It failed before reaching a provider: it holds nothing.
    assert usage(service)["nodes"] == 1

    deletion = service.call("DELETE", f"/v1/nodes/{node['id']}")
    service.wait_operation(deletion.body["operation"]["id"])
    assert usage(service) == {"nodes": 0, "vcpus": 0, "ram_mb": 0, "price_per_hour": 0.0}


def test_the_price_quota_sends_nodes_to_what_still_fits(service):
    set_limits(service, price_per_hour=0.02)
    assert create(service, "a", min_ram_mb=1024)["status"] == "succeeded"  # small, 0.012
    fits = create(service, "b")  # 0.008 left: tiny (0.006) fits
    assert fits["status"] == "succeeded"
    assert service.node(fits["node_id"])["size_id"] == "tiny"
    assert usage(service)["price_per_hour"] == 0.018
    full = create(service, "c")
    assert full["status"] == "failed" and "price_per_hour 0.002" in full["error"]
    dry = service.call(
        "POST", "/v1/nodes", key="member", body={"name": "d", "image": "ubuntu", "dry_run": True}
    ).body
    assert dry["placeable"] is False and "quota" in dry["reason"]


def test_quota_shows_limits_and_is_per_project(service):
    set_limits(service, nodes=5, ram_mb=4096)
    quota = service.call("GET", "/v1/quota", key="member").body["quota"]
    assert quota["nodes"]["limit"] == 5 and quota["ram_mb"]["limit"] == 4096
    assert quota["vcpus"]["limit"] is None
    beta = service.call("GET", "/v1/quota", key="beta").body["quota"]
    assert beta["project_id"] == service.projects["beta"] and beta["nodes"]["limit"] is None
    peek = f"/v1/quota?project_id={service.projects['beta']}"
    assert service.call("GET", peek, key="member").status == 403
    assert service.call("GET", peek, key="operator").status == 200


def test_an_operator_sets_limits_over_the_api(service):
    beta = service.projects["beta"]
    answer = service.call(
        "PATCH",
        "/v1/quota",
        key="operator",
        body={"project_id": beta, "nodes": 3, "price_per_hour": 0.5},
    )
    assert answer.status == 200, answer.body
    assert answer.body["quota"]["nodes"]["limit"] == 3
    assert answer.body["quota"]["price_per_hour"]["limit"] == 0.5
    cleared = service.call(
        "PATCH", "/v1/quota", key="operator", body={"project_id": beta, "nodes": None}
    ).body["quota"]
    assert cleared["nodes"]["limit"] is None and cleared["price_per_hour"]["limit"] == 0.5
    bad = service.call("PATCH", "/v1/quota", key="operator", body={"nodes": -1})
    assert bad.status == 400 and bad.error["field"] == "nodes"
    assert service.call("PATCH", "/v1/quota", body={"nodes": 1000}).status == 403


def test_manage_sets_each_quota_and_unlimited_clears_one(service):
    result = service.manage(
        "project", "set-quota", "alpha", "--max-nodes", "7", "--max-price-per-hour", "1.5"
    )
    assert result.exit_code == 0, result.output
    assert "nodes           used 0 of 7" in result.output
    result = service.manage("project", "set-quota", "alpha", "--max-vcpus", "8")
    assert "nodes           used 0 of 7" in result.output  # untouched
    result = service.manage("project", "set-quota", "alpha", "--max-nodes", "unlimited")
    assert "nodes           used 0 of unlimited" in result.output
    assert "price_per_hour  used 0.0 of 1.5" in result.output
    bad = service.manage("project", "set-quota", "alpha", "--max-vcpus", "-1")
    assert bad.exit_code != 0 and "must not be negative" in bad.output
    none = service.manage("project", "set-quota", "alpha")
    assert none.exit_code != 0 and "at least one" in none.output


def test_reconciliation_corrects_usage_that_drifted(service, caplog):
    service.create_node("one")
    service.create_node("two")
    with session_scope(service.context.sessions) as session:
        session.execute(
            update(ProjectQuota)
            .where(ProjectQuota.project_id == service.projects["alpha"])
            .values(used_nodes=9, used_vcpus=0)
        )
        # The worker ran it at start-up; let its lease run out.
        session.execute(
            update(Lease).where(Lease.name == "quota-reconcile").values(expires_at=utcnow())
        )
    with caplog.at_level(logging.WARNING, logger="services.common.quotas"):
        assert reconcile_quotas(service.context) == 1
    assert usage(service)["nodes"] == 2 and usage(service)["vcpus"] == 2
    assert "drifted" in caplog.text and "'nodes': (9, 2)" in caplog.text
    # Leased: a second run within the interval does nothing.
    assert reconcile_quotas(service.context) == 0
