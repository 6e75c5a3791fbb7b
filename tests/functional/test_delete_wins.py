"""Delete always wins: whatever runs on a node, a DELETE takes over, and no
server is left at the provider, whatever the timing."""

from __future__ import annotations

import pytest

from drivers.compute.base import NodeState
from services.common import messaging
from services.common.db.models import Account, Node
from services.common.db.session import session_scope
from services.worker.catalog import driver_values
from tests.functional.harness import Service
from tests.helpers import wait_for


def provider(service: Service, account_name: str):  # type: ignore[no-untyped-def]
    with session_scope(service.context.sessions) as session:
        account = session.get(Account, service.accounts[account_name])
    return service.context.drivers.for_account(account)


def node_in_task(service: Service, node_id: str, task: str) -> bool:
    return bool(service.node(node_id)["task"] == task)


@pytest.mark.parametrize(
    "slowness",
    [
        pytest.param("latency", id="create-acts-after-2s"),
        pytest.param("answer_delay", id="create-answers-2s-after-acting"),
    ],
)
def test_delete_during_a_slow_create_leaves_no_server(service, slowness):
    service.add_account("alpha", "slow", faults={slowness: 2.0, "operations": ["create_node"]})
    cloud = provider(service, "slow")
    created = service.call(
        "POST", "/v1/nodes", body={"name": "doomed", "image": "ubuntu", "accounts": ["slow"]}
    )
    node_id = created.body["node"]["id"]
    wait_for(lambda: cloud.calls_started("create_node") == 1, what="the create to be under way")
    assert node_in_task(service, node_id, "building")

    deletion = service.call("DELETE", f"/v1/nodes/{node_id}")
    assert deletion.status == 202, deletion.body
    assert deletion.body["operation"]["action"] == "delete"
    assert service.wait_operation(deletion.body["operation"]["id"])["status"] == "succeeded"
    # The create still finishes at the provider; its worker then destroys it.
    wait_for(
        lambda: cloud.created_count() == 1 and cloud.list_nodes() == [],
        timeout=15,
        what="the server the create made to be destroyed",
    )
    assert service.call("GET", f"/v1/nodes/{node_id}").status == 404
    listed = service.call("GET", "/v1/nodes?state=deleted").body["nodes"]
    assert [(n["id"], n["state"]) for n in listed] == [(node_id, "deleted")]
    create_operation = service.operation(created.body["operation"]["id"])
    assert create_operation["status"] == "failed"
    assert "deleted before building finished" in create_operation["error"]
    quota = service.call("GET", "/v1/quota").body["quota"]
    assert quota["nodes"]["used"] == 0


def test_a_build_redelivered_for_a_deleted_node_destroys_what_the_lost_create_made(service):
    """A worker died after the provider created the server and before it
    recorded it; the node was deleted meanwhile. The redelivered build finds
    the server by its token (the node id) and destroys it."""
    cloud = provider(service, "dummy")
    node = service.create_node("victim")
    deletion = service.call("DELETE", f"/v1/nodes/{node['id']}")
    service.wait_operation(deletion.body["operation"]["id"])
    with session_scope(service.context.sessions) as session:
        size, image, location = driver_values(
            session, node["account_id"], node["location_id"], node["size_id"], node["image_id"]
        )
    orphan = cloud.create_node("victim", size, image, location, idempotency_token=node["id"])
    assert orphan.state is not NodeState.TERMINATED

    service.context.publisher.publish(
        messaging.message("build_node", "redelivered", node_id=node["id"], operation_id="op-x")
    )
    wait_for(
        lambda: all(n.id != orphan.id for n in cloud.list_nodes()),
        timeout=15,
        what="the orphan to be destroyed",
    )


def test_delete_of_a_node_whose_create_was_never_recorded_finds_it_by_token(service):
    """The create happened at the provider but was never recorded (the node is
    placed, its provider id unknown): the delete itself looks it up."""
    cloud = provider(service, "dummy")
    node = service.create_node("unrecorded")
    with session_scope(service.context.sessions) as session:
        row = session.get(Node, node["id"])
        assert row is not None
        row.provider_node_id = None
    assert len(cloud.list_nodes()) == 1
    deletion = service.call("DELETE", f"/v1/nodes/{node['id']}")
    assert service.wait_operation(deletion.body["operation"]["id"])["status"] == "succeeded"
    assert cloud.list_nodes() == []


def test_a_second_delete_answers_like_the_first(service):
    service.add_account("alpha", "slow", faults={"latency": 1.0, "operations": ["destroy_node"]})
    node = service.create_node("twice", accounts=["slow"])
    first = service.call("DELETE", f"/v1/nodes/{node['id']}")
    second = service.call("DELETE", f"/v1/nodes/{node['id']}")
    assert first.status == second.status == 202
    assert second.body["operation"]["id"] == first.body["operation"]["id"]
    assert service.wait_operation(first.body["operation"]["id"])["status"] == "succeeded"
    assert service.call("DELETE", f"/v1/nodes/{node['id']}").status == 404


def test_a_create_that_acted_but_never_answered_leaves_no_server(service):
    """One create times out after the provider made the server, and every retry
    fails before reaching it: once the retries run out the node fails, and the
    server is not left running. (Seed 11 draws: error, error, timeout after
    acting, error -- with 4 attempts, as the harness retries 3 times.)"""
    service.add_account(
        "alpha",
        "mute",
        faults={
            "transient_error_rate": 0.7,
            "timeout_rate": 0.3,
            "seed": 11,
            "operations": ["create_node"],
        },
    )
    cloud = provider(service, "mute")
    answer = service.call(
        "POST", "/v1/nodes", body={"name": "mute", "image": "ubuntu", "accounts": ["mute"]}
    )
    operation = service.wait_operation(answer.body["operation"]["id"])
    assert operation["status"] == "failed" and "internal error" in operation["error"]
    assert cloud.created_count() == 1
    assert cloud.list_nodes() == []
    assert service.call("GET", "/v1/quota").body["quota"]["nodes"]["used"] == 0
