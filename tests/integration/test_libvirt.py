"""The libvirt driver against libvirt's own test hypervisor (``test:///default``):
real libvirt calls, domains and storage volumes, in this process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from drivers import DriverType, get_driver
from drivers.compute.base import NodeAuthPassword, NodeAuthSSHKey, NodeState
from drivers.errors import InvalidRequest, NotFound, NotSupported, ProviderError
from tests.functional.harness import service_config, start_service, stop_service
from tests.helpers import need, wait_for

pytestmark = pytest.mark.integration

try:
    import libvirt

    from drivers.compute.libvirt_domains import LibvirtNodeDriver, domain_uuid, to_driver_error
except ImportError:  # libvirt-python is not built here
    libvirt = None

IMAGE = "debian-12.img"
KEY = NodeAuthSSHKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ5nVsiL1PYXw4Gx8qSHp6Xq4yQkBqW test")


@pytest.fixture
def virt() -> Iterator[LibvirtNodeDriver]:
    need(libvirt is not None, "libvirt-python (apt-get install libvirt-dev pkg-config)")
    driver = LibvirtNodeDriver(uri="test:///default", country="de")
    connection = driver._connect()
    pool = connection.storagePoolLookupByName("default-pool")
    if IMAGE not in pool.listVolumes():
        pool.createXML(f"<volume><name>{IMAGE}</name><capacity unit='G'>2</capacity></volume>")
    before = {domain.UUIDString() for domain in connection.listAllDomains()}
    yield driver
    for node in driver.list_nodes():
        if node.id not in before:
            driver.destroy_node(node)


def image_of(driver: LibvirtNodeDriver):
    return next(image for image in driver.list_images() if image.name == IMAGE)


def size_of(driver: LibvirtNodeDriver, size_id: str = "small"):
    return next(size for size in driver.list_sizes() if size.id == size_id)


def test_registered_with_a_catalog_of_the_host_flavors_and_pool_volumes(virt):
    assert get_driver(DriverType.COMPUTE, "libvirt") is LibvirtNodeDriver
    [location] = virt.list_locations()
    assert location.country == "DE" and location.provider == "libvirt"
    sizes = {size.id: size for size in virt.list_sizes()}
    assert (sizes["medium"].vcpus, sizes["medium"].ram_mb, sizes["medium"].disk_gb) == (2, 4096, 20)
    assert all(size.price_per_hour is None for size in sizes.values())  # none unless overridden
    assert f"default-pool/{IMAGE}" in {image.id for image in virt.list_images()}


def test_a_domain_goes_through_its_whole_life(virt):
    node = virt.create_node(
        "life", size_of(virt, "medium"), image_of(virt), auth=KEY, idempotency_token="tok-life"
    )
    assert node.state is NodeState.RUNNING and node.id == domain_uuid("tok-life")
    assert node.private_ips and node.size_id == "medium"
    assert node.image_id == f"default-pool/{IMAGE}" and node.extra["token"] == "tok-life"
    connection = virt._connect()
    domain = connection.lookupByUUIDString(node.id)
    assert domain.maxMemory() == 4096 * 1024 and domain.maxVcpus() == 2
    pool = connection.storagePoolLookupByName("default-pool")
    assert f"overcast-{node.id}.img" in pool.listVolumes()  # its own disk, cloned
    assert KEY.public_key in domain.XMLDesc(0)  # kept in its metadata

    virt.reboot_node(node)
    assert virt.get_node(node.id).state is NodeState.RUNNING
    virt.stop_node(node)
    wait_for(lambda: virt.get_node(node.id).state is NodeState.STOPPED, what="stopped")
    assert virt.get_node(node.id).private_ips == ()
    virt.start_node(node)
    assert virt.get_node(node.id).state is NodeState.RUNNING
    virt.destroy_node(node)
    with pytest.raises(NotFound):
        virt.get_node(node.id)
    assert f"overcast-{node.id}.img" not in pool.listVolumes()
    with pytest.raises(NotFound):
        virt.destroy_node(node)


def test_a_create_repeated_after_it_acted_makes_one_domain(virt):
    first = virt.create_node(
        "once", size_of(virt), image_of(virt), auth=KEY, idempotency_token="tok-once"
    )
    # The caller timed out after libvirt acted: it asks again with the same token.
    again = virt.create_node(
        "once", size_of(virt), image_of(virt), auth=KEY, idempotency_token="tok-once"
    )
    assert again.id == first.id
    assert [n.id for n in virt.list_nodes() if n.name == "once"] == [first.id]
    assert virt.find_node_by_token("tok-once").id == first.id
    assert virt.find_node_by_token("tok-never") is None


def test_failures_are_the_driver_error_tree(virt):
    with pytest.raises(NotFound):
        virt.get_node(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        virt.get_node("not-a-uuid")
    missing_pool = replace(image_of(virt), id="nopool/x.img")
    with pytest.raises(NotFound):
        virt.create_node("x", size_of(virt), missing_pool, auth=KEY)
    with pytest.raises(InvalidRequest):
        virt.create_node("x", replace(size_of(virt), id="huge"), image_of(virt))
    with pytest.raises(NotSupported):
        virt.create_node("x", size_of(virt), image_of(virt), auth=NodeAuthPassword("secret"))
    with pytest.raises(InvalidRequest, match="flavors need"):
        LibvirtNodeDriver(uri="test:///default", flavors=[{"id": "odd"}])
    unreachable = LibvirtNodeDriver(uri="qemu+tcp://127.0.0.1:1/system")
    with pytest.raises(ProviderError) as raised:
        unreachable.list_nodes()
    assert raised.value.transient  # the host is unreachable: worth a retry


def test_error_codes_map_onto_the_tree():
    need(libvirt is not None, "libvirt-python")

    def error(code: int) -> libvirt.libvirtError:
        failure = libvirt.libvirtError("failed")
        failure.err = (code, 0, "what went wrong", 0, "", "", "", 0, 0)
        return failure

    assert isinstance(to_driver_error(error(libvirt.VIR_ERR_NO_DOMAIN), "x"), NotFound)
    assert isinstance(to_driver_error(error(libvirt.VIR_ERR_XML_ERROR), "x"), InvalidRequest)
    assert isinstance(to_driver_error(error(libvirt.VIR_ERR_NO_SUPPORT), "x"), NotSupported)
    unknown = to_driver_error(error(libvirt.VIR_ERR_INTERNAL_ERROR), "x")
    assert isinstance(unknown, ProviderError) and not unknown.transient
    assert to_driver_error(error(libvirt.VIR_ERR_RPC), "x").transient


def test_through_the_service_a_libvirt_node_is_placed_runs_and_is_deleted(virt, tmp_path):
    service = start_service(service_config(tmp_path))
    try:
        service.add_account(
            "alpha", "virt", provider="libvirt", uri="test:///default", country="de"
        )
        offers = service.call(
            "GET", "/v1/offers?min_ram_mb=4096&exclude_country=US", key="member"
        ).body["offers"]
        assert {o["size_id"] for o in offers if o["provider"] == "libvirt"} == {"medium", "large"}
        node = service.create_node("guest", key="member", image="debian", providers=["libvirt"])
        assert node["state"] == "running" and node["provider"] == "libvirt"
        assert node["private_ips"] and node["size_id"] == "small"
        service.live_a_node_s_life(node["id"])
        assert virt.find_node_by_token(node["id"]) is None  # the domain is gone
    finally:
        stop_service(service)
