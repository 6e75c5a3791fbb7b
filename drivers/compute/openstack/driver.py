"""The OpenStack compute driver: Keystone v3, Nova v2.1, Glance v2, Cinder v3.

Requests carry ``OpenStack-API-Version: compute 2.47`` (the documented
minimum: flavors embedded in servers); endpoints come from the service
catalog for ``region`` and ``interface`` unless overridden. Locations are
availability zones with the country given in the account's config (OpenStack
has no notion of one); prices come from the pricing data or operator
overrides (OpenStack has no price API). ``create_node`` is idempotent through
server metadata carrying the caller's token, looked up before creating.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from drivers import pricing
from drivers.common.ssh_keys import key_pair_name
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
from drivers.compute.openstack import parse
from drivers.compute.openstack.connection import ServiceClient
from drivers.compute.openstack.identity import (
    ApplicationCredentialAuth,
    Identity,
    PasswordAuth,
)
from drivers.errors import AuthError, InvalidRequest, NotFound

PROVIDER = "openstack"
COMPUTE_MICROVERSION = "2.47"


class OpenStackNodeDriver(NodeDriver):
    """One OpenStack project in one region (see the module docstring)."""

    name: ClassVar[str] = "OpenStack"
    provider: ClassVar[str] = PROVIDER
    features: ClassVar[Features] = Features(
        create_node_auth=frozenset({"ssh_key"}),
        key_pairs=True,
        volumes=True,
        idempotent_create=True,
    )

    def __init__(
        self,
        key: str | None = None,
        secret: str | None = None,
        *,
        auth_url: str,
        project_name: str | None = None,
        project_id: str | None = None,
        user_domain: str = "Default",
        project_domain: str = "Default",
        application_credential_id: str | None = None,
        application_credential_secret: str | None = None,
        region: str | None = None,
        interface: str = "public",
        country: str = "ZZ",
        compute_endpoint: str | None = None,
        image_endpoint: str | None = None,
        volume_endpoint: str | None = None,
        timeout: float = 60.0,
        token_renew_before: float = 60.0,
        pricing_store: pricing.PricingStore | None = None,
    ) -> None:
        credentials: PasswordAuth | ApplicationCredentialAuth
        if application_credential_id and application_credential_secret:
            credentials = ApplicationCredentialAuth(
                application_credential_id, application_credential_secret
            )
        elif key and secret:
            credentials = PasswordAuth(
                key,
                secret,
                project_name=project_name,
                project_id=project_id,
                user_domain=user_domain,
                project_domain=project_domain,
            )
        else:
            raise AuthError(
                "OpenStack needs key/secret (user/password) or an application credential",
                provider=PROVIDER,
            )
        self.identity = Identity(
            auth_url, credentials, timeout=timeout, renew_before=token_renew_before
        )
        self.region = region
        self.country = country.upper()
        self.compute = ServiceClient(
            self.identity,
            "compute",
            region=region,
            interface=interface,
            endpoint=compute_endpoint,
            timeout=timeout,
            headers={
                "OpenStack-API-Version": f"compute {COMPUTE_MICROVERSION}",
                "X-OpenStack-Nova-API-Version": COMPUTE_MICROVERSION,
            },
        )
        self.image = ServiceClient(
            self.identity,
            "image",
            region=region,
            interface=interface,
            endpoint=image_endpoint,
            timeout=timeout,
        )
        self.volume = ServiceClient(
            self.identity,
            "volumev3",
            region=region,
            interface=interface,
            endpoint=volume_endpoint,
            timeout=timeout,
        )
        self._pricing = pricing_store

    # -- nodes -------------------------------------------------------------

    def _pages(
        self, client: ServiceClient, path: str, key: str, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paginated list, following ``<key>_links`` / ``next``."""
        items: list[dict[str, Any]] = []
        body = client.json("GET", path, params=params)
        while True:
            items.extend(body.get(key, []))
            following = next(
                (
                    link["href"]
                    for link in body.get(f"{key}_links", [])
                    if link.get("rel") == "next"
                ),
                None,
            ) or body.get("next")
            if not following:
                return items
            if not urlsplit(following).scheme:
                following = client.http.url(following)
            body = client.json("GET", following)

    def list_nodes(self) -> list[Node]:
        return [
            parse.to_node(server)
            for server in self._pages(self.compute, "servers/detail", "servers")
        ]

    def get_node(self, node_id: str) -> Node:
        return parse.to_node(self.compute.json("GET", f"servers/{node_id}")["server"])

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
        ex_networks: Sequence[str] = (),
        ex_userdata: str | None = None,
        ex_metadata: dict[str, str] | None = None,
    ) -> Node:
        if idempotency_token is not None:
            existing = self.find_node_by_token(idempotency_token, name)
            if existing is not None:
                return existing
        server: dict[str, Any] = {
            "name": name,
            "imageRef": image.id,
            "flavorRef": size.id,
            "metadata": dict(ex_metadata or {}),
        }
        if location is not None and location.zone:
            server["availability_zone"] = location.zone
        if isinstance(auth, NodeAuthSSHKey):
            ex_keyname = ex_keyname or self._ensure_key(auth.public_key)
        elif auth is not None:
            raise InvalidRequest("OpenStack nodes take auth=NodeAuthSSHKey(...)", provider=PROVIDER)
        if ex_keyname:
            server["key_name"] = ex_keyname
        if ex_security_groups:
            server["security_groups"] = [{"name": group} for group in ex_security_groups]
        if ex_networks:
            server["networks"] = [{"uuid": network} for network in ex_networks]
        if ex_userdata:
            server["user_data"] = base64.b64encode(ex_userdata.encode()).decode()
        if idempotency_token is not None:
            server["metadata"][parse.TOKEN_KEY] = idempotency_token
        created = self.compute.json("POST", "servers", json={"server": server})["server"]
        try:
            return self.get_node(str(created["id"]))
        except NotFound:  # not listable yet: answer with what the create said
            return parse.to_node(
                {**created, "name": name, "status": "BUILD", "metadata": server["metadata"]}
            )

    def find_node_by_token(self, token: str, name: str | None = None) -> Node | None:
        # Nova filters by name (a regex) server-side; the token in the metadata decides.
        query = {"name": f"^{re.escape(name)}$"} if name else {}
        for node in map(
            parse.to_node, self._pages(self.compute, "servers/detail", "servers", query)
        ):
            if node.extra["metadata"].get(parse.TOKEN_KEY) == token:
                return node
        return None

    def _ensure_key(self, public_key: str) -> str:
        """The name of a key pair holding ``public_key``, importing it once."""
        name = key_pair_name(public_key)
        if name not in {pair.name for pair in self.list_key_pairs()}:
            self.import_key_pair(name, public_key.strip().splitlines()[0])
        return name

    def _action(self, node: Node, action: dict[str, Any]) -> None:
        self.compute.request("POST", f"servers/{node.id}/action", json=action)

    def reboot_node(self, node: Node, ex_hard: bool = False) -> None:
        self._action(node, {"reboot": {"type": "HARD" if ex_hard else "SOFT"}})

    def start_node(self, node: Node) -> None:
        self._action(node, {"os-start": None})

    def stop_node(self, node: Node) -> None:
        self._action(node, {"os-stop": None})

    def destroy_node(self, node: Node) -> None:
        self.compute.request("DELETE", f"servers/{node.id}")

    # -- catalog -----------------------------------------------------------

    def list_locations(self) -> list[NodeLocation]:
        try:
            zones = self.compute.json("GET", "os-availability-zone")["availabilityZoneInfo"]
        except (NotFound, KeyError):
            zones = []
        names = [
            zone["zoneName"]
            for zone in zones
            if (zone.get("zoneState") or {}).get("available", True)
        ] or ["nova"]
        region = self.region or "default"
        return [
            NodeLocation(
                id=name,
                name=f"{region} {name}",
                country=self.country,
                provider=PROVIDER,
                region=region,
                zone=name,
            )
            for name in names
        ]

    def price_key(self, size_id: str, location: NodeLocation | None) -> tuple[str, str | None]:
        return size_id, location.region if location is not None else self.region

    def list_sizes(self, location: NodeLocation | None = None) -> list[NodeSize]:
        return [
            parse.to_size(flavor, self.price_quote(str(flavor["id"]), location).price)
            for flavor in self._pages(self.compute, "flavors/detail", "flavors")
        ]

    def list_images(self, location: NodeLocation | None = None) -> list[NodeImage]:
        try:
            images = self._pages(self.image, "v2/images", "images")
        except NotFound:  # no Glance in the catalog: the compute image proxy
            images = self._pages(self.compute, "images/detail", "images")
        return [
            parse.to_image(image)
            for image in images
            if str(image.get("status", "active")).lower() == "active"
        ]

    # -- key pairs ---------------------------------------------------------

    def list_key_pairs(self) -> list[KeyPair]:
        body = self.compute.json("GET", "os-keypairs")
        return [parse.to_key_pair(item) for item in body.get("keypairs", [])]

    def create_key_pair(self, name: str) -> KeyPair:
        body = self.compute.json("POST", "os-keypairs", json={"keypair": {"name": name}})
        return parse.to_key_pair(body)

    def import_key_pair(self, name: str, public_key: str) -> KeyPair:
        body = self.compute.json(
            "POST",
            "os-keypairs",
            json={"keypair": {"name": name, "public_key": public_key.strip()}},
        )
        return parse.to_key_pair(body)

    def delete_key_pair(self, key_pair: KeyPair) -> None:
        self.compute.request("DELETE", f"os-keypairs/{key_pair.name}")

    # -- volumes (Cinder v3) -------------------------------------------------

    def list_volumes(self) -> list[StorageVolume]:
        return [
            parse.to_volume(volume)
            for volume in self._pages(self.volume, "volumes/detail", "volumes")
        ]

    def create_volume(
        self, size_gb: int, name: str, location: NodeLocation | None = None
    ) -> StorageVolume:
        volume: dict[str, Any] = {"size": size_gb, "name": name}
        if location is not None and location.zone:
            volume["availability_zone"] = location.zone
        return parse.to_volume(
            self.volume.json("POST", "volumes", json={"volume": volume})["volume"]
        )

    def attach_volume(
        self, node: Node, volume: StorageVolume, device: str | None = None
    ) -> StorageVolume:
        attachment: dict[str, Any] = {"volumeId": volume.id}
        if device:
            attachment["device"] = device
        self.compute.json(
            "POST",
            f"servers/{node.id}/os-volume_attachments",
            json={"volumeAttachment": attachment},
        )
        return self._volume(volume.id)

    def detach_volume(self, volume: StorageVolume) -> StorageVolume:
        current = self._volume(volume.id)
        if current.attached_to is None:
            raise InvalidRequest(f"volume {volume.id} is not attached", provider=PROVIDER)
        self.compute.request(
            "DELETE", f"servers/{current.attached_to}/os-volume_attachments/{volume.id}"
        )
        return self._volume(volume.id)

    def _volume(self, volume_id: str) -> StorageVolume:
        return parse.to_volume(self.volume.json("GET", f"volumes/{volume_id}")["volume"])

    def destroy_volume(self, volume: StorageVolume) -> None:
        self.volume.request("DELETE", f"volumes/{volume.id}")

    def create_volume_snapshot(self, volume: StorageVolume, name: str) -> VolumeSnapshot:
        body = self.volume.json(
            "POST",
            "snapshots",
            json={"snapshot": {"volume_id": volume.id, "name": name, "force": True}},
        )
        return parse.to_snapshot(body["snapshot"])

    # -- floating IPs ----------------------------------------------------------

    def ex_list_floating_ips(self) -> list[dict[str, Any]]:
        return list(self.compute.json("GET", "os-floating-ips").get("floating_ips", []))

    def ex_create_floating_ip(self, pool: str | None = None) -> dict[str, Any]:
        body = self.compute.json("POST", "os-floating-ips", json={"pool": pool} if pool else {})
        return dict(body["floating_ip"])

    def ex_attach_floating_ip(self, node: Node, address: str) -> None:
        self._action(node, {"addFloatingIp": {"address": address}})

    def ex_detach_floating_ip(self, node: Node, address: str) -> None:
        self._action(node, {"removeFloatingIp": {"address": address}})

    def ex_delete_floating_ip(self, floating_ip_id: str) -> None:
        self.compute.request("DELETE", f"os-floating-ips/{floating_ip_id}")
