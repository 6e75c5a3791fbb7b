"""Compute Engine's REST API for one project: authorized calls, pages, and
operations (zonal, regional or global) followed until they are done. Shared
by the compute and load-balancer drivers."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from drivers.common.google_auth import ServiceAccount, TokenSource
from drivers.common.http import Connection
from drivers.compute.gce.errors import PROVIDER, error_of, operation_error
from drivers.errors import ProviderError

SCOPE = "https://www.googleapis.com/auth/compute"
DEFAULT_ENDPOINT = "https://compute.googleapis.com/compute/v1"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"


def last_segment(url: str | None) -> str:
    return (url or "").rstrip("/").rsplit("/", 1)[-1]


class GCEApi:
    def __init__(
        self,
        *,
        client_email: str,
        private_key: str,
        project: str,
        token_uri: str = DEFAULT_TOKEN_URI,
        endpoint: str = DEFAULT_ENDPOINT,
        operation_timeout: float = 600.0,
        poll_interval: float = 1.0,
        timeout: tuple[float, float] = (10.0, 60.0),
    ) -> None:
        account = ServiceAccount.from_info(
            {"client_email": client_email, "private_key": private_key, "token_uri": token_uri}
        )
        self.tokens = TokenSource(account, SCOPE, provider=PROVIDER)
        self.project = project
        self.endpoint = endpoint.rstrip("/")
        self.operation_timeout = operation_timeout
        self.poll_interval = poll_interval
        self.connection = Connection(
            self.endpoint, provider=PROVIDER, timeout=timeout, error_mapper=error_of
        )

    def url(self, path: str) -> str:
        """A resource's full name, as GCE references resources in bodies."""
        return f"{self.endpoint}/projects/{self.project}/{path}"

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """``path`` under the project (or ``/projects/...``), with the current token."""
        url = path if path.startswith("/projects/") else f"/projects/{self.project}/{path}"
        response = self.tokens.authorized(
            lambda authorization: self.connection.request(
                method,
                self.endpoint + url,
                params=params,
                json=body,
                headers=authorization,
                idempotent=idempotent,
            )
        )
        return response.json() if response.content else {}

    def pages(self, path: str, params: Mapping[str, str] | None = None) -> Iterator[Any]:
        """Every page of a list, following ``nextPageToken``."""
        token = ""
        while True:
            query = {**(params or {}), **({"pageToken": token} if token else {})}
            page = self.call("GET", path, params=query)
            yield page
            token = page.get("nextPageToken", "")
            if not token:
                return

    def wait(self, operation: Mapping[str, Any]) -> Mapping[str, Any]:
        """Poll an operation until it is done; raise what it reports."""
        if operation.get("zone"):
            scope = f"zones/{last_segment(operation['zone'])}"
        elif operation.get("region"):
            scope = f"regions/{last_segment(operation['region'])}"
        else:
            scope = "global"
        deadline = time.monotonic() + self.operation_timeout
        while operation.get("status") != "DONE":
            if time.monotonic() > deadline:
                raise ProviderError(
                    f"operation {operation.get('name')} still {operation.get('status')}",
                    transient=True,
                    provider=PROVIDER,
                )
            time.sleep(self.poll_interval)
            operation = self.call("GET", f"{scope}/operations/{operation['name']}")
        failure = operation_error(operation)
        if failure is not None:
            raise failure
        return operation

    def act(self, method: str, path: str, body: Any = None, **params: str) -> Mapping[str, Any]:
        """Start an operation and wait for it."""
        return self.wait(self.call(method, path, params=params or None, body=body))
