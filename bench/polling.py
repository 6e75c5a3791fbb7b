"""Provider calls while 500 nodes boot on one account: O(1) per poll interval.

Runs the whole service in-process (SQLite + memory://) with a dummy account
whose nodes take a few seconds to boot, creates 500 nodes, and counts every
provider call by kind per poll interval until all run.

    python bench/polling.py [--nodes 500] [--boot-delay 4] [--poll-interval 0.5]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine
from drivers import DriverType, register_driver
from drivers.compute.dummy import DummyNodeDriver

CALLS: collections.Counter[str] = collections.Counter()
LOCK = threading.Lock()


class CountingDummy(DummyNodeDriver):
    """The dummy provider, counting every call made to it."""

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if callable(value) and name in (
            "list_nodes",
            "get_node",
            "create_node",
            "list_sizes",
            "list_locations",
            "list_images",
        ):

            def counted(*args: Any, **kwargs: Any) -> Any:
                with LOCK:
                    CALLS[name] += 1
                return value(*args, **kwargs)

            return counted
        return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--boot-delay", type=float, default=4.0)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    register_driver(DriverType.COMPUTE, "counting-dummy", CountingDummy)
    from tests.functional.harness import service_config, start_service, stop_service

    with tempfile.TemporaryDirectory() as scratch:
        config = service_config(Path(scratch)).replace(
            worker={"poll_interval": args.poll_interval, "pool_size": 8}
        )
        service = start_service(config)
        try:
            service.add_account("alpha", "counting", "counting-dummy", boot_delay=args.boot_delay)
            with LOCK:
                CALLS.clear()
            started = time.monotonic()
            for offset in range(0, args.nodes, 100):
                answer = service.call(
                    "POST",
                    "/v1/nodes",
                    body={
                        "name": "boot",
                        "image": "ubuntu",
                        "count": min(100, args.nodes - offset),
                    },
                )
                assert answer.status == 202, answer.body
            intervals: list[dict[str, int]] = []
            previous: collections.Counter[str] = collections.Counter()
            while True:
                time.sleep(args.poll_interval)  # sampling period of the measurement itself
                with LOCK:
                    now = collections.Counter(CALLS)
                intervals.append(dict(now - previous))
                previous = now
                running = service.call("GET", "/v1/nodes?state=running&limit=1000").body
                if len(running["nodes"]) >= args.nodes:
                    break
            elapsed = time.monotonic() - started
        finally:
            stop_service(service)
    booting = [interval.get("list_nodes", 0) for interval in intervals]
    print(
        f"{args.nodes} nodes on one account, boot delay {args.boot_delay:.1f} s, "
        f"poll interval {args.poll_interval:.1f} s: all running after {elapsed:.1f} s"
    )
    print(
        f"list_nodes calls per poll interval while booting: max {max(booting)}, "
        f"mean {sum(booting) / len(booting):.2f} over {len(booting)} intervals"
    )
    print(
        f"get_node calls in all: {CALLS['get_node']}; create_node calls: "
        f"{CALLS['create_node']}; list_nodes calls in all: {CALLS['list_nodes']}"
    )
    print(
        "provider calls per node for polling: "
        f"{(CALLS['list_nodes'] + CALLS['get_node']) / args.nodes:.3f} "
        "(O(1) per interval means this falls as nodes grow)"
    )


if __name__ == "__main__":
    main()
