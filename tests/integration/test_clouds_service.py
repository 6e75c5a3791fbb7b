"""Three more clouds in one project: a libvirt host, Compute Engine and Azure
accounts side by side, ranked together by ``overcast offer list``, and a
node placed on each that runs and is deleted cleanly."""

from __future__ import annotations

import json
from contextlib import ExitStack

import pytest
from click.testing import CliRunner

from services.cli.client import main
from tests.functional.harness import cli_environment, service_config, start_service, stop_service
from tests.helpers import need, wait_for
from tests.integration.azure_replay import azure_replay
from tests.integration.gce_replay import gce_replay

pytestmark = pytest.mark.integration

try:
    import libvirt
except ImportError:
    libvirt = None


def test_libvirt_gce_and_azure_accounts_rank_together_and_each_runs_a_node(tmp_path):
    need(libvirt is not None, "libvirt-python (apt-get install libvirt-dev pkg-config)")
    connection = libvirt.open("test:///default")  # keeps the test hypervisor's state
    pool = connection.storagePoolLookupByName("default-pool")
    if "debian-12.img" not in pool.listVolumes():
        pool.createXML("<volume><name>debian-12.img</name><capacity unit='G'>2</capacity></volume>")
    with ExitStack() as stack:
        _, azure_credentials, azure_options = stack.enter_context(azure_replay())
        _, gce_endpoint, gce_credentials = stack.enter_context(gce_replay())
        service = start_service(service_config(tmp_path))
        stack.callback(stop_service, service)
        # One account per way in: the test helper, overcast-manage, the API.
        service.add_account(
            "alpha", "virt", provider="libvirt", uri="test:///default", country="de"
        )
        added = service.manage(
            "account", "add", "alpha", "msft", "azure",
            "--credentials", json.dumps(azure_credentials),
            "--options", json.dumps(azure_options),
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        made = service.call(
            "POST",
            "/v1/accounts",
            key="admin",
            body={
                "name": "google",
                "provider": "gce",
                "credentials": gce_credentials,
                "options": {"endpoint": gce_endpoint, "poll_interval": 0.01},
            },
        )
        assert made.status == 201, made.body
        for account_id in (added.output.strip(), made.body["account"]["id"]):
            wait_for(lambda account_id=account_id: service.synced(account_id), what="catalog")
        env = stack.enter_context(cli_environment(service))
        wait_for(lambda: CliRunner().invoke(main, ["offer", "list"], env=env).exit_code == 0)
        listed = CliRunner().invoke(
            main,
            [
                "--json",
                "offer",
                "list",
                "--min-ram",
                "4096",
                "--exclude-country",
                "US",
                "--limit",
                "500",
            ],
            env=env,
        )
        assert listed.exit_code == 0, listed.output
        offers = json.loads(listed.output)["offers"]
        assert {o["provider"] for o in offers} == {"libvirt", "gce", "azure"}
        assert all(o["country"] != "US" and o["ram_mb"] >= 4096 for o in offers)
        priced = [o["price_per_hour"] for o in offers if o["price_per_hour"] is not None]
        assert priced == sorted(priced) and {
            o["provider"] for o in offers if o["price_per_hour"]
        } == {"gce", "azure"}  # libvirt's flavors have no price unless overridden

        for provider, image in (("libvirt", "debian"), ("gce", "debian"), ("azure", "0001")):
            node = service.create_node(
                f"on-{provider}", key="member", image=image, providers=[provider]
            )
            assert node["state"] == "running" and node["provider"] == provider, node
            service.live_a_node_s_life(node["id"])
            assert service.call("GET", f"/v1/nodes/{node['id']}", key="member").status == 404
