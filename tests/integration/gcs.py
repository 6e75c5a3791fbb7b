"""Google Cloud Storage's peers for the tests, on 127.0.0.1: gcp-storage-emulator
(PyPI) for the data path, and a token endpoint that checks each JWT's RS256
signature against the service account's public key before it issues an
access token. The emulator checks no tokens, so a proxy in front of it
refuses any request without a live one (401), as the real service would."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import need, stop_process_group, wait_for
from tests.integration.google_tokens import TokenServer, new_service_account
from tests.integration.proxy import CorruptingProxy


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
    key, email = new_service_account()
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
        tokens = TokenServer(key.public_key(), email, scope="devstorage")
        stack.callback(tokens.close)
        proxy = stack.enter_context(
            CorruptingProxy(
                emulator,
                check=lambda method, path, headers: (
                    None if tokens.live(headers.get("Authorization", "")) else 401
                ),
            )
        )
        credentials = tokens.credentials(key)
        requests.get(emulator, timeout=5)  # it answers
        yield Gcs(proxy.url, emulator, tokens, credentials, key)
