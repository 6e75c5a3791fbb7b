"""Lists as data grows: ``GET /v1/nodes?limit=100`` with 1,000 and with
100,000 nodes in the project, on PostgreSQL.

For each size: p50/p99 of 300 calls through the WSGI app in this process
(the first page, and a page deep in the list, reached with ``marker``), and
req/s through ``overcast-api`` (16 threads, ``--api-workers`` processes)
under 32 keep-alive connections (``bench/load.py``). Prints the 100k/1k p50 ratio (target: at
most 1.5).

    python bench/lists.py [--sizes 1000,100000] [--seconds 8] [--connections 32]
                          [--api-workers 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.accept import line, load, one_api, populate
from bench.common import machine, percentile, summary


def in_process(database: str, key: str, marker: str | None, samples: int = 300) -> list[float]:
    """Seconds per ``GET /v1/nodes?limit=100`` through the WSGI app."""
    from cryptography.fernet import Fernet
    from webob import Request

    from services.api.wsgi import make_app
    from services.common.config import Config
    from services.common.context import build_context

    # A list decrypts nothing: any key does.
    config = Config().replace(
        database={"connection": database},
        security={"encryption_key": Fernet.generate_key().decode()},
    )
    context = build_context(config)
    app = make_app(context)
    path = "/v1/nodes?limit=100" + (f"&marker={marker}" if marker else "")
    times = []
    try:
        for index in range(samples + 20):
            request = Request.blank(path)
            request.headers["Authorization"] = key
            began = time.perf_counter()
            response = request.get_response(app)
            if response.status_int != 200:
                raise RuntimeError(response.text)
            if index >= 20:  # warm caches and pools first
                times.append(time.perf_counter() - began)
    finally:
        context.close()
    return times


def middle_marker(database: str) -> str:
    from sqlalchemy import create_engine, func, select

    from services.common.db.models import Node

    engine = create_engine(database)
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(Node)) or 0
        marker = connection.scalar(
            select(Node.id).order_by(Node.created_at, Node.id).offset(count // 2).limit(1)
        )
    engine.dispose()
    return str(marker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--api-workers", type=int, default=1, help="[api] workers")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"machine: {machine()}")
    first_p50: dict[int, float] = {}
    with one_api(args.api_workers) as (deployment, database, _broker):
        cluster = deployment.cluster
        key = deployment.api.headers["Authorization"]
        plain = database.replace("+psycopg", "")
        for size in sizes:
            populate(plain, size)
            first = in_process(database, key, None)
            deep = in_process(database, key, middle_marker(plain))
            first_p50[size] = percentile(first, 0.5)
            print(summary(f"{size:>7} nodes: first page, in process", first))
            print(summary(f"{size:>7} nodes: middle page, in process", deep))
            served = load(
                f"{cluster.url}/v1/nodes?limit=100",
                args.seconds,
                args.connections,
                "--header",
                f"Authorization: {key}",
            )
            print(line(f"{size:>7} nodes: over HTTP", served))
    if len(sizes) > 1:
        ratio = first_p50[sizes[-1]] / first_p50[sizes[0]]
        print(f"p50 at {sizes[-1]} / p50 at {sizes[0]}: {ratio:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
