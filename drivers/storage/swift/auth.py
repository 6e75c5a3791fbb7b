"""Where a Swift driver gets its token and storage URL: Keystone v3 (the
OpenStack driver's identity code, the ``object-store`` endpoint of the
catalog) or Swift's own v1.0 auth (tempauth, swauth)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

import requests

from drivers.compute.openstack.identity import Identity
from drivers.errors import AuthError, ProviderError

PROVIDER = "swift"


@dataclass(frozen=True, repr=False)
class Session:
    token: str
    storage_url: str

    def __repr__(self) -> str:
        return f"Session(storage_url={self.storage_url!r}, token=***)"


class AuthSource(Protocol):
    def session(self) -> Session: ...

    def invalidate(self, session: Session) -> None: ...


class KeystoneAuth:
    """A Keystone token and the catalog's object-store URL (or ``endpoint``)."""

    def __init__(
        self,
        identity: Identity,
        *,
        region: str | None,
        interface: str = "public",
        endpoint: str | None = None,
    ) -> None:
        self.identity = identity
        self.region = region
        self.interface = interface
        self.endpoint = endpoint

    def session(self) -> Session:
        token = self.identity.token()
        url = self.endpoint or self.identity.endpoint(
            "object-store", region=self.region, interface=self.interface
        )
        return Session(token.value, url.rstrip("/"))

    def invalidate(self, session: Session) -> None:
        token = self.identity.token()
        if token.value == session.token:
            self.identity.invalidate(token)


class V1Auth:
    """Swift's v1.0 auth: ``X-Auth-User``/``X-Auth-Key`` for a token and the
    storage URL (unless ``endpoint`` names another), kept until a minute
    before ``X-Auth-Token-Expires``."""

    def __init__(
        self,
        auth_url: str,
        user: str,
        key: str,
        *,
        endpoint: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.auth_url = auth_url
        self.endpoint = endpoint
        self.user = user
        self._key = key
        self.timeout = timeout
        self._session: Session | None = None
        self._until = 0.0
        self._lock = threading.Lock()

    def session(self) -> Session:
        with self._lock:
            if self._session is None or time.monotonic() >= self._until:
                self._session = self._authenticate()
            return self._session

    def invalidate(self, session: Session) -> None:
        with self._lock:
            if self._session is session:
                self._session = None

    def _authenticate(self) -> Session:
        try:
            answer = requests.get(
                self.auth_url,
                headers={"X-Auth-User": self.user, "X-Auth-Key": self._key},
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise ProviderError(
                f"auth endpoint unreachable: {type(error).__name__}",
                transient=True,
                provider=PROVIDER,
            ) from None
        if answer.status_code in (401, 403):
            raise AuthError("Swift refused the credentials", provider=PROVIDER)
        token, url = answer.headers.get("X-Auth-Token"), answer.headers.get("X-Storage-Url")
        if not answer.ok or not token or not url:
            raise ProviderError(
                f"auth answered {answer.status_code} without a token",
                transient=answer.status_code >= 500,
                provider=PROVIDER,
            )
        lifetime = float(answer.headers.get("X-Auth-Token-Expires") or 3600)
        self._until = time.monotonic() + max(lifetime - 60, lifetime / 2)
        return Session(token, (self.endpoint or url).rstrip("/"))
