"""Broker and database outages, and workers killed at random, with real processes.

The broker and the database sit behind a TcpProxy the test cuts: every
connection is reset and new ones are refused, as in a restart, without
touching the real servers other tests share.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from tests.faults.proxy import TcpProxy
from tests.helpers import wait_for
from tests.integration.deployment import Deployment, deployed, wait_catalog
from tests.integration.services import RABBIT_URL, postgres_database, rabbitmq_vhost

pytestmark = pytest.mark.integration


def proxied(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    return url.replace(f"@{parts.hostname}:{parts.port}", f"@127.0.0.1:{proxy.port}", 1)


@pytest.fixture
def proxies() -> Iterator[dict[str, TcpProxy]]:
    broker = urlsplit(RABBIT_URL)
    made = {
        "broker": TcpProxy((broker.hostname or "127.0.0.1", broker.port or 5672)),
        "database": TcpProxy(("127.0.0.1", 5432)),
    }
    for proxy in made.values():
        proxy.start()
    yield made
    for proxy in made.values():
        proxy.stop()


@pytest.fixture
def behind_proxies(tmp_path, proxies) -> Iterator[Deployment]:
    with (
        postgres_database() as database,
        rabbitmq_vhost() as (broker, vhost),
        deployed(
            tmp_path,
            proxied(database, proxies["database"]),
            proxied(broker, proxies["broker"]),
            vhost,
            {"boot_delay": 0.1, "faults": {"latency": 0.01}},
        ) as running,
    ):
        cluster = running.cluster
        cluster.start("api")
        cluster.start("scheduler")
        cluster.start("worker", "worker-1")
        cluster.start("worker", "worker-2")
        cluster.wait_api()
        wait_catalog(running)
        yield running


def post_node(deployment: Deployment, name: str) -> requests.Response:
    return deployment.call("POST", "/v1/nodes", json={"name": name, "image": "ubuntu"})


def running_count(deployment: Deployment) -> int:
    return len(deployment.nodes(state="running"))


def test_broker_outage_mid_run(behind_proxies, proxies):
    deployment = behind_proxies
    node_ids = deployment.create_nodes(200)
    wait_for(lambda: running_count(deployment) >= 30, timeout=60, what="30 nodes running")
    proxies["broker"].cut()
    refused = [post_node(deployment, f"during-{i}") for i in range(3)]
    assert [answer.status_code for answer in refused] == [503, 503, 503]
    assert refused[0].json()["error"]["code"] == "broker_unavailable"
    assert deployment.call("GET", "/healthz").status_code == 200  # the database is fine
    proxies["broker"].restore()

    deployment.wait_all(node_ids, "running", timeout=180)
    accepted = post_node(deployment, "after")
    assert accepted.status_code == 202
    deployment.wait_all([accepted.json()["node"]["id"]], "running", timeout=60)
    assert deployment.provider().created_count() == 201
    assert not [n for n in deployment.nodes() if n["name"].startswith("during-")]


def test_database_outage_mid_run(behind_proxies, proxies):
    deployment = behind_proxies
    node_ids = deployment.create_nodes(100)
    wait_for(lambda: running_count(deployment) >= 20, timeout=60, what="20 nodes running")
    proxies["database"].cut()
    during = post_node(deployment, "during")
    assert during.status_code == 503
    assert during.json()["error"]["code"] == "database_unavailable"
    assert deployment.call("GET", "/healthz").status_code == 503
    proxies["database"].restore()

    wait_for(
        lambda: deployment.call("GET", "/healthz").status_code == 200,
        timeout=60,
        what="the API to recover by itself",
    )
    deployment.wait_all(node_ids, "running", timeout=180)
    assert post_node(deployment, "after").status_code == 202
    assert deployment.provider().created_count() == 100


def kill_round(deployment: Deployment, round_number: int, delay: float) -> list[str]:
    """Start a worker, create 20 nodes, SIGKILL the worker after ``delay``; wait."""
    victim = deployment.cluster.start(
        "worker", f"victim-{round_number}", OVERCAST_WORKER__POOL_SIZE="4"
    )
    killer = threading.Timer(delay, victim.kill)
    killer.start()
    batch = deployment.create_nodes(20, prefix=f"r{round_number}-")
    killer.join()
    deployment.wait_all(batch, "running", timeout=120)
    return batch


def test_fifty_worker_kills_lose_and_duplicate_nothing(tmp_path):
    options = {"boot_delay": 0.05, "faults": {"latency": 0.02}}
    with (
        postgres_database() as database,
        rabbitmq_vhost() as (broker, vhost),
        deployed(tmp_path, database, broker, vhost, options) as deployment,
    ):
        cluster = deployment.cluster
        cluster.start("api")
        cluster.start("scheduler")
        cluster.start("worker", "steady-worker", OVERCAST_WORKER__POOL_SIZE="4")
        cluster.wait_api()
        wait_catalog(deployment)
        chance = random.Random(2026)
        created: list[str] = []
        for round_number in range(50):
            created += kill_round(deployment, round_number, chance.uniform(0.2, 2.0))
        assert deployment.provider().created_count() == len(created) == 1000
        operations = deployment.call("GET", "/v1/operations", params={"limit": 1000}).json()
        assert {op["status"] for op in operations["operations"]} == {"succeeded"}
