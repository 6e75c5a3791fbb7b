"""The audit log: every mutating call, who made it, on what, and how it ended."""

from __future__ import annotations

import json


def test_mutating_calls_are_recorded_with_who_what_and_outcome(service):
    node = service.create_node("audited", key="member", wait=False)
    refused = service.call(
        "POST", "/v1/accounts", key="member", body={"name": "x", "provider": "dummy"}
    )
    assert refused.status == 403
    invalid = service.call("POST", "/v1/nodes", key="member", body={"name": "bad name!"})
    assert invalid.status == 400
    service.call("GET", "/v1/nodes", key="member")  # reads are not audited
    deletion = service.call("DELETE", f"/v1/nodes/{node['id']}", key="admin")

    records = service.call("GET", "/v1/audit?limit=100").body["records"]
    by_request = {record["request_id"]: record for record in records}
    assert all(record["method"] != "GET" for record in records)

    created = next(r for r in records if r["route"] == "node_create" and r["status"] == 202)
    assert created["resource_id"] == node["id"] and created["outcome"] == "succeeded"
    assert created["role"] == "member" and created["project_id"] == service.projects["alpha"]
    assert by_request[refused.headers["X-Request-Id"]]["outcome"] == "denied"
    assert by_request[refused.headers["X-Request-Id"]]["error_code"] == "forbidden"
    assert by_request[invalid.headers["X-Request-Id"]]["outcome"] == "failed"
    removed = by_request[deletion.headers["X-Request-Id"]]
    assert (removed["route"], removed["resource_id"], removed["status"]) == (
        "node_delete",
        node["id"],
        202,
    )
    mine = service.call("GET", f"/v1/audit?resource_id={node['id']}").body["records"]
    assert {r["route"] for r in mine} == {"node_create", "node_delete"}


def test_each_admin_sees_its_own_project_and_an_operator_sees_all(service):
    service.call("POST", "/v1/nodes", key="beta", body={"name": "b", "image": "ubuntu"})
    service.call("POST", "/v1/nodes", key="member", body={"name": "a", "image": "ubuntu"})
    alpha = service.call("GET", "/v1/audit").body["records"]
    assert {r["project_id"] for r in alpha} == {service.projects["alpha"]}
    beta = service.call("GET", "/v1/audit", key="beta-admin").body["records"]
    assert {r["project_id"] for r in beta} == {service.projects["beta"]}
    everyone = service.call("GET", "/v1/audit?all_projects=true", key="operator").body["records"]
    assert {r["project_id"] for r in everyone} >= {
        service.projects["alpha"],
        service.projects["beta"],
    }
    assert service.call("GET", "/v1/audit", key="member").status == 403
    assert service.call("GET", "/v1/audit?all_projects=true").status == 403


def test_no_secret_reaches_the_audit_log(service):
    service.call(
        "POST",
        "/v1/accounts",
        body={"name": "s", "provider": "dummy", "credentials": {"secret": "TOPSECRET-42"}},
    )
    made = service.call("POST", "/v1/keys", body={"name": "k"}).body
    dump = json.dumps(service.call("GET", "/v1/audit?all_projects=1", key="operator").body)
    assert "TOPSECRET-42" not in dump
    assert made["secret"] not in dump and made["secret"][11:] not in dump
    assert made["key"]["id"] in dump
