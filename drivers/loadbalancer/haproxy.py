"""``haproxy``: balancers as HAProxy processes on this host.

One HAProxy process per balancer. Frontends cannot be added at runtime, so
the choice is a process per balancer or a reload per new frontend; a process
per balancer never reloads, so creating or deleting one balancer never
touches another's connections, a crash takes down one balancer only, and
each process's configuration is the balancer's state, nothing more. It
costs one small process (a few MiB) per balancer.

Members change at runtime through the process's Runtime API (its admin
socket): ``add server`` (with its health check), ``set server ... weight``,
and a detach that drains the server, waits for its connections to finish,
then removes it (``del server``) -- no reload, no dropped connection.

The balancer's state (``<state_dir>/<id>/balancer.json``, written atomically
after every change) is the truth: the configuration is generated from it, so
a balancer whose process died, or whose host restarted, is rebuilt with its
members by the next call that finds it down (:meth:`ensure_running`).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from drivers.errors import InvalidRequest, NotFound, ProviderError
from drivers.loadbalancer.base import (
    Algorithm,
    Health,
    HealthCheck,
    LoadBalancer,
    LoadBalancerDriver,
    LoadBalancerFeatures,
    Member,
    MemberSpec,
    Protocol,
)

PROVIDER = "haproxy"
BACKEND = "members"

BALANCE = {
    Algorithm.ROUND_ROBIN: "roundrobin",
    Algorithm.WEIGHTED_ROUND_ROBIN: "roundrobin",
    Algorithm.LEAST_CONNECTIONS: "leastconn",
    Algorithm.WEIGHTED_LEAST_CONNECTIONS: "leastconn",
    Algorithm.RANDOM: "random",
}

HEALTH = {
    "UP": Health.UP,
    "DOWN": Health.DOWN,
    "MAINT": Health.MAINTENANCE,
    "DRAIN": Health.DRAINING,
    "NOLB": Health.DRAINING,
}


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def default_state_dir() -> Path:
    return Path(
        os.environ.get("OVERCAST_HAPROXY_DIR", "~/.local/state/overcast/haproxy")
    ).expanduser()


class HAProxyLoadBalancerDriver(LoadBalancerDriver):
    name = "HAProxy"
    provider = PROVIDER
    features = LoadBalancerFeatures(ip_members=True, drain=True)
    protocols = (Protocol.HTTP, Protocol.TCP)
    algorithms = tuple(BALANCE)

    def __init__(
        self,
        key: str | None = None,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        bind_ip: str = "127.0.0.1",
        haproxy_path: str | None = None,
        socket_dir: str | os.PathLike[str] | None = None,
        country: str = "ZZ",
        drain_timeout: float = 30.0,
        startup_timeout: float = 10.0,
        **_options: Any,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.bind_ip = bind_ip
        # Unix socket paths are short (108 bytes): admin sockets live apart, private.
        self.socket_dir = Path(
            socket_dir or Path(tempfile.gettempdir()) / f"overcast-haproxy-{os.getuid()}"
        )
        self.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_dir = self.state_dir / ".locks"
        self._lock_dir.mkdir(exist_ok=True)
        self.binary = haproxy_path or shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.country = country
        self.drain_timeout = drain_timeout
        self.startup_timeout = startup_timeout
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # -- state -------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self, balancer_id: str) -> Iterator[None]:
        """Hold the balancer: against this driver's other threads, and with an
        advisory file lock against other processes (another worker, or its
        periodic check, must not restart a balancer being destroyed)."""
        with self._guard:
            local = self._locks.setdefault(balancer_id, threading.Lock())
        self._dir(balancer_id)  # the id is checked before it names a file
        with local, open(self._lock_dir / f"{balancer_id}.lock", "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            yield

    def _dir(self, balancer_id: str) -> Path:
        if not balancer_id.replace("-", "").isalnum():
            raise NotFound(f"balancer {balancer_id} not found", provider=PROVIDER)
        return self.state_dir / balancer_id

    def _load(self, balancer_id: str) -> dict[str, Any]:
        path = self._dir(balancer_id) / "balancer.json"
        try:
            return json.loads(path.read_text())  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise NotFound(f"balancer {balancer_id} not found", provider=PROVIDER) from None

    def _save(self, state: dict[str, Any]) -> None:
        directory = self._dir(state["id"])
        temporary = directory / f".balancer.json.{uuid.uuid4().hex}"
        temporary.write_text(json.dumps(state, indent=2))
        os.replace(temporary, directory / "balancer.json")

    def _to_balancer(self, state: dict[str, Any], running: bool) -> LoadBalancer:
        return LoadBalancer(
            id=state["id"],
            name=state["name"],
            state="running" if running else "stopped",
            ip=self.bind_ip,
            port=state["port"],
            protocol=Protocol(state["protocol"]),
            algorithm=Algorithm(state["algorithm"]),
            provider=PROVIDER,
            location=socket.gethostname(),
            extra={"country": self.country, "pid": self._pid(state["id"])},
        )

    # -- the process -------------------------------------------------------

    def _config(self, state: dict[str, Any]) -> str:
        directory = self._dir(state["id"])
        check = HealthCheck(**state["health_check"])
        lines = [
            "global",
            f"    stats socket {self._socket(state['id'])} mode 600 level admin",
            f"    pidfile {directory / 'haproxy.pid'}",
            "    maxconn 4096",
            "defaults",
            f"    mode {'http' if state['protocol'] == Protocol.HTTP else 'tcp'}",
            "    timeout connect 5s",
            "    timeout client 60s",
            "    timeout server 60s",
            "    retries 3",
            "    option redispatch",
            "frontend balancer",
            f"    bind {self.bind_ip}:{state['port']}",
            f"    default_backend {BACKEND}",
            f"backend {BACKEND}",
            f"    balance {BALANCE[Algorithm(state['algorithm'])]}",
        ]
        if state["protocol"] == Protocol.HTTP and check.path:
            lines.append(f"    option httpchk GET {check.path}")
        lines += [self._server_line(member, check, runtime=False) for member in state["members"]]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _server_line(member: dict[str, Any], check: HealthCheck, *, runtime: bool) -> str:
        words = [
            f"{member['ip']}:{member['port']}",
            f"weight {member['weight']}",
            "check",
            f"inter {int(check.interval * 1000)}",
            f"fall {check.unhealthy_threshold}",
            f"rise {check.healthy_threshold}",
        ]
        if runtime:
            return f"add server {BACKEND}/{member['id']} " + " ".join(words)
        disabled = " disabled" if member.get("state") == "maintenance" else ""
        return f"    server {member['id']} " + " ".join(words) + disabled

    def _pid(self, balancer_id: str) -> int | None:
        try:
            pid = int((self._dir(balancer_id) / "haproxy.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        if _zombie(pid):  # exited; its parent (init, for a daemon) has not reaped it yet
            return None
        return pid

    def _running(self, balancer_id: str) -> bool:
        if self._pid(balancer_id) is None:
            return False
        try:
            self._command(balancer_id, "show info")
        except ProviderError:
            return False
        return True

    def _start(self, state: dict[str, Any]) -> None:
        directory = self._dir(state["id"])
        config = directory / "haproxy.cfg"
        config.write_text(self._config(state))
        self._socket(state["id"]).unlink(missing_ok=True)
        result = subprocess.run(
            [self.binary, "-D", "-f", str(config)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise ProviderError(
                f"haproxy would not start: {result.stderr.strip()[-300:]}", provider=PROVIDER
            )
        deadline = time.monotonic() + self.startup_timeout
        while not self._running(state["id"]):
            if time.monotonic() > deadline:
                raise ProviderError(
                    "haproxy started but its admin socket is silent", provider=PROVIDER
                )
            time.sleep(0.02)

    def ensure_running(self, balancer_id: str) -> bool:
        """Start the balancer's process from its state if it is not running
        (after a crash or a host restart); True when it had to."""
        with self._lock(balancer_id):
            state = self._load(balancer_id)
            if self._running(balancer_id):
                return False
            self._start(state)
            return True

    def _socket(self, balancer_id: str) -> Path:
        return self.socket_dir / f"{balancer_id}.sock"

    def _command(self, balancer_id: str, command: str) -> str:
        path = self._socket(balancer_id)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
                channel.settimeout(5)
                channel.connect(str(path))
                channel.sendall(command.encode() + b"\n")
                chunks = []
                while chunk := channel.recv(65536):
                    chunks.append(chunk)
        except OSError as error:
            raise ProviderError(
                f"haproxy admin socket: {type(error).__name__}", transient=True, provider=PROVIDER
            ) from None
        return b"".join(chunks).decode(errors="replace")

    def _apply(self, balancer_id: str, command: str) -> None:
        answer = self._command(balancer_id, command).strip()
        lowered = answer.lower()
        if any(word in lowered for word in ("no such", "unknown", "error", "not found", "invalid")):
            raise InvalidRequest(
                f"haproxy refused '{command.split()[0]} ...': {answer[:200]}", provider=PROVIDER
            )

    def _stats(self, balancer_id: str) -> dict[str, dict[str, str]]:
        text = self._command(balancer_id, "show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {row["svname"]: row for row in rows if row.get("pxname") == BACKEND}

    # -- balancers ---------------------------------------------------------

    def list_balancers(self) -> list[LoadBalancer]:
        found = []
        for path in sorted(self.state_dir.glob("*/balancer.json")):
            state = json.loads(path.read_text())
            found.append(self._to_balancer(state, self._running(state["id"])))
        return found

    def get_balancer(self, balancer_id: str) -> LoadBalancer:
        state = self._load(balancer_id)
        return self._to_balancer(state, self._running(balancer_id))

    def create_balancer(
        self,
        name: str,
        port: int,
        protocol: Protocol | str = Protocol.HTTP,
        algorithm: Algorithm | str = Algorithm.ROUND_ROBIN,
        members: Iterable[MemberSpec] = (),
        health_check: HealthCheck | None = None,
        balancer_id: str | None = None,
    ) -> LoadBalancer:
        """``balancer_id`` makes the create idempotent (a repeat finds the first)."""
        self.check_supported(protocol, algorithm)
        if not 1 <= port <= 65535:
            raise InvalidRequest("port must be 1 to 65535", provider=PROVIDER)
        specs = list(members)
        for spec in specs:
            self._check_member(spec)
        balancer_id = balancer_id or f"lb-{uuid.uuid4().hex[:16]}"
        with self._lock(balancer_id):
            with contextlib.suppress(NotFound):
                existing = self._load(balancer_id)
                if not self._running(balancer_id):
                    self._start(existing)
                return self._to_balancer(existing, True)
            state = {
                "id": balancer_id,
                "name": name,
                "port": port,
                "protocol": str(Protocol(protocol)),
                "algorithm": str(Algorithm(algorithm)),
                "health_check": asdict(health_check or HealthCheck()),
                "members": [self._member_state(spec) for spec in specs],
            }
            directory = self._dir(balancer_id)
            directory.mkdir(parents=True)
            try:
                self._save(state)
                self._start(state)
            except BaseException:
                self._stop(balancer_id)
                shutil.rmtree(directory, ignore_errors=True)
                raise
            return self._to_balancer(state, True)

    def update_balancer(
        self,
        balancer_id: str,
        *,
        algorithm: Algorithm | str | None = None,
        health_check: HealthCheck | None = None,
    ) -> LoadBalancer:
        """A new algorithm or health check restarts the balancer's process
        (HAProxy cannot change them at runtime); members stay."""
        with self._lock(balancer_id):
            state = self._load(balancer_id)
            if algorithm is not None:
                self.check_supported(state["protocol"], algorithm)
                state["algorithm"] = str(Algorithm(algorithm))
            if health_check is not None:
                state["health_check"] = asdict(health_check)
            self._save(state)
            self._stop(balancer_id)
            self._start(state)
            return self._to_balancer(state, True)

    def destroy_balancer(self, balancer_id: str) -> None:
        with self._lock(balancer_id):
            self._load(balancer_id)
            self._stop(balancer_id)
            shutil.rmtree(self._dir(balancer_id), ignore_errors=True)

    def _stop(self, balancer_id: str) -> None:
        pid = self._pid(balancer_id)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self._pid(balancer_id) is not None and time.monotonic() < deadline:
            time.sleep(0.02)

    # -- members -----------------------------------------------------------

    def _check_member(self, spec: MemberSpec) -> None:
        if spec.ip is None or spec.port is None:
            raise InvalidRequest(
                "haproxy members are addresses: give ip and port", provider=PROVIDER
            )

    @staticmethod
    def _member_state(spec: MemberSpec) -> dict[str, Any]:
        return {
            "id": f"m-{uuid.uuid4().hex[:12]}",
            "ip": spec.ip,
            "port": spec.port,
            "weight": spec.weight,
            "state": "enabled",
        }

    def attach_member(self, balancer_id: str, member: MemberSpec) -> Member:
        self._check_member(member)
        self.ensure_running(balancer_id)
        with self._lock(balancer_id):
            state = self._load(balancer_id)
            record = self._member_state(member)
            check = HealthCheck(**state["health_check"])
            self._apply(balancer_id, self._server_line(record, check, runtime=True))
            self._apply(balancer_id, f"enable health {BACKEND}/{record['id']}")
            self._apply(balancer_id, f"enable server {BACKEND}/{record['id']}")
            state["members"].append(record)
            self._save(state)
        return self._to_member(record, {})

    def set_member_weight(self, balancer_id: str, member_id: str, weight: int) -> None:
        if not 0 <= weight <= 256:
            raise InvalidRequest("member weights are 0 to 256", provider=PROVIDER)
        with self._lock(balancer_id):
            state = self._load(balancer_id)
            record = self._find(state, member_id)
            self._apply(balancer_id, f"set server {BACKEND}/{member_id} weight {weight}")
            record["weight"] = weight
            self._save(state)

    def drain_member(self, balancer_id: str, member_id: str) -> None:
        """No new connections to the member; current ones finish."""
        with self._lock(balancer_id):
            state = self._load(balancer_id)
            self._find(state, member_id)
            self._apply(balancer_id, f"set server {BACKEND}/{member_id} state drain")

    def detach_member(self, balancer_id: str, member_id: str) -> None:
        """Drain, wait for the member's connections to finish (at most
        ``drain_timeout``), then remove it: no request in flight is cut."""
        self.ensure_running(balancer_id)
        with self._lock(balancer_id):
            state = self._load(balancer_id)
            self._find(state, member_id)
            server = f"{BACKEND}/{member_id}"
            self._apply(balancer_id, f"set server {server} state drain")
            deadline = time.monotonic() + self.drain_timeout
            while time.monotonic() < deadline:
                row = self._stats(balancer_id).get(member_id)
                if row is None or int(row.get("scur") or 0) == 0:
                    break
                time.sleep(0.005)
            self._apply(balancer_id, f"set server {server} state maint")
            self._command(balancer_id, f"shutdown sessions server {server}")
            self._apply(balancer_id, f"del server {server}")
            state["members"] = [m for m in state["members"] if m["id"] != member_id]
            self._save(state)

    @staticmethod
    def _find(state: dict[str, Any], member_id: str) -> dict[str, Any]:
        for record in state["members"]:
            if record["id"] == member_id:
                return record  # type: ignore[no-any-return]
        raise NotFound(f"member {member_id} not found", provider=PROVIDER)

    def list_members(self, balancer_id: str) -> list[Member]:
        self.ensure_running(balancer_id)
        state = self._load(balancer_id)
        stats = self._stats(balancer_id)
        return [self._to_member(record, stats.get(record["id"], {})) for record in state["members"]]

    @staticmethod
    def _to_member(record: dict[str, Any], row: dict[str, str]) -> Member:
        status = (row.get("status") or "").split(" ")[0]
        health = HEALTH.get(status, Health.UNKNOWN)
        return Member(
            id=record["id"],
            ip=record["ip"],
            port=record["port"],
            weight=record["weight"],
            state=record.get("state", "enabled"),
            health=health,
            extra={"status": row.get("status"), "connections": int(row.get("scur") or 0)},
        )
