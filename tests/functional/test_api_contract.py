"""Auth, validation, pagination, idempotency and error bodies."""

import threading

import pytest

from services.common.config import MessagingSection
from services.common.messaging import Publisher
from tests.helpers import wait_for


def test_missing_or_wrong_key_is_401(service):
    for key in (None, "oc_not-a-key"):
        answer = service.call("GET", "/v1/nodes", key=key)
        assert answer.status == 401
        assert answer.error["code"] == "unauthorized"
        assert answer.error["request_id"] == answer.headers["X-Request-Id"]


def test_other_projects_nodes_are_invisible(service):
    node = service.create_node("mine", key="member")
    assert service.call("GET", f"/v1/nodes/{node['id']}", key="beta").status == 404
    assert service.call("DELETE", f"/v1/nodes/{node['id']}", key="beta").status == 404
    assert service.call("GET", "/v1/nodes", key="beta").body["nodes"] == []
    operation = node["operation_id"]
    assert service.call("GET", f"/v1/operations/{operation}", key="beta").status == 404
    # The other project has no accounts, so nothing can be placed for it.
    answer = service.call("GET", "/v1/offers", key="beta")
    assert answer.body["offers"] == []


def test_members_cannot_do_admin_things(service):
    assert service.call("GET", "/v1/services", key="member").status == 403
    answer = service.call(
        "POST", "/v1/accounts", key="member", body={"name": "x", "provider": "dummy"}
    )
    assert answer.status == 403 and answer.error["code"] == "forbidden"


def test_an_operator_sees_all_projects_only_when_asked(service):
    node = service.create_node("theirs", key="beta", wait=False)
    assert service.call("GET", "/v1/nodes", key="operator").body["nodes"] == []
    listed = service.call("GET", "/v1/nodes?all_projects=1", key="operator").body["nodes"]
    assert [n["id"] for n in listed] == [node["id"]]
    # A project admin is an admin of its own project only.
    assert service.call("GET", "/v1/nodes?all_projects=1").status == 403
    assert service.call("GET", f"/v1/nodes/{node['id']}").status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image": "ubuntu"}, "name"),
        ({"name": "x"}, "image"),
        ({"name": "x", "image": "ubuntu", "min_ram_mb": -1}, "min_ram_mb"),
        ({"name": "x", "image": "ubuntu", "min_ram_mb": "lots"}, "min_ram_mb"),
        ({"name": "x", "image": "ubuntu", "countries": ["USA"]}, "countries.0"),
        ({"name": "bad name!", "image": "ubuntu"}, "name"),
        ({"name": "x", "image": "ubuntu", "max_price": 0}, "max_price"),
        (
            {"name": "x", "image": "ubuntu", "deploy": {"files": [{"path": "rel"}]}},
            "deploy.files.0.content",
        ),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(service, body, field):
    answer = service.call("POST", "/v1/nodes", body=body)
    assert answer.status == 400, answer.body
    assert answer.error["code"] == "invalid_request"
    assert answer.error["field"] == field
    assert answer.error["message"].startswith(field)


def test_unknown_fields_are_rejected(service):
    answer = service.call("POST", "/v1/nodes", body={"name": "x", "image": "u", "colour": 1})
    assert answer.status == 400 and "colour" in answer.error["message"]


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"", "application/json", 400),
        (b"name=x", "application/x-www-form-urlencoded", 415),
    ],
)
def test_unreadable_bodies(service, raw, content_type, status):
    answer = service.call("POST", "/v1/nodes", raw=raw, headers={"Content-Type": content_type})
    assert answer.status == status
    assert "error" in answer.body


def test_too_large_body_is_413(service):
    answer = service.call("POST", "/v1/nodes", raw=b" " * 2_000_000)
    assert answer.status == 413 and answer.error["code"] == "payload_too_large"


def test_unknown_paths_and_methods(service):
    assert service.call("GET", "/v1/nothing").status == 404
    answer = service.call("PUT", "/v1/nodes")
    assert answer.status == 405 and answer.error["code"] == "method_not_allowed"


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=100000", "marker=nope"])
def test_bad_paging_parameters_are_400(service, query):
    assert service.call("GET", f"/v1/nodes?{query}").status == 400


def test_pagination_walks_every_node_once(service):
    created = [service.create_node(f"n{i}", wait=False)["id"] for i in range(7)]
    seen, path, pages = [], "/v1/nodes?limit=3", 0
    while path:
        body = service.call("GET", path).body
        seen += [node["id"] for node in body["nodes"]]
        path = body.get("next")
        pages += 1
    assert pages == 3
    assert seen == created


def test_a_node_reads_the_same_in_a_list_as_on_its_own(service):
    """The list reads columns, not whole rows: the two answers must still agree."""
    plain = service.create_node("plain", wait=False)
    deploying = service.create_node(
        "deploying",
        wait=False,
        deploy={"script": "true", "ssh_username": "debian"},
    )
    wait_for(
        lambda: all(service.node(n["id"])["task"] is None for n in (plain, deploying)),
        what="both nodes settled",
    )
    listed = {node["id"]: node for node in service.call("GET", "/v1/nodes").body["nodes"]}
    for node in (plain, deploying):
        assert listed[node["id"]] == service.node(node["id"])
    assert listed[deploying["id"]]["ssh_username"] == "debian"
    assert listed[deploying["id"]]["deployment"] is not None
    assert listed[plain["id"]]["deployment"] is None
    assert listed[plain["id"]]["alternates"] >= 1


def test_request_id_is_echoed_when_sane(service):
    answer = service.call("GET", "/healthz", key=None, headers={"X-Request-Id": "abc-123"})
    assert answer.headers["X-Request-Id"] == "abc-123"
    answer = service.call("GET", "/healthz", key=None, headers={"X-Request-Id": "bad id\x01"})
    assert answer.headers["X-Request-Id"].startswith("req-")


def test_same_idempotency_key_creates_one_node(service):
    headers = {"Idempotency-Key": "create-web-1"}
    body = {"name": "web-1", "image": "ubuntu"}
    first = service.call("POST", "/v1/nodes", body=body, headers=headers)
    second = service.call("POST", "/v1/nodes", body=body, headers=headers)
    assert first.status == second.status == 202
    assert second.body == first.body
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert len(service.call("GET", "/v1/nodes").body["nodes"]) == 1
    other = service.call("POST", "/v1/nodes", body={**body, "name": "web-2"}, headers=headers)
    assert other.status == 409
    # Keys are per project.
    assert service.call("POST", "/v1/nodes", body=body, headers=headers, key="beta").status == 202


def test_concurrent_requests_with_one_key_create_one_node(service):
    headers = {"Idempotency-Key": "race"}
    answers = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(
                service.call(
                    "POST", "/v1/nodes", body={"name": "r", "image": "ubuntu"}, headers=headers
                )
            )
        )
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {answer.status for answer in answers} == {202}
    assert len({answer.body["node"]["id"] for answer in answers}) == 1
    assert len(service.call("GET", "/v1/nodes").body["nodes"]) == 1


def test_broker_down_is_503_and_leaves_nothing_behind(service):
    dead = Publisher(
        MessagingSection(transport_url="amqp://guest:guest@127.0.0.1:1//", connect_timeout=0.5)
    )
    real = service.context.outbox.publisher
    service.context.outbox.publisher = dead
    try:
        answer = service.call(
            "POST",
            "/v1/nodes",
            body={"name": "x", "image": "ubuntu"},
            headers={"Idempotency-Key": "k1"},
        )
    finally:
        service.context.outbox.publisher = real
    assert answer.status == 503
    assert answer.error["code"] == "broker_unavailable"
    assert answer.headers["Retry-After"] == "5"
    assert service.call("GET", "/v1/nodes").body["nodes"] == []
    request_id = answer.headers["X-Request-Id"]
    audited = service.call("GET", "/v1/audit?limit=100").body["records"]
    assert [
        (r["status"], r["outcome"], r["error_code"])
        for r in audited
        if r["request_id"] == request_id
    ] == [(503, "failed", "broker_unavailable")]
    retried = service.call(
        "POST",
        "/v1/nodes",
        body={"name": "x", "image": "ubuntu"},
        headers={"Idempotency-Key": "k1"},
    )
    assert retried.status == 202


def test_database_down_is_503(service, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(
        service.context.sessions,
        "class_",
        type(
            "BrokenSession",
            (service.context.sessions.class_,),
            {"execute": broken, "scalars": broken},
        ),
    )
    answer = service.call("GET", "/v1/nodes")
    assert answer.status == 503 and answer.error["code"] == "database_unavailable"
    assert service.call("GET", "/healthz", key=None).status == 503


def test_accounts_never_show_credentials(service):
    answer = service.call(
        "POST",
        "/v1/accounts",
        body={"name": "secret-one", "provider": "dummy", "credentials": {"key": "TOPSECRET-123"}},
    )
    assert answer.status == 201, answer.body
    assert "TOPSECRET" not in str(answer.body)
    listed = service.call("GET", "/v1/accounts")
    assert "TOPSECRET" not in str(listed.body)
    assert (
        service.call(
            "POST", "/v1/accounts", body={"name": "secret-one", "provider": "dummy"}
        ).status
        == 409
    )
    assert (
        service.call("POST", "/v1/accounts", body={"name": "x", "provider": "no-such-cloud"}).status
        == 400
    )
    account_id = answer.body["account"]["id"]
    assert service.call("DELETE", f"/v1/accounts/{account_id}").status == 204
    assert service.call("GET", f"/v1/accounts/{account_id}").status == 404


def test_integral_floats_count_as_integers(service):
    answer = service.call(
        "POST",
        "/v1/nodes",
        body={"name": "f", "image": "ubuntu", "count": 2.0, "min_ram_mb": 512.0},
    )
    assert answer.status == 202 and len(answer.body["nodes"]) == 2
    assert (
        service.call(
            "POST", "/v1/nodes", body={"name": "f", "image": "ubuntu", "count": 2.5}
        ).status
        == 400
    )
