from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.compute.local import LocalNodeDriver
from tests.helpers import need, wait_for
from tests.integration.deployment import Deployment, deployed
from tests.integration.moto import Moto, moto_server
from tests.integration.services import postgres_database, rabbitmq_vhost


def sshd_processes(state_dir: Path) -> list[int]:
    """Pids of live sshd processes started for nodes under ``state_dir``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if str(state_dir) in cmdline and "sshd" in cmdline and state not in ("Z", "X"):
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def local_state_dir(tmp_path_factory) -> Iterator[Path]:
    """A state directory for local nodes; every sshd under it dies afterwards."""
    need(bool(shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")), "OpenSSH sshd")
    state_dir = tmp_path_factory.mktemp("local-nodes")
    try:
        yield state_dir
    finally:
        for pid in sshd_processes(state_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not sshd_processes(state_dir), timeout=10, what="sshd to exit")
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def local_driver(local_state_dir: Path) -> LocalNodeDriver:
    return LocalNodeDriver(state_dir=local_state_dir)


@pytest.fixture(scope="module")
def moto(tmp_path_factory) -> Iterator[Moto]:
    """A moto_server with IAM on, for one test module."""
    with moto_server(tmp_path_factory.mktemp("moto")) as running:
        yield running


@pytest.fixture
def deployment(tmp_path) -> Iterator[Deployment]:
    """Separate service processes (started by the test) on a fresh PostgreSQL
    database and RabbitMQ vhost."""
    with (
        postgres_database() as database,
        rabbitmq_vhost() as (broker, vhost),
        deployed(tmp_path, database, broker, vhost) as running,
    ):
        yield running
