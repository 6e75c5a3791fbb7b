"""The Cloud Storage driver against gcp-storage-emulator, behind a token
endpoint that verifies each JWT's signature and a proxy that lets only live
tokens through."""

from __future__ import annotations

import datetime
import hashlib
import random
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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
from drivers.storage.gcs import GCSStorageDriver
from tests.helpers import MIB, block, blocks
from tests.integration.gcs import Gcs, gcs_server
from tests.integration.proxy import CorruptingProxy
from tests.integration.storage_contract import (
    corruption_is_caught_both_ways,
    objects_listing_metadata_copy_and_delete,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gcs(tmp_path_factory) -> Iterator[Gcs]:
    with gcs_server(tmp_path_factory.mktemp("gcs")) as running:
        yield running


def driver_for(gcs: Gcs, endpoint: str | None = None) -> GCSStorageDriver:
    return GCSStorageDriver(
        **gcs.credentials, project="overcast-ci", endpoint=endpoint or gcs.url, part_size=4 * MIB
    )


@pytest.fixture
def store(gcs) -> Iterator[GCSStorageDriver]:
    driver = driver_for(gcs)
    name = f"box-{random.randrange(10**9)}"
    driver.create_container(name)
    driver.bucket = name  # type: ignore[attr-defined]
    yield driver
    for item in driver.list_objects(name).objects:
        driver.delete_object(name, item.name)
    try:
        driver.delete_container(name)
    except ContainerNotEmpty:
        # gcp-storage-emulator has no cancel for resumable sessions (it answers
        # 501 to the DELETE that cancels one at GCS) and keeps a bucket that has
        # any; no object is left, which is what the tests check.
        assert driver.list_objects(name).objects == ()


def test_a_signed_jwt_gets_a_token_that_is_reused_and_a_stranger_gets_none(gcs):
    assert get_driver(DriverType.STORAGE, "gcs") is GCSStorageDriver
    driver = driver_for(gcs)
    driver.list_containers()
    driver.list_containers()
    assert driver.tokens.exchanges == 1
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    forged = GCSStorageDriver(
        gcs.credentials["client_email"],
        stranger.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        token_uri=gcs.credentials["token_uri"],
        project="overcast-ci",
        endpoint=gcs.url,
    )
    refused = gcs.tokens.refused
    with pytest.raises(AuthError):
        forged.list_containers()
    assert gcs.tokens.refused == refused + 1
    with pytest.raises(InvalidRequest):
        GCSStorageDriver("x@y", "not a key", endpoint=gcs.url)


def test_an_expired_token_is_renewed_once(gcs):
    driver = driver_for(gcs)
    driver.list_containers()
    gcs.tokens.issued.clear()  # the service forgets every token: the next call gets a 401
    driver.list_containers()
    assert driver.tokens.exchanges == 2


def test_containers(store):
    bucket = store.bucket
    assert bucket in [c.name for c in store.list_containers()]
    assert store.get_container(bucket).name == bucket
    with pytest.raises(ContainerExists):
        store.create_container(bucket)
    with pytest.raises(ContainerNotFound):
        store.get_container("no-such-bucket-here")
    other = store.create_container(f"{bucket}-eu", location="europe-west3")
    store.upload_object_via_stream([b"x"], other.name, "one")
    with pytest.raises(ContainerNotEmpty):
        store.delete_container(other.name)
    store.delete_object(other.name, "one")
    store.delete_container(other.name)
    with pytest.raises(ContainerNotFound):
        store.list_objects("no-such-bucket-here")


def test_a_64_mib_stream_of_unknown_length_is_resumable_and_comes_back(store):
    expected = hashlib.sha256()
    for chunk in blocks(64):
        expected.update(chunk)
    stored = store.upload_object_via_stream(
        blocks(64), store.bucket, "backups/big.tar", content_type="application/x-tar"
    )
    assert stored.size == 64 * MIB
    assert stored.hash_type == "md5"
    got = hashlib.sha256()
    for chunk in store.download_object_as_stream(store.bucket, "backups/big.tar"):
        got.update(chunk)
    assert got.hexdigest() == expected.hexdigest()
    start, end = 7 * MIB - 100, 8 * MIB + 100
    ranged = b"".join(store.download_object_range(store.bucket, "backups/big.tar", start, end))
    assert ranged == (block(6) + block(7) + block(8))[start - 6 * MIB : end - 6 * MIB]
    # A stream ending on a part boundary, and one part and a bit.
    assert store.upload_object_via_stream(blocks(8), store.bucket, "even").size == 8 * MIB
    odd = [*blocks(4), b"tail"]
    assert store.upload_object_via_stream(odd, store.bucket, "odd").size == 4 * MIB + 4


def test_objects_listing_metadata_copy_and_delete(store, tmp_path):
    objects_listing_metadata_copy_and_delete(store, store.bucket, tmp_path)


def test_a_failed_upload_leaves_no_object(store):
    def breaks_midway() -> Iterator[bytes]:
        yield from blocks(10)
        raise OSError("the client went away")

    with pytest.raises(OSError, match="went away"):
        store.upload_object_via_stream(breaks_midway(), store.bucket, "new")
    with pytest.raises(ObjectNotFound):
        store.get_object(store.bucket, "new")
    with pytest.raises(InvalidRequest):
        store.upload_object_via_stream(blocks(5), store.bucket, "short", size=6 * MIB)
    with pytest.raises(ObjectNotFound):
        store.get_object(store.bucket, "short")
    with pytest.raises(HashMismatch):
        store.upload_object_via_stream([b"abc"], store.bucket, "md5", content_md5="0" * 32)


@pytest.mark.parametrize("size", [3000, 12 * MIB], ids=["single-put", "resumable"])
def test_a_peer_that_corrupts_one_byte_is_caught_both_ways(gcs, store, size):
    with CorruptingProxy(gcs.url) as proxy:
        through = driver_for(gcs, endpoint=proxy.url)
        corruption_is_caught_both_ways(store, store.bucket, through, proxy, size)


def test_signed_urls_carry_a_v4_rsa_signature_over_the_documented_string(gcs, store):
    """The emulator does not check signed URLs: the signature is checked here,
    against the GOOG4-RSA-SHA256 string to sign built from the URL itself."""
    url = store.object_url(store.bucket, "shared/file.txt", method="PUT", expires=600)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    signature = bytes.fromhex(query.pop("X-Goog-Signature"))
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-Expires"] == "600"
    stamp = query["X-Goog-Date"]
    assert abs(
        datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        - datetime.datetime.now(datetime.UTC)
    ) < datetime.timedelta(minutes=5)
    canonical_query = parts.query.split("&X-Goog-Signature=")[0]
    canonical_request = "\n".join(
        ["PUT", parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            stamp,
            query["X-Goog-Credential"].split("/", 1)[1],
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    gcs.private_key.public_key().verify(
        signature, to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert parts.path == f"/{store.bucket}/shared/file.txt"
    with pytest.raises(InvalidRequest):
        store.object_url(store.bucket, "x", method="DELETE")
