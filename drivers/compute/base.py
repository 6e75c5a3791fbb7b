"""The compute driver contract: values in and out, and the ``NodeDriver`` ABC.

Values are frozen dataclasses without any reference to the driver that made
them, so they can be queued, stored and sent as JSON (see
:mod:`drivers.common.values`). Provider-only data lives in ``extra``;
provider-only operations are ``ex_*`` methods on the concrete driver.
"""

from __future__ import annotations

import abc
import datetime
import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from drivers import pricing
from drivers.errors import NotFound, NotSupported, ProviderError

if TYPE_CHECKING:
    from drivers.deployment import Deployment, DeploymentResult, HostKeyStore


class NodeState(enum.Enum):
    """The one set of node states every provider's states map onto."""

    RUNNING = "running"
    REBOOTING = "rebooting"
    TERMINATED = "terminated"
    PENDING = "pending"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    PAUSED = "paused"
    ERROR = "error"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class NodeLocation:
    """Where a node can run: a region, or a zone within one."""

    id: str
    name: str
    country: str  # ISO 3166-1 alpha-2, e.g. "DE"
    provider: str
    region: str | None = None
    zone: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class NodeSize:
    """A machine shape. ``price_per_hour`` is USD, ``None`` when unknown."""

    id: str
    name: str
    ram_mb: int
    vcpus: int
    disk_gb: int
    provider: str
    gpus: int = 0
    price_per_hour: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class NodeImage:
    """A bootable image."""

    id: str
    name: str
    provider: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Node:
    """A server at a provider, as last seen."""

    id: str
    name: str
    state: NodeState
    provider: str
    public_ips: tuple[str, ...] = ()
    private_ips: tuple[str, ...] = ()
    size_id: str | None = None
    image_id: str | None = None
    location_id: str | None = None
    ssh_port: int = 22
    created_at: datetime.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def address(self) -> str | None:
        """The address to reach the node at: public first, else private."""
        for address in (*self.public_ips, *self.private_ips):
            return address
        return None


@dataclass(frozen=True)
class KeyPair:
    """An SSH key pair known to the provider. The private key never prints."""

    name: str
    fingerprint: str
    public_key: str
    private_key: str | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class StorageVolume:
    """A block device; ``attached_to`` is a node id."""

    id: str
    name: str
    size_gb: int
    state: str
    provider: str
    location_id: str | None = None
    attached_to: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class VolumeSnapshot:
    """A point-in-time copy of a volume."""

    id: str
    volume_id: str
    size_gb: int
    state: str
    provider: str
    created_at: datetime.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, repr=False)
class NodeAuthSSHKey:
    """Log in with this public key (installed as an authorized key)."""

    public_key: str

    def __repr__(self) -> str:
        return "NodeAuthSSHKey(...)"


@dataclass(frozen=True, repr=False)
class NodeAuthPassword:
    """Log in with this password."""

    password: str

    def __repr__(self) -> str:
        return "NodeAuthPassword(***)"


NodeAuth = NodeAuthSSHKey | NodeAuthPassword


@dataclass(frozen=True)
class Features:
    """What a driver supports, so callers can ask before they call.

    ``create_node_auth`` names the ``auth`` kinds ``create_node`` accepts
    (``"ssh_key"``, ``"password"``).
    """

    create_node_auth: frozenset[str] = frozenset()
    start_stop: bool = True
    key_pairs: bool = False
    volumes: bool = False
    idempotent_create: bool = False

    def supports(self, name: str) -> bool:
        """Whether the named boolean feature is on (unknown names are off)."""
        return bool(getattr(self, name, False))


class NodeDriver(abc.ABC):
    """A provider's compute API.

    Drivers are safe to share between threads unless their docstring says
    otherwise. Every failure is raised as a :mod:`drivers.errors` class.
    """

    name: ClassVar[str]
    provider: ClassVar[str]
    features: ClassVar[Features] = Features()

    # -- nodes -------------------------------------------------------------

    @abc.abstractmethod
    def list_nodes(self) -> list[Node]:
        """Every node of the account (all pages)."""

    def get_node(self, node_id: str) -> Node:
        """The node with that id; raises :class:`NotFound`."""
        for node in self.list_nodes():
            if node.id == node_id:
                return node
        raise NotFound(f"node {node_id} not found", provider=self.provider)

    @abc.abstractmethod
    def create_node(
        self,
        name: str,
        size: NodeSize,
        image: NodeImage,
        location: NodeLocation | None = None,
        auth: NodeAuth | None = None,
        idempotency_token: str | None = None,
    ) -> Node:
        """Create a node and return it, usually still pending.

        With ``idempotency_token``, a second call with the same token returns
        the node the first one created instead of creating another.
        """

    def find_node_by_token(self, token: str, name: str | None = None) -> Node | None:
        """The live node a ``create_node`` with ``idempotency_token=token`` made,
        if any (``name``, when known, may narrow the search).

        This is how a caller that lost track of a create (a crash, a timeout)
        finds what it made. The default looks for ``extra["token"]`` in
        :meth:`list_nodes`; drivers that keep the token elsewhere override it.
        """
        for node in self.list_nodes():
            if node.extra.get("token") == token and node.state is not NodeState.TERMINATED:
                return node
        return None

    @abc.abstractmethod
    def reboot_node(self, node: Node) -> None:
        """Reboot the node."""

    def start_node(self, node: Node) -> None:
        """Start a stopped node."""
        raise NotSupported("start_node", provider=self.provider)

    def stop_node(self, node: Node) -> None:
        """Stop a running node without destroying it."""
        raise NotSupported("stop_node", provider=self.provider)

    @abc.abstractmethod
    def destroy_node(self, node: Node) -> None:
        """Destroy the node and free what it holds."""

    # -- catalog -----------------------------------------------------------

    @abc.abstractmethod
    def list_images(self, location: NodeLocation | None = None) -> list[NodeImage]:
        """Images usable for ``create_node`` (at ``location`` if given)."""

    @abc.abstractmethod
    def list_sizes(self, location: NodeLocation | None = None) -> list[NodeSize]:
        """Sizes with their price at ``location`` (or the provider default)."""

    # -- prices ------------------------------------------------------------

    #: The price data given to the driver (None: the process's current default).
    _pricing: pricing.PricingStore | None = None

    @property
    def price_data(self) -> pricing.PricingStore:
        """The price data the driver quotes from."""
        return self._pricing or pricing.default_store()

    def price_key(self, size_id: str, location: NodeLocation | None) -> tuple[str, str | None]:
        """The (size, region) the price data knows ``size_id`` at ``location`` by."""
        return size_id, location.region if location is not None else None

    def price_quote(self, size_id: str, location: NodeLocation | None = None) -> pricing.Quote:
        """The price of ``size_id`` at ``location`` with its source and date,
        from the price data alone (no provider call)."""
        return self.price_data.quote(self.provider, *self.price_key(size_id, location))

    @abc.abstractmethod
    def list_locations(self) -> list[NodeLocation]:
        """Regions and zones of the account."""

    # -- waiting and deploying ---------------------------------------------

    def wait_until_running(
        self,
        nodes: Sequence[Node],
        *,
        timeout: float = 600.0,
        poll_interval: float = 2.0,
        require_address: bool = True,
    ) -> list[Node]:
        """Poll ``list_nodes`` (one call per round) until every node runs.

        Raises :class:`ProviderError` when the deadline passes or a node goes
        to a final state other than running.
        """
        wanted = {node.id for node in nodes}
        deadline = time.monotonic() + timeout
        while True:
            seen = {node.id: node for node in self.list_nodes() if node.id in wanted}
            failed = [
                node
                for node in seen.values()
                if node.state in (NodeState.ERROR, NodeState.TERMINATED)
            ]
            if failed:
                raise ProviderError(
                    f"node {failed[0].id} went to {failed[0].state.value}",
                    provider=self.provider,
                )
            ready = [
                node
                for node in seen.values()
                if node.state is NodeState.RUNNING and (node.address or not require_address)
            ]
            if len(ready) == len(wanted):
                order = {node.id: index for index, node in enumerate(nodes)}
                return sorted(ready, key=lambda node: order[node.id])
            if time.monotonic() >= deadline:
                raise ProviderError(
                    f"timed out after {timeout:.0f}s waiting for {len(wanted) - len(ready)} "
                    "node(s) to run",
                    transient=True,
                    provider=self.provider,
                )
            time.sleep(poll_interval)

    def deploy_node(
        self,
        name: str,
        size: NodeSize,
        image: NodeImage,
        deployment: Deployment,
        *,
        private_key: str,
        location: NodeLocation | None = None,
        auth: NodeAuth | None = None,
        ssh_username: str = "root",
        host_keys: HostKeyStore | None = None,
        timeout: float = 600.0,
        idempotency_token: str | None = None,
    ) -> tuple[Node, DeploymentResult]:
        """Create a node, wait until it runs, and run ``deployment`` on it.

        ``private_key`` (OpenSSH PEM text) is the key matching ``auth``.
        Raises :class:`DeploymentError` when a step fails.
        """
        from drivers.deployment import run_deployment

        node = self.create_node(
            name, size, image, location, auth=auth, idempotency_token=idempotency_token
        )
        (node,) = self.wait_until_running([node], timeout=timeout)
        result = run_deployment(
            node, deployment, username=ssh_username, private_key=private_key, host_keys=host_keys
        )
        return node, result

    # -- key pairs ---------------------------------------------------------

    def list_key_pairs(self) -> list[KeyPair]:
        """Key pairs known to the provider."""
        raise NotSupported("list_key_pairs", provider=self.provider)

    def create_key_pair(self, name: str) -> KeyPair:
        """Create a key pair; the result carries the private key once."""
        raise NotSupported("create_key_pair", provider=self.provider)

    def import_key_pair(self, name: str, public_key: str) -> KeyPair:
        """Register an existing public key under ``name``."""
        raise NotSupported("import_key_pair", provider=self.provider)

    def delete_key_pair(self, key_pair: KeyPair) -> None:
        """Forget the key pair."""
        raise NotSupported("delete_key_pair", provider=self.provider)

    # -- volumes -----------------------------------------------------------

    def list_volumes(self) -> list[StorageVolume]:
        """Volumes of the account."""
        raise NotSupported("list_volumes", provider=self.provider)

    def create_volume(
        self, size_gb: int, name: str, location: NodeLocation | None = None
    ) -> StorageVolume:
        """Create an unattached volume."""
        raise NotSupported("create_volume", provider=self.provider)

    def attach_volume(
        self, node: Node, volume: StorageVolume, device: str | None = None
    ) -> StorageVolume:
        """Attach the volume to the node; returns the volume as now seen."""
        raise NotSupported("attach_volume", provider=self.provider)

    def detach_volume(self, volume: StorageVolume) -> StorageVolume:
        """Detach the volume from whatever holds it."""
        raise NotSupported("detach_volume", provider=self.provider)

    def destroy_volume(self, volume: StorageVolume) -> None:
        """Destroy the volume."""
        raise NotSupported("destroy_volume", provider=self.provider)

    def create_volume_snapshot(self, volume: StorageVolume, name: str) -> VolumeSnapshot:
        """Snapshot the volume."""
        raise NotSupported("create_volume_snapshot", provider=self.provider)
