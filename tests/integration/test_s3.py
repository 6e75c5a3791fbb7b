"""The S3 storage driver against moto_server with IAM authentication on."""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from collections.abc import Iterator

import pytest

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
from drivers.storage.s3 import S3StorageDriver, part_size_at
from tests.helpers import MIB, block, blocks
from tests.integration.moto import Moto, pending_uploads
from tests.integration.proxy import CorruptingProxy

pytestmark = pytest.mark.integration


def driver_for(moto: Moto, endpoint: str | None = None, **options) -> S3StorageDriver:
    return S3StorageDriver(
        moto.access_key,
        moto.secret_key,
        endpoint=endpoint or moto.url,
        part_size=5 * MIB,
        parallel_parts=4,
        **options,
    )


@pytest.fixture
def s3(moto) -> Iterator[S3StorageDriver]:
    driver = driver_for(moto)
    name = f"box-{random.randrange(10**9)}"
    driver.create_container(name)
    driver.bucket = name  # type: ignore[attr-defined]
    yield driver
    listing = driver.list_objects(name)
    for item in listing.objects:
        driver.delete_object(name, item.name)
    driver.delete_container(name)


def test_registered_and_a_wrong_secret_is_an_auth_error(moto):
    assert get_driver(DriverType.STORAGE, "s3") is S3StorageDriver
    wrong = S3StorageDriver(moto.access_key, "not-the-secret", endpoint=moto.url)
    with pytest.raises(AuthError):
        wrong.list_containers()


def test_containers(s3):
    bucket = s3.bucket
    assert bucket in [c.name for c in s3.list_containers()]
    assert s3.get_container(bucket).name == bucket
    with pytest.raises(ContainerExists):
        s3.create_container(bucket)
    with pytest.raises(ContainerNotFound):
        s3.get_container("no-such-bucket-here")
    paris = s3.create_container(f"{bucket}-paris", location="eu-west-3")
    assert paris.location == "eu-west-3"
    assert s3.get_container(paris.name).location == "eu-west-3"
    s3.upload_object_via_stream([b"x"], paris.name, "one")
    with pytest.raises(ContainerNotEmpty):
        s3.delete_container(paris.name)
    s3.delete_object(paris.name, "one")
    s3.delete_container(paris.name)
    with pytest.raises(ContainerNotFound):
        s3.list_objects("no-such-bucket-here")


def test_a_64_mib_stream_of_unknown_length_goes_multipart_and_comes_back(s3):
    expected = hashlib.sha256()
    for chunk in blocks(64):
        expected.update(chunk)
    tracemalloc.start()
    try:
        stored = s3.upload_object_via_stream(
            blocks(64), s3.bucket, "backups/big.tar", content_type="application/x-tar"
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == 64 * MIB and stored.hash_type == "s3-multipart"
    assert stored.hash.endswith("-13")  # 12 parts of 5 MiB and one of 4 MiB
    assert peak < 5 * MIB * (4 + 3), f"peak {peak / MIB:.0f} MiB for 5 MiB parts, 4 in flight"
    got = hashlib.sha256()
    for chunk in s3.download_object_as_stream(s3.bucket, "backups/big.tar"):
        got.update(chunk)
    assert got.hexdigest() == expected.hexdigest()

    start, end = 7 * MIB - 100, 8 * MIB + 100
    ranged = b"".join(s3.download_object_range(s3.bucket, "backups/big.tar", start, end))
    assert ranged == (block(6) + block(7) + block(8))[start - 6 * MIB : end - 6 * MIB]
    assert pending_uploads(s3, s3.bucket) == []


def test_part_sizes_double_so_ten_thousand_parts_are_never_reached():
    assert [part_size_at(8, n) for n in (1, 1000, 1001, 2001, 9001)] == [8, 8, 16, 32, 4096]
    total = sum(part_size_at(8 * MIB, n) for n in range(1, 10_001))
    assert total > 5 * 1024**4  # more than S3's largest object in 10,000 parts


def test_small_objects_keys_listing_metadata_copy_delete(s3, tmp_path):
    bucket = s3.bucket
    source = tmp_path / "in.bin"
    source.write_bytes(block(3, 5000))
    s3.upload_object(source, bucket, "from-file", content_type="text/plain")
    s3.download_object(bucket, "from-file", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()
    s3.delete_object(bucket, "from-file")
    keys = ["a.txt", "dir/x", "dir/sub/y", "spaces in name", "ünïcødé/ファイル", "odd!$&'()+,;=@"]
    for key in keys:
        s3.upload_object_via_stream(
            [key.encode()], bucket, key, content_type="text/plain", metadata={"owner": "ops"}
        )
    stored = s3.get_object(bucket, "dir/x")
    assert (stored.size, stored.hash_type, stored.content_type) == (5, "md5", "text/plain")
    assert stored.hash == hashlib.md5(b"dir/x").hexdigest() and stored.metadata == {"owner": "ops"}
    assert [o.name for o in s3.list_objects(bucket).objects] == sorted(keys)
    rolled = s3.list_objects(bucket, delimiter="/")
    assert sorted(rolled.prefixes) == ["dir/", "ünïcødé/"]
    assert [o.name for o in s3.list_objects(bucket, prefix="dir/").objects] == [
        "dir/sub/y",
        "dir/x",
    ]
    seen, marker = [], None
    while True:
        page = s3.list_objects(bucket, limit=4, marker=marker)
        seen += [o.name for o in page.objects]
        if page.next_marker is None:
            break
        marker = page.next_marker
    assert seen == sorted(keys)
    for key in keys:
        assert b"".join(s3.download_object_as_stream(bucket, key)) == key.encode()

    copy = s3.copy_object(bucket, "spaces in name", bucket, "copied/spaces")
    assert copy.hash == hashlib.md5(b"spaces in name").hexdigest()
    s3.delete_object(bucket, "spaces in name")
    with pytest.raises(ObjectNotFound):
        s3.get_object(bucket, "spaces in name")
    with pytest.raises(ObjectNotFound):
        s3.delete_object(bucket, "spaces in name")
    with pytest.raises(ObjectNotFound):
        s3.copy_object(bucket, "spaces in name", bucket, "again")
    assert b"".join(s3.download_object_range(bucket, "copied/spaces", 7)) == b"in name"


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_presigned_urls_sign_exactly_as_botocore_does(moto, s3, method):
    """moto 5.2.5 with IAM on reads only the Authorization header, so it cannot
    judge query signatures; botocore, AWS's own client, is the reference."""
    import datetime
    from urllib.parse import parse_qs, urlsplit

    import boto3
    from botocore.config import Config

    from drivers.compute.ec2.signing import presign

    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=moto.url,
        aws_access_key_id=moto.access_key,
        aws_secret_access_key=moto.secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    operation = "get_object" if method == "GET" else "put_object"
    theirs = client.generate_presigned_url(
        operation, Params={"Bucket": s3.bucket, "Key": "direct/up load ü"}, ExpiresIn=300
    )
    query = parse_qs(urlsplit(theirs).query)
    moment = datetime.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.UTC
    )
    ours = presign(
        method,
        s3._url(s3.bucket, "direct/up load ü"),
        s3.credentials,
        "us-east-1",
        "s3",
        300,
        now=moment,
    )
    assert urlsplit(ours).path == urlsplit(theirs).path
    assert parse_qs(urlsplit(ours).query) == query
    url = s3.object_url(s3.bucket, "direct/up load ü", method=method, expires=300)
    assert url.startswith(f"{moto.url}/{s3.bucket}/direct/up%20load%20%C3%BC?X-Amz-")
    with pytest.raises(InvalidRequest):
        s3.object_url(s3.bucket, "x", method="DELETE")


def test_a_failed_upload_leaves_no_object_and_no_parts(s3):
    def broken() -> Iterator[bytes]:
        yield from blocks(12)
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        s3.upload_object_via_stream(broken(), s3.bucket, "half")
    with pytest.raises(ObjectNotFound):
        s3.get_object(s3.bucket, "half")
    assert pending_uploads(s3, s3.bucket) == []
    with pytest.raises(HashMismatch):
        s3.upload_object_via_stream(
            [b"abc"], s3.bucket, "md5", content_md5=hashlib.md5(b"abd").hexdigest()
        )
    with pytest.raises(HashMismatch):
        s3.upload_object_via_stream(
            blocks(11), s3.bucket, "md5", content_md5=hashlib.md5(b"abd").hexdigest()
        )
    with pytest.raises(ObjectNotFound):
        s3.get_object(s3.bucket, "md5")
    assert pending_uploads(s3, s3.bucket) == []


@pytest.mark.parametrize("size", [3000, 12 * MIB], ids=["single-put", "multipart"])
def test_a_peer_that_corrupts_one_byte_is_caught_both_ways(moto, s3, size):
    data = b"".join(blocks(12))[:size]
    with CorruptingProxy(moto.url) as proxy:
        through = driver_for(moto, endpoint=proxy.url)
        proxy.corrupt_requests = True
        with pytest.raises(HashMismatch):
            through.upload_object_via_stream([data], s3.bucket, "bent")
        with pytest.raises(ObjectNotFound):
            s3.get_object(s3.bucket, "bent")
        assert pending_uploads(s3, s3.bucket) == []
        proxy.corrupt_requests = False
        through.upload_object_via_stream([data], s3.bucket, "bent")
        proxy.corrupt_responses = True
        with pytest.raises(HashMismatch):
            b"".join(through.download_object_as_stream(s3.bucket, "bent"))
    assert b"".join(s3.download_object_as_stream(s3.bucket, "bent")) == data
