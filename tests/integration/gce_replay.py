"""A stateful Compute Engine replay server on 127.0.0.1.

It answers with the real GCE responses recorded in the apache-libcloud wheel
(``libcloud/test/compute/fixtures/gce``), loaded from the installed package:
zones, machine types, image projects and the aggregated instance list, which
it serves in pages of two to make clients follow ``pageToken``. It keeps the
instances created through it, dedupes inserts by ``requestId`` as GCE does,
answers zone operations, refuses calls without a live token from its token
endpoint, and can be told to fail the next inserts with GCE's error bodies.

Paths: ``/compute/v1/projects/<project>/...``.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import libcloud

from tests.integration.google_tokens import TokenServer, new_service_account

FIXTURES = Path(libcloud.__file__).parent / "test" / "compute" / "fixtures" / "gce"
BASE = "https://www.googleapis.com/compute/v1/projects"
PAGE = 2

Answer = tuple[int, Any]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def error_body(status: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }
    }


@dataclass
class GceReplay:
    tokens: TokenServer
    project: str = "overcast-ci"
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)  # "zone/name"
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_request: dict[str, str] = field(default_factory=dict)  # requestId -> operation
    inserts: list[dict[str, Any]] = field(default_factory=list)  # bodies GCE acted on
    #: The next inserts answer these (status, body), one each, instead of acting.
    failures: list[Answer] = field(default_factory=list)
    #: The next insert acts, then its operation ends with this error code.
    operation_error_next: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Network load balancing: health checks, target pools, forwarding rules by name.
    health_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Instance URLs the pools' checks see healthy.
    healthy: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for name in ("lctargetpool", "libcloud-lb-demo-lb-tp"):
            pool = fixture(f"regions_us-central1_targetPools_{name}.json")
            self.pools[pool["name"]] = pool
        for name in ("lcforwardingrule", "libcloud-lb-demo-lb"):
            rule = fixture(f"regions_us-central1_forwardingRules_{name}.json")
            self.rules[rule["name"]] = rule
        for scoped in fixture("aggregated_instances.json")["items"].values():
            for instance in scoped.get("instances", []):
                self.instances[f"{instance['zone'].rsplit('/', 1)[-1]}/{instance['name']}"] = (
                    instance
                )
        self.machine_types = {
            zone.split("/", 1)[1]: scoped.get("machineTypes", [])
            for zone, scoped in fixture("aggregated_machineTypes.json")["items"].items()
        }
        project = r"/compute/v1/projects/[^/]+"
        zone = rf"{project}/zones/(?P<zone>[^/]+)"
        region = rf"{project}/regions/(?P<region>[^/]+)"
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Answer]]] = [
            (m, re.compile(f"^{p}$"), h)
            for m, p, h in (
                ("GET", f"{project}/zones", self.zones),
                ("GET", f"{zone}/machineTypes", self.zone_machine_types),
                ("GET", f"{project}/aggregated/machineTypes", self.aggregated_machine_types),
                ("GET", r"/compute/v1/projects/(?P<owner>[^/]+)/global/images", self.images),
                ("GET", f"{project}/aggregated/instances", self.aggregated_instances),
                ("POST", f"{zone}/instances", self.insert),
                ("GET", f"{zone}/instances/(?P<name>[^/]+)", self.get_instance),
                ("DELETE", f"{zone}/instances/(?P<name>[^/]+)", self.delete_instance),
                ("POST", f"{zone}/instances/(?P<name>[^/]+)/(?P<verb>reset|start|stop)", self.act),
                ("GET", f"{zone}/operations/(?P<operation>[^/]+)", self.get_operation),
                ("GET", f"{region}/operations/(?P<operation>[^/]+)", self.get_operation),
                ("GET", f"{project}/global/operations/(?P<operation>[^/]+)", self.get_operation),
                ("POST", f"{project}/global/httpHealthChecks", self.insert_health_check),
                ("PATCH", f"{project}/global/httpHealthChecks/(?P<name>[^/]+)", self.patch_check),
                ("DELETE", f"{project}/global/httpHealthChecks/(?P<name>[^/]+)", self.drop_check),
                ("POST", f"{region}/targetPools", self.insert_pool),
                ("GET", f"{region}/targetPools/(?P<name>[^/]+)", self.get_pool),
                ("DELETE", f"{region}/targetPools/(?P<name>[^/]+)", self.drop_pool),
                (
                    "POST",
                    f"{region}/targetPools/(?P<name>[^/]+)/(?P<verb>addInstance|removeInstance)",
                    self.pool_instances,
                ),
                ("POST", f"{region}/targetPools/(?P<name>[^/]+)/getHealth", self.pool_health),
                ("GET", f"{region}/forwardingRules", self.list_rules),
                ("POST", f"{region}/forwardingRules", self.insert_rule),
                ("GET", f"{region}/forwardingRules/(?P<name>[^/]+)", self.get_rule),
                ("DELETE", f"{region}/forwardingRules/(?P<name>[^/]+)", self.drop_rule),
            )
        ]

    # -- catalog -----------------------------------------------------------

    def paged(
        self, items: list[Any], query: dict[str, str], wrap: Callable[[list[Any]], Any]
    ) -> Answer:
        start = int(query.get("pageToken") or 0)
        page: dict[str, Any] = {"kind": "compute#list", "items": wrap(items[start : start + PAGE])}
        if start + PAGE < len(items):
            page["nextPageToken"] = str(start + PAGE)
        return 200, page

    def zones(self, query: dict[str, str], **_: Any) -> Answer:
        return self.paged(fixture("zones.json")["items"], query, list)

    def zone_machine_types(self, zone: str, **_: Any) -> Answer:
        if zone not in {z["name"] for z in fixture("zones.json")["items"]}:
            return 404, error_body(404, "notFound", f"zone {zone} was not found")
        return 200, {"items": self.machine_types.get(zone, [])}  # none recorded: none offered

    def aggregated_machine_types(self, **_: Any) -> Answer:
        return 200, fixture("aggregated_machineTypes.json")

    def images(self, owner: str, **_: Any) -> Answer:
        path = FIXTURES / f"projects_{owner}_global_images.json"
        if not path.exists():
            return 404, error_body(404, "notFound", f"project {owner} was not found")
        return 200, fixture(path.name)

    # -- instances ---------------------------------------------------------

    def aggregated_instances(self, query: dict[str, str], **_: Any) -> Answer:
        with self.lock:
            listed = sorted(self.instances.items())

        def wrap(page: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
            scoped: dict[str, Any] = {}
            for key, instance in page:
                scoped.setdefault(f"zones/{key.split('/')[0]}", {"instances": []})[
                    "instances"
                ].append(instance)
            return scoped

        return self.paged(listed, query, wrap)

    def operation(
        self,
        zone: str,
        kind: str,
        target: str,
        error: str | None = None,
        *,
        scope: str | None = None,
    ) -> dict[str, Any]:
        """A new operation, in ``zones/<zone>`` unless ``scope`` says
        ``regions/<region>`` or ``global``."""
        scope = scope or f"zones/{zone}"
        name = f"operation-{uuid.uuid4().hex[:12]}"
        operation: dict[str, Any] = {
            "kind": "compute#operation",
            "name": name,
            "operationType": kind,
            "status": "RUNNING",
            "targetLink": f"{BASE}/{self.project}/{scope}/{target}",
            "selfLink": f"{BASE}/{self.project}/{scope}/operations/{name}",
        }
        if scope != "global":
            operation[scope.split("/")[0][:-1]] = f"{BASE}/{self.project}/{scope}"
        if error:
            operation["error"] = {"errors": [{"code": error, "message": f"{error} in {zone}"}]}
            operation["httpErrorStatusCode"] = 403 if error == "QUOTA_EXCEEDED" else 503
        self.operations[name] = operation
        return operation

    def insert(self, zone: str, query: dict[str, str], body: Any, **_: Any) -> Answer:
        with self.lock:
            request_id = query.get("requestId")
            if request_id in self.by_request:  # GCE: the same request, the same operation
                return 200, self.operations[self.by_request[request_id]]
            if self.failures:
                return self.failures.pop(0)
            machine_type = body["machineType"].rsplit("/", 1)[-1]
            if machine_type not in {t["name"] for t in self.machine_types.get(zone, [])}:
                return 400, error_body(400, "invalid", f"machine type {machine_type} is invalid")
            key = f"{zone}/{body['name']}"
            if key in self.instances:
                return 409, error_body(409, "alreadyExists", f"{body['name']} already exists")
            error, self.operation_error_next = self.operation_error_next, None
            operation = self.operation(zone, "insert", body["name"], error)
            if request_id:
                self.by_request[request_id] = operation["name"]
            if error:
                return 200, operation
            self.inserts.append(body)
            self.instances[key] = {
                "kind": "compute#instance",
                "id": str(uuid.uuid4().int)[:19],
                "name": body["name"],
                "zone": f"{BASE}/{self.project}/zones/{zone}",
                "machineType": f"{BASE}/{self.project}/{body['machineType']}",
                "status": "STAGING",
                "labels": body.get("labels", {}),
                "metadata": body.get("metadata", {}),
                "networkInterfaces": [
                    {
                        "networkIP": f"10.240.0.{len(self.instances) % 250 + 2}",
                        "accessConfigs": [
                            {"type": "ONE_TO_ONE_NAT", "natIP": f"203.0.113.{len(self.inserts)}"}
                        ],
                    }
                ],
            }
            return 200, operation

    def get_instance(self, zone: str, name: str, **_: Any) -> Answer:
        with self.lock:
            instance = self.instances.get(f"{zone}/{name}")
            if instance is None:
                return 404, error_body(404, "notFound", f"instance {name} was not found")
            answer = copy.deepcopy(instance)
            if instance["status"] == "STAGING":  # it runs from the next look on
                instance["status"] = "RUNNING"
            return 200, answer

    def delete_instance(self, zone: str, name: str, **_: Any) -> Answer:
        with self.lock:
            if self.instances.pop(f"{zone}/{name}", None) is None:
                return 404, error_body(404, "notFound", f"instance {name} was not found")
            return 200, self.operation(zone, "delete", name)

    def act(self, zone: str, name: str, verb: str, **_: Any) -> Answer:
        with self.lock:
            instance = self.instances.get(f"{zone}/{name}")
            if instance is None:
                return 404, error_body(404, "notFound", f"instance {name} was not found")
            instance["status"] = {"stop": "TERMINATED"}.get(verb, "RUNNING")
            return 200, self.operation(zone, verb, name)

    def get_operation(self, operation: str, **_: Any) -> Answer:
        with self.lock:
            found = self.operations.get(operation)
            if found is None:
                return 404, error_body(404, "notFound", f"operation {operation} was not found")
            answer = copy.deepcopy(found)
            found["status"] = "DONE"  # done from the next poll on
            return 200, answer

    # -- network load balancing --------------------------------------------

    def missing(self, what: str) -> Answer:
        return 404, error_body(404, "notFound", f"{what} was not found")

    def created(self, store: dict[str, dict[str, Any]], body: Any, scope: str, kind: str) -> Answer:
        if body["name"] in store:
            return 409, error_body(409, "alreadyExists", f"{body['name']} already exists")
        store[body["name"]] = {**body, "kind": f"compute#{kind}"}
        return 200, self.operation("", "insert", f"{kind}s/{body['name']}", scope=scope)

    def insert_health_check(self, body: Any, **_: Any) -> Answer:
        with self.lock:
            return self.created(self.health_checks, body, "global", "httpHealthCheck")

    def patch_check(self, name: str, body: Any, **_: Any) -> Answer:
        with self.lock:
            if name not in self.health_checks:
                return self.missing(f"health check {name}")
            self.health_checks[name].update(body)
            return 200, self.operation("", "patch", f"httpHealthChecks/{name}", scope="global")

    def drop_check(self, name: str, **_: Any) -> Answer:
        with self.lock:
            if self.health_checks.pop(name, None) is None:
                return self.missing(f"health check {name}")
            return 200, self.operation("", "delete", f"httpHealthChecks/{name}", scope="global")

    def insert_pool(self, region: str, body: Any, **_: Any) -> Answer:
        with self.lock:
            for check in body.get("healthChecks", []):
                if check.rsplit("/", 1)[-1] not in self.health_checks:
                    return 400, error_body(400, "invalid", f"health check {check} is unknown")
            body = {**body, "region": f"{BASE}/{self.project}/regions/{region}"}
            return self.created(self.pools, body, f"regions/{region}", "targetPool")

    def get_pool(self, name: str, **_: Any) -> Answer:
        with self.lock:
            pool = self.pools.get(name)
            return (200, copy.deepcopy(pool)) if pool else self.missing(f"target pool {name}")

    def drop_pool(self, region: str, name: str, **_: Any) -> Answer:
        with self.lock:
            if any(r["target"].endswith(f"/targetPools/{name}") for r in self.rules.values()):
                return 400, error_body(400, "resourceInUseByAnotherResource", f"{name} is in use")
            if self.pools.pop(name, None) is None:
                return self.missing(f"target pool {name}")
            return 200, self.operation(
                "", "delete", f"targetPools/{name}", scope=f"regions/{region}"
            )

    def pool_instances(self, region: str, name: str, verb: str, body: Any, **_: Any) -> Answer:
        with self.lock:
            pool = self.pools.get(name)
            if pool is None:
                return self.missing(f"target pool {name}")
            urls = [item["instance"] for item in body["instances"]]
            instances = pool.setdefault("instances", [])
            for url in urls:
                if verb == "addInstance" and url not in instances:
                    instances.append(url)
                elif verb == "removeInstance" and url in instances:
                    instances.remove(url)
            return 200, self.operation("", verb, f"targetPools/{name}", scope=f"regions/{region}")

    def pool_health(self, name: str, body: Any, **_: Any) -> Answer:
        with self.lock:
            pool = self.pools.get(name)
            if pool is None or body["instance"] not in pool.get("instances", []):
                return self.missing(f"instance {body['instance']} in {name}")
            state = "HEALTHY" if body["instance"] in self.healthy else "UNHEALTHY"
            return 200, {"healthStatus": [{"instance": body["instance"], "healthState": state}]}

    def list_rules(self, query: dict[str, str], **_: Any) -> Answer:
        with self.lock:
            rules = [copy.deepcopy(rule) for _, rule in sorted(self.rules.items())]
        return self.paged(rules, query, list)

    def insert_rule(self, region: str, body: Any, **_: Any) -> Answer:
        with self.lock:
            if body["target"].rsplit("/", 1)[-1] not in self.pools:
                return 400, error_body(400, "invalid", f"target {body['target']} is unknown")
            body = {
                **body,
                "IPAddress": f"198.51.100.{len(self.rules) + 10}",
                "region": f"{BASE}/{self.project}/regions/{region}",
            }
            return self.created(self.rules, body, f"regions/{region}", "forwardingRule")

    def get_rule(self, name: str, **_: Any) -> Answer:
        with self.lock:
            rule = self.rules.get(name)
            return (200, copy.deepcopy(rule)) if rule else self.missing(f"forwarding rule {name}")

    def drop_rule(self, region: str, name: str, **_: Any) -> Answer:
        with self.lock:
            if self.rules.pop(name, None) is None:
                return self.missing(f"forwarding rule {name}")
            return 200, self.operation(
                "", "delete", f"forwardingRules/{name}", scope=f"regions/{region}"
            )

    # -- serving -----------------------------------------------------------

    def handle(self, method: str, target: str, authorization: str, body: Any) -> Answer:
        if not self.tokens.live(authorization):
            return 401, error_body(401, "authError", "Invalid Credentials")
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        for route_method, pattern, handler in self.routes:
            match = pattern.match(parts.path)
            if match and route_method == method:
                return handler(query=query, body=body, **match.groupdict())
        return 404, error_body(404, "notFound", f"no route for {method} {parts.path}")


@contextmanager
def gce_replay() -> Iterator[tuple[GceReplay, str, dict[str, str]]]:
    """The replay, its endpoint and the service account's credentials."""
    key, email = new_service_account()
    tokens = TokenServer(key.public_key(), email, scope="compute")
    replay = GceReplay(tokens)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, body = replay.handle(
                self.command,
                self.path,
                self.headers.get("Authorization", ""),
                json.loads(raw) if raw else None,
            )
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def do_DELETE(self) -> None:
            self._answer()

        def do_PATCH(self) -> None:
            self._answer()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        credentials = {**tokens.credentials(key), "project": replay.project}
        yield replay, f"http://127.0.0.1:{server.server_address[1]}/compute/v1", credentials
    finally:
        server.shutdown()
        server.server_close()
        tokens.close()
