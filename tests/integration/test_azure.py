"""The Azure (ARM) driver against a stateful replay of the recorded ARM
responses in the apache-libcloud wheel, behind a token endpoint that checks
the client credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers import DriverType, get_driver
from drivers.compute.azure import AzureNodeDriver
from drivers.compute.azure.driver import resource_base
from drivers.compute.base import NodeAuthSSHKey, NodeState
from drivers.errors import (
    AuthError,
    CapacityError,
    InvalidRequest,
    NotFound,
    NotSupported,
    ProviderError,
    QuotaExceeded,
    RateLimited,
)
from tests.functional.harness import service_config, start_service, stop_service
from tests.integration.azure_replay import AzureReplay, arm_error, azure_replay

pytestmark = pytest.mark.integration

KEY = NodeAuthSSHKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ5nVsiL1PYXw4Gx8qSHp6Xq4yQkBqW t")
GROUP_PATH = "/subscriptions/99999999-9999-9999-9999-999999999999/resourceGroups/000000/providers"


@pytest.fixture
def peer() -> Iterator[tuple[AzureReplay, AzureNodeDriver]]:
    with azure_replay() as (replay, credentials, options):
        driver = AzureNodeDriver(**credentials, **options)
        driver.arm.connection.max_retries = 0
        yield replay, driver


def east(driver: AzureNodeDriver):
    return next(location for location in driver.list_locations() if location.id == "eastus")


def size(driver: AzureNodeDriver, name: str = "Standard_A1"):
    return next(s for s in driver.list_sizes(east(driver)) if s.id == name)


def create(driver: AzureNodeDriver, token: str = "node-1"):
    image = driver.list_images()[0]
    return driver.create_node(
        "web", size(driver), image, east(driver), auth=KEY, idempotency_token=token
    )


def test_catalog_regions_with_countries_priced_sizes_and_images(peer):
    _, azure = peer
    assert get_driver(DriverType.COMPUTE, "azure") is AzureNodeDriver
    locations = {location.id: location for location in azure.list_locations()}
    assert {"eastus", "westeurope", "japanwest", "southeastasia"} <= set(locations)
    assert locations["westeurope"].country == "NL" and locations["japaneast"].country == "JP"
    a1 = size(azure)
    assert (a1.vcpus, a1.ram_mb) == (1, 1792)
    assert a1.price_per_hour == 0.06  # bundled: standarda1 in eastus
    images = azure.list_images()
    assert images[0].extra == {
        "publisher": "Canonical",
        "offer": "0001-com-ubuntu-server-jammy",
        "sku": "22_04-lts-gen2",
        "version": "latest",
    }


def test_vms_are_listed_across_pages_with_addresses_and_power_state(peer):
    _, azure = peer
    nodes = {node.id: node for node in azure.list_nodes()}
    assert set(nodes) == {"test-node-1", "test-node-2"}  # one per page, via nextLink
    assert nodes["test-node-1"].state is NodeState.RUNNING
    assert nodes["test-node-1"].private_ips == ("10.0.0.1",)


def test_a_vm_is_made_after_its_ip_and_nic_and_lives_its_life(peer):
    replay, azure = peer
    node = create(azure)
    base = resource_base("node-1")
    assert node.id == base and node.name == "web" and node.state is NodeState.RUNNING
    assert node.public_ips and node.private_ips
    kinds = [path.split("/providers/")[1].rsplit("/", 1)[0] for path in replay.puts]
    assert kinds == [
        "Microsoft.Network/virtualNetworks",
        "Microsoft.Network/publicIPAddresses",
        "Microsoft.Network/networkInterfaces",
        "Microsoft.Compute/virtualMachines",
    ]
    vm = replay.resources[f"{GROUP_PATH}/Microsoft.Compute/virtualMachines/{base}".lower()]
    ssh = vm["properties"]["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"]
    assert ssh == [{"path": "/home/overcast/.ssh/authorized_keys", "keyData": KEY.public_key}]
    assert azure.find_node_by_token("node-1").id == node.id

    azure.reboot_node(node)
    azure.stop_node(node)
    assert azure.get_node(node.id).state is NodeState.STOPPED  # deallocated
    azure.start_node(node)
    assert azure.get_node(node.id).state is NodeState.RUNNING
    azure.destroy_node(node)
    left = [path for path in replay.resources if base.lower() in path]
    assert left == []  # VM, NIC, public IP and OS disk are all gone
    with pytest.raises(NotFound):
        azure.get_node(node.id)
    with pytest.raises(NotFound):
        azure.destroy_node(node)


def test_a_create_repeated_after_arm_acted_makes_one_vm(peer):
    replay, azure = peer
    first = create(azure, "tok-1")
    again = create(azure, "tok-1")  # the answer was lost: the same PUTs again
    assert again.id == first.id
    vms = [p for p in replay.puts if "virtualMachines" in p]
    assert (
        len(vms) == 1 and len([n for n in azure.list_nodes() if n.extra["token"] == "tok-1"]) == 1
    )


@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        (arm_error(409, "SkuNotAvailable", "not here"), CapacityError),
        (arm_error(409, "OperationNotAllowed", "exceeds approved quota for cores"), QuotaExceeded),
        (
            (429, {"error": {"code": "TooManyRequests", "message": "slow"}}, {"Retry-After": "7"}),
            RateLimited,
        ),
        (arm_error(404, "ResourceGroupNotFound", "no group"), NotFound),
        (arm_error(400, "InvalidParameter", "bad"), InvalidRequest),
        (arm_error(500, "InternalServerError", "oops"), ProviderError),
    ],
)
def test_arm_errors_map_onto_the_tree(peer, failure, raised):
    replay, azure = peer
    replay.fail_next = failure
    with pytest.raises(raised) as caught:
        create(azure, "err")
    if raised is RateLimited:
        assert caught.value.retry_after == 7
    if raised is ProviderError:
        assert caught.value.transient


@pytest.mark.parametrize(
    ("code", "raised"),
    [("AllocationFailed", CapacityError), ("ZonalAllocationFailed", CapacityError)],
)
def test_failed_operations_map_onto_the_tree(peer, code, raised):
    replay, azure = peer
    replay.operation_error_next = code
    with pytest.raises(raised, match=code):
        create(azure, "async")


def test_wrong_credentials_and_unsupported_auth_are_clear(peer):
    replay, azure = peer
    with pytest.raises(NotSupported):
        azure.create_node("x", size(azure), azure.list_images()[0], east(azure), auth=None)
    replay.client_secret = "rotated"
    azure.arm.tokens.forget()
    with pytest.raises(AuthError):
        azure.list_nodes()
    with pytest.raises(InvalidRequest):
        AzureNodeDriver(tenant_id="t", subscription_id="s")


def test_through_the_service_an_azure_node_is_placed_runs_and_is_deleted(tmp_path):
    with azure_replay() as (replay, credentials, options):
        service = start_service(service_config(tmp_path))
        try:
            service.add_account(
                "alpha", "msft", provider="azure", credentials=credentials, **options
            )
            offers = service.call("GET", "/v1/offers?provider=azure&limit=500", key="member").body[
                "offers"
            ]
            assert offers and all(o["provider"] == "azure" for o in offers)
            node = service.create_node(
                "web", key="member", image="0001-com-ubuntu", providers=["azure"], countries=["NL"]
            )
            assert node["state"] == "running" and node["location_id"] == "westeurope"
            assert node["public_ips"] and node["private_ips"]
            service.live_a_node_s_life(node["id"])
            assert not [p for p in replay.resources if resource_base(node["id"]).lower() in p]
        finally:
            stop_service(service)
