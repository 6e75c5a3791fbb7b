"""The OpenStack driver: identity against a real Keystone, compute against
recorded Nova/Glance/Cinder responses served by a replay server."""

from __future__ import annotations

import base64
import datetime
import json

import pytest

from drivers.common.ssh_keys import generate_key_pair
from drivers.compute.base import NodeAuthSSHKey, NodeState
from drivers.compute.openstack import OpenStackNodeDriver
from drivers.errors import AuthError, CapacityError, NotFound
from drivers.pricing import PricingStore
from tests.helpers import wait_for
from tests.integration.deployment import free_port
from tests.integration.keystone import REGION, keystone
from tests.integration.openstack_replay import OpenStackReplay

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def replay():
    with OpenStackReplay().running() as server:
        yield server


@pytest.fixture(scope="module")
def identity(replay, tmp_path_factory):
    services = {
        "compute": ("nova", f"{replay.url}/compute/v2.1/$(project_id)s"),
        "image": ("glance", f"{replay.url}/image"),
        "volumev3": ("cinderv3", f"{replay.url}/volume/v3/$(project_id)s"),
    }
    with keystone(tmp_path_factory.mktemp("keystone"), free_port(), services) as server:
        yield server


def driver(identity, **options):
    settings = {"project_id": identity.project_id, "region": REGION, "country": "de", **options}
    return OpenStackNodeDriver(
        identity.username, identity.password, auth_url=identity.url, **settings
    )


def requests_to(replay, method, fragment):
    return [r for r in replay.requests if r.method == method and fragment in r.path]


# -- identity (real Keystone) ----------------------------------------------------------


def test_password_auth_and_catalog_discovery(identity, replay):
    openstack = driver(identity)
    token = openstack.identity.token()
    assert token.project_id == identity.project_id
    assert openstack.compute.base_url() == f"{replay.url}/compute/v2.1/{identity.project_id}"
    assert openstack.image.base_url() == f"{replay.url}/image"
    assert identity.password not in repr(openstack.identity.credentials)
    elsewhere = driver(identity, region="Nowhere")
    with pytest.raises(NotFound, match="no public compute endpoint in region Nowhere"):
        elsewhere.list_nodes()
    overridden = driver(identity, compute_endpoint=f"{replay.url}/compute/v2.1/override")
    overridden.list_nodes()
    assert requests_to(replay, "GET", "/compute/v2.1/override/servers/detail")


def test_application_credentials(identity):
    openstack = OpenStackNodeDriver(
        auth_url=identity.url,
        region=REGION,
        application_credential_id=identity.application_credential_id,
        application_credential_secret=identity.application_credential_secret,
    )
    assert openstack.identity.token().project_id == identity.project_id
    assert {node.id for node in openstack.list_nodes()} >= {"12064", "12065"}


def test_wrong_password_is_an_auth_error(identity):
    wrong = OpenStackNodeDriver(
        identity.username,
        "not-the-password",
        auth_url=identity.url,
        project_id=identity.project_id,
        region=REGION,
    )
    with pytest.raises(AuthError, match="Keystone refused") as raised:
        wrong.list_nodes()
    assert "not-the-password" not in str(raised.value)
    with pytest.raises(AuthError):
        OpenStackNodeDriver(auth_url=identity.url)


def test_token_is_renewed_before_it_expires(identity):
    openstack = driver(identity, token_renew_before=1.0)
    first = openstack.identity.token()
    assert openstack.identity.token() is first  # cached
    renew_at = first.expires_at - datetime.timedelta(seconds=1)
    wait_for(
        lambda: datetime.datetime.now(datetime.UTC) >= renew_at,
        timeout=identity.token_expiration + 5,
        interval=0.1,
        what="the token to age",
    )
    openstack.list_nodes()
    second = openstack.identity.token()
    assert second.value != first.value and second.expires_at > first.expires_at


def test_a_401_renews_the_token_once(identity, replay):
    openstack = driver(identity)
    before = openstack.identity.token()
    replay.refuse_next = 1
    assert openstack.list_nodes()
    assert openstack.identity.token().value != before.value
    replay.refuse_next = 2
    calls = len(replay.requests)
    with pytest.raises(AuthError):
        openstack.get_node("12064")
    assert len(replay.requests) - calls == 2  # once, then once more: no loop
    replay.refuse_next = 0


# -- compute (recorded responses) ------------------------------------------------------


def test_list_and_get_nodes(identity, replay):
    openstack = driver(identity)
    nodes = {node.id: node for node in openstack.list_nodes()}
    assert nodes["12065"].state is NodeState.PENDING
    assert nodes["12064"].state is NodeState.RUNNING
    building = nodes["12065"]
    assert "50.57.94.35" in building.public_ips and "192.168.3.3" in building.public_ips
    assert "10.182.64.34" in building.private_ips and "10.3.3.3" in building.private_ips
    assert building.size_id == "2" and building.name == "lc-test-2"
    assert openstack.get_node("12064").state is NodeState.RUNNING
    with pytest.raises(NotFound):
        openstack.get_node("no-such-server")
    sent = requests_to(replay, "GET", "/servers/detail")[-1]
    assert sent.headers["OpenStack-API-Version"] == "compute 2.47"


def test_create_is_well_formed_and_idempotent(identity, replay):
    openstack = driver(identity)
    size = next(s for s in openstack.list_sizes() if s.id == "3")
    image = openstack.list_images()[0]
    zone = next(loc for loc in openstack.list_locations() if loc.zone == "az-2")
    _private, public = generate_key_pair()
    posts = len(requests_to(replay, "POST", "/servers"))
    node = openstack.create_node(
        "web-1",
        size,
        image,
        zone,
        auth=NodeAuthSSHKey(public),
        idempotency_token="node-123",
        ex_security_groups=["web"],
        ex_networks=["net-1"],
        ex_userdata="#!/bin/sh\ntrue\n",
    )
    (create,) = [r for r in requests_to(replay, "POST", "/servers") if r.path.endswith("/servers")][
        posts:
    ]
    server = create.body["server"]
    assert (server["name"], server["imageRef"], server["flavorRef"]) == ("web-1", image.id, "3")
    assert server["availability_zone"] == "az-2"
    assert server["metadata"] == {"overcast-idempotency-token": "node-123"}
    assert server["key_name"].startswith("overcast-")
    assert server["security_groups"] == [{"name": "web"}]
    assert server["networks"] == [{"uuid": "net-1"}]
    assert base64.b64decode(server["user_data"]) == b"#!/bin/sh\ntrue\n"
    imported = requests_to(replay, "POST", "/os-keypairs")[-1]
    assert imported.body["keypair"]["public_key"] == public.strip()
    assert node.state is NodeState.RUNNING and node.location_id == "az-2"

    again = openstack.create_node("web-1", size, image, zone, idempotency_token="node-123")
    assert again.id == node.id
    assert (
        len([r for r in requests_to(replay, "POST", "/servers") if r.path.endswith("/servers")])
        == posts + 1
    )
    # Three servers now: the listing spans two pages, and the driver follows the link.
    assert len(openstack.list_nodes()) >= 3
    assert any("marker=" in r.path for r in requests_to(replay, "GET", "/servers/detail"))


def test_reboot_stop_start_destroy(identity, replay):
    openstack = driver(identity)
    node = openstack.create_node("cycle", openstack.list_sizes()[0], openstack.list_images()[0])
    openstack.reboot_node(node)
    openstack.reboot_node(node, ex_hard=True)
    openstack.stop_node(node)
    assert openstack.get_node(node.id).state is NodeState.STOPPED
    openstack.start_node(node)
    assert openstack.get_node(node.id).state is NodeState.RUNNING
    actions = [r.body for r in requests_to(replay, "POST", f"/servers/{node.id}/action")]
    assert actions[-4:] == [
        {"reboot": {"type": "SOFT"}},
        {"reboot": {"type": "HARD"}},
        {"os-stop": None},
        {"os-start": None},
    ]
    openstack.destroy_node(node)
    assert requests_to(replay, "DELETE", f"/servers/{node.id}")
    with pytest.raises(NotFound):
        openstack.get_node(node.id)


def test_catalog(identity, tmp_path):
    openstack = driver(identity)
    locations = openstack.list_locations()
    assert [loc.zone for loc in locations] == ["nova", "az-2"]  # "broken" is unavailable
    assert {loc.country for loc in locations} == {"DE"}
    sizes = {size.id: size for size in openstack.list_sizes(locations[0])}
    assert len(sizes) == 8
    assert (sizes["7"].ram_mb, sizes["7"].vcpus, sizes["7"].disk_gb) == (16384, 8, 620)
    assert sizes["7"].price_per_hour is None  # OpenStack has no price API
    overrides = tmp_path / "prices.json"
    overrides.write_text(json.dumps({"compute": {"openstack": {"7": {"*": 0.42}}}}))
    priced = driver(identity, pricing_store=PricingStore(override_path=overrides))
    assert {s.id: s.price_per_hour for s in priced.list_sizes()}["7"] == 0.42
    images = openstack.list_images()
    assert len(images) == 3  # two on the first Glance page, one on the next
    assert images[0].name == "hypernode"


def test_key_pairs_volumes_snapshots_floating_ips(identity, replay):
    openstack = driver(identity)
    pairs = openstack.list_key_pairs()
    assert {pair.name for pair in pairs} >= {"key1"}
    created = openstack.create_key_pair("made")
    assert created.name == "made" and "PRIVATE KEY" in (created.private_key or "")
    openstack.delete_key_pair(created)
    assert requests_to(replay, "DELETE", "/os-keypairs/made")

    volumes = openstack.list_volumes()
    attached = next(volume for volume in volumes if volume.attached_to)
    assert attached.attached_to == "12065" and attached.extra["device"] == "/dev/vdb"
    volume = openstack.create_volume(1, "test", openstack.list_locations()[0])
    assert volume.size_gb == 1 and volume.state == "creating"
    assert requests_to(replay, "POST", "/volume/v3/")[-1].body["volume"] == {
        "size": 1,
        "name": "test",
        "availability_zone": "nova",
    }
    node = openstack.get_node("12064")
    openstack.attach_volume(node, volume, "/dev/vdc")
    assert requests_to(replay, "POST", "/os-volume_attachments")[-1].body == {
        "volumeAttachment": {"volumeId": volume.id, "device": "/dev/vdc"}
    }
    openstack.detach_volume(attached)
    assert requests_to(replay, "DELETE", f"/servers/12065/os-volume_attachments/{attached.id}")
    snapshot = openstack.create_volume_snapshot(volume, "nightly")
    assert snapshot.size_gb == 30 and snapshot.state == "available"
    openstack.destroy_volume(volume)
    assert requests_to(replay, "DELETE", f"/volumes/{volume.id}")

    assert len(openstack.ex_list_floating_ips()) == 2
    floating = openstack.ex_create_floating_ip("public")
    openstack.ex_attach_floating_ip(node, floating["ip"])
    openstack.ex_detach_floating_ip(node, floating["ip"])
    openstack.ex_delete_floating_ip(floating["id"])
    actions = [r.body for r in requests_to(replay, "POST", "/servers/12064/action")]
    assert {"addFloatingIp": {"address": "10.3.1.42"}} in actions


def test_no_valid_host_is_a_capacity_error(identity):
    openstack = driver(identity)
    size = openstack.list_sizes()[0].__class__(
        id="no-valid-host", name="x", ram_mb=1, vcpus=1, disk_gb=1, provider="openstack"
    )
    with pytest.raises(CapacityError, match="No valid host"):
        openstack.create_node("x", size, openstack.list_images()[0])


# -- in the service ----------------------------------------------------------------------


def test_an_openstack_account_places_a_node_through_the_api(identity, replay, tmp_path):
    from tests.functional.harness import service_config, start_service, stop_service

    service = start_service(service_config(tmp_path))
    try:
        account_id = service.add_account(
            "alpha",
            "private-cloud",
            "openstack",
            credentials={"key": identity.username, "secret": identity.password},
            auth_url=identity.url,
            project_id=identity.project_id,
            region=REGION,
            country="DE",
        )
        offers = service.call("GET", "/v1/offers?provider=openstack&limit=50").body["offers"]
        assert len(offers) == 16 and {o["country"] for o in offers} == {"DE"}  # 8 x 2 zones
        answer = service.call(
            "POST",
            "/v1/nodes",
            body={
                "name": "on-prem",
                "image": "hypernode",
                "providers": ["openstack"],
                "min_ram_mb": 1024,
            },
        )
        operation = service.wait_operation(answer.body["operation"]["id"], timeout=60)
        assert operation["status"] == "succeeded", operation
        node = service.node(answer.body["node"]["id"])
        assert node["state"] == "running" and node["account_id"] == account_id
        created = [s for s in replay.servers.values() if s["name"] == "on-prem"]
        assert len(created) == 1
        assert created[0]["metadata"]["overcast-idempotency-token"] == node["id"]
        assert identity.password not in json.dumps(
            service.call("GET", f"/v1/accounts/{account_id}").body
        )
    finally:
        stop_service(service)
