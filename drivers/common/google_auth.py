"""Google service-account auth: a JWT signed RS256 with the account's private
key, exchanged at its ``token_uri`` for an OAuth2 access token, cached until
shortly before it expires and renewed by whichever thread needs it first.

Shared by every Google driver (Cloud Storage, Compute Engine). The
private key never leaves this object and no message carries it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from drivers.errors import AuthError, InvalidRequest, ProviderError

T = TypeVar("T")

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Renew this long before the token's end.
RENEW_BEFORE = 60.0
#: What a JWT asks for (Google caps assertions at one hour).
ASSERTION_LIFETIME = 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    private_key: rsa.RSAPrivateKey
    token_uri: str

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> ServiceAccount:
        """From a service-account key file's JSON (``type`` service_account)."""
        missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
        if missing:
            raise InvalidRequest(f"the service-account key lacks {', '.join(missing)}")
        try:
            key = serialization.load_pem_private_key(
                str(info["private_key"]).encode(), password=None
            )
        except (ValueError, TypeError):
            raise InvalidRequest("the service-account private key is not a PEM RSA key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise InvalidRequest("the service-account private key is not an RSA key")
        return cls(str(info["client_email"]), key, str(info["token_uri"]))

    def assertion(self, scopes: str, now: float) -> str:
        header = {"alg": "RS256", "typ": "JWT"}
        claims = {
            "iss": self.client_email,
            "scope": scopes,
            "aud": self.token_uri,
            "iat": int(now),
            "exp": int(now) + ASSERTION_LIFETIME,
        }
        signing_input = (
            f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        )
        signature = self.private_key.sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{b64url(signature)}"


class TokenSource:
    """Access tokens for one service account and scope set; thread-safe."""

    def __init__(
        self,
        account: ServiceAccount,
        scopes: str,
        *,
        provider: str,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account = account
        self.scopes = scopes
        self.provider = provider
        self.timeout = timeout
        self.clock = clock
        self._token: str | None = None
        self._until = 0.0
        self._lock = threading.Lock()
        self.exchanges = 0

    def token(self) -> str:
        with self._lock:
            if self._token is None or self.clock() >= self._until - RENEW_BEFORE:
                self._exchange()
            assert self._token is not None
            return self._token

    def forget(self) -> None:
        """Drop the cached token (after the API refused it)."""
        with self._lock:
            self._token = None

    def authorized(self, send: Callable[[dict[str, str]], T]) -> T:
        """``send(headers)`` with the current token; a token the API refuses
        (:class:`AuthError`) is renewed once, then the refusal stands."""
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.token()}"}  # a refused key fails here
            try:
                return send(headers)
            except AuthError:
                if attempt == 2:
                    raise
                self.forget()
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self) -> None:
        now = self.clock()
        try:
            response = requests.post(
                self.account.token_uri,
                data={
                    "grant_type": GRANT_TYPE,
                    "assertion": self.account.assertion(self.scopes, now),
                },
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise ProviderError(
                f"token endpoint unreachable: {type(error).__name__}",
                transient=True,
                provider=self.provider,
            ) from None
        if response.status_code in (400, 401, 403):
            raise AuthError(
                f"the token endpoint refused the service account ({response.status_code})",
                provider=self.provider,
            )
        if not response.ok:
            raise ProviderError(
                f"token endpoint answered {response.status_code}",
                transient=response.status_code >= 500,
                provider=self.provider,
            )
        try:
            body = response.json()
            token, lifetime = str(body["access_token"]), float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise ProviderError(
                "the token endpoint's answer has no access_token", provider=self.provider
            ) from None
        self._token, self._until = token, now + lifetime
        self.exchanges += 1
