"""EC2 XML answers to driver values (lxml; namespace-agnostic).

Kept apart from transport, and lean on purpose: listing 1,000 instances
parses a 3 MB document, so each instance is read in one pass over its
children and only what the contract needs is kept.
"""

from __future__ import annotations

import datetime
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

PROVIDER = "ec2"

NODE_STATE_MAP = {
    "pending": NodeState.PENDING,
    "running": NodeState.RUNNING,
    "shutting-down": NodeState.TERMINATED,
    "terminated": NodeState.TERMINATED,
    "stopping": NodeState.PENDING,
    "stopped": NodeState.STOPPED,
}


def local(tag: Any) -> str:
    return str(tag).rpartition("}")[2]


def children(element: Any) -> dict[str, Any]:
    """Direct children by local name (last one wins)."""
    return {local(child.tag): child for child in element}


def text(fields: dict[str, Any], name: str) -> str | None:
    element = fields.get(name)
    return None if element is None else element.text


def items(element: Any, set_name: str) -> list[Any]:
    container = element.find(f"{{*}}{set_name}")
    return [] if container is None else list(container.iterfind("{*}item"))


def tags(element: Any) -> dict[str, str]:
    result = {}
    for item in items(element, "tagSet"):
        fields = children(item)
        result[text(fields, "key") or ""] = text(fields, "value") or ""
    return result


def timestamp(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def to_node(item: Any) -> Node:
    fields = children(item)
    node_tags = tags(item)
    state = fields.get("instanceState")
    state_name = state.findtext("{*}name") if state is not None else None
    placement = fields.get("placement")
    public_ip, private_ip = text(fields, "ipAddress"), text(fields, "privateIpAddress")
    return Node(
        id=text(fields, "instanceId") or "",
        name=node_tags.get("Name") or text(fields, "instanceId") or "",
        state=NODE_STATE_MAP.get(state_name or "", NodeState.UNKNOWN),
        provider=PROVIDER,
        public_ips=(public_ip,) if public_ip else (),
        private_ips=(private_ip,) if private_ip else (),
        size_id=text(fields, "instanceType"),
        image_id=text(fields, "imageId"),
        location_id=placement.findtext("{*}availabilityZone") if placement is not None else None,
        created_at=timestamp(text(fields, "launchTime")),
        extra={
            "tags": node_tags,
            "key_name": text(fields, "keyName"),
            "client_token": text(fields, "clientToken"),
        },
    )


def to_nodes(root: Any) -> list[Node]:
    return [
        to_node(item) for item in root.iterfind("{*}reservationSet/{*}item/{*}instancesSet/{*}item")
    ]


def to_size(item: Any, price: float | None) -> NodeSize:
    fields = children(item)
    size_id = text(fields, "instanceType") or ""
    memory = item.findtext("{*}memoryInfo/{*}sizeInMiB")
    vcpus = item.findtext("{*}vCpuInfo/{*}defaultVCpus")
    disk = item.findtext("{*}instanceStorageInfo/{*}totalSizeInGB")
    gpus = sum(
        int(count.text or 0) for count in item.iterfind("{*}gpuInfo/{*}gpus/{*}item/{*}count")
    )
    return NodeSize(
        id=size_id,
        name=size_id,
        ram_mb=int(memory or 0),
        vcpus=int(vcpus or 0),
        disk_gb=int(disk or 0),
        gpus=gpus,
        provider=PROVIDER,
        price_per_hour=price,
    )


def to_image(item: Any) -> NodeImage:
    fields = children(item)
    image_id = text(fields, "imageId") or ""
    return NodeImage(
        id=image_id,
        name=text(fields, "name") or image_id,
        provider=PROVIDER,
        extra={
            "owner_id": text(fields, "imageOwnerId"),
            "architecture": text(fields, "architecture"),
            "platform": text(fields, "platformDetails") or text(fields, "platform"),
        },
    )


def to_key_pair(item: Any) -> KeyPair:
    fields = children(item)
    return KeyPair(
        name=text(fields, "keyName") or "",
        fingerprint=text(fields, "keyFingerprint") or "",
        public_key=text(fields, "publicKey") or "",
        private_key=text(fields, "keyMaterial"),
        extra={"key_pair_id": text(fields, "keyPairId")},
    )


def to_volume(element: Any) -> StorageVolume:
    fields = children(element)
    attachments = items(element, "attachmentSet")
    attached_to, device = None, None
    if attachments:
        attachment = children(attachments[0])
        if text(attachment, "status") in ("attaching", "attached"):
            attached_to, device = text(attachment, "instanceId"), text(attachment, "device")
    volume_id = text(fields, "volumeId") or ""
    return StorageVolume(
        id=volume_id,
        name=tags(element).get("Name") or volume_id,
        size_gb=int(text(fields, "size") or 0),
        state=text(fields, "status") or "unknown",
        provider=PROVIDER,
        location_id=text(fields, "availabilityZone"),
        attached_to=attached_to,
        extra={"device": device} if device else {},
    )


def to_snapshot(element: Any) -> VolumeSnapshot:
    fields = children(element)
    return VolumeSnapshot(
        id=text(fields, "snapshotId") or "",
        volume_id=text(fields, "volumeId") or "",
        size_gb=int(text(fields, "volumeSize") or 0),
        state=text(fields, "status") or "unknown",
        provider=PROVIDER,
        created_at=timestamp(text(fields, "startTime")),
        extra={"description": text(fields, "description")},
    )
