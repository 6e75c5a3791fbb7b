"""``elb``: Amazon's Classic Load Balancers over the Query API (2012-06-01).

A classic balancer forwards one listener port to one instance port on every
member, and its members are instances only: an IP member, members on
different ports, or an algorithm it cannot choose (it balances round-robin)
raise :class:`~drivers.errors.InvalidRequest` instead of being dropped. The
balancer's id is its name. ``endpoint`` points at another ELB endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from drivers.compute.base import Node
from drivers.compute.ec2.connection import EC2Connection
from drivers.compute.ec2.connection import xml_text as text
from drivers.compute.ec2.signing import Credentials
from drivers.errors import InvalidRequest, NotFound
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

PROVIDER = "elb"
VERSION = "2012-06-01"
HEALTH = {"InService": Health.UP, "OutOfService": Health.DOWN}


class ELBLoadBalancerDriver(LoadBalancerDriver):
    name = "Amazon Classic Load Balancer"
    provider = PROVIDER
    features = LoadBalancerFeatures(ip_members=False, drain=False)
    protocols = (Protocol.HTTP, Protocol.TCP)
    algorithms = (Algorithm.ROUND_ROBIN,)

    def __init__(
        self,
        key: str,
        secret: str,
        *,
        region: str = "us-east-1",
        endpoint: str | None = None,
        token: str | None = None,
        zones: Iterable[str] | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        **_options: Any,
    ) -> None:
        self.region = region
        self.zones = list(zones or (f"{region}a",))
        self.elb = EC2Connection(
            Credentials(key, secret, token),
            region,
            endpoint or f"https://elasticloadbalancing.{region}.amazonaws.com",
            timeout,
            service="elasticloadbalancing",
            version=VERSION,
        )

    def _describe(self, name: str) -> Any:
        try:
            root = self.elb.call("DescribeLoadBalancers", {"LoadBalancerNames.member.1": name})
        except (NotFound, InvalidRequest):
            raise NotFound(f"balancer {name} not found", provider=PROVIDER) from None
        found = root.find(".//{*}LoadBalancerDescriptions/{*}member")
        if found is None:
            raise NotFound(f"balancer {name} not found", provider=PROVIDER)
        return found

    def _to_balancer(self, element: Any) -> LoadBalancer:
        listener = element.find(".//{*}ListenerDescriptions/{*}member/{*}Listener")
        protocol = text(listener, "Protocol").lower() if listener is not None else "http"
        return LoadBalancer(
            id=text(element, "LoadBalancerName"),
            name=text(element, "LoadBalancerName"),
            state="running",
            ip=text(element, "DNSName") or None,
            port=int(text(listener, "LoadBalancerPort") or 0) if listener is not None else 0,
            protocol=Protocol(protocol) if protocol in ("http", "tcp") else Protocol.HTTP,
            algorithm=Algorithm.ROUND_ROBIN,
            provider=PROVIDER,
            location=self.region,
            extra={
                "instance_port": int(text(listener, "InstancePort") or 0)
                if listener is not None
                else None
            },
        )

    def list_balancers(self) -> list[LoadBalancer]:
        root = self.elb.call("DescribeLoadBalancers")
        return [
            self._to_balancer(element)
            for element in root.iterfind(".//{*}LoadBalancerDescriptions/{*}member")
        ]

    def get_balancer(self, balancer_id: str) -> LoadBalancer:
        return self._to_balancer(self._describe(balancer_id))

    @staticmethod
    def _check_members(specs: list[MemberSpec]) -> None:
        if any(spec.instance_id is None or spec.ip is not None for spec in specs):
            raise InvalidRequest(
                "classic ELB members are instances only: give instance_id (IP members need alb)",
                provider=PROVIDER,
            )

    def create_balancer(
        self,
        name: str,
        port: int,
        protocol: Protocol | str = Protocol.HTTP,
        algorithm: Algorithm | str = Algorithm.ROUND_ROBIN,
        members: Iterable[MemberSpec] = (),
        health_check: HealthCheck | None = None,
        instance_port: int | None = None,
    ) -> LoadBalancer:
        """``instance_port`` (default: the members' port, else ``port``) is
        where every member listens: a classic balancer has one."""
        self.check_supported(protocol, algorithm)
        specs = list(members)
        self._check_members(specs)
        ports = {spec.port for spec in specs if spec.port is not None}
        if instance_port is not None:
            ports.add(instance_port)
        if len(ports) > 1:
            raise InvalidRequest(
                f"a classic ELB forwards to one instance port, not {sorted(ports)}",
                provider=PROVIDER,
            )
        backend_port = ports.pop() if ports else port
        kind = str(Protocol(protocol)).upper()
        params: dict[str, Any] = {
            "LoadBalancerName": name,
            "Listeners.member.1.Protocol": kind,
            "Listeners.member.1.LoadBalancerPort": port,
            "Listeners.member.1.InstanceProtocol": kind,
            "Listeners.member.1.InstancePort": backend_port,
        }
        for number, zone in enumerate(self.zones, 1):
            params[f"AvailabilityZones.member.{number}"] = zone
        self.elb.call("CreateLoadBalancer", params)
        try:
            self._configure_health(name, health_check or HealthCheck(), kind, backend_port)
            if specs:
                self._register(name, specs)
        except BaseException:
            self.elb.call("DeleteLoadBalancer", {"LoadBalancerName": name})
            raise
        return self.get_balancer(name)

    def _configure_health(self, name: str, check: HealthCheck, kind: str, port: int) -> None:
        target = f"HTTP:{port}{check.path or '/'}" if kind == "HTTP" else f"TCP:{port}"
        self.elb.call(
            "ConfigureHealthCheck",
            {
                "LoadBalancerName": name,
                "HealthCheck.Target": target,
                "HealthCheck.Interval": max(5, int(check.interval)),
                "HealthCheck.Timeout": max(2, int(check.timeout)),
                "HealthCheck.HealthyThreshold": max(2, check.healthy_threshold),
                "HealthCheck.UnhealthyThreshold": max(2, check.unhealthy_threshold),
            },
        )

    def _register(self, name: str, specs: list[MemberSpec]) -> None:
        params: dict[str, Any] = {"LoadBalancerName": name}
        for number, spec in enumerate(specs, 1):
            params[f"Instances.member.{number}.InstanceId"] = spec.instance_id
        self.elb.call("RegisterInstancesWithLoadBalancer", params)

    def update_balancer(
        self,
        balancer_id: str,
        *,
        algorithm: Algorithm | str | None = None,
        health_check: HealthCheck | None = None,
    ) -> LoadBalancer:
        balancer = self.get_balancer(balancer_id)
        if algorithm is not None:
            self.check_supported(balancer.protocol, algorithm)
        if health_check is not None:
            self._configure_health(
                balancer_id,
                health_check,
                str(balancer.protocol).upper(),
                balancer.extra["instance_port"],
            )
        return self.get_balancer(balancer_id)

    def destroy_balancer(self, balancer_id: str) -> None:
        self._describe(balancer_id)
        self.elb.call("DeleteLoadBalancer", {"LoadBalancerName": balancer_id})

    def attach_member(self, balancer_id: str, member: MemberSpec) -> Member:
        self._check_members([member])
        balancer = self.get_balancer(balancer_id)
        if member.port is not None and member.port != balancer.extra["instance_port"]:
            raise InvalidRequest(
                f"this balancer forwards to port {balancer.extra['instance_port']} only",
                provider=PROVIDER,
            )
        self._register(balancer_id, [member])
        return Member(
            id=str(member.instance_id),
            ip=None,
            port=balancer.extra["instance_port"],
            extra={"instance_id": member.instance_id},
        )

    def detach_member(self, balancer_id: str, member_id: str) -> None:
        if member_id not in {m.id for m in self.list_members(balancer_id)}:
            raise NotFound(f"member {member_id} not found", provider=PROVIDER)
        self.elb.call(
            "DeregisterInstancesFromLoadBalancer",
            {"LoadBalancerName": balancer_id, "Instances.member.1.InstanceId": member_id},
        )

    def list_members(self, balancer_id: str) -> list[Member]:
        port = self.get_balancer(balancer_id).extra["instance_port"]
        root = self.elb.call("DescribeInstanceHealth", {"LoadBalancerName": balancer_id})
        return [
            Member(
                id=text(item, "InstanceId"),
                ip=None,
                port=port,
                health=HEALTH.get(text(item, "State"), Health.UNKNOWN),
                extra={"instance_id": text(item, "InstanceId"), "reason": text(item, "ReasonCode")},
            )
            for item in root.iterfind(".//{*}InstanceStates/{*}member")
        ]

    def attach_compute_node(self, balancer_id: str, node: Node, port: int) -> Member:
        """Always by instance id: classic balancers know no addresses."""
        return self.attach_member(balancer_id, MemberSpec(instance_id=node.id, port=port))
