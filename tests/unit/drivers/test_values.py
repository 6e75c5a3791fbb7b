"""Values carry no driver and round-trip through JSON."""

import datetime
import json

import pytest

from drivers.common.values import from_dict, to_dict
from drivers.compute.base import (
    KeyPair,
    Node,
    NodeImage,
    NodeLocation,
    NodeSize,
    NodeState,
    StorageVolume,
    VolumeSnapshot,
)

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)

VALUES = [
    Node(
        id="n1",
        name="web",
        state=NodeState.RUNNING,
        provider="dummy",
        public_ips=("198.51.100.1",),
        private_ips=("10.0.0.1",),
        size_id="large",
        image_id="debian-12",
        location_id="eu-central-1a",
        ssh_port=2222,
        created_at=NOW,
        extra={"tags": {"a": "b"}},
    ),
    NodeSize(
        id="large",
        name="Large",
        ram_mb=4096,
        vcpus=2,
        disk_gb=80,
        provider="dummy",
        gpus=1,
        price_per_hour=0.048,
    ),
    NodeSize(id="odd", name="Odd", ram_mb=1, vcpus=1, disk_gb=1, provider="x"),
    NodeImage(id="debian-12", name="Debian 12", provider="dummy"),
    NodeLocation(
        id="eu-central-1a",
        name="Frankfurt A",
        country="DE",
        provider="dummy",
        region="eu-central-1",
        zone="eu-central-1a",
    ),
    KeyPair(name="k", fingerprint="SHA256:x", public_key="ssh-ed25519 AAAA"),
    StorageVolume(
        id="v1", name="data", size_gb=10, state="in-use", provider="dummy", attached_to="n1"
    ),
    VolumeSnapshot(
        id="s1", volume_id="v1", size_gb=10, state="completed", provider="dummy", created_at=NOW
    ),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda value: type(value).__name__)
def test_value_round_trips_through_json(value):
    text = json.dumps(to_dict(value))
    restored = from_dict(type(value), json.loads(text))
    assert restored == value
    assert restored.extra == value.extra


def test_values_are_frozen():
    with pytest.raises(AttributeError):
        VALUES[0].name = "other"  # type: ignore[misc]


def test_private_key_is_not_in_repr():
    key_pair = KeyPair(name="k", fingerprint="f", public_key="p", private_key="SECRET-KEY")
    assert "SECRET-KEY" not in repr(key_pair)


def test_node_address_prefers_public():
    node = VALUES[0]
    assert node.address == "198.51.100.1"
    assert Node(id="x", name="x", state=NodeState.PENDING, provider="p").address is None


def test_unknown_fields_are_ignored():
    data = to_dict(VALUES[3]) | {"added_in_a_later_version": 1}
    assert from_dict(NodeImage, data) == VALUES[3]
