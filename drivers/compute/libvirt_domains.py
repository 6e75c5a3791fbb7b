"""``libvirt``: nodes as domains on one libvirt host (KVM/QEMU, Xen, LXC, or
libvirt's own ``test:///default`` hypervisor).

- The account's connection URI names the host (``qemu:///system``,
  ``qemu+ssh://user@host/system``); the location is that host, in the
  country the account configures.
- Sizes are the operator's flavors (vCPUs, RAM, disk): libvirt has none of
  its own. Their prices are unknown unless the operator overrides them.
- Images are volumes in the configured storage pools; a node's disk is a
  clone of its image volume in the same pool, removed with the node.
- A domain's UUID is derived from the node's idempotency token, so a create
  repeated after a timeout finds the domain the first one defined.
- What Overcast must know again (token, size, image, SSH key) is kept in the
  domain's own metadata, so the host is the only state.
- Addresses come from the DHCP leases of the domain's network, else from
  the guest agent, where libvirt knows them.

libvirt injects nothing into guests: the SSH key is recorded in the domain's
metadata for the image's own provisioning to read (see the README).
"""

from __future__ import annotations

import logging
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar
from xml.sax.saxutils import escape, quoteattr

import libvirt

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
from drivers.errors import (
    AuthError,
    CapacityError,
    DriverError,
    InvalidRequest,
    NotFound,
    NotSupported,
    ProviderError,
)

LOG = logging.getLogger(__name__)

PROVIDER = "libvirt"
METADATA_NS = "https://overcast.dev/libvirt/1"
#: Domain UUIDs are uuid5(TOKENS, idempotency token).
TOKENS = uuid.UUID("7b1f3c8e-5a0d-4c35-9a51-0b3f1e8d2c64")

DEFAULT_FLAVORS: tuple[dict[str, Any], ...] = (
    {"id": "small", "vcpus": 1, "ram_mb": 1024, "disk_gb": 10},
    {"id": "medium", "vcpus": 2, "ram_mb": 4096, "disk_gb": 20},
    {"id": "large", "vcpus": 4, "ram_mb": 8192, "disk_gb": 40},
)

STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: NodeState.UNKNOWN,
    libvirt.VIR_DOMAIN_RUNNING: NodeState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: NodeState.RUNNING,  # idle, waiting on I/O
    libvirt.VIR_DOMAIN_PAUSED: NodeState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: NodeState.RUNNING,  # shutting down, not yet off
    libvirt.VIR_DOMAIN_SHUTOFF: NodeState.STOPPED,
    libvirt.VIR_DOMAIN_CRASHED: NodeState.ERROR,
    libvirt.VIR_DOMAIN_PMSUSPENDED: NodeState.SUSPENDED,
}

NOT_FOUND = {
    libvirt.VIR_ERR_NO_DOMAIN,
    libvirt.VIR_ERR_NO_STORAGE_POOL,
    libvirt.VIR_ERR_NO_STORAGE_VOL,
    libvirt.VIR_ERR_NO_NETWORK,
}
INVALID = {
    libvirt.VIR_ERR_XML_ERROR,
    libvirt.VIR_ERR_INVALID_ARG,
    libvirt.VIR_ERR_OPERATION_INVALID,
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
}
UNREACHABLE = {libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_RPC}

T = TypeVar("T")

# libvirt prints every error on stderr unless a handler takes them; ours are raised.
libvirt.registerErrorHandler(lambda _context, _error: None, None)


def domain_uuid(token: str) -> str:
    return str(uuid.uuid5(TOKENS, token))


def to_driver_error(error: libvirt.libvirtError, what: str) -> DriverError:
    """A libvirt failure as the driver error tree (never with the URI's credentials)."""
    code = error.get_error_code()
    message = f"{what}: {error.get_error_message() or error}"
    if code in NOT_FOUND:
        return NotFound(message, provider=PROVIDER)
    if code in INVALID:
        return InvalidRequest(message, provider=PROVIDER)
    if code == libvirt.VIR_ERR_AUTH_FAILED:
        return AuthError(message, provider=PROVIDER)
    if code == libvirt.VIR_ERR_NO_SUPPORT:
        return NotSupported(message, provider=PROVIDER)
    if code == libvirt.VIR_ERR_NO_MEMORY:
        return CapacityError(message, provider=PROVIDER)
    return ProviderError(message, provider=PROVIDER, transient=code in UNREACHABLE)


class LibvirtNodeDriver(NodeDriver):
    """Domains on one libvirt host (see the module docstring)."""

    name: ClassVar[str] = "libvirt"
    provider: ClassVar[str] = PROVIDER
    features: ClassVar[Features] = Features(
        create_node_auth=frozenset({"ssh_key"}), idempotent_create=True
    )

    def __init__(
        self,
        key: str | None = None,
        *,
        uri: str = "qemu:///system",
        country: str = "ZZ",
        flavors: list[dict[str, Any]] | None = None,
        image_pools: list[str] | None = None,
        network: str = "default",
        domain_type: str | None = None,
        pricing_store: pricing.PricingStore | None = None,
        **_options: Any,
    ) -> None:
        self.uri = uri
        self.country = country.upper()
        self.flavors = [dict(flavor) for flavor in flavors or DEFAULT_FLAVORS]
        for flavor in self.flavors:
            if not {"id", "vcpus", "ram_mb", "disk_gb"} <= set(flavor):
                raise InvalidRequest(
                    "libvirt flavors need id, vcpus, ram_mb and disk_gb", provider=PROVIDER
                )
        self.image_pools = image_pools
        self.network = network
        self.domain_type = domain_type or ("test" if uri.startswith("test:") else "kvm")
        self._pricing = pricing_store
        self._connection: libvirt.virConnect | None = None
        self._lock = threading.Lock()

    # -- the connection ----------------------------------------------------

    def _connect(self) -> libvirt.virConnect:
        with self._lock:
            if self._connection is None or not self._connection.isAlive():
                try:
                    self._connection = libvirt.open(self.uri)
                except libvirt.libvirtError as error:
                    raise to_driver_error(error, "cannot connect to the libvirt host") from None
            return self._connection

    @contextmanager
    def _calling(self, what: str) -> Iterator[libvirt.virConnect]:
        """The connection, with every libvirt failure inside raised as ours."""
        connection = self._connect()
        try:
            yield connection
        except libvirt.libvirtError as error:
            raise to_driver_error(error, what) from None

    def _call(self, what: str, function: Callable[[libvirt.virConnect], T]) -> T:
        with self._calling(what) as connection:
            return function(connection)

    # -- catalog -----------------------------------------------------------

    def _host(self) -> str:
        return self._call("host name", lambda c: str(c.getHostname()))

    def list_locations(self) -> list[NodeLocation]:
        host = self._host()
        return [
            NodeLocation(
                id=host,
                name=f"libvirt host {host}",
                country=self.country,
                provider=PROVIDER,
                region=host,
                zone=host,
            )
        ]

    def price_key(self, size_id: str, location: NodeLocation | None) -> tuple[str, str | None]:
        return size_id, location.region if location else self._host()

    def list_sizes(self, location: NodeLocation | None = None) -> list[NodeSize]:
        return [
            NodeSize(
                id=str(flavor["id"]),
                name=str(flavor.get("name", flavor["id"])),
                ram_mb=int(flavor["ram_mb"]),
                vcpus=int(flavor["vcpus"]),
                disk_gb=int(flavor["disk_gb"]),
                provider=PROVIDER,
                price_per_hour=self.price_quote(str(flavor["id"]), location).price,
            )
            for flavor in self.flavors
        ]

    def _pools(self, connection: libvirt.virConnect) -> list[libvirt.virStoragePool]:
        if self.image_pools is None:
            return [pool for pool in connection.listAllStoragePools() if pool.isActive()]
        return [connection.storagePoolLookupByName(name) for name in self.image_pools]

    def list_images(self, location: NodeLocation | None = None) -> list[NodeImage]:
        def images(connection: libvirt.virConnect) -> list[NodeImage]:
            found = []
            for pool in self._pools(connection):
                for volume in pool.listAllVolumes():
                    if volume.name().startswith("overcast-"):
                        continue  # a node's own disk
                    found.append(
                        NodeImage(
                            id=f"{pool.name()}/{volume.name()}",
                            name=volume.name(),
                            provider=PROVIDER,
                            extra={"pool": pool.name(), "path": volume.path()},
                        )
                    )
            return found

        return self._call("list images", images)

    # -- nodes -------------------------------------------------------------

    def list_nodes(self) -> list[Node]:
        return self._call(
            "list domains",
            lambda c: [self._to_node(domain) for domain in c.listAllDomains()],
        )

    def get_node(self, node_id: str) -> Node:
        return self._call(f"domain {node_id}", lambda c: self._to_node(self._domain(c, node_id)))

    @staticmethod
    def _domain(connection: libvirt.virConnect, node_id: str) -> libvirt.virDomain:
        try:
            uuid.UUID(node_id)
        except ValueError:
            raise NotFound(f"domain {node_id} not found", provider=PROVIDER) from None
        return connection.lookupByUUIDString(node_id)

    def find_node_by_token(self, token: str, name: str | None = None) -> Node | None:
        try:
            return self.get_node(domain_uuid(token))
        except NotFound:
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
        if auth is not None and not isinstance(auth, NodeAuthSSHKey):
            raise NotSupported("libvirt nodes take SSH keys only", provider=PROVIDER)
        flavor = next((f for f in self.flavors if str(f["id"]) == size.id), None)
        if flavor is None:
            raise InvalidRequest(f"no libvirt flavor {size.id}", provider=PROVIDER)
        pool_name, _, volume_name = image.id.partition("/")
        if not volume_name:
            raise InvalidRequest(f"image {image.id}: give pool/volume", provider=PROVIDER)
        token = idempotency_token or uuid.uuid4().hex
        domain_id = domain_uuid(token)
        existing = self.find_node_by_token(token)
        if existing is not None:
            return existing
        disk = f"overcast-{domain_id}.img"

        def define(connection: libvirt.virConnect) -> Node:
            pool = connection.storagePoolLookupByName(pool_name)
            source = pool.storageVolLookupByName(volume_name)
            try:
                pool.storageVolLookupByName(disk)
            except libvirt.libvirtError as missing:
                if missing.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise
                pool.createXMLFrom(_volume_xml(disk, int(flavor["disk_gb"])), source, 0)
            domain = connection.defineXML(
                _domain_xml(
                    self.domain_type,
                    name,
                    domain_id,
                    flavor,
                    pool_name,
                    disk,
                    self.network,
                    {
                        "token": token,
                        "size": size.id,
                        "image": image.id,
                        "ssh-key": auth.public_key if auth else "",
                    },
                )
            )
            domain.create()
            return self._to_node(domain)

        return self._call(f"create domain {name}", define)

    def reboot_node(self, node: Node) -> None:
        self._call(f"reboot {node.id}", lambda c: self._domain(c, node.id).reboot(0))

    def start_node(self, node: Node) -> None:
        self._call(f"start {node.id}", lambda c: self._domain(c, node.id).create())

    def stop_node(self, node: Node) -> None:
        """A clean shutdown (ACPI); the domain stays defined."""
        self._call(f"stop {node.id}", lambda c: self._domain(c, node.id).shutdown())

    def destroy_node(self, node: Node) -> None:
        """Power off, undefine, and delete the node's own disk."""

        def destroy(connection: libvirt.virConnect) -> None:
            domain = self._domain(connection, node.id)
            if domain.isActive():
                domain.destroy()
            metadata = _metadata(domain)
            domain.undefine()
            pool_name = metadata.get("image", "").partition("/")[0]
            if pool_name:
                pool = connection.storagePoolLookupByName(pool_name)
                try:
                    pool.storageVolLookupByName(f"overcast-{node.id}.img").delete(0)
                except libvirt.libvirtError as error:
                    if error.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                        raise

        self._call(f"destroy {node.id}", destroy)

    def _to_node(self, domain: libvirt.virDomain) -> Node:
        state, _reason = domain.state()
        metadata = _metadata(domain)
        return Node(
            id=domain.UUIDString(),
            name=domain.name(),
            state=STATES.get(state, NodeState.UNKNOWN),
            provider=PROVIDER,
            private_ips=tuple(_addresses(domain)) if domain.isActive() else (),
            size_id=metadata.get("size"),
            image_id=metadata.get("image"),
            location_id=self._host(),
            extra={"token": metadata.get("token"), "libvirt_state": state},
        )


def _volume_xml(name: str, disk_gb: int) -> str:
    return f"<volume><name>{escape(name)}</name><capacity unit='G'>{disk_gb}</capacity></volume>"


def _domain_xml(
    domain_type: str,
    name: str,
    domain_id: str,
    flavor: dict[str, Any],
    pool: str,
    disk: str,
    network: str,
    metadata: dict[str, str],
) -> str:
    fields = "".join(f"<oc:{key}>{escape(value)}</oc:{key}>" for key, value in metadata.items())
    return f"""<domain type={quoteattr(domain_type)}>
  <name>{escape(name)}</name>
  <uuid>{domain_id}</uuid>
  <memory unit='MiB'>{int(flavor["ram_mb"])}</memory>
  <vcpu>{int(flavor["vcpus"])}</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
  <metadata><oc:node xmlns:oc="{METADATA_NS}">{fields}</oc:node></metadata>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool={quoteattr(pool)} volume={quoteattr(disk)}/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network={quoteattr(network)}/>
      <model type='virtio'/>
    </interface>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  </devices>
</domain>"""


def _metadata(domain: libvirt.virDomain) -> dict[str, str]:
    try:
        text = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)
    except libvirt.libvirtError:
        return {}  # a domain Overcast did not make
    return {child.tag: child.text or "" for child in ET.fromstring(text)}


def _addresses(domain: libvirt.virDomain) -> list[str]:
    for source in (
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
    ):
        try:
            interfaces = domain.interfaceAddresses(source)
        except libvirt.libvirtError:
            continue  # no DHCP on its network, or no agent in the guest
        found = [
            address["addr"]
            for interface in interfaces.values()
            for address in interface.get("addrs") or ()
            if address.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4
        ]
        if found:
            return found
    return []
