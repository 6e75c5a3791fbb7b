"""The Azure Blob driver against a real Azurite (Shared Key auth, SAS checked)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import pytest
import requests

from drivers import DriverType, get_driver
from drivers.errors import (
    AuthError,
    ContainerExists,
    ContainerNotEmpty,
    ContainerNotFound,
    HashMismatch,
    InvalidRequest,
    ObjectNotFound,
)
from drivers.storage.azure_blobs import AzureBlobsStorageDriver
from tests.helpers import MIB, block, blocks
from tests.integration.azurite import Azurite, azurite_server
from tests.integration.proxy import CorruptingProxy
from tests.integration.storage_contract import (
    corruption_is_caught_both_ways,
    objects_listing_metadata_copy_and_delete,
)

pytestmark = pytest.mark.integration

#: A wrong key of the right shape.
WRONG_KEY = "d3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleSBvZiBzaXh0eS1mb3VyIGJ5dGVzIGV4YWN0bHk="


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator[Azurite]:
    with azurite_server(tmp_path_factory.mktemp("azurite")) as running:
        yield running


def driver_for(azurite: Azurite, endpoint: str | None = None, **options) -> AzureBlobsStorageDriver:
    return AzureBlobsStorageDriver(
        azurite.account,
        azurite.key,
        endpoint=endpoint or azurite.url,
        part_size=4 * MIB,
        parallel_parts=4,
        **options,
    )


@pytest.fixture
def blobs(azurite) -> Iterator[AzureBlobsStorageDriver]:
    driver = driver_for(azurite)
    name = f"box-{random.randrange(10**9)}"
    driver.create_container(name)
    driver.bucket = name  # type: ignore[attr-defined]
    yield driver
    for item in driver.list_objects(name).objects:
        driver.delete_object(name, item.name)
    driver.delete_container(name)


def test_registered_and_a_wrong_key_is_an_auth_error(azurite):
    assert get_driver(DriverType.STORAGE, "azure_blobs") is AzureBlobsStorageDriver
    with pytest.raises(AuthError):
        AzureBlobsStorageDriver(azurite.account, WRONG_KEY, endpoint=azurite.url).list_containers()
    with pytest.raises(InvalidRequest):
        AzureBlobsStorageDriver(azurite.account, "not base64!", endpoint=azurite.url)


def test_containers(blobs):
    bucket = blobs.bucket
    assert bucket in [c.name for c in blobs.list_containers()]
    assert blobs.get_container(bucket).name == bucket
    with pytest.raises(ContainerExists):
        blobs.create_container(bucket)
    with pytest.raises(ContainerNotFound):
        blobs.get_container("no-such-container")
    other = blobs.create_container(f"{bucket}-two")
    blobs.upload_object_via_stream([b"x"], other.name, "one")
    with pytest.raises(ContainerNotEmpty):  # Azure would delete it with its blobs
        blobs.delete_container(other.name)
    blobs.delete_object(other.name, "one")
    blobs.delete_container(other.name)
    with pytest.raises(ContainerNotFound):
        blobs.list_objects("no-such-container")


def test_a_64_mib_stream_of_unknown_length_goes_as_blocks_and_comes_back(blobs):
    expected = hashlib.sha256()
    for chunk in blocks(64):
        expected.update(chunk)
    stored = blobs.upload_object_via_stream(
        blocks(64), blobs.bucket, "backups/big.tar", content_type="application/x-tar"
    )
    assert stored.size == 64 * MIB
    assert stored.hash_type == "md5"
    assert stored.content_type == "application/x-tar"
    got = hashlib.sha256()
    for chunk in blobs.download_object_as_stream(blobs.bucket, "backups/big.tar"):
        got.update(chunk)
    assert got.hexdigest() == expected.hexdigest()
    start, end = 7 * MIB - 100, 8 * MIB + 100
    ranged = b"".join(blobs.download_object_range(blobs.bucket, "backups/big.tar", start, end))
    assert ranged == (block(6) + block(7) + block(8))[start - 6 * MIB : end - 6 * MIB]
    assert blobs.uncommitted_blocks(blobs.bucket, "backups/big.tar") == []


def test_objects_listing_metadata_copy_and_delete(blobs, tmp_path):
    objects_listing_metadata_copy_and_delete(blobs, blobs.bucket, tmp_path)


def test_a_failed_upload_leaves_no_blocks_and_keeps_what_was_there(blobs):
    bucket = blobs.bucket

    def breaks_midway() -> Iterator[bytes]:
        yield from blocks(10)
        raise OSError("the client went away")

    with pytest.raises(OSError, match="went away"):
        blobs.upload_object_via_stream(breaks_midway(), bucket, "new")
    with pytest.raises(ObjectNotFound):
        blobs.get_object(bucket, "new")
    assert blobs.uncommitted_blocks(bucket, "new") == []

    blobs.upload_object_via_stream(blocks(6), bucket, "kept", metadata={"v": "1"})
    with pytest.raises(OSError, match="went away"):
        blobs.upload_object_via_stream(breaks_midway(), bucket, "kept")
    kept = blobs.get_object(bucket, "kept")
    assert kept.metadata == {"v": "1"}
    assert b"".join(blobs.download_object_as_stream(bucket, "kept")) == b"".join(blocks(6))
    assert blobs.uncommitted_blocks(bucket, "kept") == []

    with pytest.raises(InvalidRequest):
        blobs.upload_object_via_stream(blocks(2), bucket, "short", size=3 * MIB)
    with pytest.raises(HashMismatch):
        blobs.upload_object_via_stream([b"abc"], bucket, "md5", content_md5="0" * 32)
    with pytest.raises(ObjectNotFound):
        blobs.get_object(bucket, "md5")


@pytest.mark.parametrize("size", [3000, 12 * MIB], ids=["single-put", "blocks"])
def test_a_peer_that_corrupts_one_byte_is_caught_both_ways(azurite, blobs, size):
    with CorruptingProxy(azurite.url) as proxy:
        through = driver_for(azurite, endpoint=proxy.url)
        corruption_is_caught_both_ways(
            blobs,
            blobs.bucket,
            through,
            proxy,
            size,
            lambda: blobs.uncommitted_blocks(blobs.bucket, "bent"),
        )


def test_sas_urls_work_for_their_method_only(blobs):
    bucket = blobs.bucket
    put_url = blobs.object_url(bucket, "shared/file.txt", method="PUT", expires=300)
    answer = requests.put(
        put_url, data=b"through a SAS", headers={"x-ms-blob-type": "BlockBlob"}, timeout=30
    )
    assert answer.status_code == 201, answer.text
    get_url = blobs.object_url(bucket, "shared/file.txt", expires=300)
    assert requests.get(get_url, timeout=30).content == b"through a SAS"
    refused = requests.put(get_url, data=b"no", headers={"x-ms-blob-type": "BlockBlob"}, timeout=30)
    assert refused.status_code == 403
    tampered = get_url.replace("sp=r", "sp=rw")
    assert requests.get(tampered, timeout=30).status_code == 403
    with pytest.raises(InvalidRequest):
        blobs.object_url(bucket, "x", method="DELETE")
