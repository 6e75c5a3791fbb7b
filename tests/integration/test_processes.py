"""The real deployment shape: API, scheduler and workers as separate processes
on PostgreSQL and RabbitMQ, with the dummy provider's state shared on disk."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from drivers.compute.dummy import DummyNodeDriver
from services.common.crypto import generate_key
from tests.helpers import wait_for
from tests.integration.services import Cluster, postgres_database, rabbitmq_vhost, unacked

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Deployment:
    cluster: Cluster
    vhost: str
    dummy_state: Path
    api: requests.Session

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.api.request(method, self.cluster.url + path, timeout=30, **kwargs)

    def nodes(self, **params: Any) -> list[dict[str, Any]]:
        return self.call("GET", "/v1/nodes", params={"limit": 1000, **params}).json()["nodes"]

    def create_nodes(self, count: int) -> list[str]:
        def create(index: int) -> str:
            answer = self.call(
                "POST",
                "/v1/nodes",
                json={"name": f"n{index}", "image": "ubuntu"},
                headers={"Idempotency-Key": f"node-{index}"},
            )
            assert answer.status_code == 202, answer.text
            return str(answer.json()["node"]["id"])

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(create, range(count)))

    def wait_all(self, node_ids: list[str], state: str, timeout: float = 120) -> None:
        wanted = set(node_ids)

        def done() -> bool:
            seen = {n["id"]: n for n in self.nodes(state=state) if n["id"] in wanted}
            failed = [n for n in self.nodes() if n["id"] in wanted and n["state"] == "error"]
            assert not failed, failed[0]
            return len(seen) == len(wanted) and all(n["task"] is None for n in seen.values())

        try:
            wait_for(done, timeout=timeout, interval=0.2, what=f"{len(wanted)} nodes {state}")
        except AssertionError:
            print(self.cluster.logs())
            raise

    def provider(self) -> DummyNodeDriver:
        return DummyNodeDriver(state_path=str(self.dummy_state))


@pytest.fixture
def deployment(tmp_path) -> Iterator[Deployment]:
    with postgres_database() as database, rabbitmq_vhost() as (broker, vhost):
        port = free_port()
        env = {
            "OVERCAST_DATABASE__CONNECTION": database,
            "OVERCAST_MESSAGING__TRANSPORT_URL": broker,
            "OVERCAST_SECURITY__ENCRYPTION_KEY": generate_key(),
            "OVERCAST_API__BIND": f"127.0.0.1:{port}",
            "OVERCAST_WORKER__POLL_INTERVAL": "0.2",
            "OVERCAST_WORKER__PROVIDER_BACKOFF": "0.05",
            "OVERCAST_SERVICE__STATE_DIR": str(tmp_path),
            "OVERCAST_SERVICE__HEARTBEAT_INTERVAL": "1",
            "OVERCAST_PRICING__CACHE_FILE": str(tmp_path / "pricing.json"),
        }
        cluster = Cluster(env, tmp_path, port)
        try:
            cluster.manage("db", "upgrade")
            cluster.manage("project", "create", "ci")
            key = cluster.manage("key", "create", "ci", "--role", "admin")
            dummy_state = tmp_path / "dummy-cloud.sqlite"
            options = {
                "state_path": str(dummy_state),
                "boot_delay": 0.2,
                "faults": {"latency": 0.05},
            }
            cluster.manage(
                "account", "add", "ci", "dummy", "dummy", "--options", json.dumps(options)
            )
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {key}"
            yield Deployment(cluster, vhost, dummy_state, session)
        finally:
            cluster.stop()


def wait_catalog(deployment: Deployment) -> None:
    def synced() -> bool:
        accounts = deployment.call("GET", "/v1/accounts").json()["accounts"]
        return bool(accounts) and all(a["catalog_synced_at"] for a in accounts)

    wait_for(synced, timeout=60, interval=0.2, what="the catalog sync")


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


def test_killing_a_worker_that_holds_build_messages_loses_and_duplicates_nothing(deployment):
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
