"""Google Cloud Storage's peers for the tests, on 127.0.0.1: gcp-storage-emulator
(PyPI) for the data path, and a token endpoint that checks each JWT's RS256
signature against the service account's public key before it issues an
access token. The emulator checks no tokens, so a proxy in front of it
refuses any request without a live one (401), as the real service would."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.helpers import need, stop_process_group, wait_for
from tests.integration.proxy import CorruptingProxy


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class TokenServer:
    """Issues access tokens for JWTs signed by ``public_key``; knows which are live."""

    public_key: rsa.RSAPublicKey
    client_email: str
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
            or "devstorage" not in parsed.get("scope", "")
        ):
            self.refused += 1
            return None
        token = secrets.token_urlsafe(24)
        self.issued[token] = now + self.lifetime
        return token

    def live(self, authorization: str) -> bool:
        token = authorization.removeprefix("Bearer ")
        return self.issued.get(token, 0) > time.time()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Gcs:
    url: str  # the authenticating proxy in front of the emulator
    emulator: str
    tokens: TokenServer
    credentials: dict[str, str]  # client_email, private_key, token_uri
    private_key: rsa.RSAPrivateKey


def emulator_binary() -> str | None:
    candidate = Path(sys.executable).parent / "gcp-storage-emulator"
    return str(candidate) if candidate.exists() else shutil.which("gcp-storage-emulator")


def _accepting(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def gcs_server(workdir: Path) -> Iterator[Gcs]:
    binary = emulator_binary()
    need(binary is not None, "gcp-storage-emulator (pip install gcp-storage-emulator)")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = "overcast-tests@overcast-ci.iam.gserviceaccount.com"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ExitStack() as stack:
        log = stack.enter_context(open(workdir / "gcs.log", "wb"))
        process = subprocess.Popen(
            [str(binary), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "STORAGE_BASE": str(workdir)},
        )
        stack.callback(stop_process_group, process, 10)
        wait_for(lambda: _accepting(port), timeout=30, interval=0.1, what="gcp-storage-emulator")
        emulator = f"http://127.0.0.1:{port}"
        tokens = TokenServer(key.public_key(), email)
        stack.callback(tokens.close)
        proxy = stack.enter_context(
            CorruptingProxy(
                emulator,
                check=lambda method, path, headers: (
                    None if tokens.live(headers.get("Authorization", "")) else 401
                ),
            )
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        credentials = {"client_email": email, "private_key": pem, "token_uri": tokens.uri}
        requests.get(emulator, timeout=5)  # it answers
        yield Gcs(proxy.url, emulator, tokens, credentials, key)
