"""Azure Blob error answers (an XML body, or an ``x-ms-error-code`` header for
HEAD) mapped onto the error tree."""

from __future__ import annotations

from typing import Any

import requests
from lxml import etree

from drivers.errors import (
    AuthError,
    ContainerExists,
    ContainerNotFound,
    DriverError,
    HashMismatch,
    InvalidRequest,
    ObjectNotFound,
    ProviderError,
    RateLimited,
)

PROVIDER = "azure_blobs"
PARSER = etree.XMLParser(resolve_entities=False, no_network=True)

AUTH_CODES = frozenset(
    {"AuthenticationFailed", "AuthorizationFailure", "AuthorizationPermissionMismatch"}
)


def text_of(element: Any, name: str) -> str:
    found = element.find(name)
    return "" if found is None or found.text is None else str(found.text)


def error_of(response: requests.Response) -> DriverError:
    code = response.headers.get("x-ms-error-code", "")
    message = response.reason or ""
    if response.content:
        try:
            root = etree.fromstring(response.content, PARSER)
            code = text_of(root, "Code") or code
            message = text_of(root, "Message").split("\n")[0] or message
        except etree.XMLSyntaxError:
            pass
    text = f"{code or response.status_code}: {message}"
    status = response.status_code
    if code in AUTH_CODES or status in (401, 403):
        return AuthError(text, provider=PROVIDER)
    if code == "ContainerNotFound":
        return ContainerNotFound(text, provider=PROVIDER)
    if code == "BlobNotFound" or status == 404:
        return ObjectNotFound(text, provider=PROVIDER)
    if code in ("ContainerAlreadyExists", "ContainerBeingDeleted"):
        return ContainerExists(text, provider=PROVIDER)
    # Azure says Md5Mismatch; Azurite says InvalidOperation, naming the MD5.
    if code in ("Md5Mismatch", "InvalidMd5") or (
        code == "InvalidOperation" and "md5" in message.lower()
    ):
        return HashMismatch(
            text, expected="Content-MD5 sent", actual="bytes received", provider=PROVIDER
        )
    if code in ("ServerBusy",) or status == 429:
        return RateLimited(text, provider=PROVIDER)
    if status >= 500:
        return ProviderError(text, transient=True, status=status, provider=PROVIDER)
    return InvalidRequest(text, provider=PROVIDER)
