"""Azure Resource Manager for one subscription and resource group: calls with
a client-credentials token, lists that follow ``nextLink``, and long-running
calls followed through ``Azure-AsyncOperation`` or ``Location`` until they
end."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from drivers.common.http import Connection
from drivers.common.oauth import AccessTokens
from drivers.compute.azure.errors import PROVIDER, error_of, operation_error
from drivers.errors import NotFound, ProviderError

RESOURCE = "https://management.core.windows.net/"


class ClientCredentials(AccessTokens):
    """Tokens for an app registration's client id and secret (OAuth2 v1)."""

    def __init__(
        self, login: str, tenant: str, client_id: str, secret: str, *, timeout: float = 30.0
    ) -> None:
        super().__init__(
            f"{login.rstrip('/')}/{tenant}/oauth2/token",
            provider=PROVIDER,
            timeout=timeout,
            who="the client credentials",
        )
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "resource": RESOURCE,
        }

    def form(self, now: float) -> dict[str, str]:
        return dict(self._form)


class ArmApi:
    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        secret: str,
        subscription: str,
        group: str,
        endpoint: str,
        login_endpoint: str,
        poll_interval: float,
        operation_timeout: float,
        timeout: tuple[float, float],
    ) -> None:
        self.tokens = ClientCredentials(login_endpoint, tenant_id, client_id, secret)
        self.subscription = subscription
        self.group = group
        self.endpoint = endpoint.rstrip("/")
        self.poll_interval = poll_interval
        self.operation_timeout = operation_timeout
        self.connection = Connection(
            self.endpoint, provider=PROVIDER, timeout=timeout, error_mapper=error_of
        )

    def group_path(self, kind: str, name: str = "") -> str:
        path = f"/subscriptions/{self.subscription}/resourceGroups/{self.group}/providers/{kind}"
        return f"{path}/{name}" if name else path

    def request(
        self, method: str, path: str, api: str, body: Any = None, **kwargs: Any
    ) -> requests.Response:
        url = path if path.startswith("http") else self.endpoint + path
        params = None if "api-version=" in url else {"api-version": api}
        return self.tokens.authorized(
            lambda authorization: self.connection.request(
                method, url, params=params, json=body, headers=authorization, **kwargs
            )
        )

    def get(self, path: str, api: str) -> Any:
        return self.request("GET", path, api).json()

    def items(self, path: str, api: str) -> Iterator[Any]:
        """Every item of a list, following ``nextLink``."""
        url: str | None = path
        while url:
            page = self.get(url, api)
            yield from page.get("value", [])
            url = page.get("nextLink")

    def follow(self, response: requests.Response, api: str) -> None:
        """Wait until a long-running call ends; raise how it failed."""
        monitor = response.headers.get("Azure-AsyncOperation")
        location = response.headers.get("Location") if response.status_code == 202 else None
        if not (monitor or location):
            return
        deadline = time.monotonic() + self.operation_timeout
        while True:
            if time.monotonic() > deadline:
                raise ProviderError(
                    "an ARM operation did not end", transient=True, provider=PROVIDER
                )
            if monitor:
                status = self.get(monitor, api)
                if status.get("status") == "Succeeded":
                    return
                if status.get("status") in ("Failed", "Canceled"):
                    raise operation_error(status)
            elif self.request("GET", str(location), api).status_code == 200:
                return
            time.sleep(self.poll_interval)

    def put(self, path: str, api: str, body: Mapping[str, Any]) -> Any:
        """Create or update a resource (idempotent by name), once it is done."""
        self.follow(self.request("PUT", path, api, body), api)
        return self.get(path, api)

    def post(self, path: str, api: str) -> None:
        self.follow(self.request("POST", path, api), api)

    def delete(self, path: str, api: str) -> None:
        with contextlib.suppress(NotFound):  # gone already
            self.follow(self.request("DELETE", path, api), api)
