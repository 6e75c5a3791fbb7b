"""The accept path under load: ``POST /v1/nodes`` against a bare INSERT + publish.

Starts ``overcast-api`` on a fresh PostgreSQL database and RabbitMQ vhost, and
beside it ``bench/bare_accept.py`` (one INSERT and one persistent publish per
request, served the same way). A load generator in its own process
(``bench/load.py``) drives each with 32 keep-alive connections; then
``GET /v1/nodes?limit=100``. Prints req/s, p50/p99 and the ratio.

The project has a node quota, so every create checks it. ``--existing``
measures the create again once the project already holds that many live
nodes (written straight into the database): the quota check must not grow
with the project. At each size it also times the check alone, 300 times:
the conditional UPDATE of the project's usage row that creates run now, and
the count of the project's live nodes that they ran before.

    python bench/accept.py [--seconds 10] [--connections 32] [--existing 0,50000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine
from tests.integration.deployment import Deployment, deployed, free_port
from tests.integration.services import postgres_database, rabbitmq_vhost

BODY = json.dumps({"name": "load", "image": "ubuntu", "min_ram_mb": 1024})


def load(url: str, seconds: float, connections: int, *options: str) -> dict[str, Any]:
    output = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "load.py"),
            url,
            "--seconds",
            str(seconds),
            "--connections",
            str(connections),
            *options,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def populate(database: str, total: int) -> None:
    """Grow the benchmark project to ``total`` live nodes (pending, never scheduled)."""
    from sqlalchemy import create_engine, func, insert, select

    from services.common.db.models import Node, Project, new_id, utcnow

    engine = create_engine(database)
    with engine.begin() as connection:
        project_id = connection.scalar(select(Project.id).where(Project.name == "ci"))
        have = connection.scalar(
            select(func.count()).select_from(Node).where(Node.project_id == project_id)
        )
        for start in range(have or 0, total, 5000):
            now = utcnow()
            rows = [
                {
                    "id": new_id("node"),
                    "project_id": project_id,
                    "name": f"existing-{index}",
                    "state": "pending",
                    "task": "scheduling",
                    "spec": {"image": "ubuntu"},
                    "created_at": now,
                    "updated_at": now,
                }
                for index in range(start, min(total, start + 5000))
            ]
            connection.execute(insert(Node), rows)
        connection.exec_driver_sql("ANALYZE nodes")
    engine.dispose()


def time_quota_checks(database: str, samples: int = 300) -> tuple[float, float]:
    """p50 (ms) of the quota check as it is, and of the node count it replaced."""
    from sqlalchemy import create_engine, func, select

    from bench.common import percentile
    from services.common import quotas
    from services.common.db.models import Node, Project
    from services.common.db.session import make_session_factory

    engine = create_engine(database)
    sessions = make_session_factory(engine)
    charge, count = [], []
    with sessions() as session:
        project_id = session.scalar(select(Project.id).where(Project.name == "ci"))
    for _ in range(samples):
        with sessions() as session:
            began = time.perf_counter()
            quotas.charge(session, project_id, [Node(charged={})], {"nodes": 1})
            charge.append(time.perf_counter() - began)
            session.rollback()
            began = time.perf_counter()
            session.scalar(
                select(func.count())
                .select_from(Node)
                .where(
                    Node.project_id == project_id,
                    Node.deleted_at.is_(None),
                    Node.state != "error",
                )
            )
            count.append(time.perf_counter() - began)
            session.rollback()
    engine.dispose()
    return percentile(charge, 0.5) * 1000, percentile(count, 0.5) * 1000


@contextmanager
def one_api(workers: int = 1) -> Iterator[tuple[Deployment, str, str]]:
    """``overcast-api`` (16 threads, ``workers`` processes) on a fresh PostgreSQL
    database and RabbitMQ vhost: the deployment, the database URL and the broker URL."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        postgres_database() as database,
        rabbitmq_vhost() as (broker, vhost),
        deployed(Path(scratch), database, broker, vhost) as deployment,
    ):
        deployment.cluster.start(
            "api", OVERCAST_API__THREADS="16", OVERCAST_API__WORKERS=str(workers)
        )
        deployment.cluster.wait_api()
        yield deployment, database, broker


def line(name: str, result: dict[str, Any]) -> str:
    return (
        f"{name:36}{result['rps']:9.0f} req/s  p50 {result['p50_ms']:7.1f} ms  "
        f"p99 {result['p99_ms']:7.1f} ms  errors {result['errors']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--existing",
        default="0,50000",
        help="comma-separated project sizes (live nodes) to measure the create at",
    )
    parser.add_argument("--api-workers", type=int, default=1, help="[api] workers")
    args = parser.parse_args()
    sizes = [int(size) for size in args.existing.split(",") if size.strip()]
    print(f"machine: {machine()}")
    with one_api(args.api_workers) as (deployment, database, broker):
        cluster = deployment.cluster
        cluster.manage("project", "set-quota", "ci", "--max-nodes", "10000000")
        key = deployment.api.headers["Authorization"]
        bare_port = free_port()
        bare = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).parent / "bare_accept.py"),
                "--database",
                database,
                "--broker",
                broker,
                "--bind",
                f"127.0.0.1:{bare_port}",
                "--threads",
                "16",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_up(f"http://127.0.0.1:{bare_port}/")
            post = ("--method", "POST", "--body", BODY)
            creates: list[tuple[int, dict[str, Any]]] = []
            checks: list[tuple[int, float, float]] = []
            for size in sizes:
                populate(database, size)
                checks.append((size, *time_quota_checks(database)))
                creates.append(
                    (
                        size,
                        load(
                            f"{cluster.url}/v1/nodes",
                            args.seconds,
                            args.connections,
                            *post,
                            "--header",
                            f"Authorization: {key}",
                        ),
                    )
                )
            ours = creates[0][1]
            baseline = load(f"http://127.0.0.1:{bare_port}/", args.seconds, args.connections, *post)
            listing = load(
                f"{cluster.url}/v1/nodes?limit=100",
                args.seconds,
                args.connections,
                "--header",
                f"Authorization: {key}",
            )
        finally:
            bare.terminate()
            bare.wait(timeout=10)
    print(
        f"{args.connections} connections, {args.seconds:.0f} s each, "
        f"{args.api_workers} API process(es) of 16 threads"
    )
    for size, result in creates:
        print(line(f"POST /v1/nodes, {size} nodes in project", result))
    for size, charge_ms, count_ms in checks:
        print(
            f"quota check, {size:6} nodes in project: conditional UPDATE p50 {charge_ms:6.2f} ms "
            f"(the live-node count it replaced: p50 {count_ms:6.2f} ms)"
        )
    print(line("bare INSERT + persistent publish", baseline))
    print(line("GET /v1/nodes?limit=100", listing))
    print(f"accept ratio overcast/bare: {ours['rps'] / baseline['rps']:.2f} (target >= 0.60)")


if __name__ == "__main__":
    main()
