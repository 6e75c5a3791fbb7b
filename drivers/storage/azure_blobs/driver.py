"""``azure_blobs``: Azure Blob Storage (block blobs) over its REST API.

Auth is Shared Key (HMAC-SHA256 with the account key); ``object_url`` gives
service SAS URLs. ``endpoint`` points at any Blob endpoint: Azurite and
Azure Stack use path-style URLs (``http://host:10000/<account>``), which is
assumed whenever an endpoint is given.

Integrity: every block and every single-shot upload carries its Content-MD5,
which the service verifies, and the MD5 the service answers is compared with
the bytes sent. The whole blob's MD5 is computed while streaming and stored
as the blob's ``Content-MD5`` when the block list is committed, and every
download is checked against it. Streams of unknown length go as blocks
(``part_size``, doubling every 1,000 blocks, so the 50,000-block limit is
never reached), ``parallel_parts`` at a time. Azure has no abort for blocks:
a failed upload commits an empty block list over a blob that did not exist
and deletes it (or re-commits the blob's own blocks over one that did),
which discards every uncommitted block, so nothing is left behind.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import hashlib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode

import requests
from lxml import etree

from drivers.common.http import Connection
from drivers.errors import (
    ContainerNotEmpty,
    DriverError,
    HashMismatch,
    InvalidRequest,
    ObjectNotFound,
)
from drivers.storage.azure_blobs.auth import API_VERSION, blob_sas, shared_key
from drivers.storage.azure_blobs.errors import PARSER, PROVIDER, error_of, text_of
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
    metadata_from,
    validate_key,
    verified,
)
from drivers.storage.parts import chain, part_size_at, parts_of, send_parts

MIB = 1024 * 1024
#: Largest block (Put Block, REST 2019-12-12 on).
MAX_BLOCK = 4000 * MIB


def md5_base64(digest: Any) -> str:
    return base64.b64encode(digest.digest()).decode()


class AzureBlobsStorageDriver(StorageDriver):
    name = "Azure Blob Storage"
    provider = PROVIDER
    features = StorageFeatures(server_side_copy=True, object_url=True, hash_type="md5")

    def __init__(
        self,
        key: str,
        secret: str,
        endpoint: str | None = None,
        part_size: int = 8 * MIB,
        parallel_parts: int = 4,
        timeout: tuple[float, float] = (10.0, 120.0),
        **_options: Any,
    ) -> None:
        """``key`` is the storage account's name, ``secret`` its base64 key."""
        if not MIB <= part_size <= MAX_BLOCK:
            raise InvalidRequest("part_size must be 1 MiB to 4000 MiB", provider=PROVIDER)
        try:
            self._key = base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("the account key is not base64", provider=PROVIDER) from None
        self.account = key
        self.endpoint = (endpoint or f"https://{key}.blob.core.windows.net").rstrip("/")
        if endpoint is not None:
            self.endpoint += f"/{key}"
        self.part_size = part_size
        self.parallel_parts = max(1, parallel_parts)
        self.connection = Connection(
            self.endpoint, provider=PROVIDER, timeout=timeout, error_mapper=error_of
        )

    # -- requests ----------------------------------------------------------

    def _url(self, container: str | None = None, blob: str | None = None) -> str:
        url = self.endpoint
        if container is not None:
            url += f"/{container}"
        if blob is not None:
            url += "/" + quote(blob, safe="/-_.~")
        return url

    def _call(
        self,
        method: str,
        container: str | None = None,
        blob: str | None = None,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        stream: bool = False,
        expect: tuple[int, ...] = (),
    ) -> requests.Response:
        url = self._url(container, blob)
        if query:
            url += "?" + urlencode(sorted(query.items()), quote_via=quote, safe="")
        all_headers = {
            "x-ms-date": formatdate(usegmt=True),
            "x-ms-version": API_VERSION,
            "Content-Length": str(len(body)),
            **(headers or {}),
        }
        all_headers["Authorization"] = shared_key(self.account, self._key, method, url, all_headers)
        return self.connection.request(
            method,
            url,
            data=body or None,
            headers=all_headers,
            stream=stream,
            expect=expect,
        )

    def _xml(self, response: requests.Response) -> Any:
        return etree.fromstring(response.content, PARSER)

    # -- containers --------------------------------------------------------

    def iterate_containers(self) -> Iterator[Container]:
        marker = ""
        while True:
            query = {"comp": "list", "maxresults": "1000"}
            if marker:
                query["marker"] = marker
            root = self._xml(self._call("GET", query=query))
            for element in root.iterfind("Containers/Container"):
                yield Container(name=text_of(element, "Name"), provider=PROVIDER)
            marker = text_of(root, "NextMarker")
            if not marker:
                return

    def get_container(self, name: str) -> Container:
        self._call("HEAD", name, query={"restype": "container"})
        return Container(name=name, provider=PROVIDER)

    def create_container(self, name: str, location: str | None = None) -> Container:
        """Azure places a container in its account's region: ``location`` is
        recorded, not chosen."""
        self._call("PUT", name, query={"restype": "container"})
        return Container(name=name, provider=PROVIDER, location=location)

    def delete_container(self, name: str) -> None:
        # Azure deletes a container with its blobs; the contract refuses instead.
        if self.list_objects(name, limit=1).objects:
            raise ContainerNotEmpty(f"container {name} is not empty", provider=PROVIDER)
        self._call("DELETE", name, query={"restype": "container"})

    # -- objects -----------------------------------------------------------

    def list_objects(
        self,
        container: str,
        prefix: str = "",
        delimiter: str | None = None,
        marker: str | None = None,
        limit: int = 1000,
    ) -> ObjectListing:
        query = {
            "restype": "container",
            "comp": "list",
            "include": "metadata",
            "maxresults": str(max(1, min(limit, 5000))),
        }
        if prefix:
            query["prefix"] = prefix
        if delimiter:
            query["delimiter"] = delimiter
        if marker:
            query["marker"] = marker
        root = self._xml(self._call("GET", container, query=query))
        objects = tuple(self._listed(container, element) for element in root.iterfind("Blobs/Blob"))
        prefixes = tuple(text_of(element, "Name") for element in root.iterfind("Blobs/BlobPrefix"))
        return ObjectListing(objects, prefixes, text_of(root, "NextMarker") or None)

    def _listed(self, container: str, element: Any) -> Object:
        properties = element.find("Properties")
        headers = {
            "Content-Length": text_of(properties, "Content-Length"),
            "Content-MD5": text_of(properties, "Content-MD5"),
            "Content-Type": text_of(properties, "Content-Type"),
            "Last-Modified": text_of(properties, "Last-Modified"),
            "ETag": text_of(properties, "Etag"),
        }
        metadata = element.find("Metadata")
        if metadata is not None:
            headers.update({f"x-ms-meta-{item.tag}": item.text or "" for item in metadata})
        return self._to_object(container, text_of(element, "Name"), headers)

    def get_object(self, container: str, name: str) -> Object:
        validate_key(name)
        try:
            headers = self._call("HEAD", container, name).headers
        except ObjectNotFound:
            self.get_container(container)  # ContainerNotFound if that is what is missing
            raise ObjectNotFound(
                f"object {container}/{name} not found", provider=PROVIDER
            ) from None
        return self._to_object(container, name, headers)

    def _to_object(self, container: str, name: str, headers: Mapping[str, str]) -> Object:
        md5_hex = md5_hex_of(headers.get("Content-MD5"))
        modified = headers.get("Last-Modified")
        return Object(
            container=container,
            name=name,
            size=int(headers.get("Content-Length") or 0),
            hash=md5_hex,
            hash_type="md5" if md5_hex else None,
            content_type=headers.get("Content-Type") or None,
            last_modified=parsedate_to_datetime(modified) if modified else None,
            metadata=metadata_from(headers, "x-ms-meta-"),
            extra={"etag": headers.get("ETag", "").strip('"')},
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
        properties = {f"x-ms-meta-{k}": v for k, v in (metadata or {}).items()}
        properties["x-ms-blob-content-type"] = content_type or "application/octet-stream"
        base = self.part_size
        parts = parts_of(chunks, lambda number: part_size_at(base, number, MAX_BLOCK))
        first = next(parts, b"")
        second = next(parts, None)
        if second is None:  # it fits in one Put Blob
            digest = hashlib.md5(first)
            check_received(
                what,
                written=len(first),
                size=size,
                md5_hex=digest.hexdigest(),
                content_md5=content_md5,
                provider=PROVIDER,
            )
            headers = {
                **properties,
                "x-ms-blob-type": "BlockBlob",
                "Content-MD5": md5_base64(digest),
                "x-ms-blob-content-md5": md5_base64(digest),
            }
            response = self._call("PUT", container, name, headers=headers, body=first)
            self._check_md5(response, digest.hexdigest(), what)
            return self.get_object(container, name)
        try:
            previous: Object | None = self.get_object(container, name)
        except ObjectNotFound:
            previous = None
        upload = uuid.uuid4().hex
        whole = hashlib.md5()
        try:
            block_ids, written = send_parts(
                chain([first, second], parts),
                lambda number, data: self._put_block(container, name, upload, number, data),
                self.parallel_parts,
                "azure-block",
                whole.update,
            )
            check_received(
                what,
                written=written,
                size=size,
                md5_hex=whole.hexdigest(),
                content_md5=content_md5,
                provider=PROVIDER,
            )
            self._commit(
                container,
                name,
                block_ids,
                {
                    **properties,
                    "x-ms-blob-content-md5": md5_base64(whole),
                },
            )
        except BaseException:
            self._discard_blocks(container, name, previous)
            raise
        return self.get_object(container, name)

    def _put_block(self, container: str, name: str, upload: str, number: int, data: bytes) -> str:
        block_id = base64.b64encode(f"{upload}-{number:06d}".encode()).decode()
        digest = hashlib.md5(data)
        response = self._call(
            "PUT",
            container,
            name,
            query={"comp": "block", "blockid": block_id},
            headers={"Content-MD5": md5_base64(digest)},
            body=data,
        )
        self._check_md5(response, digest.hexdigest(), f"{container}/{name} block {number}")
        return block_id

    def _commit(
        self,
        container: str,
        name: str,
        block_ids: list[str],
        headers: Mapping[str, str],
        kind: str = "Latest",
    ) -> None:
        body = "".join(f"<{kind}>{block_id}</{kind}>" for block_id in block_ids)
        self._call(
            "PUT",
            container,
            name,
            query={"comp": "blocklist"},
            headers={**headers, "Content-Type": "application/xml"},
            body=f'<?xml version="1.0" encoding="utf-8"?><BlockList>{body}</BlockList>'.encode(),
        )

    def _discard_blocks(self, container: str, name: str, previous: Object | None) -> None:
        """Drop the uncommitted blocks of a failed upload: committing a block
        list discards every block not in it."""
        with contextlib.suppress(DriverError):
            if previous is None:
                self._commit(container, name, [], {})
                self._call("DELETE", container, name)
                return
            committed = self._xml(
                self._call(
                    "GET",
                    container,
                    name,
                    query={"comp": "blocklist", "blocklisttype": "committed"},
                )
            )
            ids = [text_of(block, "Name") for block in committed.iterfind("CommittedBlocks/Block")]
            restored = {f"x-ms-meta-{k}": v for k, v in previous.metadata.items()}
            if previous.content_type:
                restored["x-ms-blob-content-type"] = previous.content_type
            if previous.hash:
                restored["x-ms-blob-content-md5"] = base64.b64encode(
                    bytes.fromhex(previous.hash)
                ).decode()
            self._commit(container, name, ids, restored, kind="Committed")

    def _check_md5(self, response: requests.Response, md5_hex: str, what: str) -> None:
        stored = md5_hex_of(response.headers.get("Content-MD5"))
        if stored is not None and stored != md5_hex:
            raise HashMismatch(
                f"{what}: MD5 of what Azure stored",
                expected=md5_hex,
                actual=stored,
                provider=PROVIDER,
            )

    def uncommitted_blocks(self, container: str, name: str) -> list[str]:
        """Names of the blob's uncommitted blocks (none once an upload ended)."""
        try:
            root = self._xml(
                self._call(
                    "GET",
                    container,
                    name,
                    query={"comp": "blocklist", "blocklisttype": "uncommitted"},
                )
            )
        except ObjectNotFound:
            return []
        return [text_of(block, "Name") for block in root.iterfind("UncommittedBlocks/Block")]

    def download_object_as_stream(
        self, container: str, name: str, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        validate_key(name)
        response = self._get(container, name)
        stored = self._to_object(container, name, response.headers)
        return verified(
            response.iter_content(chunk_size),
            "md5",
            stored.hash,
            what=f"{container}/{name}",
            provider=PROVIDER,
        )

    def _get(self, container: str, name: str, byte_range: str | None = None) -> requests.Response:
        headers = {"x-ms-range": byte_range} if byte_range else None
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
        validate_key(name)
        try:
            self._call("DELETE", container, name)
        except ObjectNotFound:
            self.get_container(container)
            raise

    def copy_object(
        self, container: str, name: str, target_container: str, target_name: str
    ) -> Object:
        validate_key(name)
        validate_key(target_name)
        self.get_object(container, name)
        response = self._call(
            "PUT",
            target_container,
            target_name,
            headers={"x-ms-copy-source": self._url(container, name)},
        )
        if response.headers.get("x-ms-copy-status", "success") != "success":
            # Within one account a copy is synchronous; anything else is not ours to wait on.
            raise InvalidRequest(
                f"copy to {target_container}/{target_name} is "
                f"{response.headers.get('x-ms-copy-status')}",
                provider=PROVIDER,
            )
        return self.get_object(target_container, target_name)

    def object_url(
        self, container: str, name: str, method: str = "GET", expires: int = 3600
    ) -> str:
        """A SAS URL; a PUT through it must send ``x-ms-blob-type: BlockBlob``."""
        validate_key(name)
        check_url_request(method, expires, PROVIDER)
        until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expires)
        query = blob_sas(
            self.account,
            self._key,
            container,
            name,
            "r" if method == "GET" else "cw",
            until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        return f"{self._url(container, name)}?{urlencode(query, quote_via=quote, safe='')}"


__all__ = ["AzureBlobsStorageDriver"]
