"""The HAProxy driver with real traffic: a real HAProxy (Debian's 2.6) in front
of small HTTP servers on 127.0.0.1 that each answer their own name."""

from __future__ import annotations

import collections
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from drivers import DriverType, get_driver
from drivers.errors import InvalidRequest, NotFound
from drivers.loadbalancer.base import Algorithm, Health, HealthCheck, MemberSpec, Protocol
from drivers.loadbalancer.haproxy import HAProxyLoadBalancerDriver
from tests.helpers import need_haproxy, wait_for
from tests.integration.deployment import free_port

pytestmark = pytest.mark.integration

FAST_CHECKS = HealthCheck(
    interval=0.2, timeout=0.5, healthy_threshold=1, unhealthy_threshold=2, path="/health"
)


class NamedServer:
    """Answers its name on ``/``; ``/slow`` waits until :attr:`release` is set."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.release = threading.Event()
        self.holding = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path == "/slow":
                    server.holding += 1
                    server.release.wait(30)
                body = server.name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # a full backlog would make HAProxy redispatch

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # HAProxy closing idle connections is not news

        self.http = Server(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def spec(self, weight: int = 1) -> MemberSpec:
        return MemberSpec(ip="127.0.0.1", port=self.port, weight=weight)

    def stop(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def servers() -> Iterator[list[NamedServer]]:
    running = [NamedServer(name) for name in ("alpha", "beta", "gamma", "delta")]
    yield running
    for server in running:
        server.stop()


@pytest.fixture
def haproxy(tmp_path) -> Iterator[HAProxyLoadBalancerDriver]:
    need_haproxy()
    driver = HAProxyLoadBalancerDriver(state_dir=tmp_path / "haproxy", drain_timeout=5)
    yield driver
    for balancer in driver.list_balancers():
        driver.destroy_balancer(balancer.id)


def ask(port: int, path: str = "/") -> str:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=10).text


def connections_of(driver: HAProxyLoadBalancerDriver, balancer_id: str) -> dict[int, int]:
    """Each member's current connections as HAProxy counts them, by port."""
    return {m.port: m.extra["connections"] for m in driver.list_members(balancer_id)}


def test_registered_and_what_it_cannot_do_is_named(haproxy, servers):
    assert get_driver(DriverType.LOADBALANCER, "haproxy") is HAProxyLoadBalancerDriver
    assert set(haproxy.list_protocols()) == {Protocol.HTTP, Protocol.TCP}
    with pytest.raises(InvalidRequest, match="supported: http, tcp"):
        haproxy.create_balancer("tls", free_port(), protocol="https")
    with pytest.raises(InvalidRequest, match="least_connections"):
        haproxy.create_balancer("odd", free_port(), algorithm="source_hash")
    with pytest.raises(InvalidRequest):
        haproxy.create_balancer("ids", free_port(), members=[MemberSpec(instance_id="i-1")])
    with pytest.raises(NotFound):
        haproxy.get_balancer("lb-missing")


def test_round_robin_spreads_requests_evenly(haproxy, servers):
    port = free_port()
    balancer = haproxy.create_balancer(
        "web", port, members=[s.spec() for s in servers[:3]], health_check=FAST_CHECKS
    )
    assert balancer.state == "running" and balancer.port == port
    wait_for(
        lambda: all(m.health is Health.UP for m in haproxy.list_members(balancer.id)),
        what="three healthy members",
    )
    counts = collections.Counter(ask(port) for _ in range(300))
    assert set(counts) == {"alpha", "beta", "gamma"}
    assert all(97 <= count <= 103 for count in counts.values()), counts


def test_weights_split_traffic_and_change_at_runtime(haproxy, servers):
    port = free_port()
    balancer = haproxy.create_balancer(
        "weighted",
        port,
        algorithm=Algorithm.WEIGHTED_ROUND_ROBIN,
        members=[servers[0].spec(weight=2), servers[1].spec(weight=1)],
        health_check=FAST_CHECKS,
    )
    counts = collections.Counter(ask(port) for _ in range(300))
    assert 195 <= counts["alpha"] <= 205, counts
    beta = next(m for m in haproxy.list_members(balancer.id) if m.port == servers[1].port)
    haproxy.set_member_weight(balancer.id, beta.id, 0)
    assert {ask(port) for _ in range(30)} == {"alpha"}


def test_least_connections_sends_new_requests_to_the_idle_member(haproxy, servers):
    port = free_port()
    balancer = haproxy.create_balancer(
        "busy",
        port,
        algorithm=Algorithm.LEAST_CONNECTIONS,
        members=[s.spec() for s in servers[:3]],
        health_check=FAST_CHECKS,
    )
    wait_for(
        lambda: all(m.health is Health.UP for m in haproxy.list_members(balancer.id)),
        what="three healthy members",
    )
    with ThreadPoolExecutor(2) as pool:
        slow = []
        for held in (1, 2):  # one at a time: each choice sees the last one counted
            slow.append(pool.submit(ask, port, "/slow"))
            wait_for(
                lambda held=held: sum(s.holding for s in servers[:3]) == held,
                what=f"{held} slow request(s) held",
            )
        idle = next(s for s in servers[:3] if s.holding == 0)
        answers = set()
        for _ in range(20):
            # The client can have its answer before HAProxy counts the stream
            # as ended; until then the idle member ties with the busy ones.
            wait_for(
                lambda: connections_of(haproxy, balancer.id)[idle.port] == 0,
                what="the idle member counted idle again",
            )
            answers.add(ask(port))
        for server in servers:
            server.release.set()
        assert sorted(f.result() for f in slow) == sorted(s.name for s in servers[:3] if s.holding)
    assert answers == {idle.name}


def test_a_stopped_member_is_marked_down_and_no_request_fails_after(haproxy, servers):
    port = free_port()
    balancer = haproxy.create_balancer(
        "healthy", port, members=[s.spec() for s in servers[:3]], health_check=FAST_CHECKS
    )
    wait_for(
        lambda: all(m.health is Health.UP for m in haproxy.list_members(balancer.id)),
        what="three healthy members",
    )
    servers[1].stop()
    wait_for(
        lambda: any(m.health is Health.DOWN for m in haproxy.list_members(balancer.id)),
        timeout=5,
        what="the stopped member marked down",
    )
    answers = collections.Counter(ask(port) for _ in range(100))
    assert set(answers) == {"alpha", "gamma"}


def test_attach_and_detach_under_load_fail_no_request(haproxy, servers):
    port = free_port()
    balancer = haproxy.create_balancer(
        "steady", port, members=[s.spec() for s in servers[:2]], health_check=FAST_CHECKS
    )
    stop = threading.Event()
    results: collections.Counter[str] = collections.Counter()

    def load() -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                answer = session.get(f"http://127.0.0.1:{port}/", timeout=10)
                results["ok" if answer.status_code == 200 else f"http {answer.status_code}"] += 1
            except requests.RequestException as error:
                results[type(error).__name__] += 1

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(100):
            member = haproxy.attach_member(balancer.id, servers[2].spec())
            served = results["ok"]
            wait_for(lambda s=served: results["ok"] > s, what="a request while attached")
            haproxy.detach_member(balancer.id, member.id)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    failures = {k: v for k, v in results.items() if k != "ok"}
    assert failures == {}
    assert results["ok"] >= 100  # the load ran through every change
    assert [m.port for m in haproxy.list_members(balancer.id)] == [s.port for s in servers[:2]]


def test_a_balancer_whose_haproxy_died_is_rebuilt_with_its_members(haproxy, servers):
    port = free_port()
    balancer = haproxy.create_balancer(
        "phoenix", port, members=[servers[0].spec()], health_check=FAST_CHECKS
    )
    haproxy.attach_member(balancer.id, servers[1].spec())  # added at runtime, then lost
    os.kill(balancer.extra["pid"], signal.SIGKILL)
    wait_for(lambda: haproxy.get_balancer(balancer.id).state == "stopped", what="haproxy gone")
    assert haproxy.ensure_running(balancer.id) is True
    assert {ask(port) for _ in range(20)} == {"alpha", "beta"}
    assert haproxy.ensure_running(balancer.id) is False
    haproxy.destroy_balancer(balancer.id)
    with pytest.raises(NotFound):
        haproxy.get_balancer(balancer.id)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
