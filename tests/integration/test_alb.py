"""The ALB (ELBv2) driver against moto_server with IAM authentication on.
moto forwards no traffic: these tests check state."""

from __future__ import annotations

import pytest

from drivers import DriverType, account_driver, get_driver
from drivers.compute.ec2 import EC2NodeDriver
from drivers.errors import InvalidRequest, NotFound
from drivers.loadbalancer.alb import ALBLoadBalancerDriver
from drivers.loadbalancer.base import Algorithm, HealthCheck, MemberSpec

pytestmark = pytest.mark.integration


@pytest.fixture
def alb(moto):
    driver = ALBLoadBalancerDriver(moto.access_key, moto.secret_key, endpoint=moto.url)
    yield driver
    for balancer in driver.list_balancers():
        driver.destroy_balancer(balancer.id)


def target_groups(alb: ALBLoadBalancerDriver) -> list[str]:
    root = alb.elb.call("DescribeTargetGroups")
    return [el.text for el in root.iterfind(".//{*}TargetGroups/{*}member/{*}TargetGroupArn")]


def test_registered_for_aws_accounts_and_what_it_cannot_do_is_named(alb):
    assert get_driver(DriverType.LOADBALANCER, "alb") is ALBLoadBalancerDriver
    assert account_driver("ec2", DriverType.LOADBALANCER) == "alb"
    with pytest.raises(InvalidRequest, match="supported: http"):
        alb.create_balancer("tls", 443, protocol="https")
    with pytest.raises(InvalidRequest, match="round_robin"):
        alb.create_balancer("odd", 80, algorithm="random")
    with pytest.raises(InvalidRequest, match="not both"):
        alb.create_balancer(
            "mixed",
            80,
            members=[MemberSpec(ip="172.31.0.10", port=80), MemberSpec(instance_id="i-1")],
        )
    with pytest.raises(NotFound):
        alb.get_balancer("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1")


def test_one_create_makes_all_four_parts_and_destroy_removes_them(alb):
    members = [MemberSpec(ip=f"172.31.0.{n}", port=8080) for n in (10, 11)]
    balancer = alb.create_balancer(
        "web",
        80,
        algorithm=Algorithm.LEAST_CONNECTIONS,
        members=members,
        health_check=HealthCheck(path="/health", interval=10),
    )
    assert balancer.port == 80
    assert balancer.algorithm is Algorithm.LEAST_CONNECTIONS
    assert balancer.extra["target_type"] == "ip"
    assert balancer.ip and balancer.ip.endswith("elb.amazonaws.com")
    assert sorted(m.id for m in alb.list_members(balancer.id)) == [
        "172.31.0.10:8080",
        "172.31.0.11:8080",
    ]
    assert [b.id for b in alb.list_balancers()] == [balancer.id]

    added = alb.attach_member(balancer.id, MemberSpec(ip="172.31.0.12", port=8080))
    assert added.id in {m.id for m in alb.list_members(balancer.id)}
    alb.detach_member(balancer.id, added.id)
    assert added.id not in {m.id for m in alb.list_members(balancer.id)}
    with pytest.raises(NotFound):
        alb.detach_member(balancer.id, "172.31.0.99:8080")
    with pytest.raises(InvalidRequest, match="ips"):
        alb.attach_member(balancer.id, MemberSpec(instance_id="i-0123456789abcdef0", port=80))

    updated = alb.update_balancer(balancer.id, algorithm=Algorithm.ROUND_ROBIN)
    assert updated.algorithm is Algorithm.ROUND_ROBIN

    group = balancer.extra["target_group"]
    assert group in target_groups(alb)
    alb.destroy_balancer(balancer.id)
    assert alb.list_balancers() == []
    assert group not in target_groups(alb)
    with pytest.raises(NotFound):
        alb.get_balancer(balancer.id)


def test_instances_are_attached_by_id(moto, alb):
    ec2 = EC2NodeDriver(moto.access_key, moto.secret_key, endpoint=moto.url)
    location = ec2.list_locations()[0]
    size = next(s for s in ec2.list_sizes(location) if s.id == "t3.micro")
    image = next(i for i in ec2.list_images(location) if i.name.startswith("ubuntu/images"))
    node = ec2.create_node("member", size, image, location)
    try:
        first = ec2.create_node("first", size, image, location)
        balancer = alb.create_balancer(
            "apps", 80, members=[MemberSpec(instance_id=first.id, port=8080)]
        )
        assert balancer.extra["target_type"] == "instance"
        member = alb.attach_compute_node(balancer.id, node, 8080)
        assert member.id == f"{node.id}:8080"
        listed = {m.extra["instance_id"] for m in alb.list_members(balancer.id)}
        assert listed == {first.id, node.id}
    finally:
        for each in ec2.list_nodes():
            ec2.destroy_node(each)
