"""Who may call what: every route x {member, admin, operator} x {own, other project}.

Each row of ``EXPECTED`` is a route of the OpenAPI document and the status
each role gets on its own project's resources and on another project's
(``alpha`` is the callers' project, ``beta`` the other). Another project's
resources must answer 404 -- as if they did not exist -- unless the caller is
an operator. A route missing from the table fails the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from services.api.wsgi import ROUTES
from services.common import bootstrap
from services.common.db.models import Balancer
from services.common.db.session import session_scope
from tests.functional.harness import Service
from tests.helpers import destroy_balancers, need_haproxy, wait_for
from tests.integration.deployment import free_port

ROLES = ("member", "admin", "operator")
CALLER = {"member": "member", "admin": "admin", "operator": "operator"}

#: route -> {role: (status on own project, status on the other project)}
EXPECTED: dict[str, dict[str, tuple[int, int]]] = {
    "healthz": {"member": (200, 200), "admin": (200, 200), "operator": (200, 200)},
    "openapi": {"member": (200, 200), "admin": (200, 200), "operator": (200, 200)},
    # A create names no project: it always makes the node in the caller's own.
    "node_create": {"member": (200, 200), "admin": (200, 200), "operator": (200, 200)},
    "node_index": {"member": (200, 403), "admin": (200, 403), "operator": (200, 200)},
    "node_show": {"member": (200, 404), "admin": (200, 404), "operator": (200, 200)},
    "node_delete": {"member": (202, 404), "admin": (202, 404), "operator": (202, 202)},
    "node_action": {"member": (202, 404), "admin": (202, 404), "operator": (202, 202)},
    "node_deploy": {"member": (202, 404), "admin": (202, 404), "operator": (202, 202)},
    # Dummy nodes run no sshd: 502 says so, after the same checks.
    "node_exec": {"member": (502, 404), "admin": (502, 404), "operator": (502, 502)},
    "operation_index": {"member": (200, 403), "admin": (200, 403), "operator": (200, 200)},
    "operation_show": {"member": (200, 404), "admin": (200, 404), "operator": (200, 200)},
    "account_create": {"member": (403, 403), "admin": (201, 404), "operator": (201, 201)},
    "account_index": {"member": (403, 403), "admin": (200, 403), "operator": (200, 200)},
    "account_show": {"member": (403, 403), "admin": (200, 404), "operator": (200, 200)},
    "account_delete": {"member": (403, 403), "admin": (204, 404), "operator": (204, 204)},
    "account_sync": {"member": (403, 403), "admin": (202, 404), "operator": (202, 202)},
    "locations": {"member": (200, 200), "admin": (200, 200), "operator": (200, 200)},
    "sizes": {"member": (200, 200), "admin": (200, 200), "operator": (200, 200)},
    "images": {"member": (200, 200), "admin": (200, 200), "operator": (200, 200)},
    "offers": {"member": (200, 200), "admin": (200, 200), "operator": (200, 200)},
    "quota_show": {"member": (200, 403), "admin": (200, 403), "operator": (200, 200)},
    "quota_update": {"member": (403, 403), "admin": (403, 403), "operator": (200, 200)},
    "key_index": {"member": (403, 403), "admin": (200, 403), "operator": (200, 200)},
    "key_create": {"member": (403, 403), "admin": (201, 404), "operator": (201, 201)},
    "key_show": {"member": (403, 403), "admin": (200, 404), "operator": (200, 200)},
    "key_delete": {"member": (403, 403), "admin": (204, 404), "operator": (204, 204)},
    "audit_index": {"member": (403, 403), "admin": (200, 403), "operator": (200, 200)},
    "services": {"member": (403, 403), "admin": (403, 403), "operator": (200, 200)},
    "metrics": {"member": (403, 403), "admin": (403, 403), "operator": (200, 200)},
    # Containers are named within the caller's project: another project's are
    # 404 by name for everyone (operators list them with all_projects), and a
    # container is only made at an account of the caller's own project.
    "container_index": {"member": (200, 403), "admin": (200, 403), "operator": (200, 200)},
    "container_create": {"member": (201, 404), "admin": (201, 404), "operator": (201, 404)},
    "container_show": {"member": (200, 404), "admin": (200, 404), "operator": (200, 404)},
    "container_delete": {"member": (204, 404), "admin": (204, 404), "operator": (204, 404)},
    "object_index": {"member": (200, 404), "admin": (200, 404), "operator": (200, 404)},
    "object_put": {"member": (201, 404), "admin": (201, 404), "operator": (201, 404)},
    "object_get": {"member": (200, 404), "admin": (200, 404), "operator": (200, 404)},
    "object_head": {"member": (200, 404), "admin": (200, 404), "operator": (200, 404)},
    "object_delete": {"member": (204, 404), "admin": (204, 404), "operator": (204, 404)},
    # The local provider has no direct URLs: 501 says so, after the same checks.
    "object_url": {"member": (501, 404), "admin": (501, 404), "operator": (501, 404)},
    # A balancer is made at an account of the caller's own project, like a container.
    "balancer_create": {"member": (202, 404), "admin": (202, 404), "operator": (202, 404)},
    "balancer_index": {"member": (200, 403), "admin": (200, 403), "operator": (200, 200)},
    "balancer_show": {"member": (200, 404), "admin": (200, 404), "operator": (200, 200)},
    "balancer_delete": {"member": (202, 404), "admin": (202, 404), "operator": (202, 202)},
    "member_create": {"member": (202, 404), "admin": (202, 404), "operator": (202, 202)},
    "member_index": {"member": (200, 404), "admin": (200, 404), "operator": (200, 200)},
    "member_delete": {"member": (202, 404), "admin": (202, 404), "operator": (202, 202)},
}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any = None
    raw: bytes | None = None


@dataclass
class World:
    """Resources of both projects that the calls name."""

    service: Service
    nodes: dict[str, dict[str, Any]]
    accounts: dict[str, str]
    disks: dict[str, str]
    edges: dict[str, str]

    def project(self, name: str) -> str:
        return self.service.projects[name]

    def fresh_node(self, project: str) -> str:
        key = "member" if project == "alpha" else "beta"
        return str(self.service.create_node(f"fresh-{project}", key=key)["id"])

    def fresh_account(self, project: str) -> str:
        return bootstrap.ensure_account(
            self.service.context,
            self.project(project),
            f"spare-{uuid.uuid4().hex[:12]}",
            "dummy",
            {},
            {},
        )

    def fresh_container(self, project: str) -> str:
        """An empty container of ``project``."""
        name = f"fresh-{uuid.uuid4().hex[:12]}"
        key = "member" if project == "alpha" else "beta"
        body = {"account_id": self.disks[project]}
        answer = self.service.call("PUT", f"/v1/containers/{name}", key=key, body=body)
        assert answer.status == 201, answer.body
        return name

    def fresh_object(self, project: str) -> str:
        """``container/objects/key`` of a new object of ``project``."""
        container = self.fresh_container(project)
        key = "member" if project == "alpha" else "beta"
        path = f"/v1/containers/{container}/objects/thing"
        answer = self.service.call("PUT", path, key=key, raw=b"data")
        assert answer.status == 201, answer.body
        return f"{container}/objects/thing"

    def fresh_balancer(self, project: str) -> str:
        """A built balancer of ``project`` (one HAProxy process)."""
        key = "member" if project == "alpha" else "beta"
        body = {"name": f"lb-{uuid.uuid4().hex[:12]}", "port": free_port()}
        answer = self.service.call("POST", "/v1/balancers", key=key, body=body)
        assert answer.status == 202, answer.body
        operation = self.service.wait_operation(answer.body["operation"]["id"], key)
        assert operation["status"] == "succeeded", operation
        return str(answer.body["balancer"]["id"])

    def fresh_member(self, project: str) -> str:
        """``balancer_id/members/member_id`` of a new member (an address) of ``project``."""
        balancer_id = self.fresh_balancer(project)
        key = "member" if project == "alpha" else "beta"
        path = f"/v1/balancers/{balancer_id}/members"
        answer = self.service.call("POST", path, key=key, body={"ip": "127.0.0.1", "port": 9})
        assert answer.status == 202, answer.body
        self.service.wait_operation(answer.body["operation"]["id"], key)
        return f"{path}/{answer.body['member']['id']}"

    def fresh_key(self, project: str) -> str:
        with_key = bootstrap.create_key(
            self.service.context, self.project(project), "spare", "member"
        )
        answer = self.service.call("GET", "/v1/keys?all_projects=true&limit=1000", key="operator")
        prefixes = {k["prefix"]: k["id"] for k in answer.body["keys"]}
        return str(prefixes[with_key[:11]])


def calls(world: World) -> dict[str, Callable[[str], Call]]:
    """How to call each route for a project (``alpha`` own, ``beta`` other)."""
    node = world.nodes
    account = world.accounts

    def listing(path: str) -> Callable[[str], Call]:
        return lambda p: Call(
            "GET", path if p == "alpha" else f"{path}?project_id={world.project(p)}"
        )

    return {
        "healthz": lambda p: Call("GET", "/healthz"),
        "openapi": lambda p: Call("GET", "/v1/openapi.json"),
        "node_create": lambda p: Call(
            "POST", "/v1/nodes", {"name": "plan", "image": "ubuntu", "dry_run": True}
        ),
        "node_index": listing("/v1/nodes"),
        "node_show": lambda p: Call("GET", f"/v1/nodes/{node[p]['id']}"),
        "node_delete": lambda p: Call("DELETE", f"/v1/nodes/{world.fresh_node(p)}"),
        "node_action": lambda p: Call(
            "POST", f"/v1/nodes/{world.fresh_node(p)}/action", {"action": "reboot"}
        ),
        "node_deploy": lambda p: Call(
            "POST", f"/v1/nodes/{world.fresh_node(p)}/deploy", {"script": "#!/bin/sh\ntrue\n"}
        ),
        "node_exec": lambda p: Call(
            "POST", f"/v1/nodes/{world.fresh_node(p)}/exec", {"command": "true"}
        ),
        "operation_index": listing("/v1/operations"),
        "operation_show": lambda p: Call("GET", f"/v1/operations/{node[p]['operation_id']}"),
        "account_create": lambda p: Call(
            "POST",
            "/v1/accounts",
            {
                "name": f"new-{uuid.uuid4().hex[:12]}",
                "provider": "dummy",
                "project_id": world.project(p),
            },
        ),
        "account_index": listing("/v1/accounts"),
        "account_show": lambda p: Call("GET", f"/v1/accounts/{account[p]}"),
        "account_delete": lambda p: Call("DELETE", f"/v1/accounts/{world.fresh_account(p)}"),
        "account_sync": lambda p: Call("POST", f"/v1/accounts/{account[p]}/sync"),
        "locations": lambda p: Call("GET", f"/v1/locations?account_id={account[p]}"),
        "sizes": lambda p: Call("GET", f"/v1/sizes?account_id={account[p]}"),
        "images": lambda p: Call("GET", f"/v1/images?account_id={account[p]}"),
        "offers": lambda p: Call("GET", f"/v1/offers?account={account[p]}"),
        "quota_show": listing("/v1/quota"),
        "quota_update": lambda p: Call(
            "PATCH", "/v1/quota", {"project_id": world.project(p), "vcpus": 1000}
        ),
        "key_index": listing("/v1/keys"),
        "key_create": lambda p: Call(
            "POST", "/v1/keys", {"name": "made", "project_id": world.project(p)}
        ),
        "key_show": lambda p: Call("GET", f"/v1/keys/{world.fresh_key(p)}"),
        "key_delete": lambda p: Call("DELETE", f"/v1/keys/{world.fresh_key(p)}"),
        "audit_index": listing("/v1/audit"),
        "services": lambda p: Call("GET", "/v1/services"),
        "metrics": lambda p: Call("GET", "/metrics"),
        "container_index": listing("/v1/containers"),
        "container_create": lambda p: Call(
            "PUT", f"/v1/containers/new-{uuid.uuid4().hex[:12]}", {"account_id": world.disks[p]}
        ),
        "container_show": lambda p: Call("GET", f"/v1/containers/{world.fresh_container(p)}"),
        "container_delete": lambda p: Call("DELETE", f"/v1/containers/{world.fresh_container(p)}"),
        "object_index": lambda p: Call("GET", f"/v1/containers/{world.fresh_container(p)}/objects"),
        "object_put": lambda p: Call(
            "PUT", f"/v1/containers/{world.fresh_container(p)}/objects/new", raw=b"x"
        ),
        "object_get": lambda p: Call("GET", f"/v1/containers/{world.fresh_object(p)}"),
        "object_head": lambda p: Call("HEAD", f"/v1/containers/{world.fresh_object(p)}"),
        "object_delete": lambda p: Call("DELETE", f"/v1/containers/{world.fresh_object(p)}"),
        "object_url": lambda p: Call(
            "POST", f"/v1/containers/{world.fresh_object(p)}/url", {"method": "GET"}
        ),
        "balancer_create": lambda p: Call(
            "POST",
            "/v1/balancers",
            {
                "name": f"new-{uuid.uuid4().hex[:12]}",
                "port": free_port(),
                "account_id": world.edges[p],
            },
        ),
        "balancer_index": listing("/v1/balancers"),
        "balancer_show": lambda p: Call("GET", f"/v1/balancers/{world.fresh_balancer(p)}"),
        "balancer_delete": lambda p: Call("DELETE", f"/v1/balancers/{world.fresh_balancer(p)}"),
        "member_create": lambda p: Call(
            "POST",
            f"/v1/balancers/{world.fresh_balancer(p)}/members",
            {"ip": "127.0.0.1", "port": 9},
        ),
        "member_index": lambda p: Call("GET", f"/v1/balancers/{world.fresh_balancer(p)}/members"),
        "member_delete": lambda p: Call("DELETE", world.fresh_member(p)),
    }


def test_every_route_has_a_row():
    routes = {route.name for route in ROUTES}
    assert routes == set(EXPECTED), (
        f"routes without a row: {sorted(routes - set(EXPECTED))}; "
        f"rows without a route: {sorted(set(EXPECTED) - routes)}"
    )


@pytest.fixture
def world(service, tmp_path) -> Iterator[World]:
    need_haproxy()
    service.add_account("beta", "beta-cloud")
    disks = {
        project: service.add_storage_account(
            project, f"{project}-disk", root=str(tmp_path / project)
        )
        for project in ("alpha", "beta")
    }
    state_dir = str(tmp_path / "haproxy")
    edges = {
        project: service.add_balancer_account(project, f"{project}-edge", state_dir=state_dir)
        for project in ("alpha", "beta")
    }
    yield World(
        disks=disks,
        edges=edges,
        service=service,
        nodes={
            "alpha": service.create_node("own", key="member"),
            "beta": service.create_node("theirs", key="beta"),
        },
        accounts={"alpha": service.accounts["dummy"], "beta": service.accounts["beta-cloud"]},
    )
    # Creates the calls started may still be building: let them end first.
    wait_for(lambda: not building_balancers(service), what="balancer creates to end")
    destroy_balancers(state_dir)


def building_balancers(service: Service) -> bool:
    with session_scope(service.context.sessions) as session:
        return (
            session.scalars(select(Balancer.id).where(Balancer.state == "building")).first()
            is not None
        )


def test_roles_and_projects_on_every_route(world):
    document_routes = {
        operation["operationId"]
        for path in world.service.call("GET", "/v1/openapi.json", key=None).body["paths"].values()
        for operation in path.values()
    }
    assert document_routes == set(EXPECTED)
    how = calls(world)
    wrong = []
    for route, by_role in EXPECTED.items():
        for role in ROLES:
            for project, expected in zip(("alpha", "beta"), by_role[role], strict=True):
                call = how[route](project)
                answer = world.service.call(
                    call.method, call.path, key=CALLER[role], body=call.body, raw=call.raw
                )
                if answer.status != expected:
                    wrong.append(
                        f"{route} as {role} on {project}: {answer.status} (expected {expected}) "
                        f"{(answer.body or {}).get('error', '') if answer.status >= 400 else ''}"
                    )
                if answer.status >= 400 and call.method != "HEAD":  # HEAD answers have no body
                    assert answer.error["request_id"] == answer.headers["X-Request-Id"]
    assert not wrong, "\n".join(wrong)


def test_another_projects_catalog_looks_empty(world):
    beta_account = world.accounts["beta"]
    for path in ("locations", "sizes", "images"):
        answer = world.service.call("GET", f"/v1/{path}?account_id={beta_account}", key="admin")
        assert answer.body[path] == []
    offers = world.service.call("GET", f"/v1/offers?account={beta_account}", key="admin")
    assert offers.body["offers"] == []
