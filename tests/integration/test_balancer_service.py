"""Through the service: a HAProxy balancer over two local nodes, each deployed
with a tiny HTTP server that answers its node's name; a deleted node leaves
the balancer before it goes."""

from __future__ import annotations

import collections
import contextlib
import getpass
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from drivers.common.ssh_keys import generate_key_pair
from tests.functional.harness import Service, service_config, start_service, stop_service
from tests.helpers import destroy_balancers, need_haproxy, wait_for
from tests.integration.deployment import free_port

pytestmark = pytest.mark.integration

APP_PORT = 8080

#: Serves the node's name on its own loopback address (the node's SSH server
#: address, from $SSH_CONNECTION), detached so that it outlives the deploy.
SERVER = """#!/bin/sh
address=$(echo "$SSH_CONNECTION" | cut -d' ' -f3)
setsid {python} -c '
import http.server, sys
class Name(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = sys.argv[1].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((sys.argv[2], {port}), Name).serve_forever()
' "{name}" "$address" </dev/null >/dev/null 2>&1 &
echo $! > {pid_file}
"""


@pytest.fixture
def service(tmp_path: Path, local_state_dir: Path) -> Iterator[Service]:
    need_haproxy()
    running = start_service(service_config(tmp_path))
    pid_files: list[Path] = []
    try:
        running.add_account("alpha", "local", provider="local", state_dir=str(local_state_dir))
        running.add_balancer_account("alpha", "edge", state_dir=str(tmp_path / "haproxy"))
        running.pid_files = pid_files  # type: ignore[attr-defined]
        yield running
    finally:
        stop_service(running)
        destroy_balancers(tmp_path / "haproxy")
        for pid_file in pid_files:
            with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)


def deployed_node(service: Service, name: str, tmp_path: Path) -> dict:
    pid_file = tmp_path / f"{name}.pid"
    service.pid_files.append(pid_file)  # type: ignore[attr-defined]
    _, public_key = generate_key_pair()
    script = SERVER.format(python=sys.executable, port=APP_PORT, name=name, pid_file=pid_file)
    return service.create_node(
        name,
        image="host",
        providers=["local"],
        ssh_public_key=public_key,
        deploy={"ssh_username": getpass.getuser(), "script": script},
    )


def ask(port: int) -> str:
    return requests.get(f"http://127.0.0.1:{port}/", timeout=5).text


def test_two_local_nodes_answer_through_a_balancer_and_a_deleted_one_leaves_first(
    service, tmp_path
):
    nodes = [deployed_node(service, name, tmp_path) for name in ("left", "right")]
    assert [node["deployment"]["status"] for node in nodes] == ["succeeded", "succeeded"]
    port = free_port()
    answer = service.call(
        "POST",
        "/v1/balancers",
        key="member",
        body={
            "name": "front",
            "port": port,
            "health_check": {"interval": 0.2, "timeout": 0.5, "path": "/"},
            "members": [{"node_id": node["id"], "port": APP_PORT} for node in nodes],
        },
    )
    assert answer.status == 202, answer.body
    operation = service.wait_operation(answer.body["operation"]["id"], key="member")
    assert operation["status"] == "succeeded", operation
    balancer_id = answer.body["balancer"]["id"]

    def members() -> list[dict]:
        shown = service.call("GET", f"/v1/balancers/{balancer_id}", key="member")
        return shown.body["balancer"]["members"]  # type: ignore[no-any-return]

    assert {m["node_id"] for m in members()} == {n["id"] for n in nodes}
    wait_for(
        lambda: [m["health"] for m in members()] == ["up", "up"],
        timeout=20,
        what="both members healthy in the balancer's answer",
    )
    answers = collections.Counter(ask(port) for _ in range(40))
    assert answers == {"left": 20, "right": 20}

    deletion = service.call("DELETE", f"/v1/nodes/{nodes[0]['id']}", key="member")
    deleted = service.wait_operation(deletion.body["operation"]["id"], key="member")
    messages = [event["message"] for event in deleted["events"]]
    assert f"left balancer {balancer_id}" in messages
    assert [m["node_id"] for m in members()] == [nodes[1]["id"]]
    # Its server still runs, but the balancer no longer sends it anything.
    assert collections.Counter(ask(port) for _ in range(40)) == {"right": 40}
