"""Multipart mechanics: part sizes, regrouping a stream into parts, and the
multipart ETag (the MD5 of the parts' MD5s), computed to check both ways."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

import requests

from drivers.errors import HashMismatch
from drivers.storage import parts
from drivers.storage.base import Object
from drivers.storage.s3.errors import PROVIDER

MIB = 1024 * 1024
MAX_PART = 5 * 1024 * MIB
#: Object metadata recording the first part size, so downloads can check the ETag.
PART_SIZE_META = "overcast-part-size"


def part_size_at(base: int, number: int) -> int:
    """The size of S3 part ``number`` (1-based): see :func:`drivers.storage.parts.part_size_at`."""
    return parts.part_size_at(base, number, MAX_PART)


def md5_header(digest: Any) -> dict[str, str]:
    """Content-MD5 for a body whose ``hashlib.md5`` is ``digest`` (hashed once, used twice)."""
    return {"Content-MD5": base64.b64encode(digest.digest()).decode()}


def check_etag(response: requests.Response, md5_hex: str, what: str) -> None:
    etag = response.headers.get("ETag", "").strip('"')
    if etag and etag != md5_hex:
        raise HashMismatch(
            f"{what}: ETag of what S3 stored", expected=md5_hex, actual=etag, provider=PROVIDER
        )


def multipart_etag(md5_hexes: list[str]) -> str:
    joined = b"".join(bytes.fromhex(digest) for digest in md5_hexes)
    return f"{hashlib.md5(joined).hexdigest()}-{len(md5_hexes)}"


def verified_multipart(chunks: Iterable[bytes], stored: Object, what: str) -> Iterator[bytes]:
    """Yield ``chunks``; at the end, raise :class:`HashMismatch` unless the parts'
    MD5s (cut at Overcast's recorded part sizes) give the object's ETag."""
    base = int(stored.extra["part_size"])
    digests: list[str] = []
    number, current, left = 1, hashlib.md5(), part_size_at(base, 1)
    for chunk in chunks:
        view = memoryview(chunk)
        while len(view):
            take = view[:left]
            current.update(take)
            left -= len(take)
            view = view[len(take) :]
            if left == 0:
                digests.append(current.hexdigest())
                number += 1
                current, left = hashlib.md5(), part_size_at(base, number)
        yield chunk
    if left != part_size_at(base, number):
        digests.append(current.hexdigest())
    if multipart_etag(digests) != stored.hash:
        raise HashMismatch(
            f"{what}: ETag of the bytes read",
            expected=str(stored.hash),
            actual=multipart_etag(digests),
            provider=PROVIDER,
        )
