"""A stateful Azure Resource Manager replay server on 127.0.0.1.

It starts from the real ARM responses recorded in the apache-libcloud wheel
(``libcloud/test/compute/fixtures/azure_arm``), loaded from the installed
package: the Compute provider's regions, a region's VM sizes, and the two
recorded VMs of resource group ``000000`` with their NICs and instance views,
listed one per page to make clients follow ``nextLink``. Resources PUT
through it are kept (a repeated PUT updates the same one, as ARM does),
long-running calls answer ``Azure-AsyncOperation`` (or ``Location``)
monitors that finish on the second look, and a token endpoint issues tokens
only for the right client credentials. The next VM PUT can be told to fail
with an ARM error body, or to fail in its asynchronous operation.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import libcloud

FIXTURES = Path(libcloud.__file__).parent / "test" / "compute" / "fixtures" / "azure_arm"
SUBSCRIPTION = "99999999-9999-9999-9999-999999999999"
GROUP = "000000"
TENANT = "77777777-7777-7777-7777-777777777777"
OPERATIONS = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute/operations"

Answer = tuple[int, Any, dict[str, str]]

DOCUMENTED_SIZES = [
    {
        "name": name,
        "numberOfCores": cores,
        "osDiskSizeInMB": 1047552,
        "resourceDiskSizeInMB": disk,
        "memoryInMB": memory,
        "maxDataDiskCount": disks,
    }
    for name, cores, memory, disk, disks in (
        ("Standard_B2s", 2, 4096, 8192, 4),
        ("Standard_D2s_v3", 2, 8192, 16384, 4),
    )
]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def arm_error(status: int, code: str, message: str) -> Answer:
    return status, {"error": {"code": code, "message": message}}, {}


@dataclass
class AzureReplay:
    client_id: str = "overcast-client"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    base: str = ""  # this server's URL, once it listens
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # lowercased path
    views: dict[str, dict[str, Any]] = field(default_factory=dict)  # VM path -> instance view
    monitors: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    puts: list[str] = field(default_factory=list)  # paths of PUTs that made something
    #: The next VM PUT answers this instead of acting.
    fail_next: Answer | None = None
    #: The next VM PUT is accepted, then its operation fails with this error code.
    operation_error_next: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for page in ("", "_1"):
            for vm in fixture(
                f"_subscriptions_99999999_providers_Microsoft_Compute_virtualMachines{page}.json"
            )["value"]:
                self.resources[vm["id"].lower()] = vm
                stem = vm["name"].replace("-", "_")
                prefix = f"_subscriptions_99999999_resourceGroups_{GROUP}_providers_"
                self.views[vm["id"].lower()] = fixture(
                    f"{prefix}Microsoft_Compute_virtualMachines_{stem}_InstanceView.json"
                )
                nic = fixture(f"{prefix}Microsoft_Network_networkInterfaces_{stem}_nic.json")
                self.resources[nic["id"].lower()] = nic

    # -- auth --------------------------------------------------------------

    def token(self, form: dict[str, str]) -> Answer:
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
            or form.get("resource") != "https://management.core.windows.net/"
        ):
            return 401, {"error": "invalid_client"}, {}
        body = fixture("_77777777_7777_7777_7777_777777777777_oauth2_token.json")
        body["access_token"] = secrets.token_urlsafe(24)
        self.tokens.add(body["access_token"])
        return 200, body, {}

    # -- long-running operations --------------------------------------------

    def accepted(
        self, status: int, body: Any, error: str | None = None, location: bool = False
    ) -> Answer:
        name = uuid.uuid4().hex
        self.monitors[name] = {"looks": 0, "error": error, "location": location}
        url = f"{self.base}{OPERATIONS}/{name}"
        header = {"Location": url} if location else {"Azure-AsyncOperation": url}
        return status, body, header

    def monitor(self, name: str) -> Answer:
        state = self.monitors.get(name)
        if state is None:
            return arm_error(404, "NotFound", f"operation {name}")
        state["looks"] += 1
        if state["location"]:  # a Location monitor: 202 while it runs, then 200
            return (202, None, {}) if state["looks"] < 2 else (200, None, {})
        if state["looks"] < 2:
            return 200, {"status": "InProgress"}, {}
        if state["error"]:
            return (
                200,
                {
                    "status": "Failed",
                    "error": {
                        "code": state["error"],
                        "message": f"{state['error']} for this request",
                    },
                },
                {},
            )
        return 200, {"status": "Succeeded"}, {}

    # -- resources ---------------------------------------------------------

    def put(self, path: str, body: dict[str, Any]) -> Answer:
        key = path.lower()
        kind = path.split("/providers/", 1)[1].rsplit("/", 1)[0]
        name = path.rsplit("/", 1)[1]
        error = None
        if kind == "Microsoft.Compute/virtualMachines":
            if self.fail_next is not None:
                failure, self.fail_next = self.fail_next, None
                return failure
            error, self.operation_error_next = self.operation_error_next, None
            size = body["properties"]["hardwareProfile"]["vmSize"]
            sizes = {s["name"] for s in self.sizes()["value"]}
            if size not in sizes:
                return arm_error(
                    409, "SkuNotAvailable", f"{size} is not available in {body['location']}"
                )
        if error:
            return self.accepted(201, {"name": name}, error)
        existed = key in self.resources
        resource = {**copy.deepcopy(body), "id": path, "name": name, "type": kind}
        properties = resource.setdefault("properties", {})
        properties["provisioningState"] = "Succeeded"
        if kind == "Microsoft.Network/publicIPAddresses":
            properties["ipAddress"] = (
                self.resources.get(key, {}).get("properties", {}).get("ipAddress")
                or f"20.0.{len(self.puts) % 250}.{len(self.resources) % 250 + 1}"
            )
        if kind == "Microsoft.Network/virtualNetworks":
            for subnet in properties.get("subnets", []):
                subnet["id"] = f"{path}/subnets/{subnet['name']}"
        if kind == "Microsoft.Network/networkInterfaces":
            for index, configuration in enumerate(properties.get("ipConfigurations", [])):
                configuration["properties"]["privateIPAddress"] = (
                    f"10.42.0.{len(self.resources) % 250 + 4 + index}"
                )
        if kind == "Microsoft.Compute/virtualMachines":
            self.views[key] = {
                "statuses": [
                    {"code": "ProvisioningState/succeeded"},
                    {"code": "PowerState/running"},
                ]
            }
            disk = properties["storageProfile"]["osDisk"]["name"]
            group = path.rsplit("/providers/", 1)[0]
            self.resources[f"{group}/providers/Microsoft.Compute/disks/{disk}".lower()] = {
                "name": disk
            }
        self.resources[key] = resource
        if not existed:
            self.puts.append(path)
        return self.accepted(200 if existed else 201, resource)

    def sizes(self) -> Any:
        """The recorded sizes (A0-A2, all under 4 GB), and two current ones as
        ARM documents them, so that bigger requirements can be met too."""
        recorded = fixture(
            "_subscriptions_99999999_providers_Microsoft_Compute_locations_eastus_vmSizes.json"
        )
        return {"value": [*recorded["value"], *DOCUMENTED_SIZES]}

    def get(self, path: str, query: dict[str, str]) -> Answer:
        key = path.lower()
        if key.endswith("/instanceview"):
            vm = key.removesuffix("/instanceview")
            if vm not in self.views:
                return arm_error(404, "ResourceNotFound", f"{path} was not found")
            return 200, self.views[vm], {}
        if key in self.resources:
            return 200, self.resources[key], {}
        if key.endswith("/providers/microsoft.compute/virtualmachines"):
            listed = sorted(
                (k, v)
                for k, v in self.resources.items()
                if k.startswith(key + "/") and "/" not in k[len(key) + 1 :]
            )
            start = int(query.get("skip") or 0)
            page: dict[str, Any] = {"value": [v for _, v in listed[start : start + 1]]}
            if start + 1 < len(listed):
                page["nextLink"] = (
                    f"{self.base}{path}?api-version={query['api-version']}&skip={start + 1}"
                )
            return 200, page, {}
        return arm_error(404, "ResourceNotFound", f"{path} was not found")

    def delete(self, path: str) -> Answer:
        key = path.lower()
        if self.resources.pop(key, None) is None:
            return arm_error(404, "ResourceNotFound", f"{path} was not found")
        self.views.pop(key, None)
        return self.accepted(202, None)

    def act(self, path: str, verb: str) -> Answer:
        key = path.lower()
        if key not in self.views:
            return arm_error(404, "ResourceNotFound", f"{path} was not found")
        power = {"restart": "running", "start": "running", "deallocate": "deallocated"}[verb]
        self.views[key] = {
            "statuses": [{"code": "ProvisioningState/succeeded"}, {"code": f"PowerState/{power}"}]
        }
        return self.accepted(202, None, location=True)

    # -- serving -----------------------------------------------------------

    def handle(self, method: str, target: str, authorization: str, raw: bytes) -> Answer:
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        if method == "POST" and path == f"/{TENANT}/oauth2/token":
            return self.token({k: v[0] for k, v in parse_qs(raw.decode()).items()})
        if authorization.removeprefix("Bearer ") not in self.tokens:
            return arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if "api-version" not in query:
            return arm_error(400, "MissingApiVersionParameter", "api-version is required")
        with self.lock:
            operation = re.match(
                r"^/subscriptions/[^/]+/providers/Microsoft\.Compute/operations/([0-9a-f]+)$", path
            )
            if operation:
                return self.monitor(operation.group(1))
            if (
                method == "GET"
                and path == f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute"
            ):
                return 200, fixture("_subscriptions_99999999_providers_Microsoft_Compute.json"), {}
            if method == "GET" and re.match(
                rf"^/subscriptions/{SUBSCRIPTION}/providers/Microsoft\.Compute/locations/[^/]+/vmSizes$",
                path,
            ):
                return 200, self.sizes(), {}
            action = re.match(r"^(.*/virtualMachines/[^/]+)/(restart|start|deallocate)$", path)
            if method == "POST" and action:
                return self.act(action.group(1), action.group(2))
            if method == "PUT":
                return self.put(path, json.loads(raw))
            if method == "GET":
                return self.get(path, query)
            if method == "DELETE":
                return self.delete(path)
        return arm_error(405, "MethodNotAllowed", f"{method} {path}")


@contextmanager
def azure_replay() -> Iterator[tuple[AzureReplay, dict[str, str], dict[str, Any]]]:
    """The replay, the account's credentials and its options (endpoints)."""
    replay = AzureReplay()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, body, headers = replay.handle(
                self.command, self.path, self.headers.get("Authorization", ""), raw
            )
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer()

        def do_PUT(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def do_DELETE(self) -> None:
            self._answer()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    replay.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        credentials = {
            "key": replay.client_id,
            "secret": replay.client_secret,
            "tenant_id": TENANT,
            "subscription_id": SUBSCRIPTION,
        }
        options = {
            "endpoint": replay.base,
            "login_endpoint": replay.base,
            "resource_group": GROUP,
            "poll_interval": 0.01,
        }
        yield replay, credentials, options
    finally:
        server.shutdown()
        server.server_close()
