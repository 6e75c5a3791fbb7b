"""Compute Engine failures mapped onto the error tree, from an HTTP answer
(``{"error": {"code", "message", "errors": [{"reason", "message"}]}}``) or
from a finished zone operation (``{"error": {"errors": [{"code", "message"}]}}``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from drivers.common.http import parse_retry_after
from drivers.errors import (
    AuthError,
    CapacityError,
    DriverError,
    InvalidRequest,
    NotFound,
    ProviderError,
    QuotaExceeded,
    RateLimited,
)

PROVIDER = "gce"

CAPACITY = frozenset(
    {
        "ZONE_RESOURCE_POOL_EXHAUSTED",
        "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
        "resourcePoolExhausted",
    }
)
QUOTA = frozenset({"QUOTA_EXCEEDED", "quotaExceeded"})
RATE = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"})


def classify(
    status: int | None, code: str, message: str, retry_after: float | None = None
) -> DriverError:
    """One failure, from its HTTP status (None for an operation's error) and
    its GCE reason or code."""
    text = f"{code or status}: {message}"
    if code in CAPACITY:
        return CapacityError(text, provider=PROVIDER)
    if code in QUOTA:
        return QuotaExceeded(text, provider=PROVIDER)
    if code in RATE or status == 429:
        return RateLimited(text, retry_after=retry_after, provider=PROVIDER)
    if status == 404 or code in ("notFound", "RESOURCE_NOT_FOUND"):
        return NotFound(text, provider=PROVIDER)
    if status in (401, 403):
        return AuthError(text, provider=PROVIDER)
    if status is not None and status >= 500:
        return ProviderError(text, transient=True, status=status, provider=PROVIDER)
    return InvalidRequest(text, provider=PROVIDER)


def error_of(response: requests.Response) -> DriverError:
    code, message = "", response.reason or ""
    try:
        error = response.json()["error"]
        message = str(error.get("message") or message)
        code = str((error.get("errors") or [{}])[0].get("reason") or "")
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        pass
    return classify(
        response.status_code,
        code,
        message,
        parse_retry_after(response.headers.get("Retry-After")),
    )


def operation_error(operation: Mapping[str, Any]) -> DriverError | None:
    """The failure a finished operation reports, or None."""
    errors = (operation.get("error") or {}).get("errors") or []
    if not errors:
        return None
    first = errors[0]
    status = operation.get("httpErrorStatusCode")
    return classify(
        int(status) if status and int(status) >= 500 else None,
        str(first.get("code") or ""),
        "; ".join(str(error.get("message") or "") for error in errors),
    )
