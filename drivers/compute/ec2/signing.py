"""AWS Signature Version 4: signed headers (EC2 Query API, S3) and presigned URLs (S3).

https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
Any method, any headers, a body. S3 sends paths already percent-encoded
(``encoded_path=True``: signed as sent, not encoded twice) and may sign a
precomputed or ``UNSIGNED-PAYLOAD`` payload hash.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, repr=False)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key!r}, secret_key=***)"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        pairs.append((_encode(_unquote(name)), _encode(_unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _unquote(text: str) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(text)


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret_key}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    region: str,
    service: str,
    now: datetime.datetime | None = None,
    *,
    encoded_path: bool = False,
    payload_hash: str | None = None,
) -> dict[str, str]:
    """The headers to add so the request is signed (X-Amz-Date, Authorization, ...)."""
    moment = (now or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    parts = urlsplit(url)
    added = {"X-Amz-Date": amz_date}
    if credentials.session_token:
        added["X-Amz-Security-Token"] = credentials.session_token
    all_headers = {
        "host": parts.netloc,
        **{k.lower(): v for k, v in headers.items()},
        **{k.lower(): v for k, v in added.items()},
    }
    names = sorted(all_headers)
    canonical_headers = "".join(f"{name}:{' '.join(all_headers[name].split())}\n" for name in names)
    signed_headers = ";".join(names)
    payload_hash = payload_hash or hashlib.sha256(body).hexdigest()
    canonical_request = "\n".join(
        [
            method.upper(),
            (parts.path or "/") if encoded_path else quote(parts.path or "/", safe="/-_.~"),
            canonical_query(parts.query),
            canonical_headers,
            signed_headers,
            payload_hash,
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    signature = hmac.new(
        signing_key(credentials.secret_key, date, region, service),
        string_to_sign.encode(),
        hashlib.sha256,
    ).hexdigest()
    added["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return added


def presign(
    method: str,
    url: str,
    credentials: Credentials,
    region: str,
    service: str,
    expires: int,
    now: datetime.datetime | None = None,
) -> str:
    """``url`` (path already percent-encoded) with a query-string signature valid
    ``expires`` seconds, for a client that holds no credentials."""
    moment = (now or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    parts = urlsplit(url)
    query = {
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{credentials.access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    if credentials.session_token:
        query["X-Amz-Security-Token"] = credentials.session_token
    query_text = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items()))
    canonical_request = "\n".join(
        [
            method.upper(),
            parts.path or "/",
            canonical_query(query_text),
            f"host:{parts.netloc}\n",
            "host",
            "UNSIGNED-PAYLOAD",
        ]
    )
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    signature = hmac.new(
        signing_key(credentials.secret_key, amz_date[:8], region, service),
        string_to_sign.encode(),
        hashlib.sha256,
    ).hexdigest()
    return f"{url}?{query_text}&X-Amz-Signature={signature}"
