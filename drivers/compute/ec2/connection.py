"""The EC2 Query API: signed form POSTs, XML answers, EC2 error codes mapped."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import requests
from lxml import etree

from drivers.common.http import Connection
from drivers.compute.ec2.signing import Credentials, sign
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

API_VERSION = "2016-11-15"
PROVIDER = "ec2"

AUTH_CODES = frozenset(
    {
        "AuthFailure",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "MissingAuthenticationToken",
        "InvalidAccessKeyId",
        "OptInRequired",
        "Blocked",
        "AccessDenied",
    }
)
CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "Unsupported",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientAddressCapacity",
    }
)
RATE_CODES = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})
TRANSIENT_CODES = frozenset(
    {"InternalError", "Unavailable", "ServiceUnavailable", "InternalFailure"}
)

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def error_from_code(code: str, message: str, status: int) -> DriverError:
    """Map an EC2 error code to the driver error tree."""
    text = f"{code}: {message}"
    if code in AUTH_CODES:
        return AuthError(text, provider=PROVIDER)
    if code in RATE_CODES:
        return RateLimited(text, provider=PROVIDER)
    if code in CAPACITY_CODES:
        return CapacityError(text, provider=PROVIDER)
    if code.endswith("LimitExceeded") or code in ("MaxSpotInstanceCountExceeded",):
        return QuotaExceeded(text, provider=PROVIDER)
    if (
        code.endswith((".NotFound", "NotFound"))
        or code.startswith("InvalidAMIID.")
        or code
        in (
            "InvalidInstanceID",
            "InvalidVolume.NotFound",
        )
    ):
        return NotFound(text, provider=PROVIDER)
    if code in TRANSIENT_CODES or status >= 500:
        return ProviderError(text, transient=True, status=status, provider=PROVIDER)
    if code.startswith(("Invalid", "Missing", "Malformed")) or code in (
        "UnknownParameter",
        "DryRunOperation",
        "IncorrectState",
        "IncorrectInstanceState",
        "DependencyViolation",
        "VolumeInUse",
    ):
        return InvalidRequest(text, provider=PROVIDER)
    return ProviderError(text, status=status, provider=PROVIDER)


def xml_text(element: Any, path: str) -> str:
    """The text at ``path`` ("A/B/C") under ``element``, in any namespace; "" if absent."""
    return str(element.findtext("/".join(f"{{*}}{part}" for part in path.split("/"))) or "")


def map_error(response: requests.Response) -> DriverError | None:
    """Read ``<Errors><Error><Code>`` (or ``<Error><Code>``) from an error answer."""
    try:
        root = etree.fromstring(response.content, PARSER)
    except etree.XMLSyntaxError:
        return None
    code = root.findtext(".//{*}Code") or root.findtext(".//Code")
    if not code:
        return None
    message = root.findtext(".//{*}Message") or root.findtext(".//Message") or ""
    return error_from_code(code.strip(), message.strip(), response.status_code)


class EC2Connection:
    """Signed Query API calls to one region's endpoint."""

    def __init__(
        self,
        credentials: Credentials,
        region: str,
        endpoint: str,
        timeout: tuple[float, float] = (10.0, 60.0),
        max_retries: int = 4,
        service: str = "ec2",
        version: str = API_VERSION,
    ) -> None:
        """``service``/``version`` reach the other Query APIs on the same
        signing (``elasticloadbalancing`` 2015-12-01 for ELBv2, ...)."""
        self.credentials = credentials
        self.region = region
        self.service = service
        self.version = version
        self.http = Connection(
            endpoint,
            provider=PROVIDER,
            timeout=timeout,
            max_retries=max_retries,
            error_mapper=map_error,
        )

    def call(
        self,
        action: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
    ) -> Any:
        """One Query API action; returns the parsed XML root."""
        body = urlencode(
            [
                ("Action", action),
                ("Version", self.version),
                *((name, str(value)) for name, value in (params or {}).items()),
            ]
        )
        data = body.encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        url = self.http.url("/")
        headers.update(
            sign("POST", url, headers, data, self.credentials, self.region, self.service)
        )
        read_only = action.startswith("Describe")
        response = self.http.request(
            "POST",
            "/",
            data=data,
            headers=headers,
            idempotent=read_only if idempotent is None else idempotent,
        )
        try:
            return etree.fromstring(response.content, PARSER)
        except etree.XMLSyntaxError:
            raise ProviderError(
                f"{action}: invalid XML in response", status=response.status_code, provider=PROVIDER
            ) from None

    def pages(
        self, action: str, params: Mapping[str, Any] | None = None, page_size: int | None = None
    ) -> Iterator[Any]:
        """Every page of a paginated Describe action (follows NextToken always)."""
        token: str | None = None
        while True:
            page_params = dict(params or {})
            if page_size:
                page_params["MaxResults"] = page_size
            if token:
                page_params["NextToken"] = token
            root = self.call(action, page_params)
            yield root
            token = root.findtext("{*}nextToken")
            if not token:
                return
