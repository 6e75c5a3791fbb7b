"""Swift error answers (a status and a short text) mapped onto the error tree."""

from __future__ import annotations

import requests

from drivers.errors import (
    AuthError,
    ContainerNotEmpty,
    DriverError,
    HashMismatch,
    InvalidRequest,
    ObjectNotFound,
    ProviderError,
    RateLimited,
)
from drivers.storage.swift.auth import PROVIDER


def error_of(response: requests.Response) -> DriverError:
    text = f"{response.status_code}: {(response.text or response.reason or '').strip()[:200]}"
    status = response.status_code
    if status in (401, 403):
        return AuthError(text, provider=PROVIDER)
    if status == 404:
        return ObjectNotFound(text, provider=PROVIDER)
    if status == 409:
        return ContainerNotEmpty(text, provider=PROVIDER)
    if status == 422 or (status == 400 and "etag mismatch" in text.lower()):
        return HashMismatch(
            text, expected="the ETag sent", actual="the bytes received", provider=PROVIDER
        )
    if status in (429, 498):
        return RateLimited(text, provider=PROVIDER)
    if status >= 500:
        return ProviderError(text, transient=True, status=status, provider=PROVIDER)
    return InvalidRequest(text, provider=PROVIDER)
