"""Metrics across processes: two API workers, a scheduler and a worker on
PostgreSQL and RabbitMQ write their figures to one multiprocess directory,
and a scrape of the metrics address sums them all."""

from __future__ import annotations

import pytest
import requests

from tests.functional.test_metrics import scrape, value
from tests.helpers import wait_for
from tests.integration.deployment import free_port, wait_catalog

pytestmark = pytest.mark.integration


def test_a_scrape_sums_every_process_of_the_host(deployment, tmp_path):
    cluster = deployment.cluster
    port = free_port()
    shared = {"OVERCAST_METRICS__MULTIPROCESS_DIR": str(tmp_path / "metrics")}
    cluster.start(
        "api", OVERCAST_API__WORKERS="2", OVERCAST_METRICS__BIND=f"127.0.0.1:{port}", **shared
    )
    cluster.start("scheduler", **shared)
    cluster.start("worker", **shared)
    cluster.wait_api()
    wait_catalog(deployment)
    node_ids = deployment.create_nodes(12)
    deployment.wait_all(node_ids, "running")

    def scraped() -> dict:
        answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert answer.status_code == 200, answer.text
        samples = scrape(answer.text)
        return samples if value(samples, "overcast_nodes", state="running") == 12 else {}

    samples = wait_for(scraped, what="12 running nodes in the metrics")
    creates = value(
        samples, "overcast_http_request_duration_seconds_count", route="node_create", status="202"
    )
    assert creates == 12
    assert value(samples, "overcast_messages_consumed_total", queue="scheduler") >= 12
    assert value(samples, "overcast_messages_consumed_total", queue="worker") >= 12
    assert (
        value(
            samples,
            "overcast_provider_call_duration_seconds_count",
            provider="dummy",
            method="create_node",
        )
        == 12
    )
    writers = {path.stem.rsplit("_", 1)[-1] for path in (tmp_path / "metrics").glob("*.db")}
    assert len(writers) >= 4, writers  # two API workers, the scheduler, the worker
