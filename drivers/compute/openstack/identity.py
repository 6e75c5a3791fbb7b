"""Keystone v3: tokens and the service catalog.

A token is fetched on first use, cached until ``renew_before`` seconds before
it expires, and renewed transparently; :meth:`Identity.invalidate` drops it
after a ``401`` so the next call authenticates again. Thread-safe.
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass, field
from typing import Any

from drivers.common.http import Connection
from drivers.errors import AuthError, NotFound

PROVIDER = "openstack"


@dataclass(frozen=True, repr=False)
class PasswordAuth:
    username: str
    password: str = field(repr=False)
    project_name: str | None = None
    project_id: str | None = None
    user_domain: str = "Default"
    project_domain: str = "Default"

    def body(self) -> dict[str, Any]:
        project: dict[str, Any] = (
            {"id": self.project_id}
            if self.project_id
            else {"name": self.project_name, "domain": {"name": self.project_domain}}
        )
        return {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.username,
                            "domain": {"name": self.user_domain},
                            "password": self.password,
                        }
                    },
                },
                "scope": {"project": project},
            }
        }

    def __repr__(self) -> str:
        return f"PasswordAuth(username={self.username!r}, password=***)"


@dataclass(frozen=True, repr=False)
class ApplicationCredentialAuth:
    credential_id: str
    secret: str = field(repr=False)

    def body(self) -> dict[str, Any]:
        return {
            "auth": {
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": {"id": self.credential_id, "secret": self.secret},
                }
            }
        }

    def __repr__(self) -> str:
        return f"ApplicationCredentialAuth(credential_id={self.credential_id!r}, secret=***)"


@dataclass(frozen=True, repr=False)
class Token:
    value: str = field(repr=False)
    expires_at: datetime.datetime
    project_id: str | None
    catalog: tuple[dict[str, Any], ...]

    def __repr__(self) -> str:
        return f"Token(expires_at={self.expires_at.isoformat()}, project_id={self.project_id!r})"


class Identity:
    def __init__(
        self,
        auth_url: str,
        credentials: PasswordAuth | ApplicationCredentialAuth,
        *,
        timeout: float = 30.0,
        renew_before: float = 60.0,
    ) -> None:
        base = auth_url.rstrip("/")
        self.auth_url = base if base.endswith("/v3") else f"{base}/v3"
        self.credentials = credentials
        self.renew_before = renew_before
        self.http = Connection(
            self.auth_url, provider=PROVIDER, timeout=(10.0, timeout), max_retries=2
        )
        self._token: Token | None = None
        self._lock = threading.Lock()

    def token(self) -> Token:
        """A valid token, authenticating when none is cached or it nearly expired."""
        with self._lock:
            now = datetime.datetime.now(datetime.UTC)
            if (
                self._token is None
                or (self._token.expires_at - now).total_seconds() < self.renew_before
            ):
                self._token = self._authenticate()
            return self._token

    def invalidate(self, token: Token) -> None:
        """Forget ``token`` (after the cloud refused it); the next call renews."""
        with self._lock:
            if self._token is token:
                self._token = None

    def _authenticate(self) -> Token:
        try:
            response = self.http.request(
                "POST", "auth/tokens", json=self.credentials.body(), idempotent=True
            )
        except (AuthError, NotFound) as error:
            raise AuthError(
                f"Keystone refused the credentials ({error.message[:120]})", provider=PROVIDER
            ) from None
        body = response.json()["token"]
        return Token(
            value=response.headers["X-Subject-Token"],
            expires_at=datetime.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")),
            project_id=(body.get("project") or {}).get("id"),
            catalog=tuple(body.get("catalog") or ()),
        )

    def endpoint(self, service_type: str, *, region: str | None, interface: str = "public") -> str:
        """The URL of ``service_type`` in the catalog, for the region and interface."""
        for service in self.token().catalog:
            if service.get("type") != service_type:
                continue
            for endpoint in service.get("endpoints", []):
                if endpoint.get("interface") != interface:
                    continue
                if region and endpoint.get("region_id", endpoint.get("region")) != region:
                    continue
                return str(endpoint["url"])
        raise NotFound(
            f"no {interface} {service_type} endpoint in region {region} in the service catalog",
            provider=PROVIDER,
        )
