"""A Google OAuth2 token endpoint for the tests, on 127.0.0.1: it checks each
JWT's RS256 signature against the service account's public key, its issuer,
audience, times and scope, before it issues an access token, and it knows
which tokens are live (for the peers that check them)."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def new_service_account() -> tuple[rsa.RSAPrivateKey, str]:
    """A fresh RSA key and the account's e-mail."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, "overcast-tests@overcast-ci.iam.gserviceaccount.com"


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class TokenServer:
    """Issues access tokens for JWTs signed by ``public_key``; knows which are live."""

    public_key: rsa.RSAPublicKey
    client_email: str
    #: A word the JWT's scope must hold ("devstorage", "compute").
    scope: str
    lifetime: int = 3600
    issued: dict[str, float] = field(default_factory=dict)
    refused: int = 0

    def __post_init__(self) -> None:
        tokens = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                token = tokens.grant(form.get("assertion", [""])[0])
                body = json.dumps(
                    {"access_token": token, "expires_in": tokens.lifetime, "token_type": "Bearer"}
                    if token
                    else {"error": "invalid_grant"}
                ).encode()
                self.send_response(200 if token else 400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def grant(self, assertion: str) -> str | None:
        try:
            header, claims, signature = assertion.split(".")
            self.public_key.verify(
                unb64url(signature),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            parsed = json.loads(unb64url(claims))
        except (ValueError, InvalidSignature):
            self.refused += 1
            return None
        now = time.time()
        if (
            json.loads(unb64url(header)).get("alg") != "RS256"
            or parsed.get("iss") != self.client_email
            or parsed.get("aud") != self.uri
            or not parsed.get("iat", 0) - 60 <= now <= parsed.get("exp", 0)
            or self.scope not in parsed.get("scope", "")
        ):
            self.refused += 1
            return None
        token = secrets.token_urlsafe(24)
        self.issued[token] = now + self.lifetime
        return token

    def live(self, authorization: str) -> bool:
        token = authorization.removeprefix("Bearer ")
        return self.issued.get(token, 0) > time.time()

    def credentials(self, key: rsa.RSAPrivateKey) -> dict[str, str]:
        """A service account's key fields, with this server as its token_uri."""
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {"client_email": self.client_email, "private_key": pem, "token_uri": self.uri}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
