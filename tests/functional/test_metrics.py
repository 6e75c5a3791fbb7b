"""``/metrics`` during a functional run: requests by route and status,
messages by queue and outcome, provider calls by provider and method (and
their errors), nodes by state, the outbox backlog and catalog ages, all with
plausible values; only an operator key, or the separate metrics address,
gets them."""

from __future__ import annotations

from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from services.api.server import MetricsServer, listen
from tests.functional.harness import Service
from tests.helpers import wait_for
from tests.integration.deployment import free_port


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    """The sum over the samples of ``name`` that carry ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def metrics(service: Service, key: str = "operator") -> Any:
    return service.call("GET", "/metrics", key=key)


def samples_now(service: Service) -> dict:
    answer = metrics(service)
    assert answer.status == 200, answer.body
    return scrape(answer.body.decode())


def test_metrics_show_what_a_run_did(service: Service) -> None:
    # Counters are the process's: earlier tests counted too, so compare with now.
    before = samples_now(service)
    account_id = service.accounts["dummy"]
    flaky = service.add_account(
        "alpha", "flaky", faults={"reject_auth": True, "operations": ["reboot_node"]}
    )
    node = service.create_node("web", accounts=["flaky"])
    assert node["account_id"] == flaky
    service.create_node("db", accounts=["dummy"])
    rebooted = service.call("POST", f"/v1/nodes/{node['id']}/action", body={"action": "reboot"})
    assert rebooted.status == 202
    assert service.wait_operation(rebooted.body["operation"]["id"])["status"] == "failed"
    service.context.publisher.publish({"not": "a message"}, queue="worker")

    def grown(name: str, **labels: str) -> float:
        return value(samples, name, **labels) - value(before, name, **labels)

    dead = "overcast_messages_dead_lettered_total"
    samples = wait_for(
        lambda: (now := samples_now(service)) and value(now, dead) > value(before, dead) and now,
        what="the dead-lettered message counted",
    )
    request_count = "overcast_http_request_duration_seconds_count"
    assert grown(request_count, route="node_create", method="POST", status="202") == 2
    assert grown("overcast_http_request_duration_seconds_sum", route="node_create") > 0
    assert grown("overcast_messages_consumed_total", queue="scheduler") >= 2
    assert grown("overcast_messages_consumed_total", queue="worker") >= 3
    assert grown(dead, queue="worker") == 1
    provider_count = "overcast_provider_call_duration_seconds_count"
    assert grown(provider_count, provider="dummy", method="create_node") == 2
    errors = "overcast_provider_call_errors_total"
    assert grown(errors, provider="dummy", method="reboot_node", error="AuthError") == 1
    assert value(samples, "overcast_nodes", state="running") == 2
    assert value(samples, "overcast_outbox_backlog") >= 0
    for account in (account_id, flaky):
        age = value(samples, "overcast_catalog_age_seconds", account_id=account)
        assert 0 <= age < 600


def test_metrics_need_an_operator_key_or_the_metrics_address(service: Service) -> None:
    assert metrics(service, key="admin").status == 403
    assert metrics(service, key="member").status == 403
    assert service.call("GET", "/metrics", key=None).status == 401
    port = free_port()
    server = MetricsServer(service.context, listen(f"127.0.0.1:{port}"))
    server.start()
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert value(scrape(answer.text), "overcast_nodes") == 0
        assert requests.get(f"http://127.0.0.1:{port}/v1/nodes", timeout=10).status_code == 404
    finally:
        server.stop()
