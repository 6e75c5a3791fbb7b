"""``gcs``: Google Cloud Storage over its JSON API.

Auth: a service-account key (``client_email``, ``private_key``,
``token_uri``), signed into a JWT and exchanged for an OAuth2 token, cached
until shortly before it ends (``drivers/common/google_auth.py``); a 401
renews it once. ``object_url`` gives V4 signed URLs (RSA-SHA256 with the
same key). ``endpoint`` points at another JSON API host (an emulator).

Integrity: an upload that fits in one part is a multipart upload whose
metadata names its MD5, which the service verifies. Longer streams use the
resumable protocol, a part at a time (the protocol is sequential; each part
is a multiple of 256 KiB); every answer's persisted range is checked against
what was sent, and the finished object's MD5 against the MD5 of every byte
sent -- a mismatch deletes the object. A failed upload cancels its session,
so no object appears. Downloads are checked against the object's MD5
(composite objects have none; their CRC32C is not checked).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from drivers.common.google_auth import ServiceAccount, TokenSource
from drivers.common.http import Connection
from drivers.errors import (
    ContainerExists,
    ContainerNotEmpty,
    ContainerNotFound,
    DriverError,
    HashMismatch,
    InvalidRequest,
    ObjectNotFound,
    ProviderError,
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
    md5_hex_of,
    validate_key,
    verified,
)
from drivers.storage.gcs.errors import PROVIDER, error_of
from drivers.storage.gcs.signing import signed_url
from drivers.storage.parts import chain, part_size_at, parts_of

MIB = 1024 * 1024
QUANTUM = 256 * 1024  # resumable parts are multiples of this
MAX_PART = 4096 * MIB
SCOPE = "https://www.googleapis.com/auth/devstorage.full_control"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"


class GCSStorageDriver(StorageDriver):
    name = "Google Cloud Storage"
    provider = PROVIDER
    features = StorageFeatures(server_side_copy=True, object_url=True, hash_type="md5")

    def __init__(
        self,
        client_email: str,
        private_key: str,
        token_uri: str = DEFAULT_TOKEN_URI,
        project: str | None = None,
        endpoint: str | None = None,
        part_size: int = 8 * MIB,
        timeout: tuple[float, float] = (10.0, 120.0),
        **_options: Any,
    ) -> None:
        if not QUANTUM <= part_size <= MAX_PART or part_size % QUANTUM:
            raise InvalidRequest(
                "part_size must be a multiple of 256 KiB up to 4 GiB", provider=PROVIDER
            )
        self.account = ServiceAccount.from_info(
            {"client_email": client_email, "private_key": private_key, "token_uri": token_uri}
        )
        self.tokens = TokenSource(self.account, SCOPE, provider=PROVIDER)
        self.project = project
        self.endpoint = (endpoint or "https://storage.googleapis.com").rstrip("/")
        self.part_size = part_size
        self.connection = Connection(
            self.endpoint, provider=PROVIDER, timeout=timeout, error_mapper=error_of
        )

    # -- requests ----------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        json_body: Any = None,
        stream: bool = False,
        expect: tuple[int, ...] = (),
    ) -> requests.Response:
        """A call with the current token; a refused token is renewed once."""
        return self.tokens.authorized(
            lambda authorization: self.connection.request(
                method,
                url if url.startswith("http") else self.endpoint + url,
                params=params,
                headers={**authorization, **(headers or {})},
                data=body,
                json=json_body,
                stream=stream,
                expect=expect,
            )
        )

    @staticmethod
    def _object_path(bucket: str, name: str) -> str:
        return f"/storage/v1/b/{bucket}/o/{quote(name, safe='')}"

    # -- containers --------------------------------------------------------

    def iterate_containers(self) -> Iterator[Container]:
        if not self.project:
            raise InvalidRequest("listing buckets needs the account's project", provider=PROVIDER)
        token = ""
        while True:
            params = {"project": self.project, "maxResults": "1000"}
            if token:
                params["pageToken"] = token
            page = self._call("GET", "/storage/v1/b", params=params).json()
            for item in page.get("items", []):
                yield self._container(item)
            token = page.get("nextPageToken", "")
            if not token:
                return

    def _container(self, item: Mapping[str, Any]) -> Container:
        return Container(
            name=str(item["name"]),
            provider=PROVIDER,
            location=str(item["location"]).lower() if item.get("location") else None,
        )

    def get_container(self, name: str) -> Container:
        try:
            return self._container(self._call("GET", f"/storage/v1/b/{name}").json())
        except ObjectNotFound:
            raise ContainerNotFound(f"bucket {name} not found", provider=PROVIDER) from None

    def create_container(self, name: str, location: str | None = None) -> Container:
        body: dict[str, Any] = {"name": name}
        if location:
            body["location"] = location.upper()
        params = {"project": self.project} if self.project else None
        made = self._call("POST", "/storage/v1/b", params=params, json_body=body).json()
        return self._container(made)

    def delete_container(self, name: str) -> None:
        if self.list_objects(name, limit=1).objects:
            raise ContainerNotEmpty(f"bucket {name} is not empty", provider=PROVIDER)
        try:
            self._call("DELETE", f"/storage/v1/b/{name}")
        except ObjectNotFound:
            raise ContainerNotFound(f"bucket {name} not found", provider=PROVIDER) from None
        except ContainerExists:  # 409: an object landed since the check
            raise ContainerNotEmpty(f"bucket {name} is not empty", provider=PROVIDER) from None

    # -- objects -----------------------------------------------------------

    def list_objects(
        self,
        container: str,
        prefix: str = "",
        delimiter: str | None = None,
        marker: str | None = None,
        limit: int = 1000,
    ) -> ObjectListing:
        """One page. ``marker`` is passed as ``startOffset`` and the page cut at
        ``limit`` here too, so an endpoint that ignores them still pages right."""
        params = {"maxResults": str(limit + 1)}
        if prefix:
            params["prefix"] = prefix
        if delimiter:
            params["delimiter"] = delimiter
        if marker:
            params["startOffset"] = marker
        try:
            page = self._call("GET", f"/storage/v1/b/{container}/o", params=params).json()
        except ObjectNotFound:
            raise ContainerNotFound(f"bucket {container} not found", provider=PROVIDER) from None
        entries: list[tuple[str, Object | None]] = [
            (str(item["name"]), self._to_object(container, item))
            for item in page.get("items") or []
        ]
        entries += [(str(p), None) for p in page.get("prefixes") or []]
        entries = sorted(
            (name, item)
            for name, item in entries
            if name.startswith(prefix) and (marker is None or name > marker)
        )
        page_entries = entries[:limit]
        more = len(entries) > limit or bool(page.get("nextPageToken"))
        return ObjectListing(
            tuple(item for _, item in page_entries if item is not None),
            tuple(name for name, item in page_entries if item is None),
            page_entries[-1][0] if more and page_entries else None,
        )

    def get_object(self, container: str, name: str) -> Object:
        validate_key(name)
        try:
            item = self._call("GET", self._object_path(container, name)).json()
        except ObjectNotFound:
            self.get_container(container)
            raise ObjectNotFound(
                f"object {container}/{name} not found", provider=PROVIDER
            ) from None
        return self._to_object(container, item)

    def _to_object(self, container: str, item: Mapping[str, Any]) -> Object:
        md5_hex = md5_hex_of(item.get("md5Hash"))
        updated = item.get("updated")
        return Object(
            container=container,
            name=str(item["name"]),
            size=int(item.get("size") or 0),
            hash=md5_hex,
            hash_type="md5" if md5_hex else None,
            content_type=item.get("contentType"),
            last_modified=datetime.datetime.fromisoformat(str(updated).replace("Z", "+00:00"))
            if updated
            else None,
            metadata=dict(item.get("metadata") or {}),
            extra={"etag": item.get("etag"), "crc32c": item.get("crc32c")},
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
        resource: dict[str, Any] = {
            "name": name,
            "contentType": content_type or "application/octet-stream",
        }
        if metadata:
            resource["metadata"] = dict(metadata)
        base = self.part_size
        parts = parts_of(chunks, lambda number: part_size_at(base, number, MAX_PART))
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
            resource["md5Hash"] = base64.b64encode(digest.digest()).decode()  # verified there
            item = self._multipart(container, resource, first)
            return self._verify_stored(container, name, item, digest.hexdigest(), what)
        session = self._start_resumable(container, resource)
        whole = hashlib.md5()
        written = 0
        stream = chain([first, second], parts)
        del first, second
        try:
            pending = next(stream)
            while True:
                after = next(stream, None)  # one part ahead: is this one the last?
                whole.update(pending)
                if after is None:  # judged before the last part makes it an object
                    check_received(
                        what,
                        written=written + len(pending),
                        size=size,
                        md5_hex=whole.hexdigest(),
                        content_md5=content_md5,
                        provider=PROVIDER,
                    )
                item = self._send_part(session, pending, written, last=after is None)
                written += len(pending)
                if after is None:
                    break
                pending = after
        except BaseException:
            self._cancel(session)
            raise
        return self._verify_stored(container, name, item, whole.hexdigest(), what)

    def _multipart(self, container: str, resource: Mapping[str, Any], data: bytes) -> Any:
        boundary = uuid.uuid4().hex
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                json.dumps(resource).encode(),
                f"\r\n--{boundary}\r\nContent-Type: {resource['contentType']}\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        try:
            return self._call(
                "POST",
                f"/upload/storage/v1/b/{container}/o",
                params={"uploadType": "multipart"},
                headers={"Content-Type": f"multipart/related; boundary={boundary}"},
                body=body,
            ).json()
        except ObjectNotFound:
            raise ContainerNotFound(f"bucket {container} not found", provider=PROVIDER) from None

    def _start_resumable(self, container: str, resource: Mapping[str, Any]) -> str:
        try:
            response = self._call(
                "POST",
                f"/upload/storage/v1/b/{container}/o",
                params={"uploadType": "resumable", "name": str(resource["name"])},
                json_body=resource,
            )
        except ObjectNotFound:
            raise ContainerNotFound(f"bucket {container} not found", provider=PROVIDER) from None
        session = response.headers.get("Location")
        if not session:
            raise ProviderError("no resumable session was given", provider=PROVIDER)
        return session

    def _send_part(self, session: str, data: bytes, offset: int, *, last: bool) -> Any:
        """Send one part; the object's resource after the last, else None."""
        end = offset + len(data) - 1
        total = str(offset + len(data)) if last else "*"
        response = self._call(
            "PUT",
            session,
            headers={"Content-Range": f"bytes {offset}-{end}/{total}"},
            body=data,
            expect=(308,),
        )
        if response.status_code == 308:
            if last:
                raise ProviderError("the last part left the upload incomplete", provider=PROVIDER)
            persisted = response.headers.get("Range", "")
            if persisted != f"bytes=0-{end}":
                raise HashMismatch(
                    "resumable upload: bytes persisted",
                    expected=f"bytes=0-{end}",
                    actual=persisted or "none",
                    provider=PROVIDER,
                )
            return None
        return response.json()

    def _cancel(self, session: str) -> None:
        """Cancel a resumable session (the service answers 499); best effort."""
        with contextlib.suppress(DriverError):
            self._call("DELETE", session, expect=(499,))

    def _verify_stored(
        self, container: str, name: str, item: Any, md5_hex: str, what: str
    ) -> Object:
        stored = self._to_object(container, item)
        if stored.hash != md5_hex:
            with contextlib.suppress(DriverError):
                self._call("DELETE", self._object_path(container, name))
            raise HashMismatch(
                f"{what}: MD5 of what GCS stored",
                expected=md5_hex,
                actual=str(stored.hash),
                provider=PROVIDER,
            )
        return stored

    def download_object_as_stream(
        self, container: str, name: str, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        stored = self.get_object(container, name)
        response = self._call(
            "GET", self._object_path(container, name), params={"alt": "media"}, stream=True
        )
        return verified(
            response.iter_content(chunk_size),
            "md5",
            stored.hash,
            what=f"{container}/{name}",
            provider=PROVIDER,
        )

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
        try:
            response = self._call(
                "GET",
                self._object_path(container, name),
                params={"alt": "media"},
                headers={"Range": wanted},
                stream=True,
            )
        except ObjectNotFound:
            self.get_object(container, name)
            raise
        return response.iter_content(chunk_size)

    def delete_object(self, container: str, name: str) -> None:
        validate_key(name)
        try:
            self._call("DELETE", self._object_path(container, name))
        except ObjectNotFound:
            self.get_container(container)
            raise ObjectNotFound(
                f"object {container}/{name} not found", provider=PROVIDER
            ) from None

    def copy_object(
        self, container: str, name: str, target_container: str, target_name: str
    ) -> Object:
        validate_key(name)
        validate_key(target_name)
        url = (
            f"{self._object_path(container, name)}/rewriteTo/b/{target_container}"
            f"/o/{quote(target_name, safe='')}"
        )
        token = ""
        while True:
            try:
                answer = self._call(
                    "POST", url, params={"rewriteToken": token} if token else None, json_body={}
                ).json()
            except ObjectNotFound:
                self.get_object(container, name)
                raise
            if answer.get("done", True) and answer.get("resource"):
                return self._to_object(target_container, answer["resource"])
            token = str(answer.get("rewriteToken") or "")
            if not token:
                return self.get_object(target_container, target_name)

    def object_url(
        self, container: str, name: str, method: str = "GET", expires: int = 3600
    ) -> str:
        """A V4 signed URL (GOOG4-RSA-SHA256), signed with the service account's key."""
        validate_key(name)
        check_url_request(method, expires, PROVIDER)
        return signed_url(
            self.account,
            self.endpoint,
            f"/{container}/{quote(name, safe='/-_.~')}",
            method,
            expires,
            datetime.datetime.now(datetime.UTC),
        )
