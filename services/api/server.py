"""``overcast-api``: the API served by cheroot (pure Python, threaded, no C
build), from one or several processes sharing one listening socket.

cheroot hands request bodies to the application as they arrive (chunked or
with a length), which object uploads need: waitress, used before, spools
every body to memory or a temp file before the application sees a byte."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

from cheroot.wsgi import Server as WSGIServer

from services.api.wsgi import make_app
from services.common import metrics
from services.common.config import Config, load_config
from services.common.context import ServiceContext, build_context
from services.common.heartbeat import Heartbeat
from services.common.memory import return_big_buffers_to_the_system
from services.common.runner import setup_logging

LOG = logging.getLogger(__name__)


def listen(bind: str) -> socket.socket:
    host, _, port = bind.rpartition(":")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]") or "0.0.0.0", int(port)))
    sock.listen(1024)
    return sock


class SocketServer(WSGIServer):
    """cheroot's WSGI server on a socket bound beforehand (shared by forks)."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock.getsockname()[:2], *args, **kwargs)
        self._bound = sock

    def bind(self, family: int, type: int, proto: int = 0) -> socket.socket:
        self.socket = self._bound
        return self._bound


def metrics_app(context: ServiceContext) -> Any:
    """A WSGI app answering ``GET /metrics`` without a key, and 404 otherwise
    (for ``[metrics] bind``, an address only the monitoring can reach)."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or environ["REQUEST_METHOD"] != "GET":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"only GET /metrics here\n"]
        body = metrics.exposition(context.sessions)
        start_response(
            "200 OK", [("Content-Type", metrics.CONTENT_TYPE), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


class MetricsServer:
    """``[metrics] bind``: /metrics on its own address, in a thread."""

    def __init__(self, context: ServiceContext, sock: socket.socket) -> None:
        self.server = SocketServer(sock, metrics_app(context), numthreads=2, server_name="metrics")

    def start(self) -> None:
        self.server.prepare()
        threading.Thread(target=self.server.serve, name="metrics", daemon=True).start()

    def stop(self) -> None:
        self.server.stop()


class ApiServer:
    """The API on a pre-bound socket, in a thread (all-in-one) or the main thread."""

    def __init__(self, context: ServiceContext, sock: socket.socket) -> None:
        self.context = context
        self.heartbeat = Heartbeat(
            context.sessions, "api", context.config.service.heartbeat_interval
        )
        self.server = SocketServer(
            sock,
            make_app(context),
            numthreads=context.config.api.threads,
            request_queue_size=1024,
            timeout=60,
            server_name="overcast",
        )
        # cheroot keeps 10 by default: the 11th client reconnects for every request.
        self.server.keep_alive_conn_limit = context.config.api.keep_alive_connections
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.heartbeat.start()
        self.server.prepare()
        self._thread = threading.Thread(target=self.server.serve, name="api", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.stop()
        self.heartbeat.stop()


def serve(config: Config, sock: socket.socket, metrics_sock: socket.socket | None) -> None:
    context = build_context(config)
    server = ApiServer(context, sock)
    if metrics_sock is not None:
        MetricsServer(context, metrics_sock).start()
    server.heartbeat.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    LOG.info("API listening on %s (pid %d)", config.api.bind, os.getpid())
    try:
        server.server.safe_start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.heartbeat.stop()
        context.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="overcast-api", description=__doc__)
    parser.add_argument("--config-file", help="INI file (see etc/overcast/overcast.conf.sample)")
    args = parser.parse_args(argv)
    config = load_config(args.config_file)
    setup_logging(config.service.log_level)
    return_big_buffers_to_the_system()
    sock = listen(config.api.bind)
    metrics_sock = listen(config.metrics.bind) if config.metrics.bind else None
    if config.api.workers <= 1:
        serve(config, sock, metrics_sock)
        return
    children = []
    for _ in range(config.api.workers):
        pid = os.fork()
        if pid == 0:
            serve(config, sock, None)
            os._exit(0)
        children.append(pid)
    if metrics_sock is not None:  # the parent sums what its children count
        MetricsServer(build_context(config), metrics_sock).start()

    def stop_children(*_: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    for child in children:
        os.waitpid(child, 0)
        metrics.process_exited(child)


__all__ = ["ApiServer", "listen", "main"]
