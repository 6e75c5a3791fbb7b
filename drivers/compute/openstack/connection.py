"""Authenticated calls to one OpenStack service (compute, image, volume).

Every call carries the current token; a ``401`` makes the client drop the
token, authenticate again and retry once -- never in a loop. Nova, Cinder and
Keystone faults (``{"itemNotFound": {"message": ..., "code": 404}}``) map
onto the driver error tree.
"""

from __future__ import annotations

from typing import Any

import requests

from drivers.common.http import Connection, decode_json, parse_retry_after
from drivers.compute.openstack.identity import Identity
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

PROVIDER = "openstack"


class Unauthorized(AuthError):
    """A 401: the token was refused (expired or revoked)."""


def fault_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
    return str(body)[:300]


def map_error(response: requests.Response) -> DriverError | None:
    status = response.status_code
    message = f"HTTP {status}: {fault_message(response)}"
    lowered = message.lower()
    if status == 401:
        return Unauthorized(message, provider=PROVIDER)
    if status == 403:
        if "quota" in lowered:
            return QuotaExceeded(message, provider=PROVIDER)
        return AuthError(message, provider=PROVIDER)
    if status in (413, 429):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429 or retry_after is not None:
            return RateLimited(message, retry_after=retry_after, provider=PROVIDER)
        return QuotaExceeded(message, provider=PROVIDER)
    if "no valid host" in lowered:
        return CapacityError(message, provider=PROVIDER)
    if status == 404:
        return NotFound(message, provider=PROVIDER)
    if status in (400, 409, 422):
        return InvalidRequest(message, provider=PROVIDER)
    return ProviderError(message, transient=status >= 500, status=status, provider=PROVIDER)


class ServiceClient:
    def __init__(
        self,
        identity: Identity,
        service_type: str,
        *,
        region: str | None,
        interface: str = "public",
        endpoint: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.identity = identity
        self.service_type = service_type
        self.region = region
        self.interface = interface
        self.endpoint_override = endpoint
        self.headers = dict(headers or {})
        self.timeout = timeout
        self._http: Connection | None = None

    def base_url(self) -> str:
        if self.endpoint_override:
            return self.endpoint_override
        return self.identity.endpoint(
            self.service_type, region=self.region, interface=self.interface
        )

    @property
    def http(self) -> Connection:
        if self._http is None:
            self._http = Connection(
                self.base_url(),
                provider=PROVIDER,
                timeout=(10.0, self.timeout),
                error_mapper=map_error,
                headers={"Accept": "application/json", **self.headers},
            )
        return self._http

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call; after a 401 the token is renewed and the call repeated once."""
        extra = kwargs.pop("headers", None) or {}
        for attempt in (1, 2):
            token = self.identity.token()
            headers = {**extra, "X-Auth-Token": token.value}
            try:
                return self.http.request(method, path, headers=headers, **kwargs)
            except Unauthorized:
                self.identity.invalidate(token)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return decode_json(self.request(method, path, **kwargs), method, PROVIDER)
