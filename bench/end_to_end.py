"""1,000 nodes from POST to running through real processes on PostgreSQL + RabbitMQ.

For 1, 2 and 4 workers (one API, one scheduler, the dummy provider with zero
boot delay): nodes per second from the first POST to the last node running,
the per-node latency (created -> running, from the database) and the
orchestration overhead per node (that latency minus the provider's own time
for a create, measured on the same dummy state file).

    python bench/end_to_end.py [--nodes 1000] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, percentile
from drivers.compute.dummy import DummyNodeDriver
from tests.integration.deployment import deployed, wait_catalog
from tests.integration.services import postgres_database, rabbitmq_vhost


def post_all(url: str, key: str, count: int) -> None:
    sessions: dict[int, requests.Session] = {}

    def post(index: int) -> None:
        session = sessions.setdefault(index % 16, requests.Session())
        answer = session.post(
            f"{url}/v1/nodes",
            json={"name": f"n{index}", "image": "ubuntu"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        answer.raise_for_status()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(post, range(count)))


def provider_seconds_per_create(state_path: Path) -> float:
    driver = DummyNodeDriver(state_path=str(state_path))
    location = driver.list_locations()[0]
    size, image = driver.list_sizes(location)[0], driver.list_images(location)[0]
    began = time.perf_counter()
    for index in range(200):
        driver.create_node(
            f"probe{index}", size, image, location, idempotency_token=f"probe-{index}"
        )
    return (time.perf_counter() - began) / 200


def run(workers: int, nodes: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as scratch,
        postgres_database() as database,
        rabbitmq_vhost() as (broker, vhost),
        deployed(
            Path(scratch), database, broker, vhost, {"boot_delay": 0.0, "faults": {}}
        ) as deployment,
    ):
        cluster = deployment.cluster
        cluster.start("api", OVERCAST_API__THREADS="32")
        cluster.start("scheduler")
        for index in range(workers):
            cluster.start(
                "worker",
                f"worker-{index}",
                OVERCAST_WORKER__POOL_SIZE="8",
                OVERCAST_MESSAGING__PREFETCH="32",
            )
        cluster.wait_api()
        wait_catalog(deployment)
        key = deployment.api.headers["Authorization"].removeprefix("Bearer ")
        dsn = database.replace("postgresql+psycopg://", "postgresql://")
        began = time.monotonic()
        post_all(cluster.url, key, nodes)
        accepted = time.monotonic() - began
        with psycopg.connect(dsn, autocommit=True) as connection:
            while True:
                (running,) = connection.execute(
                    "SELECT count(*) FROM nodes WHERE state = 'running' AND task IS NULL"
                ).fetchone()
                if running >= nodes:
                    break
                time.sleep(0.05)  # sampling period of the measurement itself
            total = time.monotonic() - began
            latencies = [
                row[0]
                for row in connection.execute(
                    "SELECT EXTRACT(EPOCH FROM updated_at - created_at) FROM nodes"
                )
            ]
        provider = provider_seconds_per_create(deployment.dummy_state)
    p50 = percentile([float(value) for value in latencies], 0.5)
    return {
        "workers": workers,
        "nodes_per_s": nodes / total,
        "accept_s": accepted,
        "total_s": total,
        "p50_latency_ms": p50 * 1000,
        "p99_latency_ms": percentile([float(v) for v in latencies], 0.99) * 1000,
        "provider_ms": provider * 1000,
        "overhead_ms": (total / nodes) * 1000 - provider * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(
        f"{'workers':>8}{'nodes/s':>10}{'all accepted':>14}{'all running':>13}"
        f"{'p50 latency':>13}{'p99 latency':>13}{'provider/create':>17}{'overhead/node':>15}"
    )
    results = []
    for workers in args.workers:
        result = run(workers, args.nodes)
        results.append(result)
        print(
            f"{workers:>8}{result['nodes_per_s']:>10.1f}{result['accept_s']:>13.1f}s"
            f"{result['total_s']:>12.1f}s{result['p50_latency_ms']:>11.0f}ms"
            f"{result['p99_latency_ms']:>11.0f}ms{result['provider_ms']:>15.2f}ms"
            f"{result['overhead_ms']:>13.2f}ms",
            flush=True,
        )
    best = max(results, key=lambda result: result["nodes_per_s"])
    print(
        f"best: {best['nodes_per_s']:.0f} nodes/s with {best['workers']} worker(s) "
        f"(target >= 200); overhead per node {best['overhead_ms']:.1f} ms (target <= 10)"
    )


if __name__ == "__main__":
    main()
