"""The classic ELB driver against moto_server with IAM authentication on.
moto forwards no traffic: these tests check state."""

from __future__ import annotations

import pytest

from drivers import DriverType, get_driver
from drivers.compute.ec2 import EC2NodeDriver
from drivers.errors import InvalidRequest, NotFound
from drivers.loadbalancer.base import Algorithm, Health, HealthCheck, MemberSpec, Protocol
from drivers.loadbalancer.elb import ELBLoadBalancerDriver

pytestmark = pytest.mark.integration


@pytest.fixture
def elb(moto):
    driver = ELBLoadBalancerDriver(moto.access_key, moto.secret_key, endpoint=moto.url)
    yield driver
    for balancer in driver.list_balancers():
        driver.destroy_balancer(balancer.id)


@pytest.fixture
def instances(moto):
    ec2 = EC2NodeDriver(moto.access_key, moto.secret_key, endpoint=moto.url)
    location = ec2.list_locations()[0]
    size = next(s for s in ec2.list_sizes(location) if s.id == "t3.micro")
    image = next(i for i in ec2.list_images(location) if i.name.startswith("ubuntu/images"))
    nodes = [ec2.create_node(f"web{n}", size, image, location) for n in range(3)]
    yield nodes
    for node in nodes:
        ec2.destroy_node(node)


def test_what_a_classic_balancer_cannot_do_is_refused_not_dropped(elb):
    assert get_driver(DriverType.LOADBALANCER, "elb") is ELBLoadBalancerDriver
    with pytest.raises(InvalidRequest, match="supported: round_robin"):
        elb.create_balancer("lc", 80, algorithm=Algorithm.LEAST_CONNECTIONS)
    with pytest.raises(InvalidRequest, match="instances only"):
        elb.create_balancer("ips", 80, members=[MemberSpec(ip="10.0.0.1", port=80)])
    with pytest.raises(InvalidRequest, match="one instance port"):
        elb.create_balancer(
            "ports",
            80,
            members=[
                MemberSpec(instance_id="i-1", port=80),
                MemberSpec(instance_id="i-2", port=81),
            ],
        )
    assert elb.list_balancers() == []
    with pytest.raises(NotFound):
        elb.get_balancer("nothing-here")


def test_every_method_with_members_given_at_create(elb, instances):
    first, second, third = instances
    balancer = elb.create_balancer(
        "classic",
        80,
        protocol=Protocol.HTTP,
        members=[MemberSpec(instance_id=first.id, port=8080), MemberSpec(instance_id=second.id)],
        health_check=HealthCheck(path="/health", interval=10),
    )
    assert (balancer.id, balancer.port, balancer.extra["instance_port"]) == ("classic", 80, 8080)
    assert balancer.ip and "elb" in balancer.ip
    assert [b.id for b in elb.list_balancers()] == ["classic"]
    members = elb.list_members("classic")
    assert sorted(m.id for m in members) == sorted([first.id, second.id])
    assert all(m.health in (Health.UP, Health.DOWN, Health.UNKNOWN) for m in members)

    added = elb.attach_compute_node("classic", third, 8080)
    assert added.id == third.id
    assert third.id in {m.id for m in elb.list_members("classic")}
    with pytest.raises(InvalidRequest, match="port 8080"):
        elb.attach_member("classic", MemberSpec(instance_id=third.id, port=9090))
    elb.detach_member("classic", third.id)
    assert third.id not in {m.id for m in elb.list_members("classic")}
    with pytest.raises(NotFound):
        elb.detach_member("classic", third.id)

    assert elb.update_balancer("classic", health_check=HealthCheck(path="/ok")).id == "classic"
    with pytest.raises(InvalidRequest):
        elb.update_balancer("classic", algorithm=Algorithm.RANDOM)
    elb.destroy_balancer("classic")
    assert elb.list_balancers() == []
    with pytest.raises(NotFound):
        elb.destroy_balancer("classic")
