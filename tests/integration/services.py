"""Real PostgreSQL databases, RabbitMQ vhosts and service processes for tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import requests

from tests.helpers import need, stop_process_group, wait_for

POSTGRES_ADMIN = os.environ.get("OVERCAST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
RABBIT_URL = os.environ.get("OVERCAST_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672")
BIN = Path(sys.executable).parent


def postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(f"{POSTGRES_ADMIN}/postgres", connect_timeout=3):
            return True
    except Exception:
        return False


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; its SQLAlchemy URL. Dropped afterwards."""
    need(postgres_reachable(), f"PostgreSQL at {POSTGRES_ADMIN}")
    import psycopg

    name = f"overcast_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{POSTGRES_ADMIN}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES_ADMIN}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


MARIADB_ADMIN = os.environ.get("OVERCAST_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")


def _mariadb_connect(database: str | None = None):  # type: ignore[no-untyped-def]
    import pymysql

    return pymysql.connect(
        host="127.0.0.1", port=3306, user="root", database=database, connect_timeout=3
    )


def mariadb_reachable() -> bool:
    try:
        _mariadb_connect().close()
        return True
    except Exception:
        return False


@contextmanager
def mariadb_database() -> Iterator[str]:
    """A fresh, empty MariaDB database; its SQLAlchemy URL. Dropped afterwards."""
    need(mariadb_reachable(), f"MariaDB at {MARIADB_ADMIN}")
    name = f"overcast_test_{uuid.uuid4().hex[:12]}"
    connection = _mariadb_connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield f"{MARIADB_ADMIN}/{name}?charset=utf8mb4"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()


def rabbitmq_reachable() -> bool:
    if shutil.which("rabbitmqctl") is None:
        return False
    from kombu import Connection

    try:
        with Connection(f"{RABBIT_URL}//", connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
            return True
    except Exception:
        return False


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


@contextmanager
def rabbitmq_vhost() -> Iterator[tuple[str, str]]:
    """A fresh RabbitMQ virtual host: (kombu URL, vhost name). Deleted afterwards."""
    need(rabbitmq_reachable(), f"RabbitMQ at {RABBIT_URL} (with rabbitmqctl)")
    vhost = f"overcast-test-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield f"{RABBIT_URL}/{vhost}", vhost
    finally:
        with suppress(subprocess.SubprocessError):
            rabbitmqctl("delete_vhost", vhost)


def unacked(vhost: str, queue: str) -> int:
    for line in rabbitmqctl(
        "list_queues", "-p", vhost, "name", "messages_unacknowledged"
    ).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == queue and parts[1].isdigit():
            return int(parts[1])
    return 0


class Process:
    """A service process with its output in a log file; always killed at the end."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen.poll() is None:
            stop_process_group(self.popen)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class Cluster:
    """overcast-api, -scheduler and -worker processes sharing one config."""

    def __init__(self, env: dict[str, str], log_dir: Path, api_port: int) -> None:
        self.env = env
        self.log_dir = log_dir
        self.url = f"http://127.0.0.1:{api_port}"
        self.processes: list[Process] = []

    def start(self, kind: str, name: str | None = None, **extra_env: str) -> Process:
        process = Process(
            name or kind, [str(BIN / f"overcast-{kind}")], {**self.env, **extra_env}, self.log_dir
        )
        self.processes.append(process)
        return process

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [str(BIN / "overcast-manage"), *args],
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout.strip()

    def wait_api(self) -> None:
        def up() -> bool:
            try:
                return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, timeout=30, interval=0.1, what="the API")

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.output()[-3000:]}" for p in self.processes)
