"""``local``: containers and objects in a directory tree on this host.

Layout under ``root``::

    .tmp/                      uploads in progress (same filesystem: renames are atomic)
    <container>/.container.json
    <container>/objects/<k>.json   the object's record; k = sha256 of its key
    <container>/data/<k>-<uuid>    its bytes, never changed once written
    <container>/locks/<k>.lock     serializes commits of one key across processes

An upload streams into ``.tmp``, hashing as it goes (SHA-256, kept as the
object's hash, and MD5 for ``Content-MD5``), moves the bytes under ``data/``
and then commits by renaming the new record over the old one while holding
the key's lock; the old bytes are removed after. A crash before the commit
leaves the previous object as it was, never a partial one; readers opening
a record whose bytes were just replaced read the record again.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from drivers.errors import (
    ContainerExists,
    ContainerNotEmpty,
    ContainerNotFound,
    InvalidRequest,
    ObjectNotFound,
)
from drivers.storage.base import (
    CHUNK_SIZE,
    Container,
    Object,
    ObjectListing,
    StorageDriver,
    StorageFeatures,
    check_received,
    validate_key,
    verified,
)

PROVIDER = "local"
CONTAINER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def _key_id(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


class LocalStorageDriver(StorageDriver):
    """Object storage in a directory; safe for concurrent writers in several processes."""

    name = "Local directory"
    provider = PROVIDER
    features = StorageFeatures(server_side_copy=True, object_url=False, hash_type="sha256")

    def __init__(self, root: str, location: str = "local", **_options: Any) -> None:
        self.root = Path(root)
        self.location = location
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".tmp").mkdir(exist_ok=True)

    # -- containers --------------------------------------------------------

    def _container_dir(self, name: str) -> Path:
        if not CONTAINER_NAME.match(name):
            raise InvalidRequest(
                "container names are 1 to 63 of a-z, 0-9, '.', '_' and '-', "
                "starting with a letter or digit",
                provider=PROVIDER,
            )
        return self.root / name

    def _existing(self, name: str) -> Path:
        directory = self._container_dir(name)
        if not (directory / ".container.json").is_file():
            raise ContainerNotFound(f"container {name} not found", provider=PROVIDER)
        return directory

    def _container(self, directory: Path) -> Container:
        record = json.loads((directory / ".container.json").read_text())
        return Container(
            name=directory.name,
            provider=PROVIDER,
            location=record.get("location"),
            extra={"created_at": record.get("created_at")},
        )

    def iterate_containers(self) -> Iterator[Container]:
        for directory in sorted(self.root.iterdir()):
            if (directory / ".container.json").is_file():
                yield self._container(directory)

    def get_container(self, name: str) -> Container:
        return self._container(self._existing(name))

    def create_container(self, name: str, location: str | None = None) -> Container:
        directory = self._container_dir(name)
        try:
            directory.mkdir()
        except FileExistsError:
            raise ContainerExists(f"container {name} exists", provider=PROVIDER) from None
        for part in ("objects", "data", "locks"):
            (directory / part).mkdir()
        record = {
            "location": location or self.location,
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
        }
        self._write_atomically(directory / ".container.json", json.dumps(record).encode())
        return self._container(directory)

    def delete_container(self, name: str) -> None:
        directory = self._existing(name)
        if any((directory / "objects").iterdir()):
            raise ContainerNotEmpty(f"container {name} is not empty", provider=PROVIDER)
        # Remove the marker first: a half-removed container is no container.
        (directory / ".container.json").unlink()
        shutil.rmtree(directory)

    # -- objects -----------------------------------------------------------

    def _record_path(self, container: str, name: str) -> Path:
        validate_key(name)
        return self._existing(container) / "objects" / f"{_key_id(name)}.json"

    def _read_record(self, path: Path, container: str, name: str) -> dict[str, Any]:
        try:
            return dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ObjectNotFound(
                f"object {container}/{name} not found", provider=PROVIDER
            ) from None

    def _to_object(self, container: str, record: Mapping[str, Any]) -> Object:
        return Object(
            container=container,
            name=record["name"],
            size=record["size"],
            hash=record["sha256"],
            hash_type="sha256",
            content_type=record.get("content_type"),
            last_modified=datetime.datetime.fromisoformat(record["last_modified"]),
            metadata=dict(record.get("metadata") or {}),
        )

    def list_objects(
        self,
        container: str,
        prefix: str = "",
        delimiter: str | None = None,
        marker: str | None = None,
        limit: int = 1000,
    ) -> ObjectListing:
        if limit < 1:
            raise InvalidRequest("limit must be at least 1", provider=PROVIDER)
        objects_dir = self._existing(container) / "objects"
        records = []
        for entry in objects_dir.iterdir():
            if entry.suffix != ".json":
                continue
            with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                record = json.loads(entry.read_text())
                if record["name"].startswith(prefix) and (
                    marker is None or record["name"] > marker
                ):
                    records.append(record)
        records.sort(key=lambda record: record["name"])
        objects: list[Object] = []
        prefixes: list[str] = []
        last = None
        for record in records:
            key = record["name"]
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    rolled = key[: cut + len(delimiter)]
                    if prefixes and prefixes[-1] == rolled:
                        continue
                    if marker is not None and rolled <= marker:
                        continue
                    if len(objects) + len(prefixes) == limit:
                        return ObjectListing(tuple(objects), tuple(prefixes), last)
                    prefixes.append(rolled)
                    last = rolled
                    continue
            if len(objects) + len(prefixes) == limit:
                return ObjectListing(tuple(objects), tuple(prefixes), last)
            objects.append(self._to_object(container, record))
            last = key
        return ObjectListing(tuple(objects), tuple(prefixes), None)

    def get_object(self, container: str, name: str) -> Object:
        path = self._record_path(container, name)
        return self._to_object(container, self._read_record(path, container, name))

    def upload_object_via_stream(
        self,
        chunks: Iterable[bytes],
        container: str,
        name: str,
        *,
        size: int | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_md5: str | None = None,
    ) -> Object:
        record_path = self._record_path(container, name)
        directory = record_path.parent.parent
        temporary = self.root / ".tmp" / f"{uuid.uuid4().hex}.part"
        # SHA-256 is the object's hash; an MD5 only to check a Content-MD5 given.
        sha256, written = hashlib.sha256(), 0
        md5 = hashlib.md5() if content_md5 is not None else None
        try:
            with open(temporary, "xb") as stream:
                for chunk in chunks:
                    stream.write(chunk)
                    sha256.update(chunk)
                    if md5 is not None:
                        md5.update(chunk)
                    written += len(chunk)
                stream.flush()
                os.fsync(stream.fileno())
            check_received(
                f"{container}/{name}",
                written=written,
                size=size,
                md5_hex=md5.hexdigest() if md5 is not None else "",
                content_md5=content_md5,
                provider=PROVIDER,
            )
            key_id = _key_id(name)
            data_name = f"{key_id}-{uuid.uuid4().hex}"
            os.replace(temporary, directory / "data" / data_name)
        finally:
            temporary.unlink(missing_ok=True)
        record = {
            "name": name,
            "size": written,
            "sha256": sha256.hexdigest(),
            "content_type": content_type,
            "metadata": dict(metadata or {}),
            "last_modified": datetime.datetime.now(datetime.UTC).isoformat(),
            "data": data_name,
        }
        self._commit(directory, key_id, record)
        return self._to_object(container, record)

    def _commit(self, directory: Path, key_id: str, record: dict[str, Any] | None) -> None:
        """Make ``record`` the key's record (None: delete it), then drop the old bytes."""
        record_path = directory / "objects" / f"{key_id}.json"
        with self._locked(directory / "locks" / f"{key_id}.lock"):
            try:
                old = json.loads(record_path.read_text()).get("data")
            except FileNotFoundError:
                old = None
            if record is None:
                record_path.unlink(missing_ok=True)
            else:
                self._write_atomically(record_path, json.dumps(record).encode())
            if old and (record is None or old != record["data"]):
                (directory / "data" / old).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        with open(path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write_atomically(self, path: Path, content: bytes) -> None:
        temporary = self.root / ".tmp" / f"{uuid.uuid4().hex}.meta"
        try:
            with open(temporary, "xb") as stream:
                stream.write(content)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    def _open_data(self, container: str, name: str) -> tuple[dict[str, Any], IO[bytes]]:
        """The record and an open handle on its bytes (read again if replaced meanwhile)."""
        path = self._record_path(container, name)
        for _ in range(3):
            record = self._read_record(path, container, name)
            try:
                return record, open(path.parent.parent / "data" / record["data"], "rb")
            except FileNotFoundError:
                continue
        raise ObjectNotFound(f"object {container}/{name} changed while read", provider=PROVIDER)

    def download_object_as_stream(
        self, container: str, name: str, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        record, stream = self._open_data(container, name)

        def chunks() -> Iterator[bytes]:
            with stream:
                while chunk := stream.read(chunk_size):
                    yield chunk

        return verified(
            chunks(), "sha256", record["sha256"], what=f"{container}/{name}", provider=PROVIDER
        )

    def download_object_range(
        self,
        container: str,
        name: str,
        start: int,
        end: int | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> Iterator[bytes]:
        record, stream = self._open_data(container, name)
        stop = record["size"] if end is None else min(end, record["size"])
        if start < 0 or start > stop:
            stream.close()
            raise InvalidRequest(
                f"range {start}-{end} is outside 0-{record['size']}", provider=PROVIDER
            )

        def chunks() -> Iterator[bytes]:
            with stream:
                stream.seek(start)
                left = stop - start
                while left > 0 and (chunk := stream.read(min(chunk_size, left))):
                    left -= len(chunk)
                    yield chunk

        return chunks()

    def delete_object(self, container: str, name: str) -> None:
        path = self._record_path(container, name)
        self._read_record(path, container, name)  # ObjectNotFound
        self._commit(path.parent.parent, path.stem, None)

    def copy_object(
        self, container: str, name: str, target_container: str, target_name: str
    ) -> Object:
        """Server-side: the new object shares the source's immutable bytes (a hard link)."""
        record, stream = self._open_data(container, name)
        target_path = self._record_path(target_container, target_name)
        target_dir = target_path.parent.parent
        with stream:
            data_name = f"{target_path.stem}-{uuid.uuid4().hex}"
            source = Path(stream.name)
            try:
                os.link(source, target_dir / "data" / data_name)
            except OSError:
                shutil.copyfile(source, target_dir / "data" / data_name)
        copied = {
            **record,
            "name": target_name,
            "data": data_name,
            "last_modified": datetime.datetime.now(datetime.UTC).isoformat(),
        }
        self._commit(target_dir, target_path.stem, copied)
        return self._to_object(target_container, copied)
