"""The Swift driver against a real OpenStack Swift (Debian's packages: proxy
with tempauth, tempurl and SLO; account, container and object servers)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import pytest
import requests

from drivers import DriverType, account_driver, get_driver
from drivers.errors import (
    AuthError,
    ContainerExists,
    ContainerNotEmpty,
    ContainerNotFound,
    HashMismatch,
    InvalidRequest,
    ObjectNotFound,
)
from drivers.storage.swift import SwiftStorageDriver
from tests.helpers import MIB, block, blocks
from tests.integration.proxy import CorruptingProxy
from tests.integration.storage_contract import (
    corruption_is_caught_both_ways,
    objects_listing_metadata_copy_and_delete,
)
from tests.integration.swift import Swift, swift_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def swift(tmp_path_factory) -> Iterator[Swift]:
    with swift_server(tmp_path_factory.mktemp("swift")) as running:
        yield running


def driver_for(swift: Swift, endpoint: str | None = None, **options) -> SwiftStorageDriver:
    return SwiftStorageDriver(
        swift.user,
        swift.key,
        auth_url=swift.auth_url,
        auth_version="1.0",
        endpoint=endpoint,
        part_size=4 * MIB,
        **options,
    )


@pytest.fixture
def store(swift) -> Iterator[SwiftStorageDriver]:
    driver = driver_for(swift)
    name = f"box-{random.randrange(10**9)}"
    driver.create_container(name)
    driver.bucket = name  # type: ignore[attr-defined]
    yield driver
    for item in driver.list_objects(name).objects:
        driver.delete_object(name, item.name)
    driver.delete_container(name)


def test_registered_for_openstack_accounts_and_a_wrong_key_is_an_auth_error(swift):
    assert get_driver(DriverType.STORAGE, "swift") is SwiftStorageDriver
    assert account_driver("openstack", DriverType.STORAGE) == "swift"
    wrong = SwiftStorageDriver(swift.user, "wrong", auth_url=swift.auth_url, auth_version="1.0")
    with pytest.raises(AuthError):
        wrong.list_containers()


def test_containers(store):
    bucket = store.bucket
    assert bucket in [c.name for c in store.list_containers()]
    assert store.get_container(bucket).name == bucket
    with pytest.raises(ContainerExists):
        store.create_container(bucket)
    with pytest.raises(ContainerNotFound):
        store.get_container("no-such-container")
    other = store.create_container(f"{bucket}-two")
    store.upload_object_via_stream([b"x"], other.name, "one")
    with pytest.raises(ContainerNotEmpty):
        store.delete_container(other.name)
    store.delete_object(other.name, "one")
    store.delete_container(other.name)
    with pytest.raises(ContainerNotFound):
        store.list_objects("no-such-container")


def test_a_64_mib_stream_of_unknown_length_is_a_static_large_object(store):
    expected = hashlib.sha256()
    for chunk in blocks(64):
        expected.update(chunk)
    stored = store.upload_object_via_stream(
        blocks(64), store.bucket, "backups/big.tar", content_type="application/x-tar"
    )
    assert stored.size == 64 * MIB
    assert stored.hash_type == "swift-slo"
    assert len(store.pending_segments(store.bucket)) == 16  # 4 MiB segments
    got = hashlib.sha256()
    for chunk in store.download_object_as_stream(store.bucket, "backups/big.tar"):
        got.update(chunk)
    assert got.hexdigest() == expected.hexdigest()
    start, end = 7 * MIB - 100, 8 * MIB + 100
    ranged = b"".join(store.download_object_range(store.bucket, "backups/big.tar", start, end))
    assert ranged == (block(6) + block(7) + block(8))[start - 6 * MIB : end - 6 * MIB]
    store.delete_object(store.bucket, "backups/big.tar")  # with its segments
    assert store.pending_segments(store.bucket) == []


def test_objects_listing_metadata_copy_and_delete(store, tmp_path):
    objects_listing_metadata_copy_and_delete(store, store.bucket, tmp_path)


def test_a_failed_upload_leaves_no_object_and_no_segments(store):
    def breaks_midway() -> Iterator[bytes]:
        yield from blocks(10)
        raise OSError("the client went away")

    with pytest.raises(OSError, match="went away"):
        store.upload_object_via_stream(breaks_midway(), store.bucket, "new")
    with pytest.raises(ObjectNotFound):
        store.get_object(store.bucket, "new")
    assert store.pending_segments(store.bucket) == []
    with pytest.raises(InvalidRequest):
        store.upload_object_via_stream(blocks(5), store.bucket, "short", size=6 * MIB)
    assert store.pending_segments(store.bucket) == []
    with pytest.raises(HashMismatch):
        store.upload_object_via_stream([b"abc"], store.bucket, "md5", content_md5="0" * 32)


@pytest.mark.parametrize("size", [3000, 12 * MIB], ids=["single-put", "large-object"])
def test_a_peer_that_corrupts_one_byte_is_caught_both_ways(swift, store, size):
    with CorruptingProxy(swift.url) as proxy:
        account_path = swift.storage_url.removeprefix(swift.url)
        through = driver_for(swift, endpoint=proxy.url + account_path)
        corruption_is_caught_both_ways(
            store,
            store.bucket,
            through,
            proxy,
            size,
            lambda: store.pending_segments(store.bucket),
        )


def test_temp_urls_work_for_their_method_only(store):
    bucket = store.bucket
    store.set_temp_url_key("overcast-temp-url-key")
    put_url = store.object_url(bucket, "shared/file.txt", method="PUT", expires=300)
    assert requests.put(put_url, data=b"through a temp URL", timeout=30).status_code == 201
    get_url = store.object_url(bucket, "shared/file.txt", expires=300)
    assert requests.get(get_url, timeout=30).content == b"through a temp URL"
    assert requests.put(get_url, data=b"no", timeout=30).status_code == 401
    tampered = get_url.replace("temp_url_expires=", "temp_url_expires=1")
    assert requests.get(tampered, timeout=30).status_code == 401
