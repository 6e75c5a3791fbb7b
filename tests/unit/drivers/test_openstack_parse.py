"""OpenStack faults and servers to the driver's errors and values."""

import json

import pytest
import requests

from drivers.compute.base import NodeState
from drivers.compute.openstack.connection import Unauthorized, map_error
from drivers.compute.openstack.parse import NODE_STATE_MAP, split_addresses, to_node
from drivers.errors import (
    AuthError,
    CapacityError,
    InvalidRequest,
    NotFound,
    ProviderError,
    QuotaExceeded,
    RateLimited,
)
from tests.helpers import Reply


def fault(kind, code, message):
    return json.dumps({kind: {"code": code, "message": message}}).encode()


@pytest.mark.parametrize(
    ("status", "body", "headers", "error"),
    [
        (
            401,
            fault("error", 401, "The request you have made requires authentication."),
            {},
            Unauthorized,
        ),
        (403, fault("forbidden", 403, "Policy doesn't allow this"), {}, AuthError),
        (403, fault("forbidden", 403, "Quota exceeded for instances"), {}, QuotaExceeded),
        (413, fault("overLimit", 413, "Quota exceeded for cores"), {}, QuotaExceeded),
        (413, fault("overLimit", 413, "Rate limited"), {"Retry-After": "9"}, RateLimited),
        (429, fault("overLimit", 429, "Too many requests"), {}, RateLimited),
        (500, fault("computeFault", 500, "No valid host was found."), {}, CapacityError),
        (404, fault("itemNotFound", 404, "Instance could not be found"), {}, NotFound),
        (400, fault("badRequest", 400, "Invalid imageRef"), {}, InvalidRequest),
        (409, fault("conflictingRequest", 409, "in task_state powering-off"), {}, InvalidRequest),
        (503, b"<html>down</html>", {}, ProviderError),
    ],
)
def test_faults_map_to_the_tree(http_server, status, body, headers, error):
    http_server.script(Reply(status, body, headers))
    mapped = map_error(requests.get(http_server.url, timeout=5))
    assert type(mapped) is error
    if error is RateLimited and headers:
        assert mapped.retry_after == 9.0
    if status >= 500 and error is ProviderError:
        assert mapped.transient


@pytest.mark.parametrize("status", sorted(NODE_STATE_MAP))
def test_every_server_status_maps(status):
    node = to_node({"id": "s1", "status": status})
    assert node.state is NODE_STATE_MAP[status]


def test_unknown_status_and_addresses():
    node = to_node(
        {
            "id": "s1",
            "status": "NEW_THING",
            "addresses": {
                "public": [{"addr": "10.0.0.9", "version": 4}],
                "net": [
                    {"addr": "93.184.216.34", "version": 4},
                    {"addr": "192.168.0.5", "version": 4},
                    {"addr": "172.24.4.7", "OS-EXT-IPS:type": "floating"},
                ],
            },
        }
    )
    assert node.state is NodeState.UNKNOWN
    assert node.public_ips == ("10.0.0.9", "93.184.216.34", "172.24.4.7")
    assert node.private_ips == ("192.168.0.5",)
    assert split_addresses({}) == ([], [])
