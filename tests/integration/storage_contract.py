"""Checks every storage driver passes against its peer, written once: each
provider's test module calls them with its own driver (and its own way of
seeing what a failed upload may have left behind)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.errors import HashMismatch, ObjectNotFound
from drivers.storage.base import StorageDriver
from tests.helpers import block, blocks
from tests.integration.proxy import CorruptingProxy


def objects_listing_metadata_copy_and_delete(
    store: StorageDriver, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(block(3, 5000))
    store.upload_object(source, bucket, "from-file", content_type="text/plain")
    store.download_object(bucket, "from-file", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()
    store.delete_object(bucket, "from-file")
    for key in ("a/1", "a/2", "b/1", "top", "é space"):
        store.upload_object_via_stream([key.encode()], bucket, key, metadata={"owner": "ops"})
    rolled = store.list_objects(bucket, delimiter="/")
    assert [o.name for o in rolled.objects] == ["top", "é space"]
    assert rolled.prefixes == ("a/", "b/")
    first = store.list_objects(bucket, limit=2)
    assert [o.name for o in first.objects] == ["a/1", "a/2"]
    rest = store.list_objects(bucket, marker=first.next_marker)
    assert [o.name for o in rest.objects] == ["b/1", "top", "é space"]
    assert rest.next_marker is None
    fetched = store.get_object(bucket, "é space")
    assert fetched.metadata == {"owner": "ops"}
    assert fetched.hash == hashlib.md5("é space".encode()).hexdigest()
    copy = store.copy_object(bucket, "top", bucket, "copied")
    assert copy.hash == store.get_object(bucket, "top").hash
    assert b"".join(store.download_object_as_stream(bucket, "copied")) == b"top"
    store.delete_object(bucket, "copied")
    with pytest.raises(ObjectNotFound):
        store.get_object(bucket, "copied")
    with pytest.raises(ObjectNotFound):
        store.delete_object(bucket, "copied")
    with pytest.raises(ObjectNotFound):
        store.copy_object(bucket, "missing", bucket, "x")


def corruption_is_caught_both_ways(
    store: StorageDriver,
    bucket: str,
    through: StorageDriver,
    proxy: CorruptingProxy,
    size: int,
    leftovers: Callable[[], list[str]] = list,
) -> None:
    """``through`` reaches the peer via ``proxy``; ``leftovers`` lists what a
    failed upload may leave at the provider (parts, blocks, segments)."""
    data = b"".join(blocks(12))[:size]
    proxy.corrupt_requests = True
    with pytest.raises(HashMismatch):
        through.upload_object_via_stream(iter([data]), bucket, "bent")
    with pytest.raises(ObjectNotFound):
        store.get_object(bucket, "bent")
    assert leftovers() == []
    proxy.corrupt_requests = False
    through.upload_object_via_stream(iter([data]), bucket, "bent")
    proxy.corrupt_responses = True
    with pytest.raises(HashMismatch):
        b"".join(through.download_object_as_stream(bucket, "bent"))
    proxy.corrupt_responses = False
    assert b"".join(store.download_object_as_stream(bucket, "bent")) == data
