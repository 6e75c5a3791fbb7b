"""EC2 error codes map to the driver error tree (answers from a local HTTP server)."""

import pytest

from drivers.compute.ec2 import EC2NodeDriver
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


def error_body(code: str, message: str = "details") -> bytes:
    return (
        f'<?xml version="1.0"?><Response><Errors><Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error></Errors><RequestID>r</RequestID>"
        "</Response>"
    ).encode()


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (401, "AuthFailure", AuthError),
        (403, "UnauthorizedOperation", AuthError),
        (500, "InsufficientInstanceCapacity", CapacityError),
        (400, "Unsupported", CapacityError),
        (400, "InstanceLimitExceeded", QuotaExceeded),
        (400, "VcpuLimitExceeded", QuotaExceeded),
        (400, "InvalidAMIID.NotFound", NotFound),
        (400, "InvalidAMIID.Malformed", NotFound),
        (400, "InvalidInstanceID.NotFound", NotFound),
        (400, "InvalidParameterValue", InvalidRequest),
        (400, "SomethingNew", ProviderError),
    ],
)
def test_error_codes(http_server, status, code, error):
    http_server.script(Reply(status, error_body(code, "why it failed")))
    driver = EC2NodeDriver("AKID", "secret", endpoint=http_server.url, max_retries=0)
    with pytest.raises(error, match=f"{code}: why it failed"):
        driver.reboot_node(driver_node())


def driver_node():
    from drivers.compute.base import Node, NodeState

    return Node(id="i-1", name="n", state=NodeState.RUNNING, provider="ec2")


def test_throttling_is_retried_then_rate_limited(http_server):
    http_server.script(*[Reply(503, error_body("RequestLimitExceeded"))] * 3)
    driver = EC2NodeDriver("AKID", "secret", endpoint=http_server.url, max_retries=2)
    driver.connection.http._sleep = lambda seconds: None
    with pytest.raises(RateLimited):
        driver.list_nodes()
    assert len(http_server.requests) == 3


def test_throttling_once_then_success(http_server):
    http_server.script(Reply(400, error_body("Throttling")))
    driver = EC2NodeDriver("AKID", "secret", endpoint=http_server.url, max_retries=2)
    with pytest.raises(RateLimited) as raised:
        driver.list_nodes()
    assert raised.value.transient


def test_server_errors_are_transient(http_server):
    http_server.script(Reply(500, error_body("InternalError")))
    driver = EC2NodeDriver("AKID", "secret", endpoint=http_server.url, max_retries=0)
    with pytest.raises(ProviderError) as raised:
        driver.reboot_node(driver_node())
    assert raised.value.transient


def test_requests_are_signed_and_secret_free(http_server):
    http_server.script(Reply(200, b"<DescribeInstancesResponse/>"))
    EC2NodeDriver(
        "AKIDTEST", "SUPERSECRET", region="eu-west-3", endpoint=http_server.url
    ).list_nodes()
    (request,) = http_server.requests
    assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
    assert "/eu-west-3/ec2/aws4_request" in request.headers["Authorization"]
    assert b"SUPERSECRET" not in request.body
    assert "SUPERSECRET" not in str(request.headers)
