"""Azure Storage Shared Key signing, and service SAS URLs for single blobs.

Both are HMAC-SHA256 with the account key over a canonical string; the
formats are the Blob service's (REST versions 2015-02-21 and 2020-12-06 on).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

#: The REST API version every request names (SAS included).
API_VERSION = "2021-12-02"

#: Headers of the Shared Key string to sign, in order, before x-ms-* headers.
STANDARD_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)


def _hmac(key: bytes, text: str) -> str:
    return base64.b64encode(hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()).decode()


def shared_key(account: str, key: bytes, method: str, url: str, headers: Mapping[str, str]) -> str:
    """The ``Authorization`` header value for a request (all its headers given)."""
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    if lowered.get("content-length") == "0":
        lowered["content-length"] = ""  # 2015-02-21 on: a zero length is signed as empty
    parts = urlsplit(url)
    canonical_headers = "".join(
        f"{name}:{lowered[name]}\n" for name in sorted(lowered) if name.startswith("x-ms-")
    )
    resource = f"/{account}{parts.path or '/'}"
    query: dict[str, list[str]] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(name.lower(), []).append(value)
    for name in sorted(query):
        resource += f"\n{name}:{','.join(sorted(query[name]))}"
    text = "\n".join([method.upper(), *(lowered.get(name, "") for name in STANDARD_HEADERS)])
    return f"SharedKey {account}:{_hmac(key, text + chr(10) + canonical_headers + resource)}"


def blob_sas(
    account: str,
    key: bytes,
    container: str,
    blob: str,
    permissions: str,
    expiry: str,
    protocol: str = "https,http",
) -> dict[str, str]:
    """Query parameters of a service SAS for one blob (``permissions`` such as
    "r" or "cw"; ``expiry`` in ISO 8601 UTC)."""
    resource = f"/blob/{account}/{container}/{unquote(blob)}"
    text = "\n".join(
        [
            permissions,
            "",  # signedStart
            expiry,
            resource,
            "",  # signedIdentifier
            "",  # signedIP
            protocol,
            API_VERSION,
            "b",  # signedResource: a blob
            "",  # signedSnapshotTime
            "",  # signedEncryptionScope
            "",  # rscc
            "",  # rscd
            "",  # rsce
            "",  # rscl
            "",  # rsct
        ]
    )
    return {
        "sv": API_VERSION,
        "sr": "b",
        "sp": permissions,
        "se": expiry,
        "spr": protocol,
        "sig": _hmac(key, text),
    }


#: Azurite's (and the Azure docs') development account.
DEVELOPMENT_ACCOUNT = "devstoreaccount1"


def development_secret() -> str:
    """Azurite's documented development account key (public, for emulators only)."""
    return (
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    )
