"""The service error tree. Each error carries its HTTP status and a stable code.

The API turns any :class:`ServiceError` into
``{"error": {"code", "message", "request_id"}}`` with ``status`` in one place
(``services/api/app.py``); anything else becomes a logged 500 without details.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status: int = 500
    code: str = "internal_error"
    default_message: str = "internal error"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.details = details


class InvalidInput(ServiceError):
    status = 400
    code = "invalid_request"
    default_message = "invalid request"


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"
    default_message = "a valid API key is required (Authorization: Bearer <key>)"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"
    default_message = "this key's role may not do that"


class ProjectQuotaExceeded(ServiceError):
    status = 403
    code = "quota_exceeded"
    default_message = "the project's node quota would be exceeded"


class NotFound(ServiceError):
    status = 404
    code = "not_found"
    default_message = "not found"


class MethodNotAllowed(ServiceError):
    status = 405
    code = "method_not_allowed"
    default_message = "method not allowed"


class Conflict(ServiceError):
    status = 409
    code = "conflict"
    default_message = "conflict"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"
    default_message = "request body too large"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"
    default_message = "request body must be application/json"


class Unavailable(ServiceError):
    status = 503
    code = "service_unavailable"
    default_message = "service temporarily unavailable"


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"
    default_message = "the database is unavailable; try again shortly"


class BrokerUnavailable(Unavailable):
    code = "broker_unavailable"
    default_message = "the message broker is unavailable; try again shortly"


class NotImplementedByProvider(ServiceError):
    status = 501
    code = "not_implemented"
    default_message = "the provider does not offer that"


class BadGateway(ServiceError):
    status = 502
    code = "provider_error"
    default_message = "the provider failed"


class ChecksumMismatch(BadGateway):
    code = "checksum_mismatch"
    default_message = "the bytes stored differ from the bytes sent; nothing was kept"


class BadDigest(InvalidInput):
    code = "bad_digest"
    default_message = "the body does not match its Content-MD5; nothing was kept"


class RangeNotSatisfiable(ServiceError):
    status = 416
    code = "range_not_satisfiable"
    default_message = "the range is outside the object"
