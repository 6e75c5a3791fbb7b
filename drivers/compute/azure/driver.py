"""``azure``: Azure virtual machines in one subscription and resource group,
over Azure Resource Manager.

- Auth: OAuth2 client credentials (``tenant_id``; ``key``: the client id;
  ``secret``: its secret) at the login endpoint, cached until shortly before
  the token ends.
- Catalog: the regions that offer virtual machines are locations, with
  countries from ``drivers/data/azure_regions.json``; VM sizes are sizes,
  priced from the bundled data; images are the configured marketplace
  references (publisher, offer, SKU, version).
- Create: a public IP, then a NIC (on the account's ``overcast-<region>``
  virtual network, made on first use), then the VM. Every resource's name is
  derived from the idempotency token, so repeating the create repeats the
  same PUTs, which ARM treats as one resource. Long-running calls are
  followed through ``Azure-AsyncOperation`` or ``Location``.
- Lifecycle: restart, start, stop (deallocate: no charge for compute), and a
  destroy that removes the VM, its NIC, its public IP and its OS disk.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from importlib import resources
from typing import Any, ClassVar

from drivers import pricing
from drivers.compute.azure.arm import ArmApi
from drivers.compute.azure.errors import PROVIDER
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
from drivers.errors import InvalidRequest, NotFound, NotSupported

DEFAULT_ENDPOINT = "https://management.azure.com"
DEFAULT_LOGIN = "https://login.microsoftonline.com"
COMPUTE_API = "2023-03-01"
NETWORK_API = "2023-04-01"
RESOURCES_API = "2022-09-01"
TOKEN_TAG = "overcast-token"
DEFAULT_IMAGES = (
    "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest",
    "Debian:debian-12:12-gen2:latest",
)
POWER_STATES = {
    "running": NodeState.RUNNING,
    "starting": NodeState.PENDING,
    "stopping": NodeState.RUNNING,
    "stopped": NodeState.STOPPED,
    "deallocating": NodeState.RUNNING,
    "deallocated": NodeState.STOPPED,
}


def region_table() -> dict[str, dict[str, str]]:
    text = (resources.files("drivers") / "data" / "azure_regions.json").read_text()
    return dict(json.loads(text))


def size_key(name: str) -> str:
    """The bundled price data's name for an ARM size (Standard_D2s_v3 -> standardd2sv3)."""
    return name.lower().replace("_", "")


def resource_base(token: str) -> str:
    """The stem of a node's resource names, derived from its token."""
    return "oc-" + hashlib.sha256(token.encode()).hexdigest()[:16]


class AzureNodeDriver(NodeDriver):
    """Azure VMs in one resource group (see the module docstring)."""

    name: ClassVar[str] = "Azure Virtual Machines"
    provider: ClassVar[str] = PROVIDER
    features: ClassVar[Features] = Features(
        create_node_auth=frozenset({"ssh_key"}), idempotent_create=True
    )

    def __init__(
        self,
        key: str | None = None,
        secret: str | None = None,
        *,
        tenant_id: str,
        subscription_id: str,
        resource_group: str = "overcast",
        locations: list[str] | None = None,
        images: list[str] | tuple[str, ...] = DEFAULT_IMAGES,
        admin_user: str = "overcast",
        endpoint: str = DEFAULT_ENDPOINT,
        login_endpoint: str = DEFAULT_LOGIN,
        poll_interval: float = 2.0,
        operation_timeout: float = 900.0,
        timeout: tuple[float, float] = (10.0, 60.0),
        pricing_store: pricing.PricingStore | None = None,
        **_options: Any,
    ) -> None:
        if not key or not secret:
            raise InvalidRequest("azure needs the client id (key) and secret", provider=PROVIDER)
        self.arm = ArmApi(
            tenant_id=tenant_id,
            client_id=key,
            secret=secret,
            subscription=subscription_id,
            group=resource_group,
            endpoint=endpoint,
            login_endpoint=login_endpoint,
            poll_interval=poll_interval,
            operation_timeout=operation_timeout,
            timeout=timeout,
        )
        self.subscription = subscription_id
        self.locations = set(locations) if locations else None
        self.images = tuple(images)
        self.admin_user = admin_user
        self._pricing = pricing_store
        self._regions = region_table()

    # -- catalog -----------------------------------------------------------

    def list_locations(self) -> list[NodeLocation]:
        compute = self.arm.get(
            f"/subscriptions/{self.subscription}/providers/Microsoft.Compute", RESOURCES_API
        )
        names: list[str] = next(
            (
                kind.get("locations", [])
                for kind in compute.get("resourceTypes", [])
                if kind.get("resourceType") == "virtualMachines"
            ),
            [],
        )
        locations = []
        for display in names:
            name = display.lower().replace(" ", "")
            known = self._regions.get(name)
            if known is None or (self.locations is not None and name not in self.locations):
                continue
            locations.append(
                NodeLocation(
                    id=name,
                    name=known["name"],
                    country=known["country"],
                    provider=PROVIDER,
                    region=name,
                )
            )
        return locations

    def price_key(self, size_id: str, location: NodeLocation | None) -> tuple[str, str | None]:
        return size_key(size_id), location.id if location else None

    def list_sizes(self, location: NodeLocation | None = None) -> list[NodeSize]:
        location = location or next(iter(self.list_locations()))
        path = (
            f"/subscriptions/{self.subscription}/providers/Microsoft.Compute/locations/"
            f"{location.id}/vmSizes"
        )
        return [
            NodeSize(
                id=str(size["name"]),
                name=str(size["name"]),
                ram_mb=int(size["memoryInMB"]),
                vcpus=int(size["numberOfCores"]),
                disk_gb=int(size.get("resourceDiskSizeInMB") or 0) // 1024,
                provider=PROVIDER,
                price_per_hour=self.price_quote(str(size["name"]), location).price,
            )
            for size in self.arm.items(path, COMPUTE_API)
        ]

    def list_images(self, location: NodeLocation | None = None) -> list[NodeImage]:
        images = []
        for reference in self.images:
            parts = reference.split(":")
            if len(parts) != 4:
                raise InvalidRequest(
                    f"image {reference}: give publisher:offer:sku:version", provider=PROVIDER
                )
            publisher, offer, sku, version = parts
            images.append(
                NodeImage(
                    id=reference,
                    name=f"{offer} {sku}",
                    provider=PROVIDER,
                    extra={"publisher": publisher, "offer": offer, "sku": sku, "version": version},
                )
            )
        return images

    # -- nodes -------------------------------------------------------------

    def _vm_path(self, name: str) -> str:
        return self.arm.group_path("Microsoft.Compute/virtualMachines", name)

    def list_nodes(self) -> list[Node]:
        return [
            self._to_node(vm)
            for vm in self.arm.items(
                self.arm.group_path("Microsoft.Compute/virtualMachines"), COMPUTE_API
            )
        ]

    def get_node(self, node_id: str) -> Node:
        return self._to_node(self.arm.get(self._vm_path(node_id), COMPUTE_API))

    def find_node_by_token(self, token: str, name: str | None = None) -> Node | None:
        try:
            node = self.get_node(resource_base(token))
        except NotFound:
            return None
        return node if node.extra.get("token") == token else None

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
            raise InvalidRequest("azure needs a location (a region)", provider=PROVIDER)
        if not isinstance(auth, NodeAuthSSHKey):
            raise NotSupported("azure Linux nodes need an SSH key", provider=PROVIDER)
        publisher, offer, sku, version = [*image.id.split(":"), "", "", "", ""][:4]
        if not version:
            raise InvalidRequest(
                f"image {image.id}: give publisher:offer:sku:version", provider=PROVIDER
            )
        token = idempotency_token or uuid.uuid4().hex
        base = resource_base(token)
        region = location.id
        subnet = self._ensure_network(region)
        address = self.arm.put(
            self.arm.group_path("Microsoft.Network/publicIPAddresses", f"{base}-ip"),
            NETWORK_API,
            {
                "location": region,
                "sku": {"name": "Standard"},
                "properties": {"publicIPAllocationMethod": "Static"},
                "tags": {TOKEN_TAG: token},
            },
        )
        nic = self.arm.put(
            self.arm.group_path("Microsoft.Network/networkInterfaces", f"{base}-nic"),
            NETWORK_API,
            {
                "location": region,
                "properties": {
                    "ipConfigurations": [
                        {
                            "name": "primary",
                            "properties": {
                                "subnet": {"id": subnet},
                                "publicIPAddress": {"id": address["id"]},
                            },
                        }
                    ]
                },
                "tags": {TOKEN_TAG: token},
            },
        )
        vm = self.arm.put(
            self._vm_path(base),
            COMPUTE_API,
            {
                "location": region,
                "tags": {TOKEN_TAG: token, "overcast-name": name},
                "properties": {
                    "hardwareProfile": {"vmSize": size.id},
                    "storageProfile": {
                        "imageReference": {
                            "publisher": publisher,
                            "offer": offer,
                            "sku": sku,
                            "version": version,
                        },
                        "osDisk": {
                            "name": f"{base}-osdisk",
                            "createOption": "FromImage",
                            "deleteOption": "Delete",
                            "managedDisk": {"storageAccountType": "Standard_LRS"},
                        },
                    },
                    "osProfile": {
                        "computerName": base,
                        "adminUsername": self.admin_user,
                        "linuxConfiguration": {
                            "disablePasswordAuthentication": True,
                            "ssh": {
                                "publicKeys": [
                                    {
                                        "path": f"/home/{self.admin_user}/.ssh/authorized_keys",
                                        "keyData": auth.public_key,
                                    }
                                ]
                            },
                        },
                    },
                    "networkProfile": {
                        "networkInterfaces": [
                            {"id": nic["id"], "properties": {"deleteOption": "Delete"}}
                        ]
                    },
                },
            },
        )
        return self._to_node(vm)

    def _ensure_network(self, region: str) -> str:
        """The subnet id of the account's network in ``region`` (made on first use)."""
        network = self.arm.put(
            self.arm.group_path("Microsoft.Network/virtualNetworks", f"overcast-{region}"),
            NETWORK_API,
            {
                "location": region,
                "properties": {
                    "addressSpace": {"addressPrefixes": ["10.42.0.0/16"]},
                    "subnets": [
                        {"name": "default", "properties": {"addressPrefix": "10.42.0.0/24"}}
                    ],
                },
            },
        )
        return str(network["properties"]["subnets"][0]["id"])

    def _action(self, node: Node, verb: str) -> None:
        self.arm.post(f"{self._vm_path(node.id)}/{verb}", COMPUTE_API)

    def reboot_node(self, node: Node) -> None:
        self._action(node, "restart")

    def start_node(self, node: Node) -> None:
        self._action(node, "start")

    def stop_node(self, node: Node) -> None:
        """Deallocate: the VM stops and its compute is no longer billed."""
        self._action(node, "deallocate")

    def destroy_node(self, node: Node) -> None:
        """The VM, then its NIC, public IP and OS disk (each may be gone already)."""
        self.get_node(node.id)  # NotFound for a node that never was
        base = node.id
        self.arm.delete(self._vm_path(base), COMPUTE_API)
        self.arm.delete(
            self.arm.group_path("Microsoft.Network/networkInterfaces", f"{base}-nic"), NETWORK_API
        )
        self.arm.delete(
            self.arm.group_path("Microsoft.Network/publicIPAddresses", f"{base}-ip"), NETWORK_API
        )
        self.arm.delete(
            self.arm.group_path("Microsoft.Compute/disks", f"{base}-osdisk"), COMPUTE_API
        )

    def _to_node(self, vm: Mapping[str, Any]) -> Node:
        name = str(vm["name"])
        properties = vm.get("properties") or {}
        view = self.arm.get(f"{self._vm_path(name)}/instanceView", COMPUTE_API)
        codes = [str(status.get("code", "")) for status in view.get("statuses", [])]
        power = next((c.split("/", 1)[1] for c in codes if c.startswith("PowerState/")), None)
        if "ProvisioningState/failed" in {c.lower() for c in codes}:
            state = NodeState.ERROR
        elif power is None:
            state = NodeState.PENDING
        else:
            state = POWER_STATES.get(power, NodeState.UNKNOWN)
        private, public = self._addresses(properties)
        return Node(
            id=name,
            name=str((vm.get("tags") or {}).get("overcast-name") or name),
            state=state,
            provider=PROVIDER,
            public_ips=public,
            private_ips=private,
            size_id=(properties.get("hardwareProfile") or {}).get("vmSize"),
            location_id=vm.get("location"),
            extra={"token": (vm.get("tags") or {}).get(TOKEN_TAG), "power_state": power},
        )

    def _addresses(self, properties: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        private: list[str] = []
        public: list[str] = []
        for reference in (properties.get("networkProfile") or {}).get("networkInterfaces", []):
            try:
                nic = self.arm.get(reference["id"], NETWORK_API)
            except NotFound:
                continue
            for configuration in (nic.get("properties") or {}).get("ipConfigurations", []):
                settings = configuration.get("properties") or {}
                if settings.get("privateIPAddress"):
                    private.append(settings["privateIPAddress"])
                address_id = (settings.get("publicIPAddress") or {}).get("id")
                if address_id:
                    try:
                        address = self.arm.get(address_id, NETWORK_API)
                    except NotFound:
                        continue
                    if (address.get("properties") or {}).get("ipAddress"):
                        public.append(address["properties"]["ipAddress"])
        return tuple(private), tuple(public)
