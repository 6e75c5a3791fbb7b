"""Load balancers through the HTTP API on a real HAProxy account: the same
projects, roles, quotas, idempotency and delete-wins rules as nodes and
containers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from drivers.loadbalancer.haproxy import HAProxyLoadBalancerDriver
from services.common import messaging
from services.common.db.models import BalancerMember
from services.common.db.session import session_scope
from services.worker.service import dispatch
from tests.functional.harness import Answer, Service
from tests.helpers import destroy_balancers, need_haproxy, wait_for
from tests.integration.deployment import free_port


@pytest.fixture
def lb(service: Service, tmp_path: Path) -> Iterator[Service]:
    need_haproxy()
    state_dir = str(tmp_path / "haproxy")
    service.add_balancer_account("alpha", "edge", state_dir=state_dir, country="fi")
    service.add_balancer_account("beta", "beta-edge", state_dir=state_dir, country="se")
    yield service
    destroy_balancers(state_dir)


def create(service: Service, name: str = "web", key: str = "member", **body: Any) -> Answer:
    return service.call(
        "POST", "/v1/balancers", key=key, body={"name": name, "port": free_port(), **body}
    )


def built(service: Service, name: str = "web", key: str = "member", **body: Any) -> dict:
    answer = create(service, name, key, **body)
    assert answer.status == 202, answer.body
    operation = service.wait_operation(answer.body["operation"]["id"], key)
    assert operation["status"] == "succeeded", operation
    return balancer(service, answer.body["balancer"]["id"], key)


def balancer(service: Service, balancer_id: str, key: str = "member") -> dict:
    answer = service.call("GET", f"/v1/balancers/{balancer_id}", key=key)
    assert answer.status == 200, answer.body
    return answer.body["balancer"]  # type: ignore[no-any-return]


def usage(service: Service) -> int:
    return int(service.call("GET", "/v1/quota").body["quota"]["balancers"]["used"])


def test_a_balancer_is_placed_built_listening_and_listed(lb):
    made = built(lb, countries=["FI"], algorithm="least_connections")
    assert made["state"] == "available" and made["provider"] == "haproxy"
    assert made["account_id"] == lb.accounts["edge"] and made["members"] == []
    # HAProxy itself answers on the port: no member yet, so 503.
    assert requests.get(f"http://127.0.0.1:{made['port']}/", timeout=5).status_code == 503
    listed = lb.call("GET", "/v1/balancers", key="member").body["balancers"]
    assert [b["id"] for b in listed] == [made["id"]]
    assert usage(lb) == 1


def test_an_idempotency_key_makes_one_balancer(lb):
    body = {"name": "once", "port": free_port()}
    headers = {"Idempotency-Key": "lb-once"}
    first = lb.call("POST", "/v1/balancers", key="member", body=body, headers=headers)
    again = lb.call("POST", "/v1/balancers", key="member", body=body, headers=headers)
    assert first.status == again.status == 202
    assert again.body == first.body and again.headers["Idempotent-Replayed"] == "true"
    assert lb.wait_operation(first.body["operation"]["id"])["status"] == "succeeded"
    assert len(lb.call("GET", "/v1/balancers", key="member").body["balancers"]) == 1
    other = lb.call(
        "POST", "/v1/balancers", key="member", body={**body, "port": 1}, headers=headers
    )
    assert other.status == 409


def test_bad_balancer_requests_are_clear_errors(lb):
    https = create(lb, protocol="https")
    assert https.status == 400 and "supported: http, tcp" in https.error["message"]
    assert create(lb, algorithm="source_hash").status == 400
    assert create(lb, port=0).status == 400
    nowhere = create(lb, countries=["US"])
    assert nowhere.status == 400 and "countries US" in nowhere.error["message"]
    compute_only = create(lb, account_id=lb.accounts["dummy"])
    assert compute_only.status == 400 and compute_only.error["field"] == "account_id"
    assert create(lb, account_id=lb.accounts["beta-edge"]).status == 404  # not theirs
    assert create(lb, members=[{"node_id": "node-missing"}]).status == 404
    assert create(lb, members=[{"ip": "127.0.0.1"}]).status == 400  # no port
    built(lb, "taken")
    assert create(lb, "taken").status == 409
    assert usage(lb) == 1  # nothing refused was charged


def test_another_projects_balancers_do_not_exist(lb):
    made = built(lb)
    for method, path in (
        ("GET", f"/v1/balancers/{made['id']}"),
        ("DELETE", f"/v1/balancers/{made['id']}"),
        ("GET", f"/v1/balancers/{made['id']}/members"),
    ):
        assert lb.call(method, path, key="beta").status == 404, (method, path)
    attach = lb.call(
        "POST",
        f"/v1/balancers/{made['id']}/members",
        key="beta",
        body={"ip": "127.0.0.1", "port": 80},
    )
    assert attach.status == 404
    assert lb.call("GET", "/v1/balancers", key="beta").body["balancers"] == []


def test_the_balancer_quota_holds(lb):
    lb.call("PATCH", "/v1/quota", key="operator", body={"balancers": 1})
    built(lb, "first")
    refused = create(lb, "second")
    assert refused.status == 403 and "balancers" in refused.error["message"]


def test_members_attach_by_node_and_address_and_a_deleted_node_leaves(lb):
    node = lb.create_node("app")
    made = built(lb, members=[{"node_id": node["id"], "port": 8080}])
    [member] = made["members"]
    assert member["node_id"] == node["id"] and member["state"] == "attached"
    assert member["provider_member_id"] and member["port"] == 8080

    attach = lb.call(
        "POST",
        f"/v1/balancers/{made['id']}/members",
        key="member",
        body={"ip": "127.0.0.1", "port": free_port(), "weight": 3},
    )
    assert attach.status == 202, attach.body
    assert lb.wait_operation(attach.body["operation"]["id"])["status"] == "succeeded"
    again = lb.call(
        "POST",
        f"/v1/balancers/{made['id']}/members",
        key="member",
        body={"node_id": node["id"], "port": 8080},
    )
    assert again.status == 409  # already a member
    members = lb.call("GET", f"/v1/balancers/{made['id']}/members", key="member").body["members"]
    assert sorted(m["weight"] for m in members) == [1, 3]
    at_haproxy = HAProxyLoadBalancerDriver(state_dir=_state_dir(lb)).list_members(
        made["provider_id"]
    )
    assert {m.id for m in at_haproxy} == {m["provider_member_id"] for m in members}

    deletion = lb.call("DELETE", f"/v1/nodes/{node['id']}", key="member")
    operation = lb.wait_operation(deletion.body["operation"]["id"])
    assert f"left balancer {made['id']}" in [e["message"] for e in operation["events"]]
    [left] = balancer(lb, made["id"])["members"]
    assert left["ip"] == "127.0.0.1" and left["weight"] == 3

    detach = lb.call("DELETE", f"/v1/balancers/{made['id']}/members/{left['id']}", key="member")
    assert detach.status == 202
    assert lb.wait_operation(detach.body["operation"]["id"])["status"] == "succeeded"
    assert balancer(lb, made["id"])["members"] == []
    assert (
        HAProxyLoadBalancerDriver(state_dir=_state_dir(lb)).list_members(made["provider_id"]) == []
    )


def _state_dir(service: Service) -> str:
    with_options = service.call("GET", f"/v1/accounts/{service.accounts['edge']}", key="admin")
    return str(with_options.body["account"]["options"]["loadbalancer"]["state_dir"])


def test_a_delete_always_wins_and_leaves_nothing(lb):
    made = built(lb, "doomed")
    first = lb.call("DELETE", f"/v1/balancers/{made['id']}", key="member")
    again = lb.call("DELETE", f"/v1/balancers/{made['id']}", key="member")
    assert first.status == again.status == 202
    assert again.body["operation"]["id"] == first.body["operation"]["id"]
    assert lb.wait_operation(first.body["operation"]["id"])["status"] == "succeeded"
    assert lb.call("GET", f"/v1/balancers/{made['id']}", key="member").status == 404
    assert HAProxyLoadBalancerDriver(state_dir=_state_dir(lb)).list_balancers() == []
    wait_for(lambda: usage(lb) == 0, what="the balancer's quota given back")
    assert built(lb, "doomed")["name"] == "doomed"  # the name is free again


def test_a_balancer_deleted_while_being_built_is_removed_at_the_provider(lb):
    answer = create(lb, "brief")
    deletion = lb.call("DELETE", f"/v1/balancers/{answer.body['balancer']['id']}", key="member")
    assert deletion.status == 202
    lb.wait_operation(answer.body["operation"]["id"])
    assert lb.wait_operation(deletion.body["operation"]["id"])["status"] == "succeeded"
    wait_for(
        lambda: HAProxyLoadBalancerDriver(state_dir=_state_dir(lb)).list_balancers() == [],
        what="nothing left at HAProxy",
    )
    assert usage(lb) == 0


def test_redelivered_work_makes_nothing_twice(lb):
    """At-least-once delivery: a create or attach message handled again (as
    after a worker died before its ack) finds what the first made."""
    made = built(lb, members=[{"ip": "127.0.0.1", "port": 9}])
    [member] = made["members"]
    driver = HAProxyLoadBalancerDriver(state_dir=_state_dir(lb))
    with session_scope(lb.context.sessions) as session:
        row = session.get(BalancerMember, member["id"])
        row.state = "attaching"  # as if the worker died between attach and record
        row.provider_member_id = None
    for kind, payload in (
        ("create_balancer", {"balancer_id": made["id"]}),
        ("attach_member", {"member_id": member["id"]}),
    ):
        envelope = messaging.message(
            kind, "req-again", operation_id=made["operation_id"], **payload
        )
        dispatch(lb.context, envelope)
    assert [b.id for b in driver.list_balancers()] == [made["provider_id"]]
    assert [m.id for m in driver.list_members(made["provider_id"])] == [
        member["provider_member_id"]
    ]
    [again] = balancer(lb, made["id"])["members"]
    assert again["state"] == "attached"
    assert again["provider_member_id"] == member["provider_member_id"]
