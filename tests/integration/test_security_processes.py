"""Key revocation and delete-always-wins across real processes on
PostgreSQL and RabbitMQ."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.helpers import wait_for
from tests.integration.deployment import Deployment, deployed, free_port, wait_catalog
from tests.integration.services import postgres_database, rabbitmq_vhost

pytestmark = pytest.mark.integration


@pytest.fixture
def slow_create(tmp_path) -> Iterator[Deployment]:
    """The dummy provider creates at once but answers 2 s later."""
    with (
        postgres_database() as database,
        rabbitmq_vhost() as (broker, vhost),
        deployed(
            tmp_path, database, broker, vhost, dummy_options={"faults": {"answer_delay": 2.0}}
        ) as running,
    ):
        yield running


def test_a_revoked_key_is_refused_by_a_second_api_process_within_a_second(slow_create):
    cluster = slow_create.cluster
    cluster.start("api", "api-1")
    second_url = f"http://127.0.0.1:{free_port()}"
    cluster.start("api", "api-2", OVERCAST_API__BIND=second_url.removeprefix("http://"))
    cluster.wait_api()
    made = slow_create.call("POST", "/v1/keys", json={"name": "short-lived"})
    assert made.status_code == 201, made.text
    key, key_id = made.json()["secret"], made.json()["key"]["id"]
    headers = {"Authorization": f"Bearer {key}"}

    def status_on_second() -> int:
        try:
            return requests.get(f"{second_url}/v1/nodes", headers=headers, timeout=5).status_code
        except requests.ConnectionError:
            return 0  # not listening yet

    wait_for(lambda: status_on_second() == 200, timeout=30, what="the second API process")
    assert slow_create.call("DELETE", f"/v1/keys/{key_id}").status_code == 204
    revoked_at = time.monotonic()
    wait_for(
        lambda: status_on_second() == 401,
        timeout=1.0,
        interval=0.02,
        what="the second API process to refuse the revoked key",
    )
    print(f"refused by the second process {time.monotonic() - revoked_at:.3f} s after revoking")
    assert status_on_second() == 401
    first = requests.get(f"{cluster.url}/v1/nodes", headers=headers, timeout=5)
    assert first.status_code == 401


@pytest.mark.parametrize("kill_worker", [False, True], ids=["worker-survives", "worker-sigkilled"])
def test_delete_during_a_slow_create_leaves_no_server(slow_create, kill_worker):
    cluster = slow_create.cluster
    cluster.start("api")
    cluster.start("scheduler")
    worker = cluster.start("worker", "worker-1")
    cluster.wait_api()
    wait_catalog(slow_create)
    provider = slow_create.provider()

    created = slow_create.call("POST", "/v1/nodes", json={"name": "doomed", "image": "ubuntu"})
    assert created.status_code == 202, created.text
    node_id = created.json()["node"]["id"]
    # The provider has made the server; the worker is still waiting for its answer.
    wait_for(lambda: provider.created_count() == 1, timeout=30, what="the create at the provider")
    node = slow_create.call("GET", f"/v1/nodes/{node_id}").json()["node"]
    assert node["task"] == "building"

    if kill_worker:
        worker.kill()
    deletion = slow_create.call("DELETE", f"/v1/nodes/{node_id}")
    assert deletion.status_code == 202, deletion.text
    if kill_worker:
        cluster.start("worker", "worker-2")

    def gone() -> bool:
        deleted = {n["id"] for n in slow_create.nodes(state="deleted")}
        return node_id in deleted and provider.list_nodes() == []

    try:
        wait_for(gone, timeout=60, interval=0.2, what="the node deleted and no server left")
    except AssertionError:
        print(cluster.logs())
        raise
    assert provider.created_count() == 1
    operation = slow_create.call("GET", f"/v1/operations/{deletion.json()['operation']['id']}")
    assert operation.json()["operation"]["status"] == "succeeded"
    quota = slow_create.call("GET", "/v1/quota").json()["quota"]
    assert quota["nodes"]["used"] == 0
