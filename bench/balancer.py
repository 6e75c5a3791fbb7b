"""Member changes on a real HAProxy balancer, under steady load.

One balancer (the ``haproxy`` driver, one HAProxy process) over two small
HTTP servers that answer their name, with four threads sending requests
without pause. 100 times: attach a third server and time until it answers a
request through the balancer (attach applied), then detach it and time the
call (drain, wait for its connections, remove). Prints p50/p99 of both and
every failed request during the 100 changes.

    python bench/balancer.py [--changes 100]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, summary
from drivers.loadbalancer.base import HealthCheck
from drivers.loadbalancer.haproxy import HAProxyLoadBalancerDriver
from tests.integration.deployment import free_port
from tests.integration.test_haproxy import NamedServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100)
    args = parser.parse_args()
    print(machine())
    servers = [NamedServer(name) for name in ("alpha", "beta", "gamma")]
    with tempfile.TemporaryDirectory() as state:
        driver = HAProxyLoadBalancerDriver(state_dir=Path(state))
        port = free_port()
        checks = HealthCheck(interval=0.5, path="/health", healthy_threshold=1)
        balancer = driver.create_balancer(
            "bench", port, members=[s.spec() for s in servers[:2]], health_check=checks
        )
        stop = threading.Event()
        answers: collections.Counter[str] = collections.Counter()
        errors: collections.Counter[str] = collections.Counter()
        last_gamma = [0.0]

        def load() -> None:
            session = requests.Session()
            while not stop.is_set():
                try:
                    answer = session.get(f"http://127.0.0.1:{port}/", timeout=10)
                    if answer.status_code != 200:
                        errors[f"HTTP {answer.status_code}"] += 1
                    answers[answer.text] += 1
                    if answer.text == "gamma":
                        last_gamma[0] = time.monotonic()
                except requests.RequestException as error:
                    errors[type(error).__name__] += 1

        workers = [threading.Thread(target=load, daemon=True) for _ in range(4)]
        for worker in workers:
            worker.start()
        applied, detached = [], []
        try:
            for _ in range(args.changes):
                began = time.monotonic()
                member = driver.attach_member(balancer.id, servers[2].spec())
                while last_gamma[0] < began:
                    time.sleep(0.001)
                applied.append(last_gamma[0] - began)
                began = time.monotonic()
                driver.detach_member(balancer.id, member.id)
                detached.append(time.monotonic() - began)
        finally:
            stop.set()
            for worker in workers:
                worker.join()
            driver.destroy_balancer(balancer.id)
            for server in servers:
                server.stop()
    print(f"{args.changes} attach/detach cycles, 4 load threads, one HAProxy 2.6")
    print(summary("attach: call to first answer from it", applied))
    print(summary("detach: drain, wait, remove", detached))
    print(f"requests served: {sum(answers.values())} {dict(answers)}")
    print(f"failed requests during the changes: {sum(errors.values())} {dict(errors)}")


if __name__ == "__main__":
    main()
