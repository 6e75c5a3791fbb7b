"""``POST /v1/nodes/{id}/exec``: run a command on a node over SSH and stream
its output back.

The API process logs in itself, with the key Overcast holds for the node
(``services/common/ssh.py``), and streams the output as it comes: one JSON
object per line, ``{"stdout": text}`` or ``{"stderr": text}``, then
``{"exit_status": n}`` (or ``{"error": why}``). The key never leaves the
server, the output never crosses the message queue, and there is no
operation to poll: a command is as long as its timeout at most. Failing to
connect answers 502 before any output.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from drivers.deployment import SSHSession, connect
from drivers.errors import DriverError
from services.api import schemas
from services.api.app import ApiRequest, Reply
from services.common.db.models import Node
from services.common.db.session import session_scope
from services.common.errors import Conflict
from services.common.ssh import login_of

LOG = logging.getLogger(__name__)


def exec_(request: ApiRequest) -> Reply:
    body = schemas.validate("NodeExec", request.json())
    context = request.context
    settings = context.config.worker
    node_id = request.params["node_id"]
    with session_scope(context.sessions) as session:
        node = request.visible(session.get(Node, node_id), "node", node_id)
        if node.state != "running" or node.task == "deleting":
            raise Conflict(f"node {node.name} is {node.state}; commands run on running nodes")
        login = login_of(context, node, body.get("user"))
        if login is None:
            raise Conflict(f"node {node.name}: Overcast holds no key for it")
    ssh = connect(
        login.target,
        username=login.username,
        private_key=login.private_key,
        host_keys=login.host_keys,
        attempts=min(2, settings.deploy_connect_attempts),
        timeout=min(settings.deploy_connect_timeout, float(body.get("timeout", 60))),
    )
    if login.host_keys.known and login.host_keys.known != node.host_key:
        with session_scope(context.sessions) as session:  # first contact: remember its key
            stored = session.get(Node, node_id)
            if stored is not None and stored.host_key is None:
                stored.host_key = login.host_keys.known
    return Reply(
        200,
        stream=_output(ssh, body["command"], float(body.get("timeout", 60))),
        headers={"Content-Type": "application/x-ndjson"},
    )


def _output(ssh: SSHSession, command: str, timeout: float) -> Iterator[bytes]:
    try:
        for kind, data in ssh.stream(command, timeout=timeout):
            if kind == "exit":
                yield _line({"exit_status": data})
            else:
                assert isinstance(data, bytes)
                yield _line({kind: data.decode("utf-8", "replace")})
    except DriverError as error:
        yield _line({"error": error.message})
    except OSError as error:
        yield _line({"error": f"SSH session failed: {type(error).__name__}"})
    finally:
        ssh.close()


def _line(item: dict[str, object]) -> bytes:
    return json.dumps(item).encode() + b"\n"
