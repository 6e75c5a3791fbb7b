"""Generated requests against /v1/openapi.json (schemathesis): never a 5xx, and
every answer matches the document. Run with a valid admin key.

Driven through schemathesis's programmatic API (its pytest plugin does not
support pytest 9): one hypothesis run per operation of the document.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.api.wsgi import ROUTES
from tests.functional.harness import service_config, start_service, stop_service
from tests.helpers import destroy_balancers

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 80  # x 45 operations = 3,600 cases


@pytest.fixture
def running(tmp_path):
    service = start_service(service_config(tmp_path))
    service.add_account("alpha", "dummy")
    service.add_storage_account("alpha", "disk", root=str(tmp_path / "disk"))
    answer = service.call(
        "PUT", "/v1/containers/fuzz", body={"account_id": service.accounts["disk"]}
    )
    assert answer.status == 201, answer.body
    service.add_balancer_account("alpha", "edge", state_dir=str(tmp_path / "haproxy"))
    yield service
    stop_service(service)
    destroy_balancers(tmp_path / "haproxy")


def fuzzer(operation, headers: dict[str, str], counts: dict[str, int]):
    """A hypothesis test of one operation, counting the cases it ran."""
    counts[operation.label] = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)
        counts[operation.label] += 1

    return fuzz


def test_generated_requests_never_break_the_api(running):
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", running.app)
    headers = {"Authorization": f"Bearer {running.keys['admin']}"}
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        fuzzer(result.ok(), headers, counts)()
    print(counts)
    assert len(counts) == len(ROUTES) - 1, counts  # all but the document itself
    assert sum(counts.values()) >= 2000, counts
