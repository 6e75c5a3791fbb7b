"""A replay server for Nova, Glance and Cinder on 127.0.0.1.

It answers with the real OpenStack responses recorded in the apache-libcloud
wheel (``libcloud/test/compute/fixtures/openstack_v1_1``), loaded from the
installed package, at the URLs Libcloud's own tests map them to. It keeps the
servers created through it, so a service can watch them run, and records
every request so tests can check what the driver sent.

Paths: compute ``/compute/v2.1/<project>/...``, image ``/image/v2/...``,
volume ``/volume/v3/<project>/...``.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import libcloud

FIXTURES = Path(libcloud.__file__).parent / "test" / "compute" / "fixtures" / "openstack_v1_1"

Answer = tuple[int, Any]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class OpenStackReplay:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.servers: dict[str, dict[str, Any]] = {
            str(server["id"]): server for server in fixture("_servers_detail.json")["servers"]
        }
        self.refuse_next: int = 0  # answer this many requests with 401
        self.lock = threading.Lock()
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Answer]]] = []
        for method, pattern, handler in (
            ("GET", r"/compute/v2\.1/[^/]+/servers/detail", self.list_servers),
            ("GET", r"/compute/v2\.1/[^/]+/servers/(?P<id>[^/]+)", self.get_server),
            ("POST", r"/compute/v2\.1/[^/]+/servers", self.create_server),
            ("POST", r"/compute/v2\.1/[^/]+/servers/(?P<id>[^/]+)/action", self.action),
            ("DELETE", r"/compute/v2\.1/[^/]+/servers/(?P<id>[^/]+)", self.delete_server),
            (
                "GET",
                r"/compute/v2\.1/[^/]+/flavors/detail",
                lambda **_: (200, fixture("_flavors_detail.json")),
            ),
            (
                "GET",
                r"/compute/v2\.1/[^/]+/os-availability-zone",
                lambda **_: (
                    200,
                    {
                        "availabilityZoneInfo": [
                            {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None},
                            {"zoneName": "az-2", "zoneState": {"available": True}, "hosts": None},
                            {
                                "zoneName": "broken",
                                "zoneState": {"available": False},
                                "hosts": None,
                            },
                        ]
                    },
                ),
            ),
            (
                "GET",
                r"/compute/v2\.1/[^/]+/images/detail",
                lambda **_: (200, fixture("_images_detail.json")),
            ),
            (
                "GET",
                r"/compute/v2\.1/[^/]+/os-keypairs",
                lambda **_: (200, fixture("_os_keypairs.json")),
            ),
            ("POST", r"/compute/v2\.1/[^/]+/os-keypairs", self.create_keypair),
            ("DELETE", r"/compute/v2\.1/[^/]+/os-keypairs/[^/]+", lambda **_: (202, None)),
            (
                "POST",
                r"/compute/v2\.1/[^/]+/servers/[^/]+/os-volume_attachments",
                lambda body, **_: (200, {"volumeAttachment": body["volumeAttachment"]}),
            ),
            (
                "DELETE",
                r"/compute/v2\.1/[^/]+/servers/[^/]+/os-volume_attachments/[^/]+",
                lambda **_: (202, None),
            ),
            (
                "GET",
                r"/compute/v2\.1/[^/]+/os-floating-ips",
                lambda **_: (200, fixture("_floating_ips.json")),
            ),
            (
                "POST",
                r"/compute/v2\.1/[^/]+/os-floating-ips",
                lambda **_: (200, fixture("_floating_ip.json")),
            ),
            ("DELETE", r"/compute/v2\.1/[^/]+/os-floating-ips/[^/]+", lambda **_: (202, None)),
            ("GET", r"/image/v2/images", self.list_images),
            (
                "GET",
                r"/volume/v3/[^/]+/volumes/detail",
                lambda **_: (200, fixture("_os_volumes.json")),
            ),
            ("GET", r"/volume/v3/[^/]+/volumes/(?P<id>[^/]+)", self.get_volume),
            (
                "POST",
                r"/volume/v3/[^/]+/volumes",
                lambda **_: (202, fixture("_os_volumes_create.json")),
            ),
            ("DELETE", r"/volume/v3/[^/]+/volumes/[^/]+", lambda **_: (202, None)),
            (
                "POST",
                r"/volume/v3/[^/]+/snapshots",
                lambda **_: (202, fixture("_os_snapshots_create.json")),
            ),
        ):
            self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    # -- compute -----------------------------------------------------------

    def list_servers(self, query: dict[str, list[str]], path: str, **_: Any) -> Answer:
        """Two servers a page, with a ``next`` link, so clients must follow it."""
        with self.lock:
            servers = list(self.servers.values())
        marker = (query.get("marker") or [None])[0]
        if marker is not None:
            ids = [str(server["id"]) for server in servers]
            servers = servers[ids.index(marker) + 1 :]
        page, rest = servers[:2], servers[2:]
        body: dict[str, Any] = {"servers": page}
        if rest:
            body["servers_links"] = [
                {"rel": "next", "href": f"{self.url}{path}?marker={page[-1]['id']}"}
            ]
        return 200, body

    def get_server(self, id: str, **_: Any) -> Answer:
        with self.lock:
            server = self.servers.get(id)
        if server is None:
            return 404, {"itemNotFound": {"code": 404, "message": "Instance could not be found"}}
        return 200, {"server": server}

    def create_server(self, body: dict[str, Any], **_: Any) -> Answer:
        request = body["server"]
        if request.get("flavorRef") == "no-valid-host":
            return 500, {
                "computeFault": {
                    "code": 500,
                    "message": "No valid host was found. There are not enough hosts available.",
                }
            }
        server = copy.deepcopy(fixture("_servers_detail.json")["servers"][1])
        server.update(
            id=str(uuid.uuid4()),
            name=request["name"],
            status="ACTIVE",
            metadata=request.get("metadata") or {},
            flavor={"id": str(request["flavorRef"])},
            image={"id": request["imageRef"]},
            key_name=request.get("key_name"),
        )
        server["OS-EXT-AZ:availability_zone"] = request.get("availability_zone", "nova")
        with self.lock:
            self.servers[server["id"]] = server
        answer = fixture("_servers_create.json")
        answer["server"]["id"] = server["id"]
        return 202, answer

    def action(self, id: str, body: dict[str, Any], **_: Any) -> Answer:
        with self.lock:
            server = self.servers.get(id)
            if server is None:
                return 404, {"itemNotFound": {"code": 404, "message": "Instance not found"}}
            if "os-stop" in body:
                server["status"] = "SHUTOFF"
            elif "os-start" in body:
                server["status"] = "ACTIVE"
        return 202, None

    def delete_server(self, id: str, **_: Any) -> Answer:
        with self.lock:
            removed = self.servers.pop(id, None)
        return (
            (204, None)
            if removed
            else (404, {"itemNotFound": {"code": 404, "message": "not found"}})
        )

    def create_keypair(self, body: dict[str, Any], **_: Any) -> Answer:
        if body["keypair"].get("public_key"):
            answer = fixture("_os_keypairs_create_import.json")
        else:
            answer = fixture("_os_keypairs_create.json")
        answer["keypair"]["name"] = body["keypair"]["name"]
        return 200, answer

    # -- image and volume ----------------------------------------------------

    def list_images(self, query: dict[str, list[str]], **_: Any) -> Answer:
        if query.get("marker"):
            return 200, fixture("_images_v2_page2.json")
        return 200, fixture("_images_v2.json")

    def get_volume(self, id: str, **_: Any) -> Answer:
        for volume in fixture("_os_volumes.json")["volumes"]:
            if volume["id"] == id:
                return 200, {"volume": volume}
        return 200, {"volume": {**fixture("_os_volumes_create.json")["volume"], "id": id}}

    # -- serving -------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes
    ) -> Answer:
        parts = urlsplit(raw_path)
        body = json.loads(raw_body) if raw_body else None
        with self.lock:
            self.requests.append(Recorded(method, raw_path, headers, body))
            if self.refuse_next > 0:
                self.refuse_next -= 1
                return 401, {
                    "error": {
                        "code": 401,
                        "message": "The request you have made requires authentication.",
                        "title": "Unauthorized",
                    }
                }
        for route_method, pattern, handler in self.routes:
            match = pattern.match(parts.path)
            if match and route_method == method:
                return handler(
                    body=body, query=parse_qs(parts.query), path=parts.path, **match.groupdict()
                )
        return 404, {"itemNotFound": {"code": 404, "message": f"no route {method} {parts.path}"}}

    @contextmanager
    def running(self) -> Iterator[OpenStackReplay]:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, answer = replay.handle(
                    self.command,
                    self.path,
                    dict(self.headers),
                    self.rfile.read(length) if length else b"",
                )
                payload = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
