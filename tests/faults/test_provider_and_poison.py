"""Faults at the provider and in the queue, with the whole service in-process."""

from __future__ import annotations

import json

from services.common.db.models import Node, Operation, new_id
from services.common.db.session import session_scope
from services.common.messaging import QUEUES, connect
from tests.functional.harness import service_config, start_service, stop_service
from tests.helpers import wait_for


def test_two_hundred_nodes_complete_through_provider_faults(tmp_path):
    config = service_config(tmp_path).replace(
        worker={
            "poll_interval": 0.05,
            "provider_backoff": 0.01,
            "provider_retries": 10,
            "pool_size": 8,
        }
    )
    service = start_service(config)
    try:
        state = str(tmp_path / "faulty-cloud.sqlite")
        service.add_account(
            "alpha",
            "faulty",
            state_path=state,
            faults={
                "transient_error_rate": 0.20,
                "timeout_rate": 0.05,
                "rate_limit_rate": 0.02,
                "retry_after": 0.01,
                "seed": 42,
            },
        )
        answer = service.call(
            "POST", "/v1/nodes", body={"name": "f", "image": "ubuntu", "count": 100}
        )
        second = service.call(
            "POST", "/v1/nodes", body={"name": "g", "image": "ubuntu", "count": 100}
        )
        for batch in (answer, second):
            operation = service.wait_operation(batch.body["operation"]["id"], timeout=180)
            assert operation["status"] == "succeeded", operation["error"]
        nodes = service.call("GET", "/v1/nodes?limit=1000").body["nodes"]
        assert len(nodes) == 200 and {node["state"] for node in nodes} == {"running"}

        from drivers.compute.dummy import DummyNodeDriver

        provider = DummyNodeDriver(state_path=state)
        assert provider.created_count() == 200  # timeouts after creation made no duplicate
        assert len(provider.list_nodes()) == 200
    finally:
        stop_service(service)


def test_a_poison_message_is_dead_lettered_and_the_rest_keeps_flowing(service):
    with session_scope(service.context.sessions) as session:
        operation = Operation(
            id=new_id("op"),
            project_id=service.projects["alpha"],
            action="reboot",
            status="running",
            request_id="req-poison",
        )
        session.add(operation)
    poison = {
        "type": "reboot_node",
        "version": 1,
        "request_id": "req-poison",
        "id": "p1",
        "sent_at": 0,
        "payload": {"node_id": {"not": "an id"}, "operation_id": operation.id},
    }
    service.context.publisher.publish(poison, queue="worker")
    service.context.publisher.publish({"not": "an envelope"}, queue="worker")

    failed = service.wait_operation(operation.id)
    assert failed["status"] == "failed"
    assert "dead-lettered" in failed["error"] and "reboot_node" in failed["error"]
    with connect(service.context.config.messaging) as connection:
        dead = QUEUES["dead"](connection.default_channel)
        letters = []
        while (message := dead.get(accept=["json"])) is not None:
            letters.append(message.payload)
            message.ack()
    reasons = sorted(letter["reason"][:20] for letter in letters)
    assert len(letters) == 2, letters
    assert any("invalid message" in reason for reason in reasons)
    assert any(letter["original"].get("id") == "p1" for letter in letters)
    # The consumer still serves everything else.
    node = service.create_node("after-the-poison")
    assert node["state"] == "running"


def test_nothing_is_stuck_after_a_dead_letter_on_a_node(service):
    node = service.create_node("victim")
    with session_scope(service.context.sessions) as session:
        row = session.get(Node, node["id"])
        operation = Operation(
            id=new_id("op"),
            project_id=row.project_id,
            node_id=row.id,
            action="reboot",
            status="running",
            request_id="r",
        )
        session.add(operation)
        row.task, row.operation_id = "rebooting", operation.id
    bad = {
        "type": "reboot_node",
        "version": 1,
        "request_id": "r",
        "id": "p2",
        "sent_at": 0,
        "payload": {"node_id": node["id"], "operation_id": operation.id, "extra": None},
    }
    # A handler that always fails: the node's account no longer decrypts.
    with session_scope(service.context.sessions) as session:
        from services.common.db.models import Account

        account = session.get(Account, node["account_id"])
        account.credentials = "corrupted"
    service.context.drivers._drivers.clear()
    service.context.publisher.publish(bad, queue="worker")
    failed = service.wait_operation(operation.id)
    assert failed["status"] == "failed" and "dead-lettered" in failed["error"]
    after = wait_for(
        lambda: (n := service.node(node["id"]))["task"] is None and n,
        what="the node's task to be cleared",
    )
    assert after["state"] == "error" and "dead-lettered" in after["error"]
    assert json.dumps(after).count("corrupted") == 0
