"""A deployment of separate overcast processes for integration and fault tests."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from drivers.compute.dummy import DummyNodeDriver
from services.common.crypto import generate_key
from tests.helpers import wait_for
from tests.integration.services import Cluster


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

    def create_nodes(self, count: int, prefix: str = "n") -> list[str]:
        def create(index: int) -> str:
            answer = self.call(
                "POST",
                "/v1/nodes",
                json={"name": f"{prefix}{index}", "image": "ubuntu"},
                headers={"Idempotency-Key": f"{prefix}node-{index}"},
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


@contextmanager
def deployed(
    tmp_path: Path,
    database: str,
    broker: str,
    vhost: str,
    dummy_options: dict[str, Any] | None = None,
) -> Iterator[Deployment]:
    """Config, schema, an operator key of project ``ci`` and a dummy account;
    processes are the test's."""
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
        key = cluster.manage("key", "create", "ci", "--role", "operator")
        dummy_state = tmp_path / "dummy-cloud.sqlite"
        options = {
            "state_path": str(dummy_state),
            "boot_delay": 0.2,
            "faults": {"latency": 0.05},
            **(dummy_options or {}),
        }
        cluster.manage("account", "add", "ci", "dummy", "dummy", "--options", json.dumps(options))
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
