"""``gce``: Compute Engine network load balancers: a forwarding rule in front
of a target pool of instances, with a legacy HTTP health check.

Such a balancer passes TCP through unchanged, so it listens on one port and
its instances serve on that same port; it spreads connections by a hash of
each connection (``random`` here), and its members are instances of the
project, never addresses. Anything else is refused, naming what it can do.
One balancer is three resources named alike (its id): the health check, the
target pool and the forwarding rule; a failed create removes what it made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from drivers.compute.base import Node
from drivers.compute.gce.api import DEFAULT_ENDPOINT, DEFAULT_TOKEN_URI, GCEApi, last_segment
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

PROVIDER = "gce"
HEALTH = {"HEALTHY": Health.UP, "UNHEALTHY": Health.DOWN}


class GCELoadBalancerDriver(LoadBalancerDriver):
    name = "Google Compute Engine network load balancer"
    provider = PROVIDER
    features = LoadBalancerFeatures(ip_members=False, drain=False)
    protocols = (Protocol.TCP,)
    algorithms = (Algorithm.RANDOM,)

    def __init__(
        self,
        key: str | None = None,
        *,
        client_email: str,
        private_key: str,
        project: str,
        region: str = "us-central1",
        token_uri: str = DEFAULT_TOKEN_URI,
        endpoint: str = DEFAULT_ENDPOINT,
        poll_interval: float = 1.0,
        timeout: tuple[float, float] = (10.0, 60.0),
        **_options: Any,
    ) -> None:
        self.api = GCEApi(
            client_email=client_email,
            private_key=private_key,
            project=project,
            token_uri=token_uri,
            endpoint=endpoint,
            poll_interval=poll_interval,
            timeout=timeout,
        )
        self.region = region

    def _regional(self, kind: str, name: str = "") -> str:
        return f"regions/{self.region}/{kind}" + (f"/{name}" if name else "")

    # -- balancers ---------------------------------------------------------

    def list_balancers(self) -> list[LoadBalancer]:
        return [
            self._to_balancer(rule)
            for page in self.api.pages(self._regional("forwardingRules"))
            for rule in page.get("items", [])
            if "/targetPools/" in str(rule.get("target", ""))
        ]

    def get_balancer(self, balancer_id: str) -> LoadBalancer:
        return self._to_balancer(
            self.api.call("GET", self._regional("forwardingRules", balancer_id))
        )

    def create_balancer(
        self,
        name: str,
        port: int,
        protocol: Protocol | str = Protocol.TCP,
        algorithm: Algorithm | str = Algorithm.RANDOM,
        members: Iterable[MemberSpec] = (),
        health_check: HealthCheck | None = None,
    ) -> LoadBalancer:
        self.check_supported(protocol, algorithm)
        specs = list(members)
        for spec in specs:
            self._check_member(spec, port)
        check = health_check or HealthCheck()
        made: list[str] = []
        try:
            self.api.act("POST", "global/httpHealthChecks", self._check_body(name, port, check))
            made.append(f"global/httpHealthChecks/{name}")
            self.api.act(
                "POST",
                self._regional("targetPools"),
                {
                    "name": name,
                    "healthChecks": [self.api.url(f"global/httpHealthChecks/{name}")],
                    "instances": [self._instance_url(spec) for spec in specs],
                    "sessionAffinity": "NONE",
                },
            )
            made.append(self._regional("targetPools", name))
            self.api.act(
                "POST",
                self._regional("forwardingRules"),
                {
                    "name": name,
                    "IPProtocol": "TCP",
                    "portRange": f"{port}-{port}",
                    "target": self.api.url(self._regional("targetPools", name)),
                },
            )
        except BaseException:
            for path in reversed(made):
                with contextlib.suppress(Exception):
                    self.api.act("DELETE", path)
            raise
        return self.get_balancer(name)

    @staticmethod
    def _check_body(name: str, port: int, check: HealthCheck) -> dict[str, Any]:
        return {
            "name": name,
            "port": port,
            "requestPath": check.path or "/",
            "checkIntervalSec": max(1, round(check.interval)),
            "timeoutSec": max(1, round(check.timeout)),
            "healthyThreshold": check.healthy_threshold,
            "unhealthyThreshold": check.unhealthy_threshold,
        }

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
            self.api.act(
                "PATCH",
                f"global/httpHealthChecks/{balancer_id}",
                self._check_body(balancer_id, balancer.port, health_check),
            )
        return balancer

    def destroy_balancer(self, balancer_id: str) -> None:
        """The forwarding rule, then the pool, then the health check."""
        self.get_balancer(balancer_id)  # NotFound for one that never was
        for path in (
            self._regional("forwardingRules", balancer_id),
            self._regional("targetPools", balancer_id),
            f"global/httpHealthChecks/{balancer_id}",
        ):
            with contextlib.suppress(NotFound):
                self.api.act("DELETE", path)

    def _to_balancer(self, rule: dict[str, Any]) -> LoadBalancer:
        port = int(str(rule.get("portRange", "0")).split("-")[0])
        return LoadBalancer(
            id=str(rule["name"]),
            name=str(rule["name"]),
            state="running",
            ip=rule.get("IPAddress"),
            port=port,
            protocol=Protocol.TCP,
            algorithm=Algorithm.RANDOM,
            provider=PROVIDER,
            location=last_segment(rule.get("region")) or self.region,
            extra={"target_pool": last_segment(rule.get("target"))},
        )

    # -- members -----------------------------------------------------------

    def _check_member(self, spec: MemberSpec, port: int | None) -> None:
        if spec.instance_id is None or "/" not in spec.instance_id:
            raise InvalidRequest(
                "gce balancers take instances (zone/name), not addresses", provider=PROVIDER
            )
        if spec.port is not None and port is not None and spec.port != port:
            raise InvalidRequest(
                f"gce network balancers pass port {port} through: members serve on it too",
                provider=PROVIDER,
            )

    def _instance_url(self, spec: MemberSpec) -> str:
        zone, _, name = str(spec.instance_id).partition("/")
        return self.api.url(f"zones/{zone}/instances/{name}")

    def _pool(self, balancer_id: str) -> dict[str, Any]:
        balancer = self.get_balancer(balancer_id)
        return dict(
            self.api.call("GET", self._regional("targetPools", balancer.extra["target_pool"]))
        )

    def attach_member(self, balancer_id: str, member: MemberSpec) -> Member:
        balancer = self.get_balancer(balancer_id)
        self._check_member(member, balancer.port)
        url = self._instance_url(member)
        self.api.act(
            "POST",
            self._regional("targetPools", balancer.extra["target_pool"]) + "/addInstance",
            {"instances": [{"instance": url}]},
        )
        return self._to_member(url, balancer.port, Health.UNKNOWN)

    def attach_compute_node(self, balancer_id: str, node: Node, port: int) -> Member:
        """By the instance (a GCE node's id is zone/name)."""
        return self.attach_member(balancer_id, MemberSpec(instance_id=node.id, port=port))

    def detach_member(self, balancer_id: str, member_id: str) -> None:
        pool = self._pool(balancer_id)
        url = next((u for u in pool.get("instances", []) if self._member_id(u) == member_id), None)
        if url is None:
            raise NotFound(f"member {member_id} not found", provider=PROVIDER)
        self.api.act(
            "POST",
            self._regional("targetPools", pool["name"]) + "/removeInstance",
            {"instances": [{"instance": url}]},
        )

    def list_members(self, balancer_id: str) -> list[Member]:
        balancer = self.get_balancer(balancer_id)
        pool = self._pool(balancer_id)
        members = []
        for url in pool.get("instances", []):
            answer = self.api.call(
                "POST",
                self._regional("targetPools", pool["name"]) + "/getHealth",
                body={"instance": url},
                idempotent=True,  # a read, sent as POST
            )
            states = [s.get("healthState") for s in answer.get("healthStatus", [])]
            health = HEALTH.get(str(states[0]), Health.UNKNOWN) if states else Health.UNKNOWN
            members.append(self._to_member(url, balancer.port, health))
        return members

    @staticmethod
    def _member_id(url: str) -> str:
        parts = url.rstrip("/").split("/")
        return f"{parts[-3]}/{parts[-1]}"  # .../zones/<zone>/instances/<name>

    def _to_member(self, url: str, port: int, health: Health) -> Member:
        member_id = self._member_id(url)
        return Member(
            id=member_id,
            ip=None,
            port=port,
            health=health,
            extra={"instance_id": member_id},
        )
