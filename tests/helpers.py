"""Helpers shared by the test suites."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def services_required() -> bool:
    return os.environ.get("OVERCAST_REQUIRE_SERVICES") == "1"


def need(available: bool, what: str) -> None:
    """Skip (or, under OVERCAST_REQUIRE_SERVICES=1, fail) when ``what`` is missing."""
    if available:
        return
    if services_required():
        pytest.fail(f"{what} is required (OVERCAST_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} is not available")


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM a process started with ``start_new_session``, and its children;
    SIGKILL whatever is left after ``timeout``."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sent)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


MIB = 1024 * 1024


def block(index: int, size: int = MIB) -> bytes:
    """Block ``index`` of a test object: pseudo-random bytes, the same every run,
    so any range of an object made of :func:`blocks` can be recomputed."""
    return random.Random(index).randbytes(size)


def blocks(count: int) -> Iterator[bytes]:
    """An object of ``count`` MiB, as a stream of unknown length."""
    for index in range(count):
        yield block(index)


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 that answers from a queue of replies."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.default = Reply(404, b'{"error": "no reply scripted"}')
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._lock:
                    server.requests.append(
                        RecordedRequest(self.command, self.path, dict(self.headers), body)
                    )
                    reply = server.replies.pop(0) if server.replies else server.default
                if reply.delay:
                    time.sleep(reply.delay)  # the slow server is the behaviour under test
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    @contextmanager
    def running(self) -> Iterator[ScriptedServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()


def need_haproxy() -> None:
    """Skip (or fail, when services are required) without Debian's haproxy."""
    need(
        shutil.which("haproxy") is not None or os.path.exists("/usr/sbin/haproxy"),
        "haproxy (apt-get install haproxy)",
    )


def destroy_balancers(state_dir: str | os.PathLike[str]) -> None:
    """Stop every HAProxy balancer kept under ``state_dir`` (a test's cleanup)."""
    from drivers.errors import NotFound
    from drivers.loadbalancer.haproxy import HAProxyLoadBalancerDriver

    driver = HAProxyLoadBalancerDriver(state_dir=state_dir)
    for balancer in driver.list_balancers():
        with suppress(NotFound):  # a worker may be deleting it too
            driver.destroy_balancer(balancer.id)
