"""The load-balancer contract: frozen values, and the ``LoadBalancerDriver``
every provider implements.

A balancer listens on one port with one protocol and spreads what it gets
over its members with one algorithm. Members are addresses (or a provider's
instances) with a weight; each carries the health the balancer's checks see.
Nothing is ignored silently: an algorithm, protocol or member a provider
cannot take raises :class:`~drivers.errors.InvalidRequest` naming what it can.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from drivers.compute.base import Node
from drivers.errors import InvalidRequest


class Algorithm(enum.StrEnum):
    ROUND_ROBIN = "round_robin"
    RANDOM = "random"
    LEAST_CONNECTIONS = "least_connections"
    WEIGHTED_ROUND_ROBIN = "weighted_round_robin"
    WEIGHTED_LEAST_CONNECTIONS = "weighted_least_connections"


class Protocol(enum.StrEnum):
    HTTP = "http"
    HTTPS = "https"
    TCP = "tcp"


class Health(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    DRAINING = "draining"  # takes no new connections
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"  # no check has run yet


@dataclass(frozen=True)
class HealthCheck:
    """How members are checked: ``path`` for HTTP checks (None: a TCP connect)."""

    interval: float = 2.0
    timeout: float = 1.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    path: str | None = None


@dataclass(frozen=True)
class MemberSpec:
    """A member to attach: an address and port, or a provider's instance."""

    ip: str | None = None
    port: int | None = None
    weight: int = 1
    instance_id: str | None = None

    def __post_init__(self) -> None:
        if self.ip is None and self.instance_id is None:
            raise InvalidRequest("a member needs an ip (and port) or an instance id")
        if not 0 <= self.weight <= 256:
            raise InvalidRequest("member weights are 0 to 256")


@dataclass(frozen=True)
class Member:
    id: str
    ip: str | None
    port: int | None
    weight: int = 1
    state: str = "enabled"
    health: Health = Health.UNKNOWN
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadBalancer:
    id: str
    name: str
    state: str
    ip: str | None
    port: int
    protocol: Protocol
    algorithm: Algorithm
    provider: str
    location: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadBalancerFeatures:
    """What a driver can do besides the required methods."""

    #: Members may be addresses (not only the provider's instances).
    ip_members: bool = True
    #: Members may be drained (no new connections, current ones finish).
    drain: bool = False


class LoadBalancerDriver(abc.ABC):
    """A provider's load balancers. Safe to share between threads; every
    failure is raised as a :mod:`drivers.errors` class."""

    name: ClassVar[str]
    provider: ClassVar[str]
    features: ClassVar[LoadBalancerFeatures] = LoadBalancerFeatures()
    protocols: ClassVar[tuple[Protocol, ...]] = ()
    algorithms: ClassVar[tuple[Algorithm, ...]] = ()

    def list_protocols(self) -> list[Protocol]:
        return list(self.protocols)

    def list_supported_algorithms(self) -> list[Algorithm]:
        return list(self.algorithms)

    def check_supported(self, protocol: Protocol | str, algorithm: Algorithm | str) -> None:
        """:class:`InvalidRequest` naming what is supported, for anything else."""
        if str(protocol) not in {str(p) for p in self.protocols}:
            raise InvalidRequest(
                f"protocol {protocol} is not supported by {self.provider}; "
                f"supported: {', '.join(self.protocols)}",
                provider=self.provider,
            )
        if str(algorithm) not in {str(a) for a in self.algorithms}:
            raise InvalidRequest(
                f"algorithm {algorithm} is not supported by {self.provider}; "
                f"supported: {', '.join(self.algorithms)}",
                provider=self.provider,
            )

    @abc.abstractmethod
    def list_balancers(self) -> list[LoadBalancer]: ...

    @abc.abstractmethod
    def get_balancer(self, balancer_id: str) -> LoadBalancer:
        """Raises :class:`~drivers.errors.NotFound`."""

    @abc.abstractmethod
    def create_balancer(
        self,
        name: str,
        port: int,
        protocol: Protocol | str = Protocol.HTTP,
        algorithm: Algorithm | str = Algorithm.ROUND_ROBIN,
        members: Iterable[MemberSpec] = (),
        health_check: HealthCheck | None = None,
    ) -> LoadBalancer:
        """Create it with its members (all of them, or none and an error)."""

    @abc.abstractmethod
    def update_balancer(
        self,
        balancer_id: str,
        *,
        algorithm: Algorithm | str | None = None,
        health_check: HealthCheck | None = None,
    ) -> LoadBalancer: ...

    @abc.abstractmethod
    def destroy_balancer(self, balancer_id: str) -> None: ...

    @abc.abstractmethod
    def attach_member(self, balancer_id: str, member: MemberSpec) -> Member: ...

    @abc.abstractmethod
    def detach_member(self, balancer_id: str, member_id: str) -> None: ...

    @abc.abstractmethod
    def list_members(self, balancer_id: str) -> list[Member]:
        """Members with the health the balancer's checks see now."""

    def attach_compute_node(self, balancer_id: str, node: Node, port: int) -> Member:
        """Attach a node: by its address here (providers that balance over
        their own instances choose the instance id)."""
        addresses: Sequence[str] = node.private_ips or node.public_ips
        if not addresses:
            raise InvalidRequest(f"node {node.name} has no address yet", provider=self.provider)
        return self.attach_member(balancer_id, MemberSpec(ip=addresses[0], port=port))
