"""The real deployment shape: API, scheduler and workers as separate processes
on PostgreSQL and RabbitMQ, with the dummy provider's state shared on disk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import wait_for
from tests.integration.deployment import Deployment, deployed, wait_catalog
from tests.integration.services import postgres_database, rabbitmq_vhost, unacked

pytestmark = pytest.mark.integration


def test_fifty_nodes_through_separate_processes(deployment):
    cluster = deployment.cluster
    cluster.start("api")
    cluster.start("scheduler")
    cluster.start("worker", "worker-1")
    cluster.start("worker", "worker-2")
    cluster.wait_api()
    wait_catalog(deployment)

    node_ids = deployment.create_nodes(50)
    deployment.wait_all(node_ids, "running")

    provider = deployment.provider()
    assert provider.created_count() == 50
    assert len(provider.list_nodes()) == 50
    assert len({n["public_ips"][0] for n in deployment.nodes()}) == 50

    services = deployment.call("GET", "/v1/services").json()["services"]
    kinds = sorted(s["kind"] for s in services if s["alive"])
    assert kinds == ["api", "scheduler", "worker", "worker"]

    for node_id in node_ids:
        assert deployment.call("DELETE", f"/v1/nodes/{node_id}").status_code == 202
    deployment.wait_all(node_ids, "deleted")
    assert deployment.nodes() == []
    assert provider.list_nodes() == []


@pytest.fixture
def slow_provider(tmp_path) -> Iterator[Deployment]:
    """A dummy provider whose creates take 0.5 s, so that 20 builds keep a
    worker holding messages for seconds: long enough for ``rabbitmqctl``
    (hundreds of milliseconds a call) to see them. With 0.1 s the builds could
    all finish between two samples, and the test failed about one run in three."""
    faults = {"latency": 0.5, "operations": ["create_node"]}
    with (
        postgres_database() as database,
        rabbitmq_vhost() as (broker, vhost),
        deployed(tmp_path, database, broker, vhost, {"faults": faults}) as running,
    ):
        yield running


def test_killing_a_worker_that_holds_build_messages_loses_and_duplicates_nothing(slow_provider):
    deployment = slow_provider
    cluster = deployment.cluster
    cluster.start("api")
    cluster.start("scheduler")
    doomed = cluster.start("worker", "doomed-worker", OVERCAST_WORKER__POOL_SIZE="4")
    cluster.wait_api()
    wait_catalog(deployment)

    node_ids = deployment.create_nodes(20)
    # Only the doomed worker consumes now, so whatever is unacked, it holds.
    wait_for(
        lambda: unacked(deployment.vhost, "overcast.worker") >= 3,
        timeout=60,
        interval=0.02,
        what="the worker to hold build messages",
    )
    doomed.kill()

    cluster.start("worker", "worker-2")
    cluster.start("worker", "worker-3")
    deployment.wait_all(node_ids, "running")

    provider = deployment.provider()
    assert provider.created_count() == 20  # nothing was created twice
    nodes = deployment.nodes()
    assert len({n["id"] for n in nodes}) == 20
    operations = deployment.call("GET", "/v1/operations", params={"limit": 1000}).json()
    assert {op["status"] for op in operations["operations"]} == {"succeeded"}


def test_round_robin_stays_fair_with_two_scheduler_processes(deployment, tmp_path):
    cluster = deployment.cluster
    for name in ("second", "third"):
        options = {"state_path": str(tmp_path / f"{name}.sqlite"), "boot_delay": 0.2}
        cluster.manage("account", "add", "ci", name, "dummy", "--options", json.dumps(options))
    cluster.start("api")
    schedulers = [cluster.start("scheduler", f"scheduler-{i}") for i in (1, 2)]
    cluster.start("worker", "worker-1")
    cluster.start("worker", "worker-2")
    cluster.wait_api()
    wait_catalog(deployment)

    def create(index: int) -> str:
        answer = deployment.call(
            "POST",
            "/v1/nodes",
            json={"name": f"rr{index}", "image": "ubuntu", "policy": "round_robin"},
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["node"]["id"])

    with ThreadPoolExecutor(8) as pool:
        node_ids = list(pool.map(create, range(30)))
    deployment.wait_all(node_ids, "running")

    per_account: dict[str, int] = {}
    for node in deployment.nodes():
        per_account[node["account_id"]] = per_account.get(node["account_id"], 0) + 1
    assert sorted(per_account.values()) == [10, 10, 10]
    for scheduler in schedulers:
        assert "placed on dummy" in scheduler.output(), f"{scheduler.name} placed nothing"
