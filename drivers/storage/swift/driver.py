"""``swift``: OpenStack Swift object storage.

Auth is Keystone v3 through the OpenStack driver's identity code (the
catalog's ``object-store`` endpoint), or Swift's v1.0 auth (tempauth) with
``auth_version="1.0"``. A 401 renews the token once.

Integrity: every object and segment is sent with its MD5 as ``ETag``, which
Swift verifies (422 otherwise) and echoes, and the echo is compared. Streams
longer than a part go as a Static Large Object: segments of ``part_size``
(doubling every 1,000) in ``<container>_segments``, ``parallel_parts`` at a
time, then a manifest naming each segment's MD5 and size, which Swift checks
again. Downloads check the MD5 of a plain object, and of each segment of a
large one (read from its manifest). A failed upload deletes its segments;
deleting a large object deletes its segments. ``object_url`` gives temp URLs
(HMAC-SHA256) with the account's ``temp_url_key``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from drivers.common.http import Connection
from drivers.compute.openstack.identity import ApplicationCredentialAuth, Identity, PasswordAuth
from drivers.errors import (
    AuthError,
    ContainerExists,
    ContainerNotEmpty,
    ContainerNotFound,
    DriverError,
    HashMismatch,
    InvalidRequest,
    NotSupported,
    ObjectNotFound,
)
from drivers.storage.base import (
    CHUNK_SIZE,
    Container,
    Object,
    ObjectListing,
    StorageDriver,
    StorageFeatures,
    byte_range,
    check_received,
    check_url_request,
    metadata_from,
    validate_key,
    verified,
)
from drivers.storage.parts import chain, part_size_at, parts_of, send_parts
from drivers.storage.swift.auth import PROVIDER, AuthSource, KeystoneAuth, Session, V1Auth
from drivers.storage.swift.errors import error_of
from drivers.storage.swift.segments import verified_segments

MIB = 1024 * 1024
MAX_SEGMENT = 5 * 1024 * MIB
SEGMENTS = "_segments"


class SwiftStorageDriver(StorageDriver):
    name = "OpenStack Swift"
    provider = PROVIDER
    features = StorageFeatures(server_side_copy=True, object_url=True, hash_type="md5")

    def __init__(
        self,
        key: str | None = None,
        secret: str | None = None,
        *,
        auth_url: str,
        auth_version: str = "3",
        project_name: str | None = None,
        project_id: str | None = None,
        user_domain: str = "Default",
        project_domain: str = "Default",
        application_credential_id: str | None = None,
        application_credential_secret: str | None = None,
        region: str | None = None,
        interface: str = "public",
        endpoint: str | None = None,
        temp_url_key: str | None = None,
        part_size: int = 8 * MIB,
        parallel_parts: int = 4,
        timeout: tuple[float, float] = (10.0, 120.0),
        **_options: Any,
    ) -> None:
        """``key``/``secret``: the user and password (Keystone), or the v1.0
        user ("account:user") and key."""
        if not MIB <= part_size <= MAX_SEGMENT:
            raise InvalidRequest("part_size must be 1 MiB to 5 GiB", provider=PROVIDER)
        self.auth: AuthSource
        if auth_version in ("1", "1.0"):
            if not key or not secret:
                raise InvalidRequest("v1.0 auth needs a user and a key", provider=PROVIDER)
            self.auth = V1Auth(auth_url, key, secret, endpoint=endpoint)
        else:
            credentials: PasswordAuth | ApplicationCredentialAuth
            if application_credential_id and application_credential_secret:
                credentials = ApplicationCredentialAuth(
                    application_credential_id, application_credential_secret
                )
            elif key and secret:
                credentials = PasswordAuth(
                    key, secret, project_name, project_id, user_domain, project_domain
                )
            else:
                raise InvalidRequest(
                    "Keystone auth needs a user and password or an application credential",
                    provider=PROVIDER,
                )
            self.auth = KeystoneAuth(
                Identity(auth_url, credentials),
                region=region,
                interface=interface,
                endpoint=endpoint,
            )
        self.temp_url_key = temp_url_key
        self.part_size = part_size
        self.parallel_parts = max(1, parallel_parts)
        self.connection = Connection(
            "http://swift.invalid", provider=PROVIDER, timeout=timeout, error_mapper=error_of
        )

    # -- requests ----------------------------------------------------------

    def _call(
        self,
        method: str,
        container: str | None = None,
        name: str | None = None,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """One call with the current token; a 401 renews it once."""
        path = ""
        if container is not None:
            path += "/" + quote(container, safe="")
        if name is not None:
            path += "/" + quote(name, safe="/-_.~")
        for attempt in (1, 2):
            session = self.auth.session()
            try:
                return self.connection.request(
                    method,
                    session.storage_url + path,
                    params=params,
                    headers={**(headers or {}), "X-Auth-Token": session.token},
                    data=body,
                    stream=stream,
                )
            except AuthError:
                if attempt == 2:
                    raise
                self.auth.invalidate(session)
        raise AssertionError("unreachable")  # pragma: no cover

    def _session(self) -> Session:
        return self.auth.session()

    # -- containers --------------------------------------------------------

    def iterate_containers(self) -> Iterator[Container]:
        marker = ""
        while True:
            params = {"format": "json", "limit": "1000"}
            if marker:
                params["marker"] = marker
            page = self._call("GET", params=params).json()
            for item in page:
                if not str(item["name"]).endswith(SEGMENTS):
                    yield Container(name=str(item["name"]), provider=PROVIDER)
            if len(page) < 1000:
                return
            marker = str(page[-1]["name"])

    def get_container(self, name: str) -> Container:
        try:
            headers = self._call("HEAD", name).headers
        except ObjectNotFound:
            raise ContainerNotFound(f"container {name} not found", provider=PROVIDER) from None
        policy = headers.get("X-Storage-Policy")
        return Container(name=name, provider=PROVIDER, extra={"storage_policy": policy})

    def create_container(self, name: str, location: str | None = None) -> Container:
        """Swift places a container in its cluster's region: ``location`` is recorded."""
        with contextlib.suppress(ContainerNotFound):
            self.get_container(name)
            raise ContainerExists(f"container {name} exists", provider=PROVIDER)
        self._call("PUT", name)  # 202 for a container made meanwhile: ours either way
        return Container(name=name, provider=PROVIDER, location=location)

    def delete_container(self, name: str) -> None:
        try:
            self._call("DELETE", name)
        except ObjectNotFound:
            raise ContainerNotFound(f"container {name} not found", provider=PROVIDER) from None
        with contextlib.suppress(ObjectNotFound, ContainerNotEmpty):
            self._call("DELETE", name + SEGMENTS)  # empty once every large object is gone

    # -- objects -----------------------------------------------------------

    def list_objects(
        self,
        container: str,
        prefix: str = "",
        delimiter: str | None = None,
        marker: str | None = None,
        limit: int = 1000,
    ) -> ObjectListing:
        params = {"format": "json", "limit": str(max(1, min(limit, 10_000)))}
        if prefix:
            params["prefix"] = prefix
        if delimiter:
            params["delimiter"] = delimiter
        if marker:
            params["marker"] = marker
        try:
            page = self._call("GET", container, params=params).json()
        except ObjectNotFound:
            raise ContainerNotFound(f"container {container} not found", provider=PROVIDER) from None
        objects, prefixes, names = [], [], []
        for item in page:
            if "subdir" in item:
                prefixes.append(str(item["subdir"]))
                names.append(str(item["subdir"]))
                continue
            names.append(str(item["name"]))
            objects.append(self._listed(container, item))
        more = len(page) >= int(params["limit"])
        return ObjectListing(tuple(objects), tuple(prefixes), names[-1] if more and names else None)

    def _listed(self, container: str, item: Mapping[str, Any]) -> Object:
        large = "slo_etag" in item
        return Object(
            container=container,
            name=str(item["name"]),
            size=int(item.get("bytes") or 0),
            hash=None if large else item.get("hash"),
            hash_type="swift-slo" if large else "md5",
            content_type=item.get("content_type"),
        )

    def get_object(self, container: str, name: str) -> Object:
        validate_key(name)
        try:
            headers = self._call("HEAD", container, name).headers
        except ObjectNotFound:
            self.get_container(container)
            raise ObjectNotFound(
                f"object {container}/{name} not found", provider=PROVIDER
            ) from None
        return self._to_object(container, name, headers)

    def _to_object(self, container: str, name: str, headers: Mapping[str, str]) -> Object:
        large = headers.get("X-Static-Large-Object", "").lower() == "true"
        etag = headers.get("ETag", "").strip('"')
        modified = headers.get("Last-Modified")
        return Object(
            container=container,
            name=name,
            size=int(headers.get("Content-Length") or 0),
            hash=None if large else (etag or None),
            hash_type="swift-slo" if large else ("md5" if etag else None),
            content_type=headers.get("Content-Type"),
            last_modified=parsedate_to_datetime(modified) if modified else None,
            metadata=metadata_from(headers, "x-object-meta-"),
            extra={"etag": etag, "large": large},
        )

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
        validate_key(name)
        what = f"{container}/{name}"
        headers = {f"X-Object-Meta-{k}": v for k, v in (metadata or {}).items()}
        headers["Content-Type"] = content_type or "application/octet-stream"
        base = self.part_size
        parts = parts_of(chunks, lambda number: part_size_at(base, number, MAX_SEGMENT))
        first = next(parts, b"")
        second = next(parts, None)
        if second is None:
            digest = hashlib.md5(first)
            check_received(
                what,
                written=len(first),
                size=size,
                md5_hex=digest.hexdigest(),
                content_md5=content_md5,
                provider=PROVIDER,
            )
            self.get_container(container)
            response = self._call(
                "PUT", container, name, headers={**headers, "ETag": digest.hexdigest()}, body=first
            )
            self._check_etag(response, digest.hexdigest(), what)
            return self.get_object(container, name)
        self.get_container(container)
        segments = container + SEGMENTS
        with contextlib.suppress(DriverError):
            self._call("PUT", segments)
        prefix = f"{name}/{uuid.uuid4().hex}"
        whole = hashlib.md5() if content_md5 is not None else None
        sizes: list[int] = []

        def send(number: int, data: bytes) -> str:
            digest = hashlib.md5(data)
            segment = f"{prefix}/{number:08d}"
            response = self._call(
                "PUT", segments, segment, headers={"ETag": digest.hexdigest()}, body=data
            )
            self._check_etag(response, digest.hexdigest(), f"{what} segment {number}")
            return digest.hexdigest()

        def seen(data: bytes) -> None:
            sizes.append(len(data))
            if whole is not None:
                whole.update(data)

        try:
            digests, written = send_parts(
                chain([first, second], parts), send, self.parallel_parts, "swift-segment", seen
            )
            check_received(
                what,
                written=written,
                size=size,
                md5_hex=whole.hexdigest() if whole is not None else "",
                content_md5=content_md5,
                provider=PROVIDER,
            )
            manifest = [
                {
                    "path": f"/{segments}/{prefix}/{number:08d}",
                    "etag": digest,
                    "size_bytes": length,
                }
                for number, (digest, length) in enumerate(zip(digests, sizes, strict=True), 1)
            ]
            self._call(
                "PUT",
                container,
                name,
                params={"multipart-manifest": "put"},
                headers=headers,
                body=json.dumps(manifest).encode(),
            )
        except BaseException:
            self._delete_segments(segments, prefix)
            raise
        return self.get_object(container, name)

    def _check_etag(self, response: requests.Response, md5_hex: str, what: str) -> None:
        etag = response.headers.get("ETag", "").strip('"')
        if etag and etag != md5_hex:
            raise HashMismatch(
                f"{what}: ETag of what Swift stored",
                expected=md5_hex,
                actual=etag,
                provider=PROVIDER,
            )

    def _delete_segments(self, segments: str, prefix: str) -> None:
        with contextlib.suppress(DriverError):
            while True:
                listing = self.list_objects(segments, prefix=prefix + "/")
                for item in listing.objects:
                    with contextlib.suppress(ObjectNotFound):
                        self._call("DELETE", segments, item.name)
                if listing.next_marker is None:
                    return

    def pending_segments(self, container: str) -> list[str]:
        """Segments in the container's segment container (none after failures)."""
        try:
            return [o.name for o in self.list_objects(container + SEGMENTS).objects]
        except ContainerNotFound:
            return []

    def download_object_as_stream(
        self, container: str, name: str, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        validate_key(name)
        response = self._get(container, name)
        stored = self._to_object(container, name, response.headers)
        what = f"{container}/{name}"
        chunks = response.iter_content(chunk_size)
        if stored.extra["large"]:
            return self._verified_segments(chunks, container, name, what)
        return verified(chunks, "md5", stored.hash, what=what, provider=PROVIDER)

    def _verified_segments(
        self, chunks: Iterator[bytes], container: str, name: str, what: str
    ) -> Iterator[bytes]:
        manifest = self._call(
            "GET", container, name, params={"multipart-manifest": "get", "format": "raw"}
        ).json()
        expected = [(str(item["etag"]), int(item["size_bytes"])) for item in manifest]
        return verified_segments(chunks, expected, what)

    def _get(self, container: str, name: str, byte_range: str | None = None) -> requests.Response:
        headers = {"Range": byte_range} if byte_range else None
        try:
            return self._call("GET", container, name, headers=headers, stream=True)
        except ObjectNotFound:
            self.get_object(container, name)
            raise

    def download_object_range(
        self,
        container: str,
        name: str,
        start: int,
        end: int | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> Iterator[bytes]:
        validate_key(name)
        wanted = byte_range(start, end, PROVIDER)
        if wanted is None:
            return iter(())
        return self._get(container, name, wanted).iter_content(chunk_size)

    def delete_object(self, container: str, name: str) -> None:
        stored = self.get_object(container, name)
        params = {"multipart-manifest": "delete"} if stored.extra["large"] else None
        self._call("DELETE", container, name, params=params)

    def copy_object(
        self, container: str, name: str, target_container: str, target_name: str
    ) -> Object:
        """A server-side copy (of a large object, its data: up to 5 GiB)."""
        validate_key(name)
        validate_key(target_name)
        self.get_object(container, name)
        source = f"/{quote(container, safe='')}/{quote(name, safe='/-_.~')}"
        self._call("PUT", target_container, target_name, headers={"X-Copy-From": source})
        return self.get_object(target_container, target_name)

    def object_url(
        self, container: str, name: str, method: str = "GET", expires: int = 3600
    ) -> str:
        """A temp URL (HMAC-SHA256) signed with the account's ``temp_url_key``."""
        validate_key(name)
        check_url_request(method, expires, PROVIDER)
        key = self.temp_url_key or self._call("HEAD").headers.get("X-Account-Meta-Temp-URL-Key")
        if not key:
            raise NotSupported(
                "temp URLs need the account's X-Account-Meta-Temp-URL-Key (temp_url_key)",
                provider=PROVIDER,
            )
        session = self._session()
        url = f"{session.storage_url}/{quote(container, safe='')}/{quote(name, safe='/-_.~')}"
        path = urlsplit(url).path
        until = int(time.time()) + expires
        signature = hmac.new(
            key.encode(), f"{method}\n{until}\n{path}".encode(), hashlib.sha256
        ).hexdigest()
        return f"{url}?temp_url_sig={signature}&temp_url_expires={until}"

    def set_temp_url_key(self, key: str) -> None:
        """Set the account's temp URL key (the account owner may)."""
        self._call("POST", headers={"X-Account-Meta-Temp-URL-Key": key})
        self.temp_url_key = key
