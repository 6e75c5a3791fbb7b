"""The GCE driver against a stateful replay of Compute Engine's recorded
responses, behind a token endpoint that verifies each JWT's signature."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers import DriverType, get_driver
from drivers.compute.base import NodeAuthSSHKey, NodeState
from drivers.compute.gce import GCENodeDriver
from drivers.compute.gce.driver import instance_name, token_label
from drivers.errors import (
    AuthError,
    CapacityError,
    InvalidRequest,
    NotFound,
    ProviderError,
    QuotaExceeded,
    RateLimited,
)
from tests.functional.harness import service_config, start_service, stop_service
from tests.integration.gce_replay import GceReplay, error_body, gce_replay

pytestmark = pytest.mark.integration

KEY = NodeAuthSSHKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ5nVsiL1PYXw4Gx8qSHp6Xq4yQkBqW t")


@pytest.fixture
def peer() -> Iterator[tuple[GceReplay, GCENodeDriver]]:
    with gce_replay() as (replay, endpoint, credentials):
        driver = GCENodeDriver(
            **credentials, endpoint=endpoint, poll_interval=0.01, timeout=(2.0, 10.0)
        )
        driver.api.connection.max_retries = 1
        driver.api.connection.backoff = 0.01
        yield replay, driver


def zone(driver: GCENodeDriver, name: str = "us-central1-a"):
    return next(location for location in driver.list_locations() if location.id == name)


def size(driver: GCENodeDriver, name: str = "n1-standard-1", where: str = "us-central1-a"):
    return next(s for s in driver.list_sizes(zone(driver, where)) if s.id == name)


def image(driver: GCENodeDriver):
    return next(i for i in driver.list_images() if i.id.startswith("debian-cloud/"))


def test_catalog_zones_with_countries_machine_types_with_prices_and_images(peer):
    replay, gce = peer
    assert get_driver(DriverType.COMPUTE, "gce") is GCENodeDriver
    locations = {location.id: location for location in gce.list_locations()}
    # zones.json holds six zones, served two per page: all are found.
    assert set(locations) == {
        "asia-east1-a",
        "europe-west1-a",
        "europe-west1-b",
        "us-central1-a",
        "us-central1-b",
        "us-central2-a",
    }
    assert locations["europe-west1-a"].country == "BE"
    assert (
        locations["asia-east1-a"].country == "TW"
        and locations["us-central1-a"].region == "us-central1"
    )
    n1 = size(gce)
    assert (n1.vcpus, n1.ram_mb) == (1, 3840)
    # 1 vCPU x $0.031611 + 3.75 GB x $0.004237 in us-central1 (the bundled rates).
    assert n1.price_per_hour == pytest.approx(0.0475, abs=1e-4)
    images = gce.list_images()
    assert {i.id.split("/")[0] for i in images} == {"debian-cloud", "ubuntu-os-cloud"}
    assert all("deprecated" not in (i.extra.get("description") or "") for i in images)
    assert replay.tokens.issued  # every call carried a token from the endpoint


def test_instances_are_listed_across_pages(peer):
    replay, gce = peer
    nodes = gce.list_nodes()
    # aggregated_instances.json's eight instances, served two per page.
    assert len(nodes) == len(replay.instances) == 8
    running = next(
        n for n in nodes if n.id == "europe-west1-a/libcloud-demo-europe-multiple-nodes-000"
    )
    assert running.state is NodeState.RUNNING
    assert running.public_ips == ("192.158.28.252",) and running.private_ips == ("10.240.122.85",)


def test_a_node_is_created_with_its_key_and_token_and_lives_its_life(peer):
    replay, gce = peer
    node = gce.create_node(
        "Web 1", size(gce), image(gce), zone(gce), auth=KEY, idempotency_token="node-abc"
    )
    assert node.id == f"us-central1-a/{instance_name('Web 1', 'node-abc')}"
    assert node.state is NodeState.PENDING and node.public_ips and node.private_ips
    assert gce.get_node(node.id).state is NodeState.RUNNING  # STAGING, then RUNNING
    [sent] = replay.inserts
    assert sent["metadata"]["items"] == [{"key": "ssh-keys", "value": f"overcast:{KEY.public_key}"}]
    assert sent["labels"] == {"overcast-token": "node-abc"}
    assert sent["disks"][0]["initializeParams"]["sourceImage"].startswith(
        "projects/debian-cloud/global/images/"
    )
    assert gce.find_node_by_token("node-abc").id == node.id
    gce.reboot_node(node)
    gce.stop_node(node)
    assert gce.get_node(node.id).state is NodeState.STOPPED
    gce.start_node(node)
    assert gce.get_node(node.id).state is NodeState.RUNNING
    gce.destroy_node(node)
    with pytest.raises(NotFound):
        gce.get_node(node.id)
    with pytest.raises(NotFound):
        gce.destroy_node(node)


def test_a_create_repeated_after_gce_acted_makes_one_instance(peer):
    replay, gce = peer
    first = gce.create_node(
        "once", size(gce), image(gce), zone(gce), auth=KEY, idempotency_token="tok-1"
    )
    # The caller's answer was lost after GCE acted: the same request again.
    again = gce.create_node(
        "once", size(gce), image(gce), zone(gce), auth=KEY, idempotency_token="tok-1"
    )
    assert again.id == first.id and len(replay.inserts) == 1
    assert [n.id for n in gce.list_nodes() if n.extra["token"] == "tok-1"] == [first.id]
    assert token_label("Not A Label!") != "Not A Label!" and len(token_label("x" * 100)) <= 63


@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        ((429, error_body(429, "rateLimitExceeded", "slow down")), RateLimited),
        ((403, error_body(403, "quotaExceeded", "CPUS quota")), QuotaExceeded),
        # A refusal renews the token once; refused again, it stands.
        ([(403, error_body(403, "forbidden", "no permission"))] * 2, AuthError),
        ((400, error_body(400, "invalid", "bad field")), InvalidRequest),
        ((503, error_body(503, "backendError", "try later")), ProviderError),
    ],
)
def test_insert_errors_map_onto_the_tree(peer, failure, raised):
    replay, gce = peer
    gce.api.connection.max_retries = 0  # the first answer is the one mapped
    replay.failures = failure if isinstance(failure, list) else [failure]
    with pytest.raises(raised) as caught:
        gce.create_node("x", size(gce), image(gce), zone(gce), auth=KEY, idempotency_token="e")
    if raised is ProviderError:
        assert caught.value.transient
    assert replay.inserts == []


@pytest.mark.parametrize(
    ("code", "raised"),
    [("ZONE_RESOURCE_POOL_EXHAUSTED", CapacityError), ("QUOTA_EXCEEDED", QuotaExceeded)],
)
def test_operation_errors_map_onto_the_tree(peer, code, raised):
    replay, gce = peer
    replay.operation_error_next = code
    with pytest.raises(raised, match=code):
        gce.create_node("x", size(gce), image(gce), zone(gce), auth=KEY, idempotency_token="op")


def test_a_refused_token_and_a_bad_key_are_auth_errors(peer):
    replay, gce = peer
    gce.list_locations()
    replay.tokens.issued.clear()  # every token revoked: renewed once, then it works
    assert gce.list_locations()
    gce.api.tokens.account = gce.api.tokens.account.__class__(
        "someone-else@example.com",
        gce.api.tokens.account.private_key,
        gce.api.tokens.account.token_uri,
    )
    gce.api.tokens.forget()
    with pytest.raises(AuthError):
        gce.list_nodes()
    with pytest.raises(NotFound):
        gce.get_node("no-slash")


def test_through_the_service_a_gce_node_is_placed_runs_and_is_deleted(tmp_path):
    with gce_replay() as (replay, endpoint, credentials):
        service = start_service(service_config(tmp_path))
        try:
            service.add_account(
                "alpha", "google", provider="gce", credentials=credentials,
                endpoint=endpoint, poll_interval=0.01,
            )  # fmt: skip
            offers = service.call(
                "GET", "/v1/offers?min_ram_mb=4096&exclude_country=US&limit=500", key="member"
            ).body["offers"]
            gce_offers = [o for o in offers if o["provider"] == "gce"]
            assert gce_offers and all(o["country"] != "US" for o in gce_offers)
            assert any(o["price_per_hour"] for o in gce_offers)  # priced where the data knows
            node = service.create_node(
                "web", key="member", image="debian", providers=["gce"], countries=["BE"]
            )
            assert node["state"] == "running" and node["provider"] == "gce"
            assert node["location_id"].startswith("europe-west1-") and node["public_ips"]
            assert len(replay.inserts) == 1
            service.live_a_node_s_life(node["id"])
            assert not [i for i in replay.instances.values() if i["name"].startswith("web-")]
        finally:
            stop_service(service)
