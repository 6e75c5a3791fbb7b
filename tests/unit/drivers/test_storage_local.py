"""The local storage driver: every method, on a real directory tree."""

from __future__ import annotations

import hashlib
import multiprocessing
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers import DriverType, get_driver
from drivers.errors import (
    ContainerExists,
    ContainerNotEmpty,
    ContainerNotFound,
    HashMismatch,
    InvalidRequest,
    NotSupported,
    ObjectNotFound,
)
from drivers.storage.local import LocalStorageDriver
from tests.helpers import MIB, block, blocks


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorageDriver:
    driver = LocalStorageDriver(root=str(tmp_path / "store"))
    driver.create_container("box")
    return driver


def leftovers(driver: LocalStorageDriver) -> list[Path]:
    return list((driver.root / ".tmp").iterdir())


def test_the_registry_has_it():
    assert get_driver(DriverType.STORAGE, "local") is LocalStorageDriver


def test_containers(storage):
    made = storage.create_container("logs", location="rack-1")
    assert (made.name, made.location, made.provider) == ("logs", "rack-1", "local")
    assert [c.name for c in storage.list_containers()] == ["box", "logs"]
    assert storage.get_container("logs") == made
    with pytest.raises(ContainerExists):
        storage.create_container("logs")
    with pytest.raises(ContainerNotFound):
        storage.get_container("nope")
    for bad in ("", "UPPER", "a/b", "../x", "x" * 64):
        with pytest.raises(InvalidRequest):
            storage.create_container(bad)
    storage.upload_object_via_stream([b"x"], "logs", "one")
    with pytest.raises(ContainerNotEmpty):
        storage.delete_container("logs")
    storage.delete_object("logs", "one")
    storage.delete_container("logs")
    assert [c.name for c in storage.list_containers()] == ["box"]


def test_a_64_mib_stream_of_unknown_length_comes_back_identical(storage):
    expected = hashlib.sha256()
    for chunk in blocks(64):
        expected.update(chunk)
    tracemalloc.start()
    try:
        stored = storage.upload_object_via_stream(blocks(64), "box", "big.bin")
        got = hashlib.sha256()
        for chunk in storage.download_object_as_stream("box", "big.bin"):
            got.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == 64 * MIB and stored.hash == expected.hexdigest()
    assert stored.hash_type == "sha256"
    assert got.hexdigest() == expected.hexdigest()
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB: the object was held in memory"

    whole = block(3) + block(4)
    start, end = 3 * MIB + 12345, 4 * MIB + 777
    ranged = b"".join(storage.download_object_range("box", "big.bin", start, end))
    assert ranged == whole[start - 3 * MIB : end - 3 * MIB]
    assert b"".join(storage.download_object_range("box", "big.bin", 64 * MIB - 5)) == block(63)[-5:]
    with pytest.raises(InvalidRequest):
        storage.download_object_range("box", "big.bin", 65 * MIB)


def test_keys_listing_prefixes_delimiters_and_pages(storage):
    keys = [
        "a.txt",
        "photos/2026/jan.jpg",
        "photos/2026/feb.jpg",
        "photos/2025/dec.jpg",
        "photos/readme",
        "spaces in name",
        "ünïcødé/ファイル",
    ]
    for key in keys:
        storage.upload_object_via_stream([key.encode()], "box", key, content_type="text/plain")
    listed = storage.list_objects("box")
    assert [o.name for o in listed.objects] == sorted(keys) and listed.next_marker is None
    rolled = storage.list_objects("box", delimiter="/")
    assert [o.name for o in rolled.objects] == ["a.txt", "spaces in name"]
    assert rolled.prefixes == ("photos/", "ünïcødé/")
    inside = storage.list_objects("box", prefix="photos/", delimiter="/")
    assert [o.name for o in inside.objects] == ["photos/readme"]
    assert inside.prefixes == ("photos/2025/", "photos/2026/")

    pages, marker = [], None
    while True:
        page = storage.list_objects("box", limit=3, marker=marker)
        pages.append([o.name for o in page.objects])
        marker = page.next_marker
        if marker is None:
            break
    assert [name for page in pages for name in page] == sorted(keys)
    assert [len(page) for page in pages] == [3, 3, 1]

    seen, marker = [], None
    while True:  # one entry per page, prefixes included, none twice
        page = storage.list_objects("box", delimiter="/", limit=1, marker=marker)
        seen += [o.name for o in page.objects] + list(page.prefixes)
        marker = page.next_marker
        if marker is None:
            break
    assert seen == ["a.txt", "photos/", "spaces in name", "ünïcødé/"]

    fetched = storage.get_object("box", "ünïcødé/ファイル")
    assert fetched.content_type == "text/plain" and fetched.size == len("ünïcødé/ファイル".encode())
    with pytest.raises(ObjectNotFound):
        storage.get_object("box", "photos/")
    with pytest.raises(InvalidRequest):
        storage.get_object("box", "x" * 1025)


def test_files_metadata_copy_and_delete(storage, tmp_path):
    source = tmp_path / "in.bin"
    source.write_bytes(block(7))
    stored = storage.upload_object(source, "box", "file", metadata={"owner": "ops"})
    assert stored.metadata == {"owner": "ops"}
    assert stored.hash == hashlib.sha256(block(7)).hexdigest()

    copy = storage.copy_object("box", "file", "box", "copy")
    assert copy.hash == stored.hash and copy.metadata == {"owner": "ops"}
    storage.upload_object_via_stream([b"changed"], "box", "file")
    storage.delete_object("box", "file")
    target = tmp_path / "out.bin"
    storage.download_object("box", "copy", target)
    assert target.read_bytes() == block(7)
    with pytest.raises(InvalidRequest):
        storage.download_object("box", "copy", target)
    with pytest.raises(ObjectNotFound):
        storage.delete_object("box", "file")
    with pytest.raises(NotSupported):
        storage.object_url("box", "copy")
    assert leftovers(storage) == []


def test_a_failed_upload_keeps_nothing_and_the_old_object_stays(storage):
    storage.upload_object_via_stream([b"version 1"], "box", "doc")

    def broken() -> Iterator[bytes]:
        yield b"half of version 2"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        storage.upload_object_via_stream(broken(), "box", "doc")
    with pytest.raises(HashMismatch):
        storage.upload_object_via_stream(
            [b"version 3"], "box", "doc", content_md5=hashlib.md5(b"other").hexdigest()
        )
    with pytest.raises(InvalidRequest):
        storage.upload_object_via_stream([b"short"], "box", "doc", size=100)
    assert b"".join(storage.download_object_as_stream("box", "doc")) == b"version 1"
    assert leftovers(storage) == []
    assert len(list((storage.root / "box" / "data").iterdir())) == 1


def test_corrupt_bytes_on_disk_are_caught_on_download(storage, tmp_path):
    storage.upload_object_via_stream(blocks(2), "box", "victim")
    (data,) = (storage.root / "box" / "data").iterdir()
    with open(data, "r+b") as stream:
        stream.seek(MIB + 5)
        byte = stream.read(1)
        stream.seek(MIB + 5)
        stream.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(HashMismatch):
        b"".join(storage.download_object_as_stream("box", "victim"))
    target = tmp_path / "victim.bin"
    with pytest.raises(HashMismatch):
        storage.download_object("box", "victim", target)
    assert not target.exists() and list(tmp_path.glob(".victim.bin*")) == []


def _write_many(root: str, writer: int) -> None:
    driver = LocalStorageDriver(root=root)
    for round_ in range(15):
        body = f"writer {writer} round {round_} ".encode() * 5000
        driver.upload_object_via_stream([body], "box", "shared")
        read = b"".join(driver.download_object_as_stream("box", "shared"))  # hash-checked
        assert read.startswith(b"writer ")


def test_concurrent_writers_in_several_processes(storage):
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_many, args=(str(storage.root), n)) for n in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    final = b"".join(storage.download_object_as_stream("box", "shared"))
    assert final.startswith(b"writer ") and len(final) == storage.get_object("box", "shared").size
    assert len(list((storage.root / "box" / "data").iterdir())) == 1
    assert leftovers(storage) == []
