"""The GCE network load balancer driver against the stateful GCE replay:
forwarding rules, target pools and HTTP health checks, with the recorded
ones from the apache-libcloud wheel already there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers import DriverType, account_driver, get_driver
from drivers.compute.base import Node, NodeState
from drivers.errors import InvalidRequest, NotFound
from drivers.loadbalancer.base import Algorithm, Health, HealthCheck, MemberSpec, Protocol
from drivers.loadbalancer.gce import GCELoadBalancerDriver
from tests.integration.gce_replay import GceReplay, gce_replay

pytestmark = pytest.mark.integration

WEB = ("us-central1-a/web-1", "us-central1-b/web-2")


@pytest.fixture
def peer() -> Iterator[tuple[GceReplay, GCELoadBalancerDriver]]:
    with gce_replay() as (replay, endpoint, credentials):
        yield replay, GCELoadBalancerDriver(**credentials, endpoint=endpoint, poll_interval=0.01)


def instance_url(lb: GCELoadBalancerDriver, member: str) -> str:
    zone, name = member.split("/")
    return lb.api.url(f"zones/{zone}/instances/{name}")


def test_registered_for_gce_accounts_and_what_it_cannot_do_is_named(peer):
    _, lb = peer
    assert get_driver(DriverType.LOADBALANCER, "gce") is GCELoadBalancerDriver
    assert account_driver("gce", DriverType.LOADBALANCER) == "gce"
    assert lb.list_protocols() == [Protocol.TCP]
    assert lb.list_supported_algorithms() == [Algorithm.RANDOM]
    with pytest.raises(InvalidRequest, match="supported: tcp"):
        lb.create_balancer("web", 80, protocol="http")
    with pytest.raises(InvalidRequest, match="supported: random"):
        lb.create_balancer("web", 80, protocol="tcp", algorithm="round_robin")
    with pytest.raises(InvalidRequest, match="not addresses"):
        lb.create_balancer("web", 80, members=[MemberSpec(ip="10.0.0.1", port=80)])
    with pytest.raises(InvalidRequest, match="pass port 80 through"):
        lb.create_balancer("web", 80, members=[MemberSpec(instance_id=WEB[0], port=8080)])


def test_recorded_balancers_are_listed(peer):
    _, lb = peer
    listed = {balancer.id: balancer for balancer in lb.list_balancers()}
    assert {"lcforwardingrule", "libcloud-lb-demo-lb"} <= set(listed)
    assert listed["lcforwardingrule"].ip == "173.255.119.224"
    assert listed["lcforwardingrule"].port == 8000
    assert listed["lcforwardingrule"].extra["target_pool"] == "lctargetpool"


def test_a_balancer_with_its_members_lives_its_life(peer):
    replay, lb = peer
    balancer = lb.create_balancer(
        "front",
        80,
        protocol="tcp",
        algorithm="random",
        members=[MemberSpec(instance_id=WEB[0])],
        health_check=HealthCheck(interval=5, timeout=2, path="/health"),
    )
    assert balancer.id == "front" and balancer.ip and balancer.port == 80
    assert replay.health_checks["front"]["requestPath"] == "/health"
    assert replay.pools["front"]["healthChecks"][0].endswith("/global/httpHealthChecks/front")

    replay.healthy.add(instance_url(lb, WEB[0]))
    [member] = lb.list_members("front")
    assert member.id == WEB[0] and member.health is Health.UP and member.port == 80

    second = lb.attach_member("front", MemberSpec(instance_id=WEB[1], port=80))
    node = Node(id="europe-west1-a/web-3", name="web-3", state=NodeState.RUNNING, provider="gce")
    third = lb.attach_compute_node("front", node, 80)
    health = {m.id: m.health for m in lb.list_members("front")}
    assert health == {WEB[0]: Health.UP, second.id: Health.DOWN, third.id: Health.DOWN}

    lb.detach_member("front", second.id)
    assert {m.id for m in lb.list_members("front")} == {WEB[0], third.id}
    with pytest.raises(NotFound):
        lb.detach_member("front", second.id)

    lb.update_balancer("front", health_check=HealthCheck(path="/ready"))
    assert replay.health_checks["front"]["requestPath"] == "/ready"
    with pytest.raises(InvalidRequest):
        lb.update_balancer("front", algorithm="least_connections")

    lb.destroy_balancer("front")
    assert "front" not in replay.rules | replay.pools | replay.health_checks
    with pytest.raises(NotFound):
        lb.get_balancer("front")
    with pytest.raises(NotFound):
        lb.destroy_balancer("front")


def test_a_failed_create_removes_what_it_made(peer):
    replay, lb = peer
    replay.rules["taken"] = dict(replay.rules["lcforwardingrule"], name="taken")
    with pytest.raises(InvalidRequest, match="already exists"):
        lb.create_balancer("taken", 80, protocol="tcp", algorithm="random")
    assert "taken" not in replay.pools and "taken" not in replay.health_checks
