"""Google service-account auth: a JWT signed RS256 with the account's private
key, exchanged at its ``token_uri`` for an OAuth2 access token, cached until
shortly before it expires and renewed by whichever thread needs it first.

Shared by every Google driver (Cloud Storage, Compute Engine). The
private key never leaves this object and no message carries it.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from drivers.common.oauth import AccessTokens
from drivers.errors import InvalidRequest

T = TypeVar("T")

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
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


class TokenSource(AccessTokens):
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
        super().__init__(
            account.token_uri,
            provider=provider,
            timeout=timeout,
            clock=clock,
            who="the service account",
        )
        self.account = account
        self.scopes = scopes

    def form(self, now: float) -> dict[str, str]:
        return {"grant_type": GRANT_TYPE, "assertion": self.account.assertion(self.scopes, now)}
