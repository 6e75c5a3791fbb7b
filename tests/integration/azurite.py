"""A real Azurite (Azure Storage's emulator, from npm) on 127.0.0.1, Blob service only."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from drivers.storage.azure_blobs import DEVELOPMENT_ACCOUNT, development_secret
from tests.helpers import need, stop_process_group, wait_for

#: Where ``make test`` installs it (npm, azurite@3.35.0: later ones need Node >= 21).
LOCAL_INSTALL = Path(__file__).resolve().parents[2] / ".azurite" / "node_modules" / ".bin"


@dataclass(frozen=True)
class Azurite:
    url: str
    account: str
    key: str


def azurite_binary() -> str | None:
    candidate = LOCAL_INSTALL / "azurite-blob"
    return str(candidate) if candidate.exists() else shutil.which("azurite-blob")


def _accepting(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def azurite_server(workdir: Path) -> Iterator[Azurite]:
    binary = azurite_binary()
    need(binary is not None, "azurite (npm install --prefix .azurite azurite@3.35.0)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(workdir / "azurite.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(workdir / "azurite-data"),
            "--silent",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _accepting(port), timeout=30, interval=0.1, what="azurite")
        yield Azurite(f"http://127.0.0.1:{port}", DEVELOPMENT_ACCOUNT, development_secret())
    finally:
        stop_process_group(process, timeout=10)
        log.close()
