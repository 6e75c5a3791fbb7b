"""V4 signed URLs for Cloud Storage (GOOG4-RSA-SHA256), signed with the
service account's private key."""

from __future__ import annotations

import datetime
import hashlib
from urllib.parse import quote, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from drivers.common.google_auth import ServiceAccount


def signed_url(
    account: ServiceAccount,
    endpoint: str,
    path: str,
    method: str,
    expires: int,
    now: datetime.datetime,
) -> str:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{stamp[:8]}/auto/storage/goog4_request"
    host = urlsplit(endpoint).netloc
    query = {
        "X-Goog-Algorithm": "GOOG4-RSA-SHA256",
        "X-Goog-Credential": f"{account.client_email}/{scope}",
        "X-Goog-Date": stamp,
        "X-Goog-Expires": str(expires),
        "X-Goog-SignedHeaders": "host",
    }
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
    )
    canonical_request = "\n".join(
        [method, path, canonical_query, f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            stamp,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    signature = account.private_key.sign(to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{endpoint}{path}?{canonical_query}&X-Goog-Signature={signature.hex()}"
