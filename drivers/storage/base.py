"""The storage contract: frozen values, and the ``StorageDriver`` every provider implements.

Objects are addressed by container name and key, so callers need no value in
hand to act. Data moves as iterators of ``bytes`` chunks: memory is bounded by
the chunk size (times parts in flight for multipart providers), whatever the
object's size. Every upload compares the checksum the provider computed with
the bytes sent, and every download checks the whole object's hash where the
provider stores one (:attr:`StorageFeatures.hash_type`), raising
:class:`~drivers.errors.HashMismatch`.
"""

from __future__ import annotations

import abc
import base64
import binascii
import datetime
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from drivers.errors import HashMismatch, InvalidRequest, NotSupported

#: Default chunk size for streams (bytes).
CHUNK_SIZE = 1024 * 1024
#: Longest object key, in UTF-8 bytes (as S3, GCS and Azure allow).
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class Container:
    name: str
    provider: str
    location: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Object:
    """A stored object. ``hash`` is the hex digest of type ``hash_type`` that
    the provider keeps (None when it keeps none usable, e.g. multipart ETags)."""

    container: str
    name: str
    size: int
    hash: str | None
    hash_type: str | None
    content_type: str | None = None
    last_modified: datetime.datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectListing:
    """One page of a listing: objects, the common prefixes a ``delimiter``
    rolled up, and the marker of the next page (None when this is the last)."""

    objects: tuple[Object, ...]
    prefixes: tuple[str, ...] = ()
    next_marker: str | None = None


@dataclass(frozen=True)
class StorageFeatures:
    """What a storage driver can do besides the required methods."""

    #: Copies without moving the bytes through the caller.
    server_side_copy: bool = False
    #: ``object_url`` gives presigned / SAS / temp URLs.
    object_url: bool = False
    #: The hash the provider keeps for whole objects ("sha256", "md5", ...; "" for none).
    hash_type: str = ""


def validate_key(name: str) -> None:
    """Raise :class:`InvalidRequest` for a key no provider would take."""
    encoded = name.encode("utf-8", "surrogatepass")
    if not name or len(encoded) > MAX_KEY_BYTES or "\x00" in name:
        raise InvalidRequest(f"object keys are 1 to {MAX_KEY_BYTES} bytes of UTF-8 without NUL")


def md5_hex_of(value: str | None) -> str | None:
    """A base64 MD5 (a Content-MD5 header, GCS's ``md5Hash``) as hex; None when
    absent or not an MD5."""
    if not value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


#: The longest a direct URL may live (S3's limit; the strictest of the providers).
MAX_URL_SECONDS = 604800


def check_url_request(method: str, expires: int, provider: str) -> None:
    """The rules every ``object_url`` applies: GET or PUT, for 1 s to 7 days."""
    if method not in ("GET", "PUT"):
        raise InvalidRequest("object URLs are for GET or PUT", provider=provider)
    if not 1 <= expires <= MAX_URL_SECONDS:
        raise InvalidRequest("expires must be 1 s to 7 days", provider=provider)


def byte_range(start: int, end: int | None, provider: str) -> str | None:
    """The HTTP ``Range`` value for bytes ``start`` to ``end`` (exclusive; None:
    to the end), or None for an empty range; :class:`InvalidRequest` for none."""
    if start < 0 or (end is not None and end < start):
        raise InvalidRequest("the range must be 0 <= start <= end", provider=provider)
    if end == start:
        return None
    return f"bytes={start}-{'' if end is None else end - 1}"


def metadata_from(headers: Mapping[str, str], prefix: str) -> dict[str, str]:
    """User metadata carried in headers named ``prefix<name>`` (case-insensitive)."""
    size = len(prefix)
    return {
        name[size:].lower(): value
        for name, value in headers.items()
        if name.lower().startswith(prefix.lower()) and len(name) > size
    }


def check_received(
    what: str,
    *,
    written: int,
    size: int | None,
    md5_hex: str,
    content_md5: str | None,
    provider: str,
) -> None:
    """The rules every upload applies to what it received, before keeping it:
    the announced ``size`` (:class:`InvalidRequest`) and ``content_md5``
    (:class:`HashMismatch`), when given."""
    if size is not None and written != size:
        raise InvalidRequest(f"{what}: {written} bytes sent, {size} announced", provider=provider)
    if content_md5 is not None and md5_hex != content_md5.lower():
        raise HashMismatch(
            f"{what}: MD5 of the bytes received",
            expected=content_md5.lower(),
            actual=md5_hex,
            provider=provider,
        )


def verified(
    chunks: Iterable[bytes], hash_type: str, expected: str | None, *, what: str, provider: str
) -> Iterator[bytes]:
    """Yield ``chunks``; after the last one, raise :class:`HashMismatch` unless
    their ``hash_type`` digest is ``expected`` (no check when ``expected`` is None)."""
    if expected is None or not hash_type:
        yield from chunks
        return
    digest = hashlib.new(hash_type)
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
    if digest.hexdigest() != expected:
        raise HashMismatch(
            f"{what}: {hash_type} of the bytes read",
            expected=expected,
            actual=digest.hexdigest(),
            provider=provider,
        )


def file_chunks(path: str | os.PathLike[str], chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            yield chunk


class StorageDriver(abc.ABC):
    """A provider's object storage. Safe to share between threads; every
    failure is raised as a :mod:`drivers.errors` class."""

    name: ClassVar[str]
    provider: ClassVar[str]
    features: ClassVar[StorageFeatures] = StorageFeatures()

    # -- containers --------------------------------------------------------

    @abc.abstractmethod
    def iterate_containers(self) -> Iterator[Container]:
        """Every container of the account, fetched a page at a time."""

    def list_containers(self) -> list[Container]:
        return list(self.iterate_containers())

    @abc.abstractmethod
    def get_container(self, name: str) -> Container:
        """The container; raises :class:`ContainerNotFound`."""

    @abc.abstractmethod
    def create_container(self, name: str, location: str | None = None) -> Container:
        """Create it; raises :class:`ContainerExists` if the name is taken."""

    @abc.abstractmethod
    def delete_container(self, name: str) -> None:
        """Delete an empty container; raises :class:`ContainerNotEmpty` otherwise."""

    # -- objects -----------------------------------------------------------

    @abc.abstractmethod
    def list_objects(
        self,
        container: str,
        prefix: str = "",
        delimiter: str | None = None,
        marker: str | None = None,
        limit: int = 1000,
    ) -> ObjectListing:
        """One page of objects after ``marker`` whose keys start with ``prefix``,
        in key order; with ``delimiter``, keys with it after the prefix are
        rolled up into ``prefixes``."""

    @abc.abstractmethod
    def get_object(self, container: str, name: str) -> Object:
        """The object's size, hash and metadata; raises :class:`ObjectNotFound`."""

    @abc.abstractmethod
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
        """Store the bytes ``chunks`` yields, of ``size`` bytes if known.

        With ``content_md5`` (hex), the bytes must have that MD5. If the
        iterator raises, or a checksum differs (:class:`HashMismatch`),
        nothing is kept: no object, no partial upload.
        """

    def upload_object(
        self,
        path: str | os.PathLike[str],
        container: str,
        name: str,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Object:
        """Store a local file."""
        return self.upload_object_via_stream(
            file_chunks(path),
            container,
            name,
            size=os.path.getsize(path),
            content_type=content_type,
            metadata=metadata,
        )

    @abc.abstractmethod
    def download_object_as_stream(
        self, container: str, name: str, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        """The object's bytes; after the last chunk, :class:`HashMismatch` if
        they are not what the provider stored."""

    @abc.abstractmethod
    def download_object_range(
        self,
        container: str,
        name: str,
        start: int,
        end: int | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive; None: to the end)."""

    def download_object(
        self,
        container: str,
        name: str,
        path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
    ) -> Object:
        """Write the object to ``path`` (through a temporary file beside it,
        renamed at the end), so that a failed or corrupt download leaves
        ``path`` as it was."""
        target = Path(path)
        if target.exists() and not overwrite:
            raise InvalidRequest(f"{target} exists (pass overwrite=True)")
        stored = self.get_object(container, name)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(descriptor, "wb") as stream:
                for chunk in self.download_object_as_stream(container, name):
                    stream.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return stored

    @abc.abstractmethod
    def delete_object(self, container: str, name: str) -> None:
        """Delete it; raises :class:`ObjectNotFound`."""

    def copy_object(
        self, container: str, name: str, target_container: str, target_name: str
    ) -> Object:
        """Copy inside the provider (see ``features.server_side_copy``)."""
        raise NotSupported("copy_object", provider=self.provider)

    def object_url(
        self, container: str, name: str, method: str = "GET", expires: int = 3600
    ) -> str:
        """A time-limited URL to GET or PUT the object directly (``features.object_url``)."""
        raise NotSupported("object_url", provider=self.provider)
