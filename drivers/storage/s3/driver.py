"""``s3``: Amazon S3 and S3-compatible stores (Ceph RGW, MinIO) over SigV4 and requests.

Addressing is virtual-host style on AWS and path style with an ``endpoint``
(``path_style`` overrides). Uploads of unknown length are multipart: parts
of ``part_size`` bytes, up to ``parallel_parts`` in flight, each sent with
``Content-MD5`` and its returned ETag checked; the part size doubles every
1,000 parts so the 10,000-part limit is never reached (8 MiB parts reach
about 8 TB). Any failure aborts the multipart upload, leaving no parts.

Hashes: a single-PUT object's ETag is its MD5 and is checked on upload and
download. A multipart object's ETag is the MD5 of its parts' MD5s; Overcast
records its first part size in ``x-amz-meta-overcast-part-size``, so its
downloads are checked against the ETag too. Objects from elsewhere with a
multipart ETag are not checked (``hash_type`` None).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

import requests
from lxml import etree

from drivers.common.http import Connection
from drivers.compute.ec2.signing import Credentials, presign, sign
from drivers.errors import (
    ContainerExists,
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
    metadata_from,
    validate_key,
    verified,
)
from drivers.storage.parts import chain, parts_of, send_parts
from drivers.storage.s3.errors import PARSER, PROVIDER, error_of, text_of
from drivers.storage.s3.multipart import (
    MAX_PART,
    MIB,
    PART_SIZE_META,
    check_etag,
    md5_header,
    multipart_etag,
    part_size_at,
    verified_multipart,
)


class S3StorageDriver(StorageDriver):
    name = "Amazon S3"
    provider = PROVIDER
    features = StorageFeatures(server_side_copy=True, object_url=True, hash_type="md5")

    def __init__(
        self,
        key: str,
        secret: str,
        region: str = "us-east-1",
        endpoint: str | None = None,
        token: str | None = None,
        path_style: bool | None = None,
        part_size: int = 8 * MIB,
        parallel_parts: int = 4,
        timeout: tuple[float, float] = (10.0, 120.0),
        **_options: Any,
    ) -> None:
        if not 5 * MIB <= part_size <= MAX_PART:
            raise InvalidRequest("part_size must be 5 MiB to 5 GiB", provider=PROVIDER)
        self.credentials = Credentials(key, secret, token)
        self.region = region
        self.endpoint = (endpoint or f"https://s3.{region}.amazonaws.com").rstrip("/")
        self.path_style = endpoint is not None if path_style is None else path_style
        self.part_size = part_size
        self.parallel_parts = max(1, parallel_parts)
        self.connection = Connection(
            self.endpoint, provider=PROVIDER, timeout=timeout, error_mapper=error_of
        )

    # -- requests ----------------------------------------------------------

    def _url(self, bucket: str | None = None, key: str | None = None) -> str:
        path = "" if key is None else quote(key, safe="/-_.~")
        if bucket is None:
            return f"{self.endpoint}/"
        if self.path_style:
            return (
                f"{self.endpoint}/{bucket}/{path}"
                if key is not None
                else f"{self.endpoint}/{bucket}"
            )
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{bucket}.{parts.netloc}/{path}"

    def _call(
        self,
        method: str,
        bucket: str | None = None,
        key: str | None = None,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        stream: bool = False,
        idempotent: bool | None = None,
    ) -> requests.Response:
        url = self._url(bucket, key)
        if query:
            url += "?" + "&".join(
                f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" if v != "" else quote(k)
                for k, v in sorted(query.items())
            )
        payload_hash = hashlib.sha256(body).hexdigest()
        all_headers = {"x-amz-content-sha256": payload_hash, **(headers or {})}
        signed = sign(
            method,
            url,
            all_headers,
            body,
            self.credentials,
            self.region,
            "s3",
            encoded_path=True,
            payload_hash=payload_hash,  # hashed once: parts are megabytes
        )
        return self.connection.request(
            method,
            url,
            data=body or None,
            headers={**all_headers, **signed},
            stream=stream,
            idempotent=idempotent,
        )

    def _xml(self, response: requests.Response) -> Any:
        try:
            return etree.fromstring(response.content, PARSER)
        except etree.XMLSyntaxError:
            raise ProviderError("invalid XML in an S3 answer", provider=PROVIDER) from None

    # -- containers --------------------------------------------------------

    def iterate_containers(self) -> Iterator[Container]:
        token = None
        while True:
            query = {"continuation-token": token} if token else None
            root = self._xml(self._call("GET", query=query))
            for bucket in root.iterfind("{*}Buckets/{*}Bucket"):
                yield Container(
                    name=text_of(bucket, "Name"),
                    provider=PROVIDER,
                    extra={"created_at": text_of(bucket, "CreationDate")},
                )
            token = text_of(root, "ContinuationToken")
            if not token:
                return

    def get_container(self, name: str) -> Container:
        try:
            response = self._call("HEAD", name)
        except ObjectNotFound:
            raise ContainerNotFound(f"container {name} not found", provider=PROVIDER) from None
        region = response.headers.get("x-amz-bucket-region", self.region)
        return Container(name=name, provider=PROVIDER, location=region)

    def create_container(self, name: str, location: str | None = None) -> Container:
        region = location or self.region
        # us-east-1 answers 200 to re-creating a bucket one owns: ask first.
        try:
            self.get_container(name)
        except ContainerNotFound:
            pass
        else:
            raise ContainerExists(f"container {name} exists", provider=PROVIDER)
        body = b""
        if region != "us-east-1":
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{escape(region)}</LocationConstraint>"
                "</CreateBucketConfiguration>"
            ).encode()
        self._call("PUT", name, body=body, idempotent=False)
        return Container(name=name, provider=PROVIDER, location=region)

    def delete_container(self, name: str) -> None:
        try:
            self._call("DELETE", name)
        except ObjectNotFound:
            raise ContainerNotFound(f"container {name} not found", provider=PROVIDER) from None

    # -- objects -----------------------------------------------------------

    def list_objects(
        self,
        container: str,
        prefix: str = "",
        delimiter: str | None = None,
        marker: str | None = None,
        limit: int = 1000,
    ) -> ObjectListing:
        query = {"list-type": "2", "max-keys": str(min(limit, 1000)), "prefix": prefix}
        if delimiter:
            query["delimiter"] = delimiter
        if marker:
            query["start-after"] = marker
        root = self._xml(self._call("GET", container, query=query))
        objects = tuple(
            Object(
                container=container,
                name=text_of(item, "Key"),
                size=int(text_of(item, "Size") or 0),
                hash=text_of(item, "ETag").strip('"') or None,
                hash_type=None if "-" in text_of(item, "ETag") else "md5",
                last_modified=datetime.datetime.fromisoformat(
                    text_of(item, "LastModified").replace("Z", "+00:00")
                ),
            )
            for item in root.iterfind("{*}Contents")
        )
        prefixes = tuple(text_of(item, "Prefix") for item in root.iterfind("{*}CommonPrefixes"))
        truncated = text_of(root, "IsTruncated") == "true"
        names = sorted([o.name for o in objects] + list(prefixes))
        return ObjectListing(objects, prefixes, names[-1] if truncated and names else None)

    def get_object(self, container: str, name: str) -> Object:
        validate_key(name)
        headers = self._head(container, name)
        return self._to_object(container, name, headers)

    def _head(self, container: str, name: str) -> Mapping[str, str]:
        try:
            return self._call("HEAD", container, name).headers
        except ObjectNotFound:
            self.get_container(container)  # ContainerNotFound if that is what is missing
            raise ObjectNotFound(
                f"object {container}/{name} not found", provider=PROVIDER
            ) from None

    def _to_object(self, container: str, name: str, headers: Mapping[str, str]) -> Object:
        etag = headers.get("ETag", "").strip('"')
        metadata = metadata_from(headers, "x-amz-meta-")
        part_size = metadata.pop(PART_SIZE_META, None)
        modified = headers.get("Last-Modified")
        return Object(
            container=container,
            name=name,
            size=int(headers.get("Content-Length", 0)),
            hash=etag or None,
            hash_type="md5"
            if etag and "-" not in etag
            else ("s3-multipart" if part_size else None),
            content_type=headers.get("Content-Type"),
            last_modified=parsedate_to_datetime(modified) if modified else None,
            metadata=metadata,
            extra={"etag": etag, "part_size": int(part_size) if part_size else None},
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
        base = self.part_size
        if size is not None:  # a known size never needs more than 10,000 parts
            base = max(base, -(-size // 10_000))
        headers = {f"x-amz-meta-{k}": v for k, v in (metadata or {}).items()}
        if content_type:
            headers["Content-Type"] = content_type
        parts = parts_of(chunks, lambda number: part_size_at(base, number))
        # The whole body's MD5 is only needed to check a Content-MD5 given for it.
        whole = hashlib.md5() if content_md5 is not None else None
        first = next(parts, b"")
        second = next(parts, None)
        if second is None:  # it fits in one PUT
            digest = hashlib.md5(first)
            check_received(
                f"{container}/{name}",
                written=len(first),
                size=size,
                md5_hex=digest.hexdigest(),
                content_md5=content_md5,
                provider=PROVIDER,
            )
            response = self._call(
                "PUT", container, name, headers={**headers, **md5_header(digest)}, body=first
            )
            try:
                check_etag(response, digest.hexdigest(), f"{container}/{name}")
            except HashMismatch:
                # S3 refuses a body that fails Content-MD5; a store that took it anyway
                # keeps corrupt bytes, which must not stay.
                with contextlib.suppress(DriverError):
                    self._call("DELETE", container, name)
                raise
            return self.get_object(container, name)
        headers[f"x-amz-meta-{PART_SIZE_META}"] = str(base)
        upload = text_of(
            self._xml(self._call("POST", container, name, query={"uploads": ""}, headers=headers)),
            "UploadId",
        )
        ahead = [first, second]  # handed on, not held: memory stays bounded by parts in flight
        del first, second
        try:
            etags, written = self._send_parts(container, name, upload, chain(ahead, parts), whole)
            check_received(
                f"{container}/{name}",
                written=written,
                size=size,
                md5_hex=whole.hexdigest() if whole is not None else "",
                content_md5=content_md5,
                provider=PROVIDER,
            )
            body = "".join(
                f'<Part><PartNumber>{n}</PartNumber><ETag>"{etag}"</ETag></Part>'
                for n, etag in enumerate(etags, 1)
            )
            done = self._call(
                "POST",
                container,
                name,
                query={"uploadId": upload},
                body=f"<CompleteMultipartUpload>{body}</CompleteMultipartUpload>".encode(),
                idempotent=False,
            )
            self._xml(done)  # S3 may answer 200 with an error body
        except BaseException:
            self._abort(container, name, upload)
            raise
        stored = self.get_object(container, name)
        expected = multipart_etag(etags)
        if stored.extra["etag"] != expected:
            with contextlib.suppress(DriverError):
                self._call("DELETE", container, name)
            raise HashMismatch(
                f"{container}/{name}: multipart ETag",
                expected=expected,
                actual=stored.extra["etag"],
                provider=PROVIDER,
            )
        return stored

    def _send_parts(
        self, container: str, name: str, upload: str, chunks: Iterator[bytes], whole: Any
    ) -> tuple[list[str], int]:
        """Upload every part, ``parallel_parts`` at a time; their MD5 hex digests."""

        def send(number: int, data: bytes) -> str:
            digest = hashlib.md5(data)
            response = self._call(
                "PUT",
                container,
                name,
                query={"partNumber": str(number), "uploadId": upload},
                headers=md5_header(digest),
                body=data,
            )
            check_etag(response, digest.hexdigest(), f"{container}/{name} part {number}")
            return digest.hexdigest()

        seen = whole.update if whole is not None else None
        return send_parts(chunks, send, self.parallel_parts, "s3-part", seen)

    def _abort(self, container: str, name: str, upload: str) -> None:
        # Nothing to abort, or the store is gone: the error that got us here matters.
        with contextlib.suppress(DriverError):
            self._call("DELETE", container, name, query={"uploadId": upload})

    def download_object_as_stream(
        self, container: str, name: str, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        validate_key(name)
        response = self._get(container, name)
        stored = self._to_object(container, name, response.headers)
        chunks = response.iter_content(chunk_size)
        what = f"{container}/{name}"
        if stored.hash_type == "md5":
            return verified(chunks, "md5", stored.hash, what=what, provider=PROVIDER)
        if stored.hash_type == "s3-multipart":
            return verified_multipart(chunks, stored, what)
        return iter(chunks)

    def _get(self, container: str, name: str, byte_range: str | None = None) -> requests.Response:
        headers = {"Range": byte_range} if byte_range else None
        try:
            return self._call("GET", container, name, headers=headers, stream=True)
        except ObjectNotFound:
            self.get_container(container)
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
        self.get_object(container, name)  # S3 answers 204 for a missing key
        self._call("DELETE", container, name)

    def copy_object(
        self, container: str, name: str, target_container: str, target_name: str
    ) -> Object:
        validate_key(name)
        validate_key(target_name)
        source = f"/{container}/{quote(name, safe='/-_.~')}"
        try:
            self._xml(
                self._call(
                    "PUT", target_container, target_name, headers={"x-amz-copy-source": source}
                )
            )
        except ObjectNotFound:
            self.get_object(container, name)
            raise
        return self.get_object(target_container, target_name)

    def object_url(
        self, container: str, name: str, method: str = "GET", expires: int = 3600
    ) -> str:
        validate_key(name)
        check_url_request(method, expires, PROVIDER)
        return presign(
            method, self._url(container, name), self.credentials, self.region, "s3", expires
        )
