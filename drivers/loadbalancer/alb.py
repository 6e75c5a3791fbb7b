"""``alb``: Amazon Application Load Balancers (ELBv2) over the Query API.

One balancer is four AWS resources, made and destroyed together: the load
balancer, one target group, one listener forwarding to it, and the target
registrations. A create that fails partway deletes what it made; destroy
removes all four. Members are IP targets (a target group of type ``ip``) or
instances (type ``instance``), fixed by the first members given; the
balancer's id is its ARN. ``endpoint`` points at another ELBv2 endpoint
(moto in the tests); ``subnets`` and ``vpc_id`` default to the region's
default VPC and its default subnets.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from typing import Any

from drivers.compute.base import Node
from drivers.compute.ec2.connection import EC2Connection
from drivers.compute.ec2.connection import xml_text as text
from drivers.compute.ec2.signing import Credentials
from drivers.errors import DriverError, InvalidRequest, NotFound
from drivers.loadbalancer.base import (
    Algorithm,
    Health,
    HealthCheck,
    LoadBalancer,
    LoadBalancerDriver,
    LoadBalancerFeatures,
    Member,
    MemberSpec,
    Protocol,
)

PROVIDER = "alb"
VERSION = "2015-12-01"
#: ELBv2's target-group attribute for the algorithm.
ALGORITHMS = {
    Algorithm.ROUND_ROBIN: "round_robin",
    Algorithm.WEIGHTED_ROUND_ROBIN: "weighted_random",
    Algorithm.LEAST_CONNECTIONS: "least_outstanding_requests",
}
HEALTH = {
    "healthy": Health.UP,
    "unhealthy": Health.DOWN,
    "draining": Health.DRAINING,
    "unused": Health.MAINTENANCE,
    "initial": Health.UNKNOWN,
    "unavailable": Health.UNKNOWN,
}
NAME = re.compile(r"^[A-Za-z0-9-]{1,32}$")


class ALBLoadBalancerDriver(LoadBalancerDriver):
    name = "Amazon Application Load Balancer"
    provider = PROVIDER
    features = LoadBalancerFeatures(ip_members=True, drain=True)
    protocols = (Protocol.HTTP,)
    algorithms = tuple(ALGORITHMS)

    def __init__(
        self,
        key: str,
        secret: str,
        *,
        region: str = "us-east-1",
        endpoint: str | None = None,
        token: str | None = None,
        subnets: Iterable[str] | None = None,
        vpc_id: str | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        **_options: Any,
    ) -> None:
        credentials = Credentials(key, secret, token)
        self.region = region
        self.elb = EC2Connection(
            credentials,
            region,
            endpoint or f"https://elasticloadbalancing.{region}.amazonaws.com",
            timeout,
            service="elasticloadbalancing",
            version=VERSION,
        )
        self.ec2 = EC2Connection(
            credentials, region, endpoint or f"https://ec2.{region}.amazonaws.com", timeout
        )
        self.subnets = list(subnets or ())
        self.vpc_id = vpc_id

    # -- helpers -----------------------------------------------------------

    def _network(self) -> tuple[str, list[str]]:
        """The VPC and (at least two) subnets balancers go in."""
        if self.vpc_id and self.subnets:
            return self.vpc_id, self.subnets
        root = self.ec2.call(
            "DescribeSubnets",
            {"Filter.1.Name": "default-for-az", "Filter.1.Value.1": "true"},
        )
        found = [
            (text(item, "vpcId"), text(item, "subnetId"))
            for item in root.iterfind(".//{*}subnetSet/{*}item")
        ]
        if len(found) < 2:
            raise InvalidRequest(
                "an ALB needs two subnets: give subnets and vpc_id (no default VPC here)",
                provider=PROVIDER,
            )
        return self.vpc_id or found[0][0], self.subnets or [subnet for _, subnet in found[:2]]

    @staticmethod
    def _members_params(target_group: str, members: Iterable[MemberSpec]) -> dict[str, Any]:
        params: dict[str, Any] = {"TargetGroupArn": target_group}
        for number, member in enumerate(members, 1):
            params[f"Targets.member.{number}.Id"] = member.ip or member.instance_id
            if member.port is not None:
                params[f"Targets.member.{number}.Port"] = member.port
        return params

    def _parts(self, balancer_id: str) -> tuple[Any, Any | None, Any | None]:
        """The load balancer, its (first) listener and its target group."""
        try:
            root = self.elb.call(
                "DescribeLoadBalancers", {"LoadBalancerArns.member.1": balancer_id}
            )
        except NotFound:
            raise NotFound(f"balancer {balancer_id} not found", provider=PROVIDER) from None
        balancer = root.find(".//{*}LoadBalancers/{*}member")
        if balancer is None:
            raise NotFound(f"balancer {balancer_id} not found", provider=PROVIDER)
        listeners = self.elb.call("DescribeListeners", {"LoadBalancerArn": balancer_id})
        listener = listeners.find(".//{*}Listeners/{*}member")
        group = None
        if listener is not None:
            group_arn = text(listener, "DefaultActions/member/TargetGroupArn")
            if group_arn:
                groups = self.elb.call(
                    "DescribeTargetGroups", {"TargetGroupArns.member.1": group_arn}
                )
                group = groups.find(".//{*}TargetGroups/{*}member")
        return balancer, listener, group

    def _algorithm(self, group: Any | None) -> Algorithm:
        if group is None:
            return Algorithm.ROUND_ROBIN
        root = self.elb.call(
            "DescribeTargetGroupAttributes", {"TargetGroupArn": text(group, "TargetGroupArn")}
        )
        for attribute in root.iterfind(".//{*}Attributes/{*}member"):
            if text(attribute, "Key") == "load_balancing.algorithm.type":
                value = text(attribute, "Value")
                for algorithm, name in ALGORITHMS.items():
                    if name == value:
                        return algorithm
        return Algorithm.ROUND_ROBIN

    def _to_balancer(self, balancer: Any, listener: Any | None, group: Any | None) -> LoadBalancer:
        return LoadBalancer(
            id=text(balancer, "LoadBalancerArn"),
            name=text(balancer, "LoadBalancerName"),
            state=text(balancer, "State/Code") or "unknown",
            ip=text(balancer, "DNSName") or None,
            port=int(text(listener, "Port") or 0) if listener is not None else 0,
            protocol=Protocol.HTTP,
            algorithm=self._algorithm(group),
            provider=PROVIDER,
            location=self.region,
            extra={
                "target_group": text(group, "TargetGroupArn") if group is not None else None,
                "target_type": text(group, "TargetType") if group is not None else None,
                "listener": text(listener, "ListenerArn") if listener is not None else None,
            },
        )

    # -- balancers ---------------------------------------------------------

    def list_balancers(self) -> list[LoadBalancer]:
        found = []
        root = self.elb.call("DescribeLoadBalancers")
        for balancer in root.iterfind(".//{*}LoadBalancers/{*}member"):
            if text(balancer, "Type") not in ("", "application"):
                continue
            found.append(self.get_balancer(text(balancer, "LoadBalancerArn")))
        return found

    def get_balancer(self, balancer_id: str) -> LoadBalancer:
        return self._to_balancer(*self._parts(balancer_id))

    def create_balancer(
        self,
        name: str,
        port: int,
        protocol: Protocol | str = Protocol.HTTP,
        algorithm: Algorithm | str = Algorithm.ROUND_ROBIN,
        members: Iterable[MemberSpec] = (),
        health_check: HealthCheck | None = None,
    ) -> LoadBalancer:
        self.check_supported(protocol, algorithm)
        if not NAME.match(name):
            raise InvalidRequest(
                "ALB names are 1 to 32 of A-Z, a-z, 0-9 and '-'", provider=PROVIDER
            )
        specs = list(members)
        kinds = {"ip" if spec.ip else "instance" for spec in specs}
        if len(kinds) > 1:
            raise InvalidRequest(
                "an ALB target group takes IP members or instances, not both", provider=PROVIDER
            )
        target_type = kinds.pop() if kinds else "ip"
        check = health_check or HealthCheck()
        vpc, subnets = self._network()
        made: list[tuple[str, dict[str, Any]]] = []  # what to delete if a step fails
        try:
            params: dict[str, Any] = {"Name": name, "Type": "application"}
            for number, subnet in enumerate(subnets, 1):
                params[f"Subnets.member.{number}"] = subnet
            root = self.elb.call("CreateLoadBalancer", params)
            balancer_arn = text(
                root, "CreateLoadBalancerResult/LoadBalancers/member/LoadBalancerArn"
            )
            made.append(("DeleteLoadBalancer", {"LoadBalancerArn": balancer_arn}))
            root = self.elb.call(
                "CreateTargetGroup",
                {
                    "Name": f"{name}-tg"[:32],
                    "Protocol": "HTTP",
                    "Port": port,
                    "VpcId": vpc,
                    "TargetType": target_type,
                    "HealthCheckPath": check.path or "/",
                    "HealthCheckIntervalSeconds": max(5, int(check.interval)),
                    "HealthCheckTimeoutSeconds": max(2, int(check.timeout)),
                    "HealthyThresholdCount": max(2, check.healthy_threshold),
                    "UnhealthyThresholdCount": max(2, check.unhealthy_threshold),
                },
            )
            group_arn = text(root, "CreateTargetGroupResult/TargetGroups/member/TargetGroupArn")
            made.insert(0, ("DeleteTargetGroup", {"TargetGroupArn": group_arn}))
            self._set_algorithm(group_arn, Algorithm(algorithm))
            root = self.elb.call(
                "CreateListener",
                {
                    "LoadBalancerArn": balancer_arn,
                    "Protocol": "HTTP",
                    "Port": port,
                    "DefaultActions.member.1.Type": "forward",
                    "DefaultActions.member.1.TargetGroupArn": group_arn,
                },
            )
            listener_arn = text(root, "CreateListenerResult/Listeners/member/ListenerArn")
            made.insert(0, ("DeleteListener", {"ListenerArn": listener_arn}))
            if specs:
                self.elb.call("RegisterTargets", self._members_params(group_arn, specs))
        except BaseException:
            for action, params in made:
                with contextlib.suppress(DriverError):
                    self.elb.call(action, params)
            raise
        return self.get_balancer(balancer_arn)

    def _set_algorithm(self, group_arn: str, algorithm: Algorithm) -> None:
        self.elb.call(
            "ModifyTargetGroupAttributes",
            {
                "TargetGroupArn": group_arn,
                "Attributes.member.1.Key": "load_balancing.algorithm.type",
                "Attributes.member.1.Value": ALGORITHMS[algorithm],
            },
        )

    def update_balancer(
        self,
        balancer_id: str,
        *,
        algorithm: Algorithm | str | None = None,
        health_check: HealthCheck | None = None,
    ) -> LoadBalancer:
        group = self._group(balancer_id)
        group_arn = text(group, "TargetGroupArn")
        if algorithm is not None:
            self.check_supported(Protocol.HTTP, algorithm)
            self._set_algorithm(group_arn, Algorithm(algorithm))
        if health_check is not None:
            self.elb.call(
                "ModifyTargetGroup",
                {
                    "TargetGroupArn": group_arn,
                    "HealthCheckPath": health_check.path or "/",
                    "HealthCheckIntervalSeconds": max(5, int(health_check.interval)),
                },
            )
        return self.get_balancer(balancer_id)

    def destroy_balancer(self, balancer_id: str) -> None:
        _, listener, group = self._parts(balancer_id)
        if listener is not None:
            self.elb.call("DeleteListener", {"ListenerArn": text(listener, "ListenerArn")})
        self.elb.call("DeleteLoadBalancer", {"LoadBalancerArn": balancer_id})
        if group is not None:
            self.elb.call("DeleteTargetGroup", {"TargetGroupArn": text(group, "TargetGroupArn")})

    # -- members -----------------------------------------------------------

    def _group(self, balancer_id: str) -> Any:
        _, _, group = self._parts(balancer_id)
        if group is None:
            raise NotFound(f"balancer {balancer_id} has no target group", provider=PROVIDER)
        return group

    def attach_member(self, balancer_id: str, member: MemberSpec) -> Member:
        group = self._group(balancer_id)
        kind = text(group, "TargetType")
        if (kind == "ip") != (member.ip is not None):
            wanted = "ip" if kind == "ip" else "instance_id"
            raise InvalidRequest(
                f"this balancer's targets are {kind}s: give {wanted}", provider=PROVIDER
            )
        self.elb.call(
            "RegisterTargets", self._members_params(text(group, "TargetGroupArn"), [member])
        )
        target = member.ip or member.instance_id
        port = member.port or int(text(group, "Port"))
        return Member(
            id=f"{target}:{port}",
            ip=member.ip,
            port=port,
            weight=member.weight,
            extra={"instance_id": member.instance_id},
        )

    def detach_member(self, balancer_id: str, member_id: str) -> None:
        group = self._group(balancer_id)
        target, _, port = member_id.rpartition(":")
        if not target or not port.isdigit():
            raise NotFound(f"member {member_id} not found", provider=PROVIDER)
        if member_id not in {m.id for m in self.list_members(balancer_id)}:
            raise NotFound(f"member {member_id} not found", provider=PROVIDER)
        self.elb.call(
            "DeregisterTargets",
            {
                "TargetGroupArn": text(group, "TargetGroupArn"),
                "Targets.member.1.Id": target,
                "Targets.member.1.Port": port,
            },
        )

    def list_members(self, balancer_id: str) -> list[Member]:
        group = self._group(balancer_id)
        ip_targets = text(group, "TargetType") == "ip"
        root = self.elb.call(
            "DescribeTargetHealth", {"TargetGroupArn": text(group, "TargetGroupArn")}
        )
        members = []
        for item in root.iterfind(".//{*}TargetHealthDescriptions/{*}member"):
            target, port = text(item, "Target/Id"), int(text(item, "Target/Port") or 0)
            state = text(item, "TargetHealth/State")
            members.append(
                Member(
                    id=f"{target}:{port}",
                    ip=target if ip_targets else None,
                    port=port,
                    health=HEALTH.get(state, Health.UNKNOWN),
                    extra={"instance_id": None if ip_targets else target, "state": state},
                )
            )
        return members

    def attach_compute_node(self, balancer_id: str, node: Node, port: int) -> Member:
        """By instance id for an instance target group, else by private address."""
        group = self._group(balancer_id)
        if text(group, "TargetType") == "instance":
            return self.attach_member(balancer_id, MemberSpec(instance_id=node.id, port=port))
        return super().attach_compute_node(balancer_id, node, port)
