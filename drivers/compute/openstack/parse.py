"""Nova, Glance and Cinder JSON to driver values."""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any

from drivers.compute.base import (
    KeyPair,
    Node,
    NodeImage,
    NodeSize,
    NodeState,
    StorageVolume,
    VolumeSnapshot,
)

PROVIDER = "openstack"
TOKEN_KEY = "overcast-idempotency-token"

NODE_STATE_MAP = {
    "ACTIVE": NodeState.RUNNING,
    "BUILD": NodeState.PENDING,
    "REBUILD": NodeState.PENDING,
    "REBOOT": NodeState.REBOOTING,
    "HARD_REBOOT": NodeState.REBOOTING,
    "PASSWORD": NodeState.RUNNING,
    "RESCUE": NodeState.PENDING,
    "RESIZE": NodeState.PENDING,
    "VERIFY_RESIZE": NodeState.RUNNING,
    "REVERT_RESIZE": NodeState.PENDING,
    "MIGRATING": NodeState.PENDING,
    "SHUTOFF": NodeState.STOPPED,
    "SHELVED": NodeState.STOPPED,
    "SHELVED_OFFLOADED": NodeState.STOPPED,
    "SUSPENDED": NodeState.SUSPENDED,
    "PAUSED": NodeState.PAUSED,
    "ERROR": NodeState.ERROR,
    "DELETED": NodeState.TERMINATED,
    "SOFT_DELETED": NodeState.TERMINATED,
    "UNKNOWN": NodeState.UNKNOWN,
}


def timestamp(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def split_addresses(addresses: dict[str, list[dict[str, Any]]]) -> tuple[list[str], list[str]]:
    """Public and private IPs: floating is public, fixed is private; without a
    type, the network's name or the address range decides."""
    public: list[str] = []
    private: list[str] = []
    for network, entries in addresses.items():
        for entry in entries:
            address = entry.get("addr")
            if not address:
                continue
            kind = entry.get("OS-EXT-IPS:type")
            if kind == "floating":
                public.append(address)
            elif kind == "fixed":
                private.append(address)
            elif network.lower() == "public" or not ipaddress.ip_address(address).is_private:
                public.append(address)
            else:
                private.append(address)
    return public, private


def to_node(server: dict[str, Any]) -> Node:
    public, private = split_addresses(server.get("addresses") or {})
    flavor = server.get("flavor") or {}
    image = server.get("image") or {}
    metadata = server.get("metadata") or {}
    return Node(
        id=str(server["id"]),
        name=server.get("name") or str(server["id"]),
        state=NODE_STATE_MAP.get(str(server.get("status", "UNKNOWN")).upper(), NodeState.UNKNOWN),
        provider=PROVIDER,
        public_ips=tuple(public),
        private_ips=tuple(private),
        size_id=str(flavor.get("id") or flavor.get("original_name") or "") or None,
        image_id=str(image.get("id")) if isinstance(image, dict) and image.get("id") else None,
        location_id=server.get("OS-EXT-AZ:availability_zone"),
        created_at=timestamp(server.get("created")),
        extra={
            "metadata": metadata,
            "key_name": server.get("key_name"),
            "fault": (server.get("fault") or {}).get("message"),
            "task_state": server.get("OS-EXT-STS:task_state"),
        },
    )


def to_size(flavor: dict[str, Any], price: float | None) -> NodeSize:
    return NodeSize(
        id=str(flavor["id"]),
        name=flavor.get("name") or str(flavor["id"]),
        ram_mb=int(flavor.get("ram") or 0),
        vcpus=int(flavor.get("vcpus") or 0),
        disk_gb=int(flavor.get("disk") or 0),
        provider=PROVIDER,
        price_per_hour=price,
    )


def to_image(image: dict[str, Any]) -> NodeImage:
    return NodeImage(
        id=str(image["id"]),
        name=image.get("name") or str(image["id"]),
        provider=PROVIDER,
        extra={"status": image.get("status"), "visibility": image.get("visibility")},
    )


def to_key_pair(data: dict[str, Any]) -> KeyPair:
    pair = data.get("keypair", data)
    return KeyPair(
        name=pair["name"],
        fingerprint=pair.get("fingerprint") or "",
        public_key=pair.get("public_key") or "",
        private_key=pair.get("private_key"),
    )


def to_volume(volume: dict[str, Any]) -> StorageVolume:
    attachments = volume.get("attachments") or []
    attached = attachments[0] if attachments else {}
    return StorageVolume(
        id=str(volume["id"]),
        name=volume.get("name") or volume.get("displayName") or "",
        size_gb=int(volume.get("size") or 0),
        state=str(volume.get("status") or "unknown"),
        provider=PROVIDER,
        location_id=volume.get("availability_zone") or volume.get("availabilityZone"),
        attached_to=attached.get("server_id") or attached.get("serverId"),
        extra={"device": attached.get("device")} if attached.get("device") else {},
    )


def to_snapshot(snapshot: dict[str, Any]) -> VolumeSnapshot:
    return VolumeSnapshot(
        id=str(snapshot["id"]),
        volume_id=str(snapshot.get("volume_id") or snapshot.get("volumeId") or ""),
        size_gb=int(snapshot.get("size") or 0),
        state=str(snapshot.get("status") or "unknown"),
        provider=PROVIDER,
        created_at=timestamp(snapshot.get("created_at") or snapshot.get("createdAt")),
        extra={"name": snapshot.get("name") or snapshot.get("displayName")},
    )
