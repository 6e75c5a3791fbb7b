"""Containers and objects through the HTTP API, on the local storage provider:
the same projects, roles, quotas, audit and delete-wins rules as nodes."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from webob import Request, Response

from tests.functional.harness import Answer, Service
from tests.helpers import MIB, block


@pytest.fixture
def store(service: Service, tmp_path: Path) -> Service:
    service.add_storage_account("alpha", "disk", root=str(tmp_path / "alpha-disk"))
    service.add_storage_account("alpha", "other-disk", root=str(tmp_path / "alpha-other"))
    service.add_storage_account("beta", "beta-disk", root=str(tmp_path / "beta-disk"))
    return service


def make(service: Service, name: str, account: str = "disk", key: str = "member") -> Answer:
    return service.call(
        "PUT", f"/v1/containers/{name}", key=key, body={"account_id": service.accounts[account]}
    )


def put(
    service: Service,
    path: str,
    data: bytes,
    key: str = "member",
    headers: dict[str, str] | None = None,
) -> Answer:
    return service.call(
        "PUT",
        f"/v1/containers/{path}",
        key=key,
        raw=data,
        headers={"Content-Type": "application/octet-stream", **(headers or {})},
    )


def get(service: Service, path: str, key: str = "member", **headers: str) -> Response:
    request = Request.blank(f"/v1/containers/{path}")
    request.headers["Authorization"] = f"Bearer {service.keys[key]}"
    request.headers.update(headers)
    return request.get_response(service.app)


def usage(service: Service, resource: str) -> int:
    return int(service.call("GET", "/v1/quota").body["quota"][resource]["used"])


def test_a_container_is_created_listed_shown_and_unique_per_project(store):
    made = make(store, "backups")
    assert made.status == 201, made.body
    assert made.body["container"]["provider"] == "local"
    assert made.headers["Location"].endswith("/v1/containers/backups")
    assert make(store, "backups").status == 409
    assert make(store, "backups", account="beta-disk", key="beta").status == 201  # their own
    listed = store.call("GET", "/v1/containers", key="member").body["containers"]
    assert [c["name"] for c in listed] == ["backups"]
    assert (
        store.call("GET", "/v1/containers/backups", key="member").body["container"]["account_id"]
        == (store.accounts["disk"])
    )
    assert usage(store, "containers") == 1


def test_bad_container_requests_are_clear_errors(store):
    assert make(store, "No_Caps").status == 400
    assert make(store, "ab").status == 400
    assert make(store, "fine", account="beta-disk").status == 404  # another project's account
    compute_only = store.call(
        "PUT", "/v1/containers/fine", key="member", body={"account_id": store.accounts["dummy"]}
    )
    assert compute_only.status == 400
    assert "serves no storage" in compute_only.error["message"]
    assert store.call("GET", "/v1/containers/fine", key="member").status == 404
    store.add_storage_account("alpha", "no-root", "local")  # its storage options lack root
    unfit = make(store, "fine", account="no-root")
    assert unfit.status == 400
    assert "storage options do not fit" in unfit.error["message"]


def test_another_projects_containers_and_objects_are_not_found(store):
    assert make(store, "theirs", account="beta-disk", key="beta").status == 201
    assert put(store, "theirs/objects/secret", b"x", key="beta").status == 201
    for method, path in (
        ("GET", "/v1/containers/theirs"),
        ("GET", "/v1/containers/theirs/objects"),
        ("GET", "/v1/containers/theirs/objects/secret"),
        ("DELETE", "/v1/containers/theirs/objects/secret"),
        ("DELETE", "/v1/containers/theirs"),
    ):
        assert store.call(method, path, key="member").status == 404, (method, path)
    assert get(store, "theirs/objects/secret", key="beta").status_int == 200


def test_objects_round_trip_with_keys_holding_slashes_spaces_and_unicode(store):
    make(store, "docs")
    data = b"".join(block(index, 256 * 1024) for index in range(5))
    key = "reports/2026/é café/summary.txt"
    quoted = "reports/2026/%C3%A9%20caf%C3%A9/summary.txt"
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    stored = put(
        store,
        f"docs/objects/{quoted}",
        data,
        headers={"Content-MD5": md5, "X-Object-Meta-Owner": "ops", "Content-Type": "text/plain"},
    )
    assert stored.status == 201, stored.body
    assert stored.body["object"]["name"] == key
    assert stored.body["object"]["size"] == len(data)
    assert stored.body["object"]["hash"] == hashlib.sha256(data).hexdigest()

    whole = get(store, f"docs/objects/{quoted}")
    assert whole.status_int == 200
    assert whole.body == data
    assert whole.headers["Content-Type"] == "text/plain"
    assert whole.headers["X-Object-Meta-Owner"] == "ops"
    assert whole.headers["Content-Length"] == str(len(data))

    part = get(store, f"docs/objects/{quoted}", Range="bytes=1000-1999")
    assert part.status_int == 206
    assert part.body == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert get(store, f"docs/objects/{quoted}", Range="bytes=-10").body == data[-10:]
    assert get(store, f"docs/objects/{quoted}", Range=f"bytes={len(data)}-").status_int == 416

    etag = whole.headers["ETag"]
    assert get(store, f"docs/objects/{quoted}", **{"If-None-Match": etag}).status_int == 304
    head = store.call("HEAD", f"/v1/containers/docs/objects/{quoted}", key="member")
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(data))


def test_listing_takes_prefix_delimiter_marker_and_limit(store):
    make(store, "tree")
    for key in ("a/1", "a/2", "b/1", "top"):
        assert put(store, f"tree/objects/{key}", key.encode()).status == 201
    rolled = store.call("GET", "/v1/containers/tree/objects?delimiter=/", key="member").body
    assert [o["name"] for o in rolled["objects"]] == ["top"]
    assert rolled["prefixes"] == ["a/", "b/"]
    inside = store.call("GET", "/v1/containers/tree/objects?prefix=a/", key="member").body
    assert [o["name"] for o in inside["objects"]] == ["a/1", "a/2"]
    first = store.call("GET", "/v1/containers/tree/objects?limit=2", key="member").body
    assert [o["name"] for o in first["objects"]] == ["a/1", "a/2"]
    rest = store.call(
        "GET", f"/v1/containers/tree/objects?marker={first['next_marker']}", key="member"
    ).body
    assert [o["name"] for o in rest["objects"]] == ["b/1", "top"]
    assert rest["next_marker"] is None


def test_a_body_that_differs_from_its_content_md5_is_refused_and_not_kept(store):
    make(store, "strict")
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    answer = put(store, "strict/objects/x", b"the bytes", headers={"Content-MD5": wrong})
    assert answer.status == 400
    assert answer.error["code"] == "bad_digest"
    assert get(store, "strict/objects/x").status_int == 404
    assert put(store, "strict/objects/x", b"y", headers={"Content-MD5": "?"}).status == 400


def test_stored_bytes_and_containers_count_in_the_project_quota(store):
    assert store.manage("project", "set-quota", "alpha", "--max-containers", "2").exit_code == 0
    assert (
        store.manage("project", "set-quota", "alpha", "--max-stored-bytes", str(MIB)).exit_code == 0
    )
    assert make(store, "one").status == 201
    assert make(store, "two").status == 201
    third = make(store, "three")
    assert third.status == 403
    assert "containers" in third.error["message"]

    assert put(store, "one/objects/half", bytes(MIB // 2)).status == 201
    assert usage(store, "stored_bytes") == MIB // 2
    over = put(store, "one/objects/more", bytes(MIB // 2 + 1))
    assert over.status == 403
    assert get(store, "one/objects/more").status_int == 404
    # Replacing an object only counts the difference.
    assert put(store, "one/objects/half", bytes(MIB)).status == 201
    assert usage(store, "stored_bytes") == MIB
    assert store.call("DELETE", "/v1/containers/one/objects/half", key="member").status == 204
    assert usage(store, "stored_bytes") == 0


def test_a_non_empty_container_is_deleted_only_recursively_in_a_worker(store):
    make(store, "full")
    for index in range(3):
        put(store, f"full/objects/item-{index}", b"x" * 10)
    refused = store.call("DELETE", "/v1/containers/full", key="member")
    assert refused.status == 409
    accepted = store.call("DELETE", "/v1/containers/full?recursive=true", key="member")
    assert accepted.status == 202, accepted.body
    # From now on it is gone for the client, and a second delete is the same operation.
    assert put(store, "full/objects/late", b"x").status == 404
    again = store.call("DELETE", "/v1/containers/full?recursive=true", key="member")
    assert again.body["operation"]["id"] == accepted.body["operation"]["id"]
    operation = store.wait_operation(accepted.body["operation"]["id"], key="member")
    assert operation["status"] == "succeeded", operation
    assert operation["resource_id"] == accepted.body["container"]["id"]
    assert store.call("GET", "/v1/containers/full", key="member").status == 404
    assert usage(store, "containers") == 0
    assert usage(store, "stored_bytes") == 0
    assert make(store, "full").status == 201  # the name is free again


def test_an_empty_container_is_deleted_at_once(store):
    make(store, "empty")
    assert store.call("DELETE", "/v1/containers/empty", key="member").status == 204
    assert store.call("GET", "/v1/containers/empty", key="member").status == 404


def test_copies_are_server_side_in_one_account_and_streamed_by_a_worker_across(store):
    make(store, "src")
    make(store, "same")
    make(store, "elsewhere", account="other-disk")
    data = block(7, 300_000)
    put(store, "src/objects/data.bin", data)

    inside = put(store, "same/objects/copy.bin", b"", headers={"X-Copy-From": "src/data.bin"})
    assert inside.status == 201, inside.body
    assert get(store, "same/objects/copy.bin").body == data

    across = put(store, "elsewhere/objects/copy.bin", b"", headers={"X-Copy-From": "src/data.bin"})
    assert across.status == 202, across.body
    operation = store.wait_operation(across.body["operation"]["id"], key="member")
    assert operation["status"] == "succeeded", operation
    assert get(store, "elsewhere/objects/copy.bin").body == data
    assert usage(store, "stored_bytes") == 3 * len(data)

    missing = put(store, "same/objects/x", b"", headers={"X-Copy-From": "src/nothing"})
    assert missing.status == 404


def test_a_provider_without_direct_urls_says_so(store):
    make(store, "plain")
    put(store, "plain/objects/x", b"x")
    answer = store.call(
        "POST", "/v1/containers/plain/objects/x/url", key="member", body={"method": "GET"}
    )
    assert answer.status == 501
    assert answer.error["code"] == "not_implemented"


def test_storage_calls_are_audited(store):
    make(store, "audited")
    put(store, "audited/objects/x", b"x")
    records = store.call("GET", "/v1/audit?limit=100", key="admin").body["records"]
    routes = [record["route"] for record in records]
    assert "container_create" in routes
    assert "object_put" in routes
