"""The EC2 driver against a real moto_server with signature checking on."""

from __future__ import annotations

import pytest

from drivers.common.ssh_keys import generate_key_pair
from drivers.compute.base import NodeAuthSSHKey, NodeState
from drivers.compute.ec2 import EC2NodeDriver
from drivers.errors import AuthError, InvalidRequest, NotFound

pytestmark = pytest.mark.integration


def driver(moto, region="us-east-1", **options):
    return EC2NodeDriver(
        moto.access_key, moto.secret_key, region=region, endpoint=moto.url, **options
    )


def catalog(ec2, size_id="t3.micro", image_prefix="ubuntu/images"):
    location = ec2.list_locations()[0]
    size = next(size for size in ec2.list_sizes(location) if size.id == size_id)
    image = next(
        image for image in ec2.list_images(location) if image.name.startswith(image_prefix)
    )
    return size, image, location


def test_wrong_secret_is_an_auth_error(moto):
    bad = EC2NodeDriver(moto.access_key, "not-the-secret", endpoint=moto.url, max_retries=0)
    with pytest.raises(AuthError, match=r"AuthFailure|SignatureDoesNotMatch"):
        bad.list_nodes()
    unknown = EC2NodeDriver("AKIANOBODY", "x", endpoint=moto.url, max_retries=0)
    with pytest.raises(AuthError):
        unknown.list_locations()


def test_catalog(moto):
    ec2 = driver(moto)
    locations = ec2.list_locations()
    assert [loc.zone for loc in locations][:2] == ["us-east-1a", "us-east-1b"]
    assert {loc.country for loc in locations} == {"US"}
    assert all(loc.region == "us-east-1" for loc in locations)
    sizes = {size.id: size for size in ec2.list_sizes(locations[0])}
    assert len(sizes) > 500
    micro = sizes["t3.micro"]
    assert (micro.ram_mb, micro.vcpus, micro.price_per_hour) == (1024, 2, pytest.approx(0.0104))
    assert sizes["g4dn.xlarge"].gpus == 1
    assert sizes["m5d.large"].disk_gb == 75
    assert any(size.price_per_hour is None for size in sizes.values())  # unknown, not 0.0
    images = ec2.list_images(locations[0])
    assert images and all(image.id.startswith("ami-") for image in images)
    owners = {image.extra["owner_id"] for image in images}
    assert "801119661308" not in owners  # Windows images are not in the default owners


def test_node_lifecycle(moto):
    ec2 = driver(moto)
    size, image, location = catalog(ec2)
    _private_key, public_key = generate_key_pair()
    group_id = ec2.ex_create_security_group("web", "web servers")
    ec2.ex_authorize_ingress(group_id, 22)
    node = ec2.create_node(
        "web-1",
        size,
        image,
        location,
        auth=NodeAuthSSHKey(public_key),
        ex_security_group_ids=[group_id],
        ex_userdata="#!/bin/sh\ntrue\n",
        ex_tags={"team": "ops"},
    )
    assert node.name == "web-1" and node.size_id == "t3.micro"
    assert node.location_id == "us-east-1a" and node.image_id == image.id
    assert node.extra["key_name"].startswith("overcast-")
    assert node.extra["tags"]["team"] == "ops"
    (node,) = ec2.wait_until_running([node], timeout=30, poll_interval=0.2)
    assert node.public_ips and node.private_ips
    assert ec2.get_node(node.id).state is NodeState.RUNNING

    ec2.reboot_node(node)
    ec2.stop_node(node)
    assert ec2.get_node(node.id).state in (NodeState.PENDING, NodeState.STOPPED)
    ec2.start_node(node)
    ec2.wait_until_running([node], timeout=30, poll_interval=0.2)
    ec2.destroy_node(node)
    assert ec2.get_node(node.id).state is NodeState.TERMINATED
    # Reusing the same key imports nothing new.
    again = ec2.create_node("web-2", size, image, location, auth=NodeAuthSSHKey(public_key))
    assert again.extra["key_name"] == node.extra["key_name"]
    ec2.destroy_node(again)
    assert group_id in [group["group_id"] for group in ec2.ex_list_security_groups()]
    ec2.ex_delete_security_group(group_id)


def test_create_with_the_same_token_creates_one_instance(moto):
    ec2 = driver(moto, region="us-west-2")
    size, image, location = catalog(ec2)
    first = ec2.create_node("idem", size, image, location, idempotency_token="node-abc")
    second = ec2.create_node("idem", size, image, location, idempotency_token="node-abc")
    other = ec2.create_node("idem", size, image, location, idempotency_token="node-xyz")
    assert first.id == second.id != other.id
    tagged = [
        node
        for node in ec2.list_nodes()
        if node.extra["tags"].get("overcast:idempotency-token") == "node-abc"
    ]
    assert [node.id for node in tagged] == [first.id]
    with pytest.raises(InvalidRequest, match="64 ASCII"):
        ec2.create_node("idem", size, image, location, idempotency_token="x" * 65)


def test_list_nodes_follows_every_page(moto):
    ec2 = driver(moto, region="eu-west-1")
    size, image, location = catalog(ec2)
    created = {ec2.create_node(f"n{index}", size, image, location).id for index in range(260)}
    first_page = ec2.connection.call("DescribeInstances")
    assert first_page.findtext("{*}nextToken")  # the server really paginates
    listed = ec2.list_nodes()
    assert {node.id for node in listed} == created
    assert len(listed) == 260


def test_two_regions_on_one_server_are_separate(moto):
    virginia, frankfurt = driver(moto, "us-east-2"), driver(moto, "eu-central-1")
    here = virginia.create_node("here", *catalog(virginia))
    there = frankfurt.create_node("there", *catalog(frankfurt))
    assert [n.id for n in virginia.list_nodes()] == [here.id]
    assert [n.id for n in frankfurt.list_nodes()] == [there.id]
    assert {loc.country for loc in frankfurt.list_locations()} == {"DE"}
    assert frankfurt.list_locations()[0].zone.startswith("eu-central-1")


def test_provider_errors_map_to_the_tree(moto):
    ec2 = driver(moto, max_retries=0)
    size, image, location = catalog(ec2)
    with pytest.raises(NotFound, match="InvalidInstanceID"):
        ec2.get_node("i-0123456789abcdef0")
    with pytest.raises(NotFound, match="InvalidAMIID"):
        ec2.create_node(
            "x", size, image.__class__(id="ami-12345678", name="gone", provider="ec2"), location
        )
    # An unknown size is "not here" (NotFound), so placement fails over.
    with pytest.raises(NotFound, match="InvalidInstanceType"):
        ec2.create_node(
            "x",
            size.__class__(
                id="t9.nonsense", name="x", ram_mb=1, vcpus=1, disk_gb=1, provider="ec2"
            ),
            image,
            location,
        )
    ec2.ex_create_security_group("twice", "first")
    with pytest.raises(InvalidRequest, match=r"InvalidGroup\.Duplicate"):
        ec2.ex_create_security_group("twice", "second")
    with pytest.raises(InvalidRequest, match="MissingParameter"):
        ec2.connection.call("CreateSecurityGroup", {"GroupName": "no-description"})
    with pytest.raises(NotFound, match="InvalidKeyPair"):
        ec2.create_node("x", size, image, location, ex_keyname="no-such-key")


def test_key_pairs(moto):
    ec2 = driver(moto, region="ap-south-1")
    created = ec2.create_key_pair("made-here")
    assert created.private_key and "PRIVATE KEY" in created.private_key
    _private_key, public_key = generate_key_pair()
    imported = ec2.import_key_pair("brought", public_key)
    assert imported.fingerprint
    assert {pair.name for pair in ec2.list_key_pairs()} == {"made-here", "brought"}
    with pytest.raises(InvalidRequest, match="Duplicate"):
        ec2.import_key_pair("brought", public_key)
    with pytest.raises(InvalidRequest, match="OpenSSH public key"):
        ec2.import_key_pair("broken", "not a key")
    ec2.delete_key_pair(imported)
    assert {pair.name for pair in ec2.list_key_pairs()} == {"made-here"}


def test_volumes_snapshots_and_addresses(moto):
    ec2 = driver(moto, region="ca-central-1")
    size, image, location = catalog(ec2)
    node = ec2.create_node("disk-host", size, image, location)
    volume = ec2.create_volume(10, "data", location)
    assert volume.size_gb == 10 and volume.location_id == location.zone
    assert volume.name == "data"
    attached = ec2.attach_volume(node, volume, "/dev/sdg")
    assert attached.attached_to == node.id and attached.extra["device"] == "/dev/sdg"
    snapshot = ec2.create_volume_snapshot(volume, "nightly")
    assert snapshot.volume_id == volume.id and snapshot.size_gb == 10
    detached = ec2.detach_volume(volume)
    assert detached.attached_to is None
    assert volume.id in [v.id for v in ec2.list_volumes()]
    ec2.destroy_volume(volume)
    assert volume.id not in [v.id for v in ec2.list_volumes()]

    address = ec2.ex_allocate_address()
    association = ec2.ex_associate_address(node, address["allocation_id"])
    listed = {a["allocation_id"]: a for a in ec2.ex_list_addresses()}
    assert listed[address["allocation_id"]]["instance_id"] == node.id
    ec2.ex_disassociate_address(association)
    ec2.ex_release_address(address["allocation_id"])
    assert address["allocation_id"] not in [a["allocation_id"] for a in ec2.ex_list_addresses()]


def test_an_ec2_account_is_synced_and_used_by_the_service(moto, tmp_path):
    from tests.functional.harness import service_config, start_service, stop_service

    service = start_service(service_config(tmp_path))
    try:
        account_id = service.add_account(
            "alpha",
            "aws",
            "ec2",
            credentials={"key": moto.access_key, "secret": moto.secret_key},
            region="sa-east-1",
            endpoint=moto.url,
        )
        offers = service.call("GET", "/v1/offers?provider=ec2&min_ram_mb=1024&limit=3").body
        assert offers["offers"] and all(o["country"] == "BR" for o in offers["offers"])
        assert offers["offers"][0]["price_per_hour"] is not None

        answer = service.call(
            "POST",
            "/v1/nodes",
            body={"name": "on-aws", "image": "ubuntu", "providers": ["ec2"], "min_ram_mb": 1024},
        )
        operation = service.wait_operation(answer.body["operation"]["id"], timeout=60)
        assert operation["status"] == "succeeded", operation
        node = service.node(answer.body["node"]["id"])
        assert node["state"] == "running" and node["account_id"] == account_id
        assert node["location_id"].startswith("sa-east-1")

        ec2 = driver(moto, region="sa-east-1")
        (instance,) = [n for n in ec2.list_nodes() if n.name == "on-aws"]
        assert instance.extra["tags"]["overcast:idempotency-token"] == node["id"]
        assert instance.state is NodeState.RUNNING
        assert moto.secret_key not in str(service.call("GET", f"/v1/accounts/{account_id}").body)

        deletion = service.call("DELETE", f"/v1/nodes/{node['id']}")
        assert service.wait_operation(deletion.body["operation"]["id"])["status"] == "succeeded"
        assert ec2.get_node(instance.id).state is NodeState.TERMINATED
    finally:
        stop_service(service)
