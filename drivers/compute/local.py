"""The local provider: nodes that are real OpenSSH servers on this host.

Each node is an ``sshd`` bound to its own loopback address (127.0.0.N, one
per node) with its own host key, authorized keys and state directory under
``state_dir``. The node's state is read from the real process, and everything
needed to find a node again is on disk, so nodes survive a restart of the
calling process. Logins are as the user running the driver.

Useful for deploy tests and demos; needs the ``openssh-server`` package.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.compute.base import (
    Features,
    Node,
    NodeAuth,
    NodeAuthSSHKey,
    NodeDriver,
    NodeImage,
    NodeLocation,
    NodeSize,
    NodeState,
)
from drivers.errors import InvalidRequest, NotFound, ProviderError

LOG = logging.getLogger(__name__)

PROVIDER = "local"
SIZE = NodeSize(
    id="process", name="Local sshd process", ram_mb=256, vcpus=1, disk_gb=1, provider=PROVIDER
)
IMAGE = NodeImage(id="host", name="This host's system", provider=PROVIDER)

SSHD_CONFIG = """\
ListenAddress {address}:{port}
HostKey {directory}/ssh_host_ed25519_key
AuthorizedKeysFile {directory}/authorized_keys
PidFile {directory}/sshd.pid
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers {user}
Subsystem sftp internal-sftp
LogLevel ERROR
"""


def default_state_dir() -> Path:
    configured = os.environ.get("OVERCAST_LOCAL_STATE_DIR")
    if configured:
        return Path(configured)
    return Path.home() / ".local" / "state" / "overcast" / "local-nodes"


class LocalNodeDriver(NodeDriver):
    """Nodes as ``sshd`` processes on 127.0.0.N (see the module docstring)."""

    name: ClassVar[str] = "Local SSH"
    provider: ClassVar[str] = PROVIDER
    features: ClassVar[Features] = Features(
        create_node_auth=frozenset({"ssh_key"}), idempotent_create=True
    )

    def __init__(
        self,
        key: str | None = None,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        port: int = 2222,
        first_address: int = 10,
        last_address: int = 250,
        country: str = "ZZ",
        sshd_path: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.port = port
        self.addresses = range(first_address, last_address + 1)
        self.location = NodeLocation(
            id="localhost",
            name="This host",
            country=country,
            provider=PROVIDER,
            region="localhost",
            zone="localhost",
        )
        self.sshd_path = sshd_path or shutil.which("sshd") or "/usr/sbin/sshd"
        self.startup_timeout = startup_timeout
        self.state_dir.mkdir(parents=True, exist_ok=True)

    # -- on-disk records ---------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialize allocation and state changes across processes."""
        with open(self.state_dir / ".lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _records(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.state_dir.glob("*/node.json")):
            try:
                yield json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # half-written or being destroyed

    def _record(self, node_id: str) -> dict[str, Any]:
        path = self.state_dir / node_id / "node.json"
        if "/" in node_id or not path.exists():
            raise NotFound(f"node {node_id} not found", provider=PROVIDER)
        return json.loads(path.read_text())  # type: ignore[no-any-return]

    def _save(self, record: dict[str, Any]) -> None:
        directory = self.state_dir / record["id"]
        temporary = directory / "node.json.tmp"
        temporary.write_text(json.dumps(record))
        os.replace(temporary, directory / "node.json")

    # -- processes ---------------------------------------------------------

    def _pid(self, record: dict[str, Any]) -> int | None:
        """The node's live sshd pid, checked against its command line."""
        directory = self.state_dir / record["id"]
        try:
            pid = int((directory / "sshd.pid").read_text().strip())
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return None
        zombie = stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")
        if zombie or str(directory / "sshd_config") not in cmdline:
            return None
        return pid

    def _accepting(self, record: dict[str, Any]) -> bool:
        try:
            with socket.create_connection((record["address"], self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _start_sshd(self, record: dict[str, Any]) -> None:
        directory = self.state_dir / record["id"]
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        (directory / "sshd.pid").unlink(missing_ok=True)
        completed = subprocess.run(
            [
                self.sshd_path,
                "-f",
                str(directory / "sshd_config"),
                "-E",
                str(directory / "sshd.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=self.startup_timeout,
            check=False,
        )
        if completed.returncode != 0:
            raise ProviderError(
                f"sshd for node {record['id']} did not start: "
                f"{completed.stderr.decode(errors='replace').strip()}{self._log_tail(record)}",
                provider=PROVIDER,
            )

    def _log_tail(self, record: dict[str, Any]) -> str:
        try:
            text = (self.state_dir / record["id"] / "sshd.log").read_text()[-500:].strip()
        except OSError:
            return ""
        return f" ({text})" if text else ""

    def _node_processes(self, record: dict[str, Any]) -> list[int]:
        """Every live process started for the node: the listener and the
        per-connection children sshd re-executes with the same config."""
        config = str(self.state_dir / record["id"] / "sshd_config").encode()
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if config not in (proc / "cmdline").read_bytes():
                    continue
                state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            except OSError:
                continue
            if state not in ("Z", "X"):
                pids.append(int(proc.name))
        return pids

    def _stop_sshd(self, record: dict[str, Any]) -> None:
        deadline = time.monotonic() + 10
        sent = signal.SIGTERM
        while pids := self._node_processes(record):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sent)
            if time.monotonic() > deadline:
                sent = signal.SIGKILL
            time.sleep(0.02)

    def _free_address(self) -> str:
        used = {record["address"] for record in self._records()}
        for last_octet in self.addresses:
            address = f"127.0.0.{last_octet}"
            if address in used:
                continue
            probe = socket.socket()
            try:
                probe.bind((address, self.port))
            except OSError:
                continue  # taken by something outside this state directory
            finally:
                probe.close()
            return address
        raise ProviderError("no free loopback address left for a local node", provider=PROVIDER)

    # -- nodes -------------------------------------------------------------

    def _to_node(self, record: dict[str, Any]) -> Node:
        if self._pid(record) is None:
            state = NodeState.STOPPED
        elif self._accepting(record):
            state = NodeState.RUNNING
        else:
            state = NodeState.PENDING
        return Node(
            id=record["id"],
            name=record["name"],
            state=state,
            provider=PROVIDER,
            private_ips=(record["address"],),
            size_id=SIZE.id,
            image_id=IMAGE.id,
            location_id=self.location.id,
            ssh_port=self.port,
            created_at=datetime.datetime.fromisoformat(record["created_at"]),
            extra={
                "directory": str(self.state_dir / record["id"]),
                "ssh_username": record["user"],
                "token": record.get("token"),
            },
        )

    def list_nodes(self) -> list[Node]:
        return [self._to_node(record) for record in self._records()]

    def get_node(self, node_id: str) -> Node:
        return self._to_node(self._record(node_id))

    def create_node(
        self,
        name: str,
        size: NodeSize,
        image: NodeImage,
        location: NodeLocation | None = None,
        auth: NodeAuth | None = None,
        idempotency_token: str | None = None,
    ) -> Node:
        if not isinstance(auth, NodeAuthSSHKey):
            raise InvalidRequest("local nodes need auth=NodeAuthSSHKey(...)", provider=PROVIDER)
        if size.id != SIZE.id or image.id != IMAGE.id:
            raise InvalidRequest(
                f"local nodes have size {SIZE.id} and image {IMAGE.id}", provider=PROVIDER
            )
        with self._locked():
            for record in self._records():
                if idempotency_token is not None and record.get("token") == idempotency_token:
                    return self._to_node(record)
            record = {
                "id": f"local-{uuid.uuid4().hex[:12]}",
                "name": name,
                "address": self._free_address(),
                "user": getpass.getuser(),
                "token": idempotency_token,
                "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
            }
            directory = self.state_dir / record["id"]
            directory.mkdir(mode=0o700)
            self._write_node_files(directory, record, auth.public_key)
            self._save(record)
            self._start_sshd(record)
        LOG.info("local node %s started on %s:%d", record["id"], record["address"], self.port)
        return self._to_node(record)

    def _write_node_files(self, directory: Path, record: dict[str, Any], public_key: str) -> None:
        host_key = Ed25519PrivateKey.generate()
        key_path = directory / "ssh_host_ed25519_key"
        key_path.write_bytes(
            host_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        (directory / "authorized_keys").write_text(public_key.strip() + "\n")
        (directory / "sshd_config").write_text(
            SSHD_CONFIG.format(
                address=record["address"], port=self.port, directory=directory, user=record["user"]
            )
        )

    def ex_replace_host_key(self, node: Node) -> None:
        """Give the node a new host key (takes effect at its next start)."""
        record = self._record(node.id)
        directory = self.state_dir / record["id"]
        (directory / "ssh_host_ed25519_key").unlink()
        self._write_node_files(directory, record, (directory / "authorized_keys").read_text())

    def reboot_node(self, node: Node) -> None:
        with self._locked():
            record = self._record(node.id)
            self._stop_sshd(record)
            self._start_sshd(record)

    def start_node(self, node: Node) -> None:
        with self._locked():
            record = self._record(node.id)
            if self._pid(record) is None:
                self._start_sshd(record)

    def stop_node(self, node: Node) -> None:
        with self._locked():
            self._stop_sshd(self._record(node.id))

    def destroy_node(self, node: Node) -> None:
        with self._locked():
            record = self._record(node.id)
            self._stop_sshd(record)
            shutil.rmtree(self.state_dir / record["id"])
        LOG.info("local node %s destroyed", node.id)

    # -- catalog -----------------------------------------------------------

    def list_locations(self) -> list[NodeLocation]:
        return [self.location]

    def list_sizes(self, location: NodeLocation | None = None) -> list[NodeSize]:
        return [SIZE]

    def list_images(self, location: NodeLocation | None = None) -> list[NodeImage]:
        return [IMAGE]


__all__ = ["LocalNodeDriver"]
