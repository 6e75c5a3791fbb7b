"""The dummy provider: catalog, node lifecycle, key pairs, volumes, faults."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from drivers.compute.base import NodeAuthSSHKey, NodeState
from drivers.compute.dummy import DummyFaults, DummyNodeDriver
from drivers.errors import (
    AuthError,
    CapacityError,
    InvalidRequest,
    NotFound,
    ProviderError,
    QuotaExceeded,
    RateLimited,
)


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def driver(clock):
    driver = DummyNodeDriver(boot_delay=5.0, clock=clock)
    yield driver
    driver.close()


def catalog(driver, size_id="large", image_id="ubuntu-24.04", location_id="eu-central-1a"):
    location = next(loc for loc in driver.list_locations() if loc.id == location_id)
    size = next(size for size in driver.list_sizes(location) if size.id == size_id)
    image = next(image for image in driver.list_images(location) if image.id == image_id)
    return size, image, location


def test_catalog_looks_like_a_multi_region_cloud(driver):
    locations = driver.list_locations()
    assert len(locations) >= 6
    assert len({location.country for location in locations}) >= 4
    assert all(len(location.country) == 2 and location.zone for location in locations)
    sizes = driver.list_sizes()
    assert len(sizes) >= 10
    assert all(size.price_per_hour and size.price_per_hour > 0 for size in sizes)
    assert len(driver.list_images()) >= 3


def test_sizes_are_priced_per_region(driver):
    locations = {location.region: location for location in driver.list_locations()}
    us = {size.id: size.price_per_hour for size in driver.list_sizes(locations["us-east-1"])}
    de = {size.id: size.price_per_hour for size in driver.list_sizes(locations["eu-central-1"])}
    assert de["large"] > us["large"]
    brazil = {size.id: size for size in driver.list_sizes(locations["sa-east-1"])}
    assert brazil["gpu-1"].price_per_hour is None  # unknown is None, never 0.0


def test_images_depend_on_location(driver):
    by_region = {location.region: location for location in driver.list_locations()}
    assert "windows-2022" in {i.id for i in driver.list_images(by_region["us-east-1"])}
    assert "windows-2022" not in {i.id for i in driver.list_images(by_region["ap-northeast-1"])}


def test_node_boots_after_the_delay(driver, clock):
    node = driver.create_node("web", *catalog(driver))
    assert node.state is NodeState.PENDING
    assert node.location_id == "eu-central-1a" and node.size_id == "large"
    assert node.public_ips and node.private_ips
    clock.now += 5
    assert driver.get_node(node.id).state is NodeState.RUNNING
    assert [n.id for n in driver.list_nodes()] == [node.id]


def test_wait_until_running_returns_running_nodes(clock):
    driver = DummyNodeDriver(boot_delay=0.0, clock=clock)
    nodes = [driver.create_node(f"n{i}", *catalog(driver)) for i in range(3)]
    ready = driver.wait_until_running(list(reversed(nodes)), timeout=5, poll_interval=0.01)
    assert [node.id for node in ready] == [node.id for node in reversed(nodes)]
    assert all(node.state is NodeState.RUNNING for node in ready)


def test_wait_until_running_times_out(driver):
    node = driver.create_node("slow", *catalog(driver))
    with pytest.raises(ProviderError, match="timed out") as raised:
        driver.wait_until_running([node], timeout=0.05, poll_interval=0.01)
    assert raised.value.transient


def test_create_with_the_same_token_returns_the_same_node(driver):
    first = driver.create_node("a", *catalog(driver), idempotency_token="tok-1")
    again = driver.create_node("a", *catalog(driver), idempotency_token="tok-1")
    other = driver.create_node("a", *catalog(driver), idempotency_token="tok-2")
    assert again.id == first.id != other.id
    assert driver.created_count() == 2


def test_create_records_the_auth_kind_but_not_the_key(driver):
    node = driver.create_node("a", *catalog(driver), auth=NodeAuthSSHKey("ssh-ed25519 AAAA"))
    assert node.extra["auth"] == "NodeAuthSSHKey"
    assert "AAAA" not in str(driver.get_node(node.id))


def test_create_rejects_what_the_catalog_lacks(driver):
    size, image, location = catalog(driver)
    other_size, _, _ = catalog(driver, size_id="tiny")
    with pytest.raises(InvalidRequest):
        driver.create_node("a", size.__class__(**{**size.__dict__, "id": "nope"}), image, location)
    windows = next(i for i in driver.list_images() if i.id == "windows-2022")
    tokyo = next(loc for loc in driver.list_locations() if loc.region == "ap-northeast-1")
    with pytest.raises(NotFound, match="windows-2022"):
        driver.create_node("a", other_size, windows, tokyo)


def test_reboot_stop_start_and_destroy(driver, clock):
    node = driver.create_node("a", *catalog(driver))
    clock.now += 5
    driver.reboot_node(node)
    assert driver.get_node(node.id).state is NodeState.REBOOTING
    clock.now += 5
    driver.stop_node(node)
    assert driver.get_node(node.id).state is NodeState.STOPPED
    with pytest.raises(InvalidRequest, match="stopped"):
        driver.reboot_node(node)
    driver.start_node(node)
    assert driver.get_node(node.id).state is NodeState.PENDING
    clock.now += 5
    assert driver.get_node(node.id).state is NodeState.RUNNING
    driver.destroy_node(node)
    assert driver.list_nodes() == []
    with pytest.raises(NotFound):
        driver.get_node(node.id)
    with pytest.raises(NotFound):
        driver.destroy_node(node)


def test_key_pairs(driver):
    created = driver.create_key_pair("deploy")
    assert created.private_key and "PRIVATE KEY" in created.private_key
    assert created.fingerprint.startswith("SHA256:")
    imported = driver.import_key_pair("laptop", created.public_key)
    assert imported.fingerprint == created.fingerprint
    listed = driver.list_key_pairs()
    assert [k.name for k in listed] == ["deploy", "laptop"]
    assert all(k.private_key is None for k in listed)
    with pytest.raises(InvalidRequest, match="already exists"):
        driver.import_key_pair("laptop", created.public_key)
    with pytest.raises(InvalidRequest, match="invalid public key"):
        driver.import_key_pair("broken", "not-a-key")
    driver.delete_key_pair(imported)
    assert [k.name for k in driver.list_key_pairs()] == ["deploy"]
    with pytest.raises(NotFound):
        driver.delete_key_pair(imported)


def test_volumes_and_snapshots(driver):
    node = driver.create_node("a", *catalog(driver))
    volume = driver.create_volume(10, "data")
    assert volume.state == "available" and volume.size_gb == 10
    attached = driver.attach_volume(node, volume, "/dev/vdc")
    assert attached.attached_to == node.id and attached.extra["device"] == "/dev/vdc"
    with pytest.raises(InvalidRequest, match="attached"):
        driver.attach_volume(node, volume)
    with pytest.raises(InvalidRequest, match="still attached"):
        driver.destroy_volume(volume)
    snapshot = driver.create_volume_snapshot(volume, "nightly")
    assert snapshot.volume_id == volume.id and snapshot.size_gb == 10
    assert [s.id for s in driver.ex_list_snapshots()] == [snapshot.id]
    detached = driver.detach_volume(volume)
    assert detached.attached_to is None
    with pytest.raises(InvalidRequest, match="not attached"):
        driver.detach_volume(volume)
    assert [v.id for v in driver.list_volumes()] == [volume.id]
    driver.destroy_volume(volume)
    assert driver.list_volumes() == []
    with pytest.raises(InvalidRequest):
        driver.create_volume(0, "empty")


def test_capacity_and_quota_faults():
    driver = DummyNodeDriver(faults={"capacity_locations": ["eu-central-1a"]})
    with pytest.raises(CapacityError, match="eu-central-1a"):
        driver.create_node("a", *catalog(driver))
    assert driver.create_node("a", *catalog(driver, location_id="eu-central-1b"))
    quota = DummyNodeDriver(faults=DummyFaults(quota_exceeded=True))
    with pytest.raises(QuotaExceeded):
        quota.create_node("a", *catalog(quota))


@pytest.mark.parametrize(
    ("faults", "error", "transient"),
    [
        ({"transient_error_rate": 1.0}, ProviderError, True),
        ({"timeout_rate": 1.0}, ProviderError, True),
        ({"rate_limit_rate": 1.0, "retry_after": 2.5}, RateLimited, True),
        ({"reject_auth": True}, AuthError, False),
    ],
)
def test_injected_faults_raise_the_right_class(faults, error, transient):
    driver = DummyNodeDriver(faults=faults)
    with pytest.raises(error) as raised:
        driver.list_nodes()
    assert raised.value.transient is transient
    if error is RateLimited:
        assert raised.value.retry_after == 2.5


def test_fault_rates_are_deterministic_for_a_seed():
    def outcomes(seed):
        driver = DummyNodeDriver(faults={"transient_error_rate": 0.3, "seed": seed})
        results = []
        for _ in range(50):
            try:
                driver.list_locations()
                results.append(True)
            except ProviderError:
                results.append(False)
        return results

    assert outcomes(7) == outcomes(7)
    assert 5 < outcomes(7).count(False) < 30


def test_state_file_is_shared_between_instances(tmp_path):
    path = str(tmp_path / "dummy.sqlite")
    first, second = DummyNodeDriver(state_path=path), DummyNodeDriver(state_path=path)
    node = first.create_node("a", *catalog(first), idempotency_token="t")
    assert second.create_node("a", *catalog(second), idempotency_token="t").id == node.id
    assert [n.id for n in second.list_nodes()] == [node.id]


def test_concurrent_creates_get_distinct_nodes(driver):
    size, image, location = catalog(driver)
    with ThreadPoolExecutor(8) as pool:
        nodes = list(
            pool.map(lambda i: driver.create_node(f"n{i}", size, image, location), range(40))
        )
    assert len({node.id for node in nodes}) == 40
    assert len(driver.list_nodes()) == 40


def test_regions_and_price_factor_make_accounts_differ():
    driver = DummyNodeDriver(regions=["eu-central-1"], price_factor=2.0)
    assert [loc.id for loc in driver.list_locations()] == ["eu-central-1a", "eu-central-1b"]
    large = next(s for s in driver.list_sizes(driver.list_locations()[0]) if s.id == "large")
    assert large.price_per_hour == pytest.approx(0.1104)
    tokyo = DummyNodeDriver().list_locations()[-3]
    with pytest.raises(InvalidRequest, match="unknown location"):
        driver.create_node("a", large, driver.list_images()[0], tokyo)
    with pytest.raises(InvalidRequest, match="no dummy region"):
        DummyNodeDriver(regions=["mars-1"])


def test_faults_can_target_chosen_operations():
    driver = DummyNodeDriver(faults={"transient_error_rate": 1.0, "operations": ["create_node"]})
    assert driver.list_locations()
    with pytest.raises(ProviderError, match="create_node"):
        driver.create_node("a", *catalog(driver))


def test_a_create_that_times_out_has_still_created_the_node():
    driver = DummyNodeDriver(faults={"timeout_rate": 1.0, "operations": ["create_node"]})
    with pytest.raises(ProviderError, match="timed out") as raised:
        driver.create_node("a", *catalog(driver), idempotency_token="t")
    assert raised.value.transient
    assert len(driver.list_nodes()) == 1  # the answer was lost, not the node
    assert driver.create_node("a", *catalog(driver), idempotency_token="t").id == "dummy-1"
