"""The EC2 compute driver (Query API, SigV4, requests + lxml; no boto3).

Locations are availability zones, with the region's country from
``drivers/data/ec2_regions.json``. Sizes come from ``DescribeInstanceTypes``
joined with the pricing data; images from ``DescribeImages`` limited by owner
and name patterns (never every public image). ``create_node`` is idempotent:
the caller's token is sent as ``ClientToken`` *and* set as a tag that is
looked up first, since not every EC2-compatible endpoint honours
``ClientToken``. ``endpoint`` points the driver anywhere EC2-compatible.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any, ClassVar

from drivers import pricing
from drivers.common.ssh_keys import fingerprint, key_pair_name
from drivers.compute.base import (
    Features,
    KeyPair,
    Node,
    NodeAuth,
    NodeAuthSSHKey,
    NodeDriver,
    NodeImage,
    NodeLocation,
    NodeSize,
    StorageVolume,
    VolumeSnapshot,
)
from drivers.compute.ec2 import parse
from drivers.compute.ec2.connection import EC2Connection
from drivers.compute.ec2.signing import Credentials
from drivers.errors import InvalidRequest, NotFound

PROVIDER = "ec2"
TOKEN_TAG = "overcast:idempotency-token"
CATALOG_TTL = 300.0
DEFAULT_IMAGE_OWNERS = ("self", "amazon", "099720109477")  # Canonical publishes Ubuntu
DEFAULT_IMAGE_NAMES = ("amzn*", "al2023*", "ubuntu/images/*", "debian-*")


def region_table() -> dict[str, dict[str, str]]:
    text = (resources.files("drivers") / "data" / "ec2_regions.json").read_text()
    return dict(json.loads(text))


class EC2NodeDriver(NodeDriver):
    """Amazon EC2 in one region (see the module docstring)."""

    name: ClassVar[str] = "Amazon EC2"
    provider: ClassVar[str] = PROVIDER
    features: ClassVar[Features] = Features(
        create_node_auth=frozenset({"ssh_key"}),
        key_pairs=True,
        volumes=True,
        idempotent_create=True,
    )

    def __init__(
        self,
        key: str,
        secret: str,
        *,
        region: str = "us-east-1",
        endpoint: str | None = None,
        token: str | None = None,
        image_owners: Sequence[str] = DEFAULT_IMAGE_OWNERS,
        image_names: Sequence[str] = DEFAULT_IMAGE_NAMES,
        timeout: float = 60.0,
        max_retries: int = 4,
        pricing_store: pricing.PricingStore | None = None,
    ) -> None:
        self.region = region
        regions = region_table()
        self.country = regions.get(region, {}).get("country", "ZZ")
        self.region_name = regions.get(region, {}).get("name", region)
        self.connection = EC2Connection(
            Credentials(key, secret, token),
            region,
            endpoint or f"https://ec2.{region}.amazonaws.com/",
            timeout=(min(10.0, timeout), timeout),
            max_retries=max_retries,
        )
        self.image_owners = tuple(image_owners)
        self.image_names = tuple(image_names)
        self._pricing = pricing_store
        self._cache: dict[str, tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()

    def _cached(self, name: str, load: Any) -> Any:
        """Region-wide catalog answers, kept for CATALOG_TTL seconds (per AZ calls repeat)."""
        with self._cache_lock:
            hit = self._cache.get(name)
            if hit is not None and time.monotonic() - hit[0] < CATALOG_TTL:
                return hit[1]
        value = load()
        with self._cache_lock:
            self._cache[name] = (time.monotonic(), value)
        return value

    # -- nodes -------------------------------------------------------------

    def _describe(self, params: dict[str, Any]) -> list[Node]:
        nodes: list[Node] = []
        for page in self.connection.pages("DescribeInstances", params):
            nodes.extend(parse.to_nodes(page))
        return nodes

    def list_nodes(self) -> list[Node]:
        return self._describe({})

    def get_node(self, node_id: str) -> Node:
        nodes = self._describe({"InstanceId.1": node_id})
        if not nodes:
            raise NotFound(f"instance {node_id} not found", provider=PROVIDER)
        return nodes[0]

    def find_node_by_token(self, token: str, name: str | None = None) -> Node | None:
        nodes = self._describe(
            _filters(
                {
                    f"tag:{TOKEN_TAG}": [token],
                    "instance-state-name": ["pending", "running", "stopping", "stopped"],
                }
            )
        )
        return nodes[0] if nodes else None

    def create_node(
        self,
        name: str,
        size: NodeSize,
        image: NodeImage,
        location: NodeLocation | None = None,
        auth: NodeAuth | None = None,
        idempotency_token: str | None = None,
        ex_keyname: str | None = None,
        ex_security_groups: Sequence[str] = (),
        ex_security_group_ids: Sequence[str] = (),
        ex_subnet_id: str | None = None,
        ex_userdata: str | None = None,
        ex_tags: dict[str, str] | None = None,
    ) -> Node:
        if idempotency_token is not None:
            if len(idempotency_token) > 64 or not idempotency_token.isascii():
                raise InvalidRequest(
                    "idempotency tokens are at most 64 ASCII characters", provider=PROVIDER
                )
            existing = self.find_node_by_token(idempotency_token)
            if existing is not None:
                return existing
        params: dict[str, Any] = {
            "ImageId": image.id,
            "InstanceType": size.id,
            "MinCount": 1,
            "MaxCount": 1,
        }
        if location is not None and location.zone:
            params["Placement.AvailabilityZone"] = location.zone
        if isinstance(auth, NodeAuthSSHKey):
            ex_keyname = ex_keyname or self._ensure_key(auth.public_key)
        elif auth is not None:
            raise InvalidRequest("EC2 nodes take auth=NodeAuthSSHKey(...)", provider=PROVIDER)
        if ex_keyname:
            params["KeyName"] = ex_keyname
        for index, group in enumerate(ex_security_groups, 1):
            params[f"SecurityGroup.{index}"] = group
        for index, group_id in enumerate(ex_security_group_ids, 1):
            params[f"SecurityGroupId.{index}"] = group_id
        if ex_subnet_id:
            params["SubnetId"] = ex_subnet_id
        if ex_userdata:
            params["UserData"] = base64.b64encode(ex_userdata.encode()).decode()
        node_tags = {"Name": name, **(ex_tags or {})}
        if idempotency_token is not None:
            params["ClientToken"] = idempotency_token
            node_tags[TOKEN_TAG] = idempotency_token
        params.update(_tag_specification("instance", node_tags))
        root = self.connection.call(
            "RunInstances", params, idempotent=idempotency_token is not None
        )
        items = list(root.iterfind("{*}instancesSet/{*}item"))
        if not items:
            raise InvalidRequest("RunInstances returned no instance", provider=PROVIDER)
        return parse.to_node(items[0])

    def _ensure_key(self, public_key: str) -> str:
        """The name of an imported key pair holding ``public_key`` (one per key)."""
        name = key_pair_name(public_key)
        try:
            self.import_key_pair(name, public_key.strip().splitlines()[0])
        except InvalidRequest as error:
            if "Duplicate" not in str(error):
                raise
        return name

    def _instances(self, action: str, node: Node) -> None:
        self.connection.call(action, {"InstanceId.1": node.id})

    def reboot_node(self, node: Node) -> None:
        self._instances("RebootInstances", node)

    def start_node(self, node: Node) -> None:
        self._instances("StartInstances", node)

    def stop_node(self, node: Node) -> None:
        self._instances("StopInstances", node)

    def destroy_node(self, node: Node) -> None:
        self._instances("TerminateInstances", node)

    # -- catalog -----------------------------------------------------------

    def list_locations(self) -> list[NodeLocation]:
        root = self.connection.call("DescribeAvailabilityZones")
        locations = []
        for item in root.iterfind("{*}availabilityZoneInfo/{*}item"):
            zone = item.findtext("{*}zoneName") or ""
            locations.append(
                NodeLocation(
                    id=zone,
                    name=f"{self.region_name} {zone[-1:].upper()}",
                    country=self.country,
                    provider=PROVIDER,
                    region=self.region,
                    zone=zone,
                    extra={"zone_id": item.findtext("{*}zoneId")},
                )
            )
        return locations

    def _instance_types(self) -> list[Any]:
        def load() -> list[Any]:
            found: list[Any] = []
            for page in self.connection.pages("DescribeInstanceTypes", page_size=100):
                found.extend(page.iterfind("{*}instanceTypeSet/{*}item"))
            return found

        return list(self._cached("instance_types", load))

    def price_key(self, size_id: str, location: NodeLocation | None) -> tuple[str, str | None]:
        return size_id, location.region if location is not None and location.region else self.region

    def list_sizes(self, location: NodeLocation | None = None) -> list[NodeSize]:
        return [
            parse.to_size(
                item, self.price_quote(item.findtext("{*}instanceType") or "", location).price
            )
            for item in self._instance_types()
        ]

    def list_images(self, location: NodeLocation | None = None) -> list[NodeImage]:
        def load() -> list[NodeImage]:
            params: dict[str, Any] = {
                f"Owner.{i}": owner for i, owner in enumerate(self.image_owners, 1)
            }
            if self.image_names:
                params.update(_filters({"name": list(self.image_names)}))
            root = self.connection.call("DescribeImages", params)
            return [parse.to_image(item) for item in root.iterfind("{*}imagesSet/{*}item")]

        return list(self._cached("images", load))

    # -- key pairs ---------------------------------------------------------

    def list_key_pairs(self) -> list[KeyPair]:
        root = self.connection.call("DescribeKeyPairs")
        return [parse.to_key_pair(item) for item in root.iterfind("{*}keySet/{*}item")]

    def create_key_pair(self, name: str) -> KeyPair:
        root = self.connection.call("CreateKeyPair", {"KeyName": name})
        return parse.to_key_pair(root)

    def import_key_pair(self, name: str, public_key: str) -> KeyPair:
        try:
            local_fingerprint = fingerprint(public_key)
        except (ValueError, IndexError):
            raise InvalidRequest("not an OpenSSH public key", provider=PROVIDER) from None
        root = self.connection.call(
            "ImportKeyPair",
            {
                "KeyName": name,
                "PublicKeyMaterial": base64.b64encode(public_key.strip().encode()).decode(),
            },
        )
        imported = parse.to_key_pair(root)
        return KeyPair(
            name=imported.name,
            fingerprint=imported.fingerprint or local_fingerprint,
            public_key=public_key.strip(),
            extra=imported.extra,
        )

    def delete_key_pair(self, key_pair: KeyPair) -> None:
        self.connection.call("DeleteKeyPair", {"KeyName": key_pair.name})

    # -- volumes -----------------------------------------------------------

    def list_volumes(self) -> list[StorageVolume]:
        volumes: list[StorageVolume] = []
        for page in self.connection.pages("DescribeVolumes"):
            volumes.extend(parse.to_volume(item) for item in page.iterfind("{*}volumeSet/{*}item"))
        return volumes

    def _volume(self, volume_id: str) -> StorageVolume:
        root = self.connection.call("DescribeVolumes", {"VolumeId.1": volume_id})
        found = [parse.to_volume(item) for item in root.iterfind("{*}volumeSet/{*}item")]
        if not found:
            raise NotFound(f"volume {volume_id} not found", provider=PROVIDER)
        return found[0]

    def create_volume(
        self, size_gb: int, name: str, location: NodeLocation | None = None
    ) -> StorageVolume:
        zone = location.zone if location is not None and location.zone else None
        zone = zone or self.list_locations()[0].zone
        params = {
            "Size": size_gb,
            "AvailabilityZone": zone,
            **_tag_specification("volume", {"Name": name}),
        }
        return parse.to_volume(self.connection.call("CreateVolume", params))

    def attach_volume(
        self, node: Node, volume: StorageVolume, device: str | None = None
    ) -> StorageVolume:
        self.connection.call(
            "AttachVolume",
            {"VolumeId": volume.id, "InstanceId": node.id, "Device": device or "/dev/sdf"},
        )
        return self._volume(volume.id)

    def detach_volume(self, volume: StorageVolume) -> StorageVolume:
        current = self._volume(volume.id)
        params = {"VolumeId": volume.id}
        if current.attached_to:  # optional at AWS, required by some compatible endpoints
            params["InstanceId"] = current.attached_to
        if current.extra.get("device"):
            params["Device"] = current.extra["device"]
        self.connection.call("DetachVolume", params)
        return self._volume(volume.id)

    def destroy_volume(self, volume: StorageVolume) -> None:
        self.connection.call("DeleteVolume", {"VolumeId": volume.id})

    def create_volume_snapshot(self, volume: StorageVolume, name: str) -> VolumeSnapshot:
        root = self.connection.call("CreateSnapshot", {"VolumeId": volume.id, "Description": name})
        return parse.to_snapshot(root)

    # -- provider-only -----------------------------------------------------

    def ex_allocate_address(self) -> dict[str, str]:
        """A new elastic IP: ``{"public_ip", "allocation_id"}``."""
        root = self.connection.call("AllocateAddress", {"Domain": "vpc"})
        return {
            "public_ip": root.findtext("{*}publicIp") or "",
            "allocation_id": root.findtext("{*}allocationId") or "",
        }

    def ex_associate_address(self, node: Node, allocation_id: str) -> str:
        root = self.connection.call(
            "AssociateAddress", {"InstanceId": node.id, "AllocationId": allocation_id}
        )
        return root.findtext("{*}associationId") or ""

    def ex_disassociate_address(self, association_id: str) -> None:
        self.connection.call("DisassociateAddress", {"AssociationId": association_id})

    def ex_release_address(self, allocation_id: str) -> None:
        self.connection.call("ReleaseAddress", {"AllocationId": allocation_id})

    def ex_list_addresses(self) -> list[dict[str, str | None]]:
        root = self.connection.call("DescribeAddresses")
        return [
            {
                "public_ip": item.findtext("{*}publicIp"),
                "allocation_id": item.findtext("{*}allocationId"),
                "instance_id": item.findtext("{*}instanceId"),
            }
            for item in root.iterfind("{*}addressesSet/{*}item")
        ]

    def ex_create_security_group(self, name: str, description: str) -> str:
        root = self.connection.call(
            "CreateSecurityGroup", {"GroupName": name, "GroupDescription": description}
        )
        return root.findtext("{*}groupId") or ""

    def ex_authorize_ingress(
        self, group_id: str, port: int, cidr: str = "0.0.0.0/0", protocol: str = "tcp"
    ) -> None:
        self.connection.call(
            "AuthorizeSecurityGroupIngress",
            {
                "GroupId": group_id,
                "IpPermissions.1.IpProtocol": protocol,
                "IpPermissions.1.FromPort": port,
                "IpPermissions.1.ToPort": port,
                "IpPermissions.1.IpRanges.1.CidrIp": cidr,
            },
        )

    def ex_list_security_groups(self) -> list[dict[str, str | None]]:
        root = self.connection.call("DescribeSecurityGroups")
        return [
            {"group_id": item.findtext("{*}groupId"), "name": item.findtext("{*}groupName")}
            for item in root.iterfind("{*}securityGroupInfo/{*}item")
        ]

    def ex_delete_security_group(self, group_id: str) -> None:
        self.connection.call("DeleteSecurityGroup", {"GroupId": group_id})


def _filters(filters: dict[str, list[str]]) -> dict[str, str]:
    params = {}
    for index, (name, values) in enumerate(filters.items(), 1):
        params[f"Filter.{index}.Name"] = name
        for value_index, value in enumerate(values, 1):
            params[f"Filter.{index}.Value.{value_index}"] = value
    return params


def _tag_specification(resource: str, tags: dict[str, str]) -> dict[str, str]:
    params = {"TagSpecification.1.ResourceType": resource}
    for index, (key, value) in enumerate(tags.items(), 1):
        params[f"TagSpecification.1.Tag.{index}.Key"] = key
        params[f"TagSpecification.1.Tag.{index}.Value"] = value
    return params
