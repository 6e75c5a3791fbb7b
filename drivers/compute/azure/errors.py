"""Azure Resource Manager failures mapped onto the error tree, from an HTTP
answer or a failed asynchronous operation (both carry ``{"error": {"code",
"message"}}``)."""

from __future__ import annotations

import contextlib
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

PROVIDER = "azure"

CAPACITY = frozenset(
    {
        "SkuNotAvailable",
        "AllocationFailed",
        "ZonalAllocationFailed",
        "OverconstrainedAllocationRequest",
        "OverconstrainedZonalAllocationRequest",
    }
)
NOT_FOUND = frozenset({"ResourceNotFound", "ResourceGroupNotFound", "NotFound"})
AUTH = frozenset({"AuthorizationFailed", "InvalidAuthenticationToken", "AuthenticationFailed"})


def classify(
    status: int | None, code: str, message: str, retry_after: float | None = None
) -> DriverError:
    text = f"{code or status}: {message}"
    if code in CAPACITY:
        return CapacityError(text, provider=PROVIDER)
    if code == "OperationNotAllowed" and "quota" in message.lower():
        return QuotaExceeded(text, provider=PROVIDER)
    if status == 429 or code == "TooManyRequests":
        return RateLimited(text, retry_after=retry_after, provider=PROVIDER)
    if status == 404 or code in NOT_FOUND:
        return NotFound(text, provider=PROVIDER)
    if status in (401, 403) or code in AUTH:
        return AuthError(text, provider=PROVIDER)
    if (status is not None and status >= 500) or code in ("InternalServerError", "ServerBusy"):
        return ProviderError(text, transient=True, status=status, provider=PROVIDER)
    return InvalidRequest(text, provider=PROVIDER)


def error_body(body: Mapping[str, Any]) -> tuple[str, str]:
    error = body.get("error") or {}
    return str(error.get("code") or ""), str(error.get("message") or "")


def error_of(response: requests.Response) -> DriverError:
    code, message = "", response.reason or ""
    with contextlib.suppress(ValueError, TypeError, AttributeError):  # not JSON: the reason
        code, message = error_body(response.json())
    return classify(
        response.status_code,
        code,
        message or response.reason or "",
        parse_retry_after(response.headers.get("Retry-After")),
    )


def operation_error(body: Mapping[str, Any]) -> DriverError:
    code, message = error_body(body)
    return classify(None, code, message or "the operation failed")
