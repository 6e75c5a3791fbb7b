"""The node lifecycle through the API, with the scheduler and worker running."""

from tests.helpers import wait_for


def test_create_list_reboot_stop_start_delete(service):
    answer = service.call(
        "POST",
        "/v1/nodes",
        body={"name": "web-1", "image": "ubuntu", "min_ram_mb": 4096, "exclude_countries": ["US"]},
    )
    assert answer.status == 202
    assert answer.headers["Location"].endswith(f"/v1/operations/{answer.body['operation']['id']}")
    assert answer.headers["X-Request-Id"].startswith("req-")
    node = answer.body["node"]
    assert node["state"] == "pending" and node["task"] == "scheduling"

    operation = service.wait_operation(answer.body["operation"]["id"])
    assert operation["status"] == "succeeded"
    assert [e["message"] for e in operation["events"]][:2] == [
        "web-1: placed by cheapest",
        "web-1: created at dummy/eu-west-3a/large",
    ]

    node = service.node(node["id"])
    assert node["state"] == "running" and node["task"] is None
    assert node["location_id"] == "eu-west-3a" and node["size_id"] == "large"
    assert node["price_per_hour"] == 0.0538
    assert node["public_ips"] and node["private_ips"]
    assert "ssh_private_key" not in node

    listed = service.call("GET", "/v1/nodes").body["nodes"]
    assert [n["id"] for n in listed] == [node["id"]]

    for action, state in (("reboot", "running"), ("stop", "stopped"), ("start", "running")):
        answer = service.call("POST", f"/v1/nodes/{node['id']}/action", body={"action": action})
        assert answer.status == 202, answer.body
        assert (
            answer.body["node"]["task"]
            == {"reboot": "rebooting", "stop": "stopping", "start": "starting"}[action]
        )
        assert service.wait_operation(answer.body["operation"]["id"])["status"] == "succeeded"
        assert service.node(node["id"])["state"] == state

    answer = service.call("DELETE", f"/v1/nodes/{node['id']}")
    assert answer.status == 202
    assert service.wait_operation(answer.body["operation"]["id"])["status"] == "succeeded"
    assert service.call("GET", f"/v1/nodes/{node['id']}").status == 404
    assert service.call("GET", "/v1/nodes").body["nodes"] == []
    deleted = service.call("GET", "/v1/nodes?state=deleted").body["nodes"]
    assert [n["id"] for n in deleted] == [node["id"]]


def test_a_request_nothing_matches_fails_clearly(service):
    answer = service.call(
        "POST", "/v1/nodes", body={"name": "huge", "image": "ubuntu", "min_ram_mb": 10_000_000}
    )
    operation = service.wait_operation(answer.body["operation"]["id"])
    assert operation["status"] == "failed"
    assert "no offer matches" in operation["error"] and "min_ram_mb=10000000" in operation["error"]
    node = service.node(answer.body["node"]["id"])
    assert node["state"] == "error" and "no offer matches" in node["error"]


def test_a_second_task_while_one_runs_is_409(service):
    service.add_account("alpha", "slow", boot_delay=2.0)
    node = service.create_node("slow-1", accounts=["slow"])
    assert (
        service.call("POST", f"/v1/nodes/{node['id']}/action", body={"action": "reboot"}).status
        == 202
    )
    conflict = service.call("POST", f"/v1/nodes/{node['id']}/action", body={"action": "stop"})
    assert conflict.status == 409
    assert conflict.error["code"] == "conflict" and "rebooting" in conflict.error["message"]


def test_delete_wins_over_a_running_task(service):
    service.add_account("alpha", "slow", boot_delay=2.0)
    node = service.create_node("slow-1", accounts=["slow"])
    reboot = service.call("POST", f"/v1/nodes/{node['id']}/action", body={"action": "reboot"})
    assert reboot.status == 202
    deletion = service.call("DELETE", f"/v1/nodes/{node['id']}")
    assert deletion.status == 202, deletion.body
    assert service.wait_operation(deletion.body["operation"]["id"])["status"] == "succeeded"
    assert service.operation(reboot.body["operation"]["id"])["status"] == "failed"
    again = service.call("DELETE", f"/v1/nodes/{node['id']}")
    assert again.status == 404


def test_an_action_the_state_does_not_allow_is_409(service):
    node = service.create_node("n1")
    answer = service.call("POST", f"/v1/nodes/{node['id']}/action", body={"action": "start"})
    assert answer.status == 409 and "running" in answer.error["message"]


def test_deleting_a_failed_node_works(service):
    answer = service.call("POST", "/v1/nodes", body={"name": "x", "image": "no-such-image"})
    service.wait_operation(answer.body["operation"]["id"])
    node_id = answer.body["node"]["id"]
    deletion = service.call("DELETE", f"/v1/nodes/{node_id}")
    assert deletion.status == 202
    assert service.wait_operation(deletion.body["operation"]["id"])["status"] == "succeeded"


def test_services_register_and_heartbeat(service):
    services = wait_for(
        lambda: service.call("GET", "/v1/services", key="operator").body["services"],
        what="services",
    )
    assert {s["kind"] for s in services} >= {"scheduler", "worker"}
    assert all(s["alive"] for s in services)


def test_catalog_endpoints(service):
    locations = service.call("GET", "/v1/locations?country=de").body["locations"]
    assert {loc["id"] for loc in locations} == {"eu-central-1a", "eu-central-1b"}
    sizes = service.call("GET", "/v1/sizes?min_ram_mb=32768").body["sizes"]
    assert {s["size_id"] for s in sizes} == {"4xlarge", "gpu-1"}
    images = service.call("GET", "/v1/images?name=windows").body["images"]
    assert {i["location_id"] for i in images} == {
        "us-east-1a",
        "us-east-1b",
        "eu-central-1a",
        "eu-central-1b",
    }
    offers = service.call("GET", "/v1/offers?min_ram_mb=4096&exclude_country=US&limit=2")
    assert [(o["location_id"], o["size_id"]) for o in offers.body["offers"]] == [
        ("eu-west-3a", "large"),
        ("eu-central-1a", "large"),
    ]
    unknown_last = service.call("GET", "/v1/offers?min_gpus=1&limit=100").body["offers"]
    assert unknown_last[-1]["price_per_hour"] is None and not unknown_last[-1]["price_known"]


def test_health_and_openapi_need_no_key(service):
    assert service.call("GET", "/healthz", key=None).body == {"status": "ok"}
    document = service.call("GET", "/v1/openapi.json", key=None).body
    assert document["openapi"].startswith("3.")
    schema = document["components"]["schemas"]["NodeCreate"]
    assert schema["required"] == ["name", "image"]
