"""Cloud Storage JSON API error answers (``{"error": {"code", "message",
"errors": [{"reason"}]}}``) mapped onto the error tree."""

from __future__ import annotations

import requests

from drivers.errors import (
    AuthError,
    ContainerExists,
    DriverError,
    HashMismatch,
    InvalidRequest,
    ObjectNotFound,
    ProviderError,
    RateLimited,
)

PROVIDER = "gcs"


def error_of(response: requests.Response) -> DriverError:
    reason, message = "", response.reason or ""
    try:
        error = response.json()["error"]
        message = str(error.get("message") or message)
        reason = str((error.get("errors") or [{}])[0].get("reason") or "")
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        pass
    text = f"{reason or response.status_code}: {message}"
    status = response.status_code
    if status in (401, 403):
        return AuthError(text, provider=PROVIDER)
    if status == 404:
        # The same answer for a missing bucket or object: bucket calls turn it
        # into ContainerNotFound, object calls check the bucket (see the driver).
        return ObjectNotFound(text, provider=PROVIDER)
    if "md5" in message.lower() or "crc32c" in message.lower():
        return HashMismatch(
            text, expected="the checksum sent", actual="the bytes received", provider=PROVIDER
        )
    if status == 409:
        return ContainerExists(text, provider=PROVIDER)
    if status == 429 or reason in ("rateLimitExceeded", "userRateLimitExceeded"):
        return RateLimited(text, provider=PROVIDER)
    if status >= 500:
        return ProviderError(text, transient=True, status=status, provider=PROVIDER)
    return InvalidRequest(text, provider=PROVIDER)
