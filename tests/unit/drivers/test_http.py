"""The HTTP base against a real local server: retries, error mapping, redaction."""

import logging
import threading

import pytest
import requests

from drivers.common.http import Connection, parse_retry_after, redact_headers, redact_url
from drivers.errors import (
    AuthError,
    InvalidRequest,
    NotFound,
    ProviderError,
    QuotaExceeded,
    RateLimited,
)
from tests.helpers import Reply


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def connection(http_server, sleeps):
    return Connection(
        http_server.url,
        provider="test",
        timeout=(1.0, 0.3),
        max_retries=2,
        backoff=0.01,
        sleep=sleeps.append,
    )


def test_json_success(http_server, connection):
    http_server.script(Reply(200, b'{"servers": []}'))
    assert connection.json("GET", "/v2/servers", params={"limit": 5}) == {"servers": []}
    assert http_server.requests[0].path == "/v2/servers?limit=5"


def test_empty_body_is_none(http_server, connection):
    http_server.script(Reply(204))
    assert connection.json("DELETE", "servers/1") is None


def test_xml_success(http_server, connection):
    http_server.script(Reply(200, b"<a><b>1</b></a>"))
    assert connection.xml("GET", "/").find("b").text == "1"


def test_503_is_retried_then_succeeds(http_server, connection, sleeps):
    http_server.script(Reply(503), Reply(502), Reply(200, b"{}"))
    assert connection.json("GET", "/") == {}
    assert len(http_server.requests) == 3
    assert len(sleeps) == 2 and all(0 <= s <= 0.04 for s in sleeps)


def test_503_until_retries_run_out_is_a_transient_provider_error(http_server, connection):
    http_server.script(*[Reply(503, b"busy")] * 3)
    with pytest.raises(ProviderError) as raised:
        connection.request("GET", "/")
    assert raised.value.transient and raised.value.status == 503
    assert len(http_server.requests) == 3


def test_429_honours_retry_after(http_server, connection, sleeps):
    http_server.script(Reply(429, headers={"Retry-After": "7"}), Reply(200, b"{}"))
    connection.json("GET", "/")
    assert sleeps == [7.0]


def test_429_at_the_end_is_rate_limited_with_retry_after(http_server, connection):
    http_server.script(*[Reply(429, headers={"Retry-After": "3"})] * 3)
    with pytest.raises(RateLimited) as raised:
        connection.request("GET", "/")
    assert raised.value.retry_after == 3.0


def test_post_is_not_retried_unless_marked_idempotent(http_server, connection):
    http_server.script(Reply(503), Reply(503), Reply(200, b"{}"))
    with pytest.raises(ProviderError):
        connection.request("POST", "/servers", json={"a": 1})
    assert len(http_server.requests) == 1
    assert connection.json("POST", "/servers", json={"a": 1}, idempotent=True) == {}
    assert len(http_server.requests) == 3


def test_read_timeout_is_retried_then_transient(http_server, connection):
    http_server.script(*[Reply(200, b"{}", delay=1.0)] * 3)
    with pytest.raises(ProviderError, match="timed out") as raised:
        connection.request("GET", "/slow")
    assert raised.value.transient


def test_unreachable_endpoint_is_transient():
    connection = Connection("http://127.0.0.1:9", max_retries=1, sleep=lambda _: None)
    with pytest.raises(ProviderError, match="unreachable") as raised:
        connection.request("GET", "/")
    assert raised.value.transient


def test_garbage_json_is_a_provider_error(http_server, connection):
    http_server.script(Reply(200, b"<html>oops</html>"))
    with pytest.raises(ProviderError, match="invalid JSON") as raised:
        connection.json("GET", "/")
    assert not raised.value.transient


def test_garbage_xml_is_a_provider_error(http_server, connection):
    http_server.script(Reply(200, b"{not xml"))
    with pytest.raises(ProviderError, match="invalid XML"):
        connection.xml("GET", "/")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, InvalidRequest),
        (401, AuthError),
        (403, AuthError),
        (404, NotFound),
        (409, InvalidRequest),
        (413, QuotaExceeded),
        (500, ProviderError),
        (418, ProviderError),
    ],
)
def test_status_codes_map_to_the_error_tree(http_server, connection, status, error):
    http_server.script(Reply(status, b'{"message": "nope"}'))
    with pytest.raises(error, match="nope"):
        connection.request("POST", "/")


def test_provider_error_mapper_wins(http_server, sleeps):
    def mapper(response):
        if b"NoValidHost" in response.content:
            from drivers.errors import CapacityError

            return CapacityError("no valid host")
        return None

    connection = Connection(http_server.url, error_mapper=mapper, sleep=sleeps.append)
    http_server.script(Reply(500, b"NoValidHost"), Reply(500, b"other"))
    from drivers.errors import CapacityError

    with pytest.raises(CapacityError):
        connection.request("POST", "/")
    with pytest.raises(ProviderError, match="other"):
        connection.request("POST", "/")


def test_logs_redact_credentials(http_server, connection, caplog):
    http_server.script(Reply(200, b"{}"))
    with caplog.at_level(logging.DEBUG, logger="drivers.common.http"):
        connection.request(
            "GET",
            "/?Signature=SECRET1&X-Amz-Credential=SECRET2&Action=Describe",
            headers={"X-Auth-Token": "SECRET3"},
        )
    assert "Action=Describe" in caplog.text
    assert "SECRET" not in caplog.text


def test_redaction_helpers():
    assert "pw" not in redact_url("http://user:pw@host:8080/p?password=x&a=1")
    assert redact_url("http://h/p?password=x&a=1") == "http://h/p?password=%2A%2A%2A&a=1"
    # Storage URLs: an Azure SAS, a Swift temp URL, a GCS signed URL.
    for query in ("sig=S1&sp=r", "temp_url_sig=S2&temp_url_expires=1", "X-Goog-Signature=S3"):
        assert "S1" not in redact_url(f"http://h/c/o?{query}")
        assert "S2" not in redact_url(f"http://h/c/o?{query}")
        assert "S3" not in redact_url(f"http://h/c/o?{query}")
    assert "sp=r" in redact_url("http://h/c/o?sig=S1&sp=r")
    assert redact_headers({"Authorization": "Bearer x", "Accept": "a"}) == {
        "Authorization": "***",
        "Accept": "a",
    }


def test_retry_after_parsing():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_each_thread_gets_its_own_session(connection):
    sessions = []
    threads = [
        threading.Thread(target=lambda: sessions.append(connection.session)) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(session) for session in sessions}) == 3
    assert all(isinstance(session, requests.Session) for session in sessions)
