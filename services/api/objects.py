"""``/v1/containers/{container}/objects``: object data, streamed through the API.

Bytes flow from the request body to the provider and from the provider to
the response a chunk at a time: never whole in memory or on disk, never
through the message queue. The driver checks every checksum both ways and
keeps nothing of a failed upload (a client that goes away mid-upload
included). Stored bytes count in the project's quota once an upload is
complete; one that would go over is stopped before it completes.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from webob import Request

from drivers.errors import DriverError, HashMismatch, ObjectNotFound
from drivers.storage.base import CHUNK_SIZE, StorageDriver, metadata_from, validate_key
from drivers.storage.base import Object as StoredObject
from services.api import schemas
from services.api.app import ApiRequest, Reply
from services.api.containers import load
from services.api.views import etag_of, object_view, operation_view
from services.common import messaging, quotas, storage
from services.common.db.session import session_scope
from services.common.errors import (
    BadDigest,
    InvalidInput,
    NotFound,
    ProjectQuotaExceeded,
    RangeNotSatisfiable,
)
from services.common.states import start_operation

LOG = logging.getLogger(__name__)

META_PREFIX = "X-Object-Meta-"
MAX_METADATA_BYTES = 2048
MAX_LIST = 1000


@dataclass(frozen=True)
class Target:
    """A container as an object route needs it, read in one short session."""

    container_id: str
    name: str
    bucket: str  # the provider's name for it
    account_id: str | None
    driver: StorageDriver


def target(request: ApiRequest, name: str | None = None) -> Target:
    with session_scope(request.context.sessions) as session:
        container = load(session, request, name or request.params["container"])
        if container.state != storage.AVAILABLE:
            raise NotFound(f"container {container.name} not found")
        return Target(
            container.id,
            container.name,
            container.provider_name,
            container.account_id,
            storage.driver_of(request.context, session, container),
        )


def key_of(request: ApiRequest) -> str:
    key = request.params["key"]
    validate_key(key)
    return key


def index(request: ApiRequest) -> Reply:
    where = target(request)
    limit = request.query_int("limit", MAX_LIST, minimum=1, maximum=MAX_LIST)
    listing = where.driver.list_objects(
        where.bucket,
        prefix=request.raw.GET.get("prefix", ""),
        delimiter=request.raw.GET.get("delimiter") or None,
        marker=request.raw.GET.get("marker") or None,
        limit=limit,
    )
    return Reply(
        200,
        {
            "objects": [object_view(where.name, stored) for stored in listing.objects],
            "prefixes": list(listing.prefixes),
            "next_marker": listing.next_marker,
        },
    )


# -- upload ----------------------------------------------------------------


def put(request: ApiRequest) -> Reply:
    if request.raw.headers.get("X-Copy-From"):
        return copy(request)
    key = key_of(request)
    where = target(request)
    size = body_size(request.raw)
    content_md5 = md5_header(request.raw)
    previous = stored_size(where, key)
    room = _room(request, previous)
    if size is not None and room is not None and size > room:
        raise _over_quota(size, room)
    try:
        stored = where.driver.upload_object_via_stream(
            body_chunks(request.raw, room),
            where.bucket,
            key,
            size=size,
            content_type=request.raw.headers.get("Content-Type") or "application/octet-stream",
            metadata=metadata_headers(request.raw),
            content_md5=content_md5,
        )
    except HashMismatch as error:
        if content_md5 is not None and error.expected == content_md5:
            raise BadDigest(
                f"the body's MD5 is {error.actual}, Content-MD5 says {error.expected}"
            ) from None
        raise
    _account(request, where, key, stored.size - previous)
    return _stored(request, where, stored, 201)


def body_size(raw: Request) -> int | None:
    """The body's length, or None for a chunked body (read to its end)."""
    if "chunked" in raw.headers.get("Transfer-Encoding", "").lower():
        return None
    return raw.content_length or 0


def body_chunks(raw: Request, room: int | None) -> Iterator[bytes]:
    """The request body a chunk at a time; raises once it passes ``room`` bytes."""
    stream = raw.environ["wsgi.input"]
    length = body_size(raw)
    received = 0
    while length is None or received < length:
        wanted = CHUNK_SIZE if length is None else min(CHUNK_SIZE, length - received)
        chunk = stream.read(wanted)
        if not chunk:
            return  # the client went away: the driver sees a short body
        received += len(chunk)
        if room is not None and received > room:
            raise _over_quota(received, room)
        yield chunk


def md5_header(raw: Request) -> str | None:
    """Content-MD5 (base64, RFC 1864) as hex; 400 if it is not an MD5."""
    text = raw.headers.get("Content-MD5")
    if not text:
        return None
    try:
        digest = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("Content-MD5: not base64", field="Content-MD5") from None
    if len(digest) != 16:
        raise InvalidInput("Content-MD5: not an MD5 digest", field="Content-MD5")
    return digest.hex()


def metadata_headers(raw: Request) -> dict[str, str]:
    metadata = {
        name: value for name, value in metadata_from(raw.headers, META_PREFIX).items() if name
    }
    if sum(len(name) + len(value) for name, value in metadata.items()) > MAX_METADATA_BYTES:
        raise InvalidInput(f"{META_PREFIX}*: more than {MAX_METADATA_BYTES} bytes of metadata")
    return metadata


def stored_size(where: Target, key: str) -> int:
    """The size of the object an upload replaces (0 if none)."""
    try:
        return where.driver.get_object(where.bucket, key).size
    except ObjectNotFound:
        return 0


def _room(request: ApiRequest, replaced: int) -> int | None:
    """How many bytes an upload may bring, replacing ``replaced`` (None: no limit)."""
    with session_scope(request.context.sessions) as session:
        room = quotas.room(session, request.project_id)["stored_bytes"]
    return None if room is None else max(room, 0) + replaced


def _over_quota(size: int, room: int) -> ProjectQuotaExceeded:
    return ProjectQuotaExceeded(
        f"the project's quota would be exceeded: stored_bytes ({size} bytes sent, room for {room})",
        resources=["stored_bytes"],
    )


def _account(request: ApiRequest, where: Target, key: str, delta: int) -> None:
    """Count an upload's bytes; if the container was deleted meanwhile (the
    delete wins) or the project went over its quota, the object goes."""
    try:
        with session_scope(request.context.sessions) as session:
            storage.charge_bytes(session, where.container_id, delta)
    except (NotFound, ProjectQuotaExceeded):
        delete_quietly(where, key)
        raise


def delete_quietly(where: Target, key: str) -> None:
    try:
        where.driver.delete_object(where.bucket, key)
    except DriverError as error:
        LOG.warning("could not delete %s/%s: %s", where.name, key, error)


def _stored(request: ApiRequest, where: Target, stored: StoredObject, status: int) -> Reply:
    view = object_view(where.name, stored)
    return Reply(
        status,
        {"object": view},
        {"ETag": f'"{view["etag"]}"', "Location": request.raw.path},
        resource_id=where.container_id,
    )


# -- copy ------------------------------------------------------------------


def copy(request: ApiRequest) -> Reply:
    """``X-Copy-From: container/key``: inside one provider account, a server-side
    copy answered at once (201); otherwise the bytes stream through a worker (202)."""
    source_name, _, source_key = request.raw.headers["X-Copy-From"].lstrip("/").partition("/")
    if not source_name or not source_key:
        raise InvalidInput("X-Copy-From: give container/key", field="X-Copy-From")
    validate_key(source_key)
    key = key_of(request)
    source = target(request, source_name)
    where = target(request)
    original = source.driver.get_object(source.bucket, source_key)
    previous = stored_size(where, key)
    room = _room(request, previous)
    if room is not None and original.size > room:
        raise _over_quota(original.size, room)
    if source.account_id == where.account_id and where.driver.features.server_side_copy:
        stored = where.driver.copy_object(source.bucket, source_key, where.bucket, key)
        _account(request, where, key, stored.size - previous)
        return _stored(request, where, stored, 201)
    with request.context.outbox.transaction() as tx:
        operation = start_operation(
            tx.session, request.project_id, where.container_id, "copy_object", request.request_id
        )
        tx.send(
            messaging.message(
                "copy_object",
                request.request_id,
                operation_id=operation.id,
                source_container_id=source.container_id,
                source_key=source_key,
                container_id=where.container_id,
                key=key,
            )
        )
        view = operation_view(operation)
    return Reply(
        202, {"operation": view}, {"Location": view["links"]["self"]}, resource_id=operation.id
    )


# -- download --------------------------------------------------------------


def get(request: ApiRequest) -> Reply:
    key = key_of(request)
    where = target(request)
    stored = where.driver.get_object(where.bucket, key)
    headers = object_headers(stored)
    if etag_of(stored) in request.raw.if_none_match:
        return Reply(304, headers={"ETag": headers["ETag"]})
    wanted = request.raw.range
    if wanted is not None:
        span = wanted.range_for_length(stored.size)
        if span is None:
            raise RangeNotSatisfiable(f"the object has {stored.size} bytes")
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{stored.size}"
        headers["Content-Length"] = str(end - start)
        if request.raw.method == "HEAD":
            return Reply(206, headers=headers, stream=[])
        chunks = where.driver.download_object_range(where.bucket, key, start, end)
        return Reply(206, headers=headers, stream=started(held_back(chunks, where, key)))
    if request.raw.method == "HEAD":
        return Reply(200, headers=headers, stream=[])
    chunks = where.driver.download_object_as_stream(where.bucket, key)
    return Reply(200, headers=headers, stream=started(held_back(chunks, where, key)))


def object_headers(stored: StoredObject) -> dict[str, str]:
    headers = {
        "ETag": f'"{etag_of(stored)}"',
        "Content-Type": stored.content_type or "application/octet-stream",
        "Content-Length": str(stored.size),
        "Accept-Ranges": "bytes",
    }
    if stored.last_modified is not None:
        headers["Last-Modified"] = http_date(stored.last_modified)
    if stored.hash and stored.hash_type in ("md5", "sha256"):
        # For clients to check what they read, as the API checked what it sent.
        headers["X-Object-Hash"] = f"{stored.hash_type}={stored.hash}"
    for name, value in stored.metadata.items():
        headers[f"{META_PREFIX}{name}"] = value
    return headers


def http_date(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def started(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` with the first taken now, so that a failure before any byte
    (a provider error, or a one-chunk object whose hash is wrong) is an
    error answer rather than a cut connection."""
    first = next(chunks, b"")
    return itertools.chain([first], chunks)


def held_back(chunks: Iterator[bytes], where: Target, key: str) -> Iterator[bytes]:
    """``chunks``, each sent only once the next one arrived: the driver checks
    the whole object's hash after its last chunk, so the last bytes go out
    only once they are known good. If the check fails the client sees the
    answer cut short of its Content-Length, never a corrupt object as whole."""
    try:
        previous = None
        for chunk in chunks:
            if previous:
                yield previous
            previous = chunk
        if previous:
            yield previous
    except DriverError as error:
        LOG.error("download of %s/%s failed midway: %s", where.name, key, error)
        raise


# -- delete, url -----------------------------------------------------------


def delete(request: ApiRequest) -> Reply:
    key = key_of(request)
    where = target(request)
    size = where.driver.get_object(where.bucket, key).size
    where.driver.delete_object(where.bucket, key)
    with session_scope(request.context.sessions) as session:
        storage.charge_bytes(session, where.container_id, -size)
    return Reply(204, resource_id=where.container_id)


def url(request: ApiRequest) -> Reply:
    body = schemas.validate("ObjectUrl", request.json())
    method = body.get("method", "GET")
    expires = body.get("expires", 3600)
    key = key_of(request)
    where = target(request)
    address = where.driver.object_url(where.bucket, key, method=method, expires=expires)
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expires)
    return Reply(200, {"url": address, "method": method, "expires_at": until.isoformat()})
