"""S3 error answers (an XML body, or only a status for HEAD) mapped onto the error tree."""

from __future__ import annotations

from typing import Any

import requests
from lxml import etree

from drivers.errors import (
    AuthError,
    ContainerExists,
    ContainerNotEmpty,
    ContainerNotFound,
    DriverError,
    HashMismatch,
    InvalidRequest,
    ObjectNotFound,
    ProviderError,
    RateLimited,
)

PROVIDER = "s3"
PARSER = etree.XMLParser(resolve_entities=False, no_network=True)

AUTH_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}
)


def text_of(element: Any, name: str) -> str:
    found = element.find(f"{{*}}{name}")
    return "" if found is None or found.text is None else str(found.text)


def error_of(response: requests.Response) -> DriverError:
    """Map an S3 error answer (XML body, or only a status for HEAD) to the tree."""
    code, message = "", response.reason or ""
    if response.content:
        try:
            root = etree.fromstring(response.content, PARSER)
            code, message = text_of(root, "Code"), text_of(root, "Message") or message
        except etree.XMLSyntaxError:
            pass
    text = f"{code or response.status_code}: {message}"
    status = response.status_code
    if code in AUTH_CODES or status in (401, 403):
        return AuthError(text, provider=PROVIDER)
    if code == "NoSuchBucket":
        return ContainerNotFound(text, provider=PROVIDER)
    if code in ("NoSuchKey", "NoSuchUpload") or status == 404:
        return ObjectNotFound(text, provider=PROVIDER)
    if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
        return ContainerExists(text, provider=PROVIDER)
    if code == "BucketNotEmpty":
        return ContainerNotEmpty(text, provider=PROVIDER)
    if code in ("BadDigest", "InvalidDigest"):
        return HashMismatch(
            text, expected="Content-MD5 sent", actual="bytes received", provider=PROVIDER
        )
    if code == "SlowDown" or status == 429:
        return RateLimited(text, provider=PROVIDER)
    if status >= 500:
        return ProviderError(text, transient=True, status=status, provider=PROVIDER)
    return InvalidRequest(text, provider=PROVIDER)
