"""Deploy onto nodes over SSH (paramiko): keys, files and scripts.

A :class:`Deployment` is a value describing what to do; :func:`run_deployment`
connects (with bounded retries; rejected credentials and changed host keys
are never retried), runs the steps in order, stops at the first failing one
with :class:`DeploymentError`, and returns every step's exit status and the
tails of its output.

Host keys are trusted on first use: the first key a node offers is recorded
in a :class:`HostKeyStore` under the node's id and must match on every later
connection, else :class:`HostKeyMismatch`.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import io
import json
import logging
import os
import select
import shlex
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import paramiko

from drivers.compute.base import Node
from drivers.errors import AuthError, DeploymentError, HostKeyMismatch

LOG = logging.getLogger(__name__)

TAIL_CHARS = 4096


class HostKeyStore(Protocol):
    """Where recorded host keys live (``"type base64"`` strings by node id)."""

    def get(self, node_id: str) -> str | None: ...

    def record(self, node_id: str, host_key: str) -> None: ...


class MemoryHostKeyStore:
    """Host keys kept for the life of the process."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, node_id: str) -> str | None:
        with self._lock:
            return self._keys.get(node_id)

    def record(self, node_id: str, host_key: str) -> None:
        with self._lock:
            self._keys.setdefault(node_id, host_key)


class FileHostKeyStore:
    """Host keys kept in a JSON file, replaced atomically on every record."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    def get(self, node_id: str) -> str | None:
        with self._lock:
            return self._read().get(node_id)

    def record(self, node_id: str, host_key: str) -> None:
        with self._lock:
            keys = self._read()
            keys.setdefault(node_id, host_key)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".hostkeys-")
            with os.fdopen(handle, "w") as stream:
                json.dump(keys, stream)
            os.replace(temporary, self.path)


@dataclass(frozen=True)
class StepResult:
    """What one step did."""

    name: str
    exit_status: int
    stdout_tail: str = ""
    stderr_tail: str = ""


@dataclass(frozen=True)
class DeploymentResult:
    """Every step's result, in order, and the host key the node presented."""

    node_id: str
    host_key: str
    steps: tuple[StepResult, ...]


class SSHSession:
    """A connected SSH client bound to one node."""

    def __init__(self, node: Node, client: paramiko.SSHClient, host_key: str) -> None:
        self.node = node
        self.client = client
        self.host_key = host_key

    def execute(
        self, name: str, command: str, *, timeout: float, stdin: bytes | None = None
    ) -> StepResult:
        """Run ``command``; raises :class:`DeploymentError` on timeout."""
        transport = self.client.get_transport()
        assert transport is not None
        channel = transport.open_session()
        stdout, stderr = _Tail(), _Tail()
        deadline = time.monotonic() + timeout
        try:
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin)
            channel.shutdown_write()
            while True:
                if channel.recv_ready():
                    stdout.add(channel.recv(65536))
                elif channel.recv_stderr_ready():
                    stderr.add(channel.recv_stderr(65536))
                elif channel.exit_status_ready():
                    break
                elif time.monotonic() > deadline:
                    raise DeploymentError(
                        f"timed out after {timeout:g}s",
                        node_id=self.node.id,
                        step=name,
                        stdout_tail=stdout.text(),
                        stderr_tail=stderr.text(),
                    )
                else:
                    select.select([channel], [], [], 0.1)
            status = channel.recv_exit_status()
        finally:
            channel.close()
        return StepResult(name, status, stdout.text(), stderr.text())

    def stream(self, command: str, *, timeout: float) -> Iterator[tuple[str, bytes | int]]:
        """Run ``command``, yielding ``("stdout" | "stderr", chunk)`` as output
        arrives and ``("exit", status)`` last; :class:`DeploymentError` when it
        runs past ``timeout``."""
        transport = self.client.get_transport()
        assert transport is not None
        channel = transport.open_session()
        deadline = time.monotonic() + timeout
        try:
            channel.exec_command(command)
            channel.shutdown_write()
            while True:
                if channel.recv_ready():
                    yield "stdout", channel.recv(65536)
                elif channel.recv_stderr_ready():
                    yield "stderr", channel.recv_stderr(65536)
                elif channel.exit_status_ready():
                    break
                elif time.monotonic() > deadline:
                    raise DeploymentError(
                        f"timed out after {timeout:g}s", node_id=self.node.id, step=command
                    )
                else:
                    select.select([channel], [], [], 0.1)
            yield "exit", channel.recv_exit_status()
        finally:
            channel.close()

    def put(self, content: bytes, path: str, mode: int = 0o644) -> None:
        """Write ``content`` to ``path`` on the node."""
        with self.client.open_sftp() as sftp, sftp.open(path, "wb") as remote:
            remote.write(content)
            remote.chmod(mode)

    def put_stream(self, chunks: Iterable[bytes], path: str, mode: int = 0o644) -> str:
        """Write the chunks to ``path`` as they come (never whole in memory);
        returns the SHA-256 of what was sent."""
        digest = hashlib.sha256()
        with self.client.open_sftp() as sftp, sftp.open(path, "wb") as remote:
            remote.set_pipelined(True)
            for chunk in chunks:
                digest.update(chunk)
                remote.write(chunk)
            remote.chmod(mode)
        return digest.hexdigest()

    def remove(self, path: str) -> None:
        with self.client.open_sftp() as sftp:
            sftp.remove(path)

    def close(self) -> None:
        self.client.close()


class _Tail:
    """Keeps the last :data:`TAIL_CHARS` bytes of a stream."""

    def __init__(self) -> None:
        self._data = bytearray()

    def add(self, chunk: bytes) -> None:
        self._data.extend(chunk)
        if len(self._data) > 2 * TAIL_CHARS:
            del self._data[:-TAIL_CHARS]

    def text(self) -> str:
        return self._data[-TAIL_CHARS:].decode("utf-8", "replace")


class Deployment(abc.ABC):
    """One or more steps to run on a node."""

    @abc.abstractmethod
    def run(self, session: SSHSession) -> list[StepResult]:
        """Run on a connected node; raise :class:`DeploymentError` on failure."""


def _check(session: SSHSession, result: StepResult) -> StepResult:
    if result.exit_status != 0:
        raise DeploymentError(
            "step failed",
            node_id=session.node.id,
            step=result.name,
            exit_status=result.exit_status,
            stdout_tail=result.stdout_tail,
            stderr_tail=result.stderr_tail,
        )
    return result


@dataclass(frozen=True)
class SSHKeyDeployment(Deployment):
    """Add a public key to the login user's authorized keys."""

    public_key: str
    authorized_keys: str = "~/.ssh/authorized_keys"
    timeout: float = 60.0

    def run(self, session: SSHSession) -> list[StepResult]:
        target = self.authorized_keys
        directory = os.path.dirname(target) or "."
        command = f"umask 077 && mkdir -p {_shell_path(directory)} && cat >> {_shell_path(target)}"
        result = session.execute(
            "ssh-key", command, timeout=self.timeout, stdin=self.public_key.strip().encode() + b"\n"
        )
        return [_check(session, result)]


def _shell_path(path: str) -> str:
    """Quote a path for the shell, keeping a leading ``~/`` expandable."""
    if path.startswith("~/"):
        return "~/" + shlex.quote(path[2:])
    return shlex.quote(path)


@dataclass(frozen=True)
class FileDeployment(Deployment):
    """Upload a local file (``source``) or bytes (``content``) to ``target``."""

    target: str
    source: str | None = None
    content: bytes | None = None
    mode: int = 0o644

    def __post_init__(self) -> None:
        if (self.source is None) == (self.content is None):
            raise ValueError("FileDeployment takes exactly one of source or content")

    def run(self, session: SSHSession) -> list[StepResult]:
        data = self.content if self.content is not None else Path(str(self.source)).read_bytes()
        try:
            session.put(data, self.target, self.mode)
        except (OSError, paramiko.SSHException) as error:
            raise DeploymentError(
                f"upload failed: {error}", node_id=session.node.id, step=f"file {self.target}"
            ) from None
        return [StepResult(f"file {self.target}", 0)]


@dataclass(frozen=True)
class StreamDeployment(Deployment):
    """Stream bytes (an object from storage, say) to ``target``, checked both
    ways: the SHA-256 of what was sent must equal the node's ``sha256sum`` of
    what it wrote, and only then does the file take its name."""

    target: str
    chunks: Callable[[], Iterable[bytes]]
    mode: int = 0o644
    name: str | None = None
    timeout: float = 300.0

    def run(self, session: SSHSession) -> list[StepResult]:
        step = self.name or f"file {self.target}"
        partial = f"{self.target}.overcast-{uuid.uuid4().hex[:8]}"
        try:
            sent = session.put_stream(self.chunks(), partial, self.mode)
        except BaseException as error:  # the source failed (a bad hash) or the upload did
            with contextlib.suppress(OSError, paramiko.SSHException):
                session.remove(partial)
            if isinstance(error, OSError | paramiko.SSHException):
                raise DeploymentError(
                    f"upload failed: {error}", node_id=session.node.id, step=step
                ) from None
            raise
        quoted, final = shlex.quote(partial), shlex.quote(self.target)
        checked = session.execute(step, f"sha256sum {quoted} | cut -d' ' -f1", timeout=self.timeout)
        if checked.exit_status != 0 or checked.stdout_tail.strip() != sent:
            session.execute(step, f"rm -f {quoted}", timeout=self.timeout)
            raise DeploymentError(
                f"the node wrote sha256 {checked.stdout_tail.strip() or '?'}, "
                f"not the {sent} that was sent",
                node_id=session.node.id,
                step=step,
            )
        moved = session.execute(step, f"mv -f {quoted} {final}", timeout=self.timeout)
        return [
            _check(
                session, StepResult(step, moved.exit_status, f"sha256 {sent}\n", moved.stderr_tail)
            )
        ]


@dataclass(frozen=True)
class ScriptDeployment(Deployment):
    """Upload ``script``, run it with ``args``, and delete it afterwards."""

    script: str
    args: tuple[str, ...] = ()
    name: str | None = None
    timeout: float = 300.0
    delete: bool = True
    remote_path: str | None = None
    #: Environment variables for the script, and the directory it runs in.
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None

    def run(self, session: SSHSession) -> list[StepResult]:
        path = self.remote_path or f"/tmp/overcast-deploy-{uuid.uuid4().hex}"
        step = self.name or f"script {os.path.basename(path)}"
        session.put(self.script.encode(), path, 0o700)
        try:
            command = " ".join(shlex.quote(part) for part in (path, *self.args))
            if self.env:
                assignments = (f"{name}={shlex.quote(value)}" for name, value in self.env.items())
                command = f"env {' '.join(assignments)} {command}"
            if self.cwd:
                command = f"cd {shlex.quote(self.cwd)} && {command}"
            result = session.execute(step, command, timeout=self.timeout)
        finally:
            if self.delete:
                session.remove(path)
        return [_check(session, result)]


@dataclass(frozen=True)
class MultiStepDeployment(Deployment):
    """Run several deployments in order; the first failure stops the rest."""

    steps: tuple[Deployment, ...]

    def run(self, session: SSHSession) -> list[StepResult]:
        results: list[StepResult] = []
        for step in self.steps:
            results.extend(step.run(session))
        return results


def load_private_key(text: str) -> paramiko.PKey:
    """Parse an OpenSSH/PEM private key; raises :class:`AuthError` if unusable."""
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise AuthError("the SSH private key could not be read")


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    def __init__(self, node: Node, store: HostKeyStore) -> None:
        self.node = node
        self.store = store
        self.seen: str | None = None

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        seen = f"{key.get_name()} {key.get_base64()}"
        expected = self.store.get(self.node.id)
        if expected is not None and expected != seen:
            raise HostKeyMismatch(hostname, expected, seen)
        self.seen = seen


def connect(
    node: Node,
    *,
    username: str,
    private_key: str,
    host_keys: HostKeyStore,
    attempts: int = 10,
    timeout: float = 10.0,
    backoff: float = 0.5,
    max_backoff: float = 5.0,
) -> SSHSession:
    """Connect to the node, retrying while it is not yet reachable.

    Raises :class:`AuthError` (key rejected), :class:`HostKeyMismatch`, or
    :class:`DeploymentError` when every attempt failed.
    """
    address = node.address
    if address is None:
        raise DeploymentError("node has no address", node_id=node.id)
    pkey = load_private_key(private_key)
    last_error = ""
    for attempt in range(attempts):
        policy = _TrustOnFirstUse(node, host_keys)
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(policy)
        try:
            client.connect(
                address,
                port=node.ssh_port,
                username=username,
                pkey=pkey,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except paramiko.AuthenticationException:
            client.close()
            raise AuthError(f"SSH login as {username} to node {node.id} was refused") from None
        except HostKeyMismatch:
            client.close()
            raise
        except (OSError, EOFError, paramiko.SSHException) as error:
            client.close()
            last_error = f"{type(error).__name__}: {error}"
            LOG.debug("node %s: SSH attempt %d failed: %s", node.id, attempt + 1, last_error)
            time.sleep(min(max_backoff, backoff * 2**attempt))
            continue
        assert policy.seen is not None
        host_keys.record(node.id, policy.seen)
        return SSHSession(node, client, policy.seen)
    raise DeploymentError(
        f"could not connect over SSH after {attempts} attempts ({last_error})", node_id=node.id
    )


def run_deployment(
    node: Node,
    deployment: Deployment,
    *,
    username: str,
    private_key: str,
    host_keys: HostKeyStore | None = None,
    connect_attempts: int = 10,
    connect_timeout: float = 10.0,
) -> DeploymentResult:
    """Connect to ``node`` and run ``deployment`` (see the module docstring)."""
    session = connect(
        node,
        username=username,
        private_key=private_key,
        host_keys=host_keys if host_keys is not None else MemoryHostKeyStore(),
        attempts=connect_attempts,
        timeout=connect_timeout,
    )
    try:
        steps = deployment.run(session)
    except (OSError, paramiko.SSHException) as error:
        raise DeploymentError(f"SSH session failed: {error}", node_id=node.id) from None
    finally:
        session.close()
    LOG.info("node %s: deployment of %d step(s) succeeded", node.id, len(steps))
    return DeploymentResult(node_id=node.id, host_key=session.host_key, steps=tuple(steps))
