"""``gce``: Google Compute Engine instances in one project, over its REST API.

- Auth: a service-account key (``client_email``, ``private_key``,
  ``token_uri``) signed into a JWT and exchanged for an OAuth2 token,
  cached until shortly before it ends (``drivers/common/google_auth.py``).
- Catalog: zones are locations, with the country of their region from
  ``drivers/data/gce_regions.json``; machine types are sizes, priced from the
  bundled data (Google bills a machine type as its vCPUs and GB of RAM at its
  family's regional rates); images come from the configured image projects
  (``debian-cloud``, ``ubuntu-os-cloud`` by default), deprecated ones left out.
- Instances: listed with the aggregated list, following ``pageToken``; a
  node's id is ``zone/name``. A create sends GCE's own ``requestId``, derived
  from the idempotency token, so GCE itself makes one instance however often
  it is asked; the instance also carries the token as a label, and its name
  is derived from it. The SSH key goes in the ``ssh-keys`` metadata. Zone
  operations are polled until done, and their errors raised as ours.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from importlib import resources
from typing import Any, ClassVar

from drivers import pricing
from drivers.compute.base import (
    Features,
    Node,
    NodeAuth,
    NodeAuthSSHKey,
    NodeDriver,
    NodeImage,
    NodeLocation,
    NodeSize,
    NodeState,
)
from drivers.compute.gce.api import DEFAULT_ENDPOINT, DEFAULT_TOKEN_URI, GCEApi, last_segment
from drivers.compute.gce.errors import PROVIDER
from drivers.errors import InvalidRequest, NotFound, NotSupported

TOKEN_LABEL = "overcast-token"
#: requestIds are uuid5(REQUESTS, idempotency token): GCE wants a UUID.
REQUESTS = uuid.UUID("0c9f5a43-2d1e-4b8a-9f63-5e7d1c2b8a40")
IMAGES_TTL = 300.0

STATES = {
    "PROVISIONING": NodeState.PENDING,
    "STAGING": NodeState.PENDING,
    "RUNNING": NodeState.RUNNING,
    "STOPPING": NodeState.RUNNING,
    "SUSPENDING": NodeState.RUNNING,
    "SUSPENDED": NodeState.SUSPENDED,
    "REPAIRING": NodeState.ERROR,
    "TERMINATED": NodeState.STOPPED,  # GCE's word for a stopped instance
}
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{1,63}$")


def region_table() -> dict[str, dict[str, str]]:
    text = (resources.files("drivers") / "data" / "gce_regions.json").read_text()
    return dict(json.loads(text))


def token_label(token: str) -> str:
    """The token as a label value (lowercase, at most 63 of [a-z0-9_-])."""
    if LABEL_VALUE.match(token):
        return token
    return hashlib.sha256(token.encode()).hexdigest()[:40]


def instance_name(name: str, token: str) -> str:
    """An RFC 1035 name from the node's name, made unique by its token."""
    stem = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "node"
    if not stem[0].isalpha():
        stem = f"n-{stem}"
    digest = hashlib.sha256(token.encode()).hexdigest()[:8]
    return f"{stem[:54].rstrip('-')}-{digest}"


class GCENodeDriver(NodeDriver):
    """Compute Engine in one project (see the module docstring)."""

    name: ClassVar[str] = "Google Compute Engine"
    provider: ClassVar[str] = PROVIDER
    features: ClassVar[Features] = Features(
        create_node_auth=frozenset({"ssh_key"}), idempotent_create=True
    )

    def __init__(
        self,
        key: str | None = None,
        *,
        client_email: str,
        private_key: str,
        project: str,
        token_uri: str = DEFAULT_TOKEN_URI,
        endpoint: str = DEFAULT_ENDPOINT,
        image_projects: list[str] | tuple[str, ...] = ("debian-cloud", "ubuntu-os-cloud"),
        zones: list[str] | None = None,
        network: str = "default",
        ssh_user: str = "overcast",
        disk_gb: int = 10,
        operation_timeout: float = 600.0,
        poll_interval: float = 1.0,
        timeout: tuple[float, float] = (10.0, 60.0),
        pricing_store: pricing.PricingStore | None = None,
        **_options: Any,
    ) -> None:
        self.api = GCEApi(
            client_email=client_email,
            private_key=private_key,
            project=project,
            token_uri=token_uri,
            endpoint=endpoint,
            operation_timeout=operation_timeout,
            poll_interval=poll_interval,
            timeout=timeout,
        )
        self.image_projects = tuple(image_projects)
        self.zones = set(zones) if zones else None
        self.network = network
        self.ssh_user = ssh_user
        self.disk_gb = disk_gb
        self._pricing = pricing_store
        self._regions = region_table()
        self._images: tuple[float, list[NodeImage]] | None = None
        self._images_lock = threading.Lock()

    # -- catalog -----------------------------------------------------------

    def list_locations(self) -> list[NodeLocation]:
        locations = []
        for page in self.api.pages("zones"):
            for zone in page.get("items", []):
                region = last_segment(zone.get("region"))
                if zone.get("status") != "UP" or region not in self._regions:
                    continue
                if self.zones is not None and zone["name"] not in self.zones:
                    continue
                locations.append(
                    NodeLocation(
                        id=zone["name"],
                        name=f"{self._regions[region]['name']} ({zone['name']})",
                        country=self._regions[region]["country"],
                        provider=PROVIDER,
                        region=region,
                        zone=zone["name"],
                    )
                )
        return locations

    def list_sizes(self, location: NodeLocation | None = None) -> list[NodeSize]:
        if location is not None:
            types = [
                t
                for page in self.api.pages(f"zones/{location.id}/machineTypes")
                for t in page.get("items", [])
            ]
        else:
            types = [
                machine_type
                for page in self.api.pages("aggregated/machineTypes")
                for scoped in page.get("items", {}).values()
                for machine_type in scoped.get("machineTypes", [])
            ]
        sizes: dict[str, NodeSize] = {}
        for machine_type in types:
            if machine_type.get("deprecated") or machine_type["name"] in sizes:
                continue
            zone = str(machine_type.get("zone") or (location.id if location else ""))
            region = location.region if location else zone.rsplit("-", 1)[0]
            sizes[machine_type["name"]] = NodeSize(
                id=machine_type["name"],
                name=str(machine_type.get("description") or machine_type["name"]),
                ram_mb=int(machine_type["memoryMb"]),
                vcpus=int(machine_type["guestCpus"]),
                disk_gb=int(machine_type.get("imageSpaceGb") or self.disk_gb),
                provider=PROVIDER,
                gpus=len(machine_type.get("accelerators") or ()),
                price_per_hour=self.price_data.quote(PROVIDER, machine_type["name"], region).price,
            )
        return list(sizes.values())

    def list_images(self, location: NodeLocation | None = None) -> list[NodeImage]:
        """Images of the image projects (the same in every zone; kept a few minutes)."""
        with self._images_lock:
            if self._images is not None and time.monotonic() - self._images[0] < IMAGES_TTL:
                return list(self._images[1])
        images = [
            NodeImage(
                id=f"{project}/{image['name']}",
                name=str(image["name"]),
                provider=PROVIDER,
                extra={"family": image.get("family"), "description": image.get("description")},
            )
            for project in self.image_projects
            for page in self.api.pages(f"/projects/{project}/global/images")
            for image in page.get("items", [])
            if not image.get("deprecated") and image.get("status", "READY") == "READY"
        ]
        with self._images_lock:
            self._images = (time.monotonic(), images)
        return list(images)

    # -- nodes -------------------------------------------------------------

    def list_nodes(self) -> list[Node]:
        return [
            self._to_node(instance)
            for page in self.api.pages("aggregated/instances")
            for scoped in page.get("items", {}).values()
            for instance in scoped.get("instances", [])
        ]

    @staticmethod
    def _address(node_id: str) -> tuple[str, str]:
        zone, _, name = node_id.partition("/")
        if not zone or not name:
            raise NotFound(f"node {node_id} not found (ids are zone/name)", provider=PROVIDER)
        return zone, name

    def get_node(self, node_id: str) -> Node:
        zone, name = self._address(node_id)
        return self._to_node(self.api.call("GET", f"zones/{zone}/instances/{name}"))

    def find_node_by_token(self, token: str, name: str | None = None) -> Node | None:
        label = token_label(token)
        for node in self.list_nodes():
            if node.extra.get("token") == label and node.state is not NodeState.TERMINATED:
                return node
        return None

    def create_node(
        self,
        name: str,
        size: NodeSize,
        image: NodeImage,
        location: NodeLocation | None = None,
        auth: NodeAuth | None = None,
        idempotency_token: str | None = None,
    ) -> Node:
        if location is None:
            raise InvalidRequest("gce needs a location (a zone)", provider=PROVIDER)
        if auth is not None and not isinstance(auth, NodeAuthSSHKey):
            raise NotSupported("gce nodes take SSH keys only", provider=PROVIDER)
        image_project, _, image_name = image.id.partition("/")
        if not image_name:
            raise InvalidRequest(f"image {image.id}: give project/name", provider=PROVIDER)
        token = idempotency_token or uuid.uuid4().hex
        zone = location.id
        instance = instance_name(name, token)
        body: dict[str, Any] = {
            "name": instance,
            "machineType": f"zones/{zone}/machineTypes/{size.id}",
            "labels": {TOKEN_LABEL: token_label(token)},
            "disks": [
                {
                    "boot": True,
                    "autoDelete": True,
                    "initializeParams": {
                        "sourceImage": f"projects/{image_project}/global/images/{image_name}",
                        "diskSizeGb": str(max(self.disk_gb, size.disk_gb or 0)),
                    },
                }
            ],
            "networkInterfaces": [
                {
                    "network": f"global/networks/{self.network}",
                    "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT"}],
                }
            ],
        }
        if auth is not None:
            body["metadata"] = {
                "items": [{"key": "ssh-keys", "value": f"{self.ssh_user}:{auth.public_key}"}]
            }
        request_id = str(uuid.uuid5(REQUESTS, token))
        # The requestId makes the POST safe to repeat: GCE answers a repeat
        # with the first operation instead of acting again.
        operation = self.api.call(
            "POST",
            f"zones/{zone}/instances",
            params={"requestId": request_id},
            body=body,
            idempotent=True,
        )
        self.api.wait(operation)
        return self.get_node(f"{zone}/{instance}")

    def _act(self, node: Node, method: str, action: str | None) -> None:
        zone, name = self._address(node.id)
        path = f"zones/{zone}/instances/{name}" + (f"/{action}" if action else "")
        self.api.wait(self.api.call(method, path, params={"requestId": str(uuid.uuid4())}))

    def reboot_node(self, node: Node) -> None:
        """A hard reset (GCE has no soft reboot)."""
        self._act(node, "POST", "reset")

    def start_node(self, node: Node) -> None:
        self._act(node, "POST", "start")

    def stop_node(self, node: Node) -> None:
        self._act(node, "POST", "stop")

    def destroy_node(self, node: Node) -> None:
        """Delete the instance; its boot disk goes with it (``autoDelete``)."""
        self._act(node, "DELETE", None)

    def _to_node(self, instance: Mapping[str, Any]) -> Node:
        zone = last_segment(instance.get("zone"))
        interfaces = instance.get("networkInterfaces") or []
        public = tuple(
            config["natIP"]
            for interface in interfaces
            for config in interface.get("accessConfigs") or ()
            if config.get("natIP")
        )
        private = tuple(i["networkIP"] for i in interfaces if i.get("networkIP"))
        return Node(
            id=f"{zone}/{instance['name']}",
            name=str(instance["name"]),
            state=STATES.get(str(instance.get("status")), NodeState.UNKNOWN),
            provider=PROVIDER,
            public_ips=public,
            private_ips=private,
            size_id=last_segment(instance.get("machineType")) or None,
            location_id=zone,
            extra={
                "token": (instance.get("labels") or {}).get(TOKEN_LABEL),
                "instance_id": instance.get("id"),
                "status": instance.get("status"),
            },
        )
