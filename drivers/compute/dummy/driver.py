"""The dummy provider: a deterministic, thread-safe cloud that lives in SQLite.

It looks like a real multi-region cloud (its catalog is
``drivers/data/dummy_catalog.json``, its prices come from the pricing data),
so the scheduler, failover and fault tests can use it. Nodes go from pending
to running after ``boot_delay`` seconds. State is kept in an in-memory
database by default, or in ``state_path`` so that several processes (workers)
share one "provider" and tests can count what was created there.

Fault injection (:class:`DummyFaults`): capacity errors at chosen locations,
quota errors, random transient errors, timeouts and rate limiting, rejected
credentials and slow calls.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any, ClassVar

from drivers import pricing
from drivers.common.ssh_keys import fingerprint, generate_key_pair
from drivers.common.values import from_dict, to_dict
from drivers.compute.base import (
    Features,
    KeyPair,
    Node,
    NodeAuth,
    NodeDriver,
    NodeImage,
    NodeLocation,
    NodeSize,
    NodeState,
    StorageVolume,
    VolumeSnapshot,
)
from drivers.compute.dummy.faults import DummyFaults, FaultInjector, timeout_error
from drivers.errors import (
    CapacityError,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
)

PROVIDER = "dummy"

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    serial INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT UNIQUE,
    state TEXT NOT NULL,
    ready_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class _Catalog:
    locations: tuple[NodeLocation, ...]
    sizes: tuple[dict[str, Any], ...]
    images: tuple[tuple[NodeImage, frozenset[str] | None], ...]


def _load_catalog(regions: Sequence[str] | None = None) -> _Catalog:
    raw = json.loads((resources.files("drivers") / "data" / "dummy_catalog.json").read_text())
    locations = tuple(
        NodeLocation(provider=PROVIDER, **entry)
        for entry in raw["locations"]
        if regions is None or entry["region"] in regions
    )
    if not locations:
        raise InvalidRequest(f"no dummy region among {list(regions or [])}", provider=PROVIDER)
    images = tuple(
        (
            NodeImage(id=entry["id"], name=entry["name"], provider=PROVIDER),
            frozenset(entry["locations"]) if entry["locations"] else None,
        )
        for entry in raw["images"]
    )
    return _Catalog(locations=locations, sizes=tuple(raw["sizes"]), images=images)


class DummyNodeDriver(NodeDriver):
    """An in-process cloud for demos and tests (see the module docstring)."""

    name: ClassVar[str] = "Dummy"
    provider: ClassVar[str] = PROVIDER
    features: ClassVar[Features] = Features(
        create_node_auth=frozenset({"ssh_key", "password"}),
        key_pairs=True,
        volumes=True,
        idempotent_create=True,
    )

    def __init__(
        self,
        key: str | None = None,
        *,
        boot_delay: float = 0.0,
        state_path: str | None = None,
        faults: DummyFaults | Mapping[str, Any] | None = None,
        pricing_store: pricing.PricingStore | None = None,
        clock: Callable[[], float] = time.time,
        regions: Sequence[str] | None = None,
        price_factor: float = 1.0,
    ) -> None:
        """``regions`` limits the catalog to those regions; ``price_factor``
        scales every known price (both make accounts differ in tests)."""
        self.boot_delay = boot_delay
        self.price_factor = price_factor
        self.faults = (
            faults if isinstance(faults, DummyFaults) else DummyFaults.from_mapping(faults or {})
        )
        self._pricing = pricing_store
        self._clock = clock
        self._injector = FaultInjector(self.faults)
        self._lock = threading.RLock()
        self._catalog = _load_catalog(regions)
        self._db = sqlite3.connect(
            state_path or ":memory:", timeout=60, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            if state_path:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Release the state database."""
        with self._lock:
            self._db.close()

    # -- faults ------------------------------------------------------------

    def _inject_faults(self, operation: str, acts: bool = False) -> bool:
        return self._injector.inject(operation, acts)

    def calls_started(self, operation: str) -> int:
        """How many ``operation`` calls this instance began (finished or not)."""
        return self._injector.started[operation]

    # -- storage -----------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _node_from_row(self, state: str, ready_at: float, data: str) -> Node:
        node = from_dict(Node, json.loads(data))
        if state in ("pending", "rebooting") and self._clock() >= ready_at:
            state = "running"
        return replace(node, state=NodeState(state))

    def _find_row(self, db: sqlite3.Connection, node_id: str) -> tuple[str, float, str]:
        row = db.execute(
            "SELECT state, ready_at, data FROM nodes WHERE serial = ?", (_serial(node_id),)
        ).fetchone()
        if row is None:
            raise NotFound(f"node {node_id} not found", provider=PROVIDER)
        return row  # type: ignore[no-any-return]

    def _set_state(self, node: Node, state: str, allowed: set[str], delay: float = 0.0) -> None:
        with self._transaction() as db:
            current = self._node_from_row(*self._find_row(db, node.id)).state.value
            if current not in allowed:
                raise InvalidRequest(
                    f"node {node.id} is {current}, not one of {sorted(allowed)}",
                    provider=PROVIDER,
                )
            db.execute(
                "UPDATE nodes SET state = ?, ready_at = ? WHERE serial = ?",
                (state, self._clock() + delay, _serial(node.id)),
            )

    def _objects(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM objects WHERE kind = ? ORDER BY id", (kind,)
            ).fetchall()
        return [json.loads(data) for (data,) in rows]

    def _put_object(self, kind: str, object_id: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO objects (kind, id, data) VALUES (?, ?, ?)",
                (kind, object_id, json.dumps(to_dict(value))),
            )

    def _get_object(self, kind: str, object_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM objects WHERE kind = ? AND id = ?", (kind, object_id)
            ).fetchone()
        if row is None:
            raise NotFound(f"{kind} {object_id} not found", provider=PROVIDER)
        return json.loads(row[0])  # type: ignore[no-any-return]

    def _delete_object(self, kind: str, object_id: str) -> None:
        with self._lock:
            deleted = self._db.execute(
                "DELETE FROM objects WHERE kind = ? AND id = ?", (kind, object_id)
            ).rowcount
        if not deleted:
            raise NotFound(f"{kind} {object_id} not found", provider=PROVIDER)

    def _next_id(self, prefix: str) -> str:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO counters (name, value) VALUES (?, 1) "
                "ON CONFLICT (name) DO UPDATE SET value = value + 1",
                (prefix,),
            )
            (value,) = db.execute("SELECT value FROM counters WHERE name = ?", (prefix,)).fetchone()
        return f"{prefix}-{value}"

    def created_count(self) -> int:
        """How many nodes were ever created (for duplicate checks in tests)."""
        with self._lock:
            # AUTOINCREMENT keeps the highest serial ever used, destroyed nodes included.
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'nodes'"
            ).fetchone()
        count = row[0] if row else 0
        return int(count)

    # -- nodes -------------------------------------------------------------

    def list_nodes(self) -> list[Node]:
        self._inject_faults("list_nodes")
        with self._lock:
            rows = self._db.execute(
                "SELECT state, ready_at, data FROM nodes ORDER BY serial"
            ).fetchall()
        return [self._node_from_row(*row) for row in rows]

    def get_node(self, node_id: str) -> Node:
        self._inject_faults("get_node")
        with self._lock:
            return self._node_from_row(*self._find_row(self._db, node_id))

    def create_node(
        self,
        name: str,
        size: NodeSize,
        image: NodeImage,
        location: NodeLocation | None = None,
        auth: NodeAuth | None = None,
        idempotency_token: str | None = None,
    ) -> Node:
        answer_lost = self._inject_faults("create_node", acts=True)
        location = location or self._catalog.locations[0]
        self._check_known(size, image, location)
        if location.id in self.faults.capacity_locations or (
            location.region in self.faults.capacity_locations
        ):
            raise CapacityError(
                f"insufficient capacity for {size.id} in {location.id}", provider=PROVIDER
            )
        if self.faults.quota_exceeded:
            raise QuotaExceeded("instance quota exceeded", provider=PROVIDER)
        with self._transaction() as db:
            if idempotency_token is not None:
                row = db.execute(
                    "SELECT state, ready_at, data FROM nodes WHERE token = ?",
                    (idempotency_token,),
                ).fetchone()
                if row is not None:
                    return self._node_from_row(*row)
            now = self._clock()
            serial = db.execute(
                "INSERT INTO nodes (token, state, ready_at, data) VALUES (?, 'pending', ?, '{}')",
                (idempotency_token, now + self.boot_delay),
            ).lastrowid
            assert serial is not None
            node = Node(
                id=f"dummy-{serial}",
                name=name,
                state=NodeState.PENDING,
                provider=PROVIDER,
                public_ips=(f"198.51.{serial // 250 % 250}.{serial % 250 + 1}",),
                private_ips=(
                    f"10.{serial // 62500 % 250}.{serial // 250 % 250}.{serial % 250 + 1}",
                ),
                size_id=size.id,
                image_id=image.id,
                location_id=location.id,
                created_at=datetime.datetime.fromtimestamp(now, datetime.UTC),
                extra={"auth": _auth_kind(auth), "token": idempotency_token},
            )
            db.execute(
                "UPDATE nodes SET data = ? WHERE serial = ?", (json.dumps(to_dict(node)), serial)
            )
        if self.faults.answer_delay:
            time.sleep(self.faults.answer_delay)  # the simulated slow answer
        if answer_lost:
            raise timeout_error("create_node")
        return node

    def _check_known(self, size: NodeSize, image: NodeImage, location: NodeLocation) -> None:
        if location.id not in {known.id for known in self._catalog.locations}:
            raise InvalidRequest(f"unknown location {location.id}", provider=PROVIDER)
        if size.id not in {known["id"] for known in self._catalog.sizes}:
            raise InvalidRequest(f"unknown size {size.id}", provider=PROVIDER)
        if image.id not in {known.id for known in self._images_at(location)}:
            raise NotFound(f"image {image.id} not found in {location.id}", provider=PROVIDER)

    def reboot_node(self, node: Node) -> None:
        self._inject_faults("reboot_node")
        self._set_state(node, "rebooting", {"running", "rebooting"}, self.boot_delay)

    def start_node(self, node: Node) -> None:
        self._inject_faults("start_node")
        self._set_state(node, "pending", {"stopped", "running"}, self.boot_delay)

    def stop_node(self, node: Node) -> None:
        self._inject_faults("stop_node")
        self._set_state(node, "stopped", {"running", "stopped"})

    def destroy_node(self, node: Node) -> None:
        self._inject_faults("destroy_node")
        with self._transaction() as db:
            deleted = db.execute("DELETE FROM nodes WHERE serial = ?", (_serial(node.id),)).rowcount
        if not deleted:
            raise NotFound(f"node {node.id} not found", provider=PROVIDER)

    # -- catalog -----------------------------------------------------------

    def list_locations(self) -> list[NodeLocation]:
        self._inject_faults("list_locations")
        return list(self._catalog.locations)

    def list_sizes(self, location: NodeLocation | None = None) -> list[NodeSize]:
        self._inject_faults("list_sizes")
        return [
            NodeSize(
                provider=PROVIDER,
                price_per_hour=self.price_quote(entry["id"], location).price,
                **entry,
            )
            for entry in self._catalog.sizes
        ]

    def price_key(self, size_id: str, location: NodeLocation | None) -> tuple[str, str | None]:
        return size_id, (location or self._catalog.locations[0]).region

    def price_quote(self, size_id: str, location: NodeLocation | None = None) -> pricing.Quote:
        """The price data's quote times the account's ``price_factor``."""
        return super().price_quote(size_id, location).scaled(self.price_factor)

    def list_images(self, location: NodeLocation | None = None) -> list[NodeImage]:
        self._inject_faults("list_images")
        return self._images_at(location)

    def _images_at(self, location: NodeLocation | None) -> list[NodeImage]:
        return [
            image
            for image, regions in self._catalog.images
            if location is None or regions is None or location.region in regions
        ]

    # -- key pairs ---------------------------------------------------------

    def list_key_pairs(self) -> list[KeyPair]:
        self._inject_faults("list_key_pairs")
        return [from_dict(KeyPair, data) for data in self._objects("key_pair")]

    def create_key_pair(self, name: str) -> KeyPair:
        self._inject_faults("create_key_pair")
        private_key, public_key = generate_key_pair()
        stored = self._store_key_pair(name, public_key)
        return replace(stored, private_key=private_key)

    def import_key_pair(self, name: str, public_key: str) -> KeyPair:
        self._inject_faults("import_key_pair")
        try:
            return self._store_key_pair(name, public_key)
        except ValueError as error:
            raise InvalidRequest(f"invalid public key: {error}", provider=PROVIDER) from None

    def _store_key_pair(self, name: str, public_key: str) -> KeyPair:
        if any(existing.name == name for existing in self.list_key_pairs()):
            raise InvalidRequest(f"key pair {name} already exists", provider=PROVIDER)
        key_pair = KeyPair(name=name, fingerprint=fingerprint(public_key), public_key=public_key)
        self._put_object("key_pair", name, key_pair)
        return key_pair

    def delete_key_pair(self, key_pair: KeyPair) -> None:
        self._inject_faults("delete_key_pair")
        self._delete_object("key_pair", key_pair.name)

    # -- volumes -----------------------------------------------------------

    def list_volumes(self) -> list[StorageVolume]:
        self._inject_faults("list_volumes")
        return [from_dict(StorageVolume, data) for data in self._objects("volume")]

    def create_volume(
        self, size_gb: int, name: str, location: NodeLocation | None = None
    ) -> StorageVolume:
        self._inject_faults("create_volume")
        if size_gb < 1:
            raise InvalidRequest("volume size must be at least 1 GB", provider=PROVIDER)
        volume = StorageVolume(
            id=self._next_id("vol"),
            name=name,
            size_gb=size_gb,
            state="available",
            provider=PROVIDER,
            location_id=(location or self._catalog.locations[0]).id,
        )
        self._put_object("volume", volume.id, volume)
        return volume

    def _volume(self, volume_id: str) -> StorageVolume:
        return from_dict(StorageVolume, self._get_object("volume", volume_id))

    def attach_volume(
        self, node: Node, volume: StorageVolume, device: str | None = None
    ) -> StorageVolume:
        self._inject_faults("attach_volume")
        self.get_node(node.id)
        current = self._volume(volume.id)
        if current.attached_to is not None:
            raise InvalidRequest(
                f"volume {volume.id} is attached to {current.attached_to}", provider=PROVIDER
            )
        attached = replace(
            current, state="in-use", attached_to=node.id, extra={"device": device or "/dev/vdb"}
        )
        self._put_object("volume", volume.id, attached)
        return attached

    def detach_volume(self, volume: StorageVolume) -> StorageVolume:
        self._inject_faults("detach_volume")
        current = self._volume(volume.id)
        if current.attached_to is None:
            raise InvalidRequest(f"volume {volume.id} is not attached", provider=PROVIDER)
        detached = replace(current, state="available", attached_to=None, extra={})
        self._put_object("volume", volume.id, detached)
        return detached

    def destroy_volume(self, volume: StorageVolume) -> None:
        self._inject_faults("destroy_volume")
        if self._volume(volume.id).attached_to is not None:
            raise InvalidRequest(f"volume {volume.id} is still attached", provider=PROVIDER)
        self._delete_object("volume", volume.id)

    def create_volume_snapshot(self, volume: StorageVolume, name: str) -> VolumeSnapshot:
        self._inject_faults("create_volume_snapshot")
        current = self._volume(volume.id)
        snapshot = VolumeSnapshot(
            id=self._next_id("snap"),
            volume_id=current.id,
            size_gb=current.size_gb,
            state="completed",
            provider=PROVIDER,
            created_at=datetime.datetime.fromtimestamp(self._clock(), datetime.UTC),
            extra={"name": name},
        )
        self._put_object("snapshot", snapshot.id, snapshot)
        return snapshot

    def ex_list_snapshots(self) -> list[VolumeSnapshot]:
        """Snapshots taken so far (dummy-only)."""
        return [from_dict(VolumeSnapshot, data) for data in self._objects("snapshot")]


def _serial(node_id: str) -> int:
    prefix, _, number = node_id.partition("-")
    if prefix != "dummy" or not number.isdigit():
        raise NotFound(f"node {node_id} not found", provider=PROVIDER)
    return int(number)


def _auth_kind(auth: NodeAuth | None) -> str | None:
    return None if auth is None else type(auth).__name__


__all__ = ["DummyNodeDriver"]
