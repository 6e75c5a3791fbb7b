"""``deploy_node``: run the requested deployment on a running node over SSH,
logged in as ``services/common/ssh.py`` says."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from drivers.deployment import (
    Deployment,
    FileDeployment,
    MultiStepDeployment,
    ScriptDeployment,
    StreamDeployment,
    run_deployment,
)
from drivers.errors import DriverError, NotFound
from services.common import storage
from services.common.context import ServiceContext
from services.common.db.models import Container, Node
from services.common.db.session import session_scope
from services.common.errors import ServiceError
from services.common.messaging import Envelope
from services.common.ssh import login_of
from services.common.states import State, Task, finish_operation, set_state

LOG = logging.getLogger(__name__)


Source = Callable[[str], Callable[[], Iterable[bytes]]]


def build_deployment(spec: dict[str, Any], timeout: float, source: Source) -> Deployment:
    """The deployment a spec asks for; ``source("container/key")`` gives the
    chunks of a stored object (raising ``NotFound`` for a missing one)."""
    steps: list[Deployment] = [
        FileDeployment(
            target=item["path"],
            content=item["content"].encode(),
            mode=int(item.get("mode", "644"), 8),
        )
        for item in spec.get("files", [])
    ]
    if spec.get("script"):
        steps.append(ScriptDeployment(spec["script"], name="script", timeout=timeout))
    for index, step in enumerate(spec.get("steps", [])):
        if "file" in step:
            item = step["file"]
            steps.append(
                StreamDeployment(
                    target=item["target"],
                    chunks=source(item["from"]),
                    mode=int(item.get("mode", "644"), 8),
                    name=f"file {item['from']} -> {item['target']}",
                    timeout=timeout,
                )
            )
        else:
            steps.append(
                ScriptDeployment(
                    step["script"],
                    name=f"step {index + 1}: script",
                    timeout=timeout,
                    env=step.get("env") or {},
                    cwd=step.get("cwd"),
                )
            )
    return MultiStepDeployment(tuple(steps))


def object_source(context: ServiceContext, session: Session, project_id: str) -> Source:
    """Objects of the project's containers, streamed from their provider."""

    def source(address: str) -> Callable[[], Iterable[bytes]]:
        name, _, key = address.partition("/")
        container = session.scalars(
            select(Container).where(
                Container.project_id == project_id,
                Container.name == name,
                Container.deleted_at.is_(None),
            )
        ).first()
        if container is None:
            raise NotFound(f"container {name} not found", provider="overcast")
        driver = storage.driver_of(context, session, container)
        bucket = container.provider_name
        driver.get_object(bucket, key)  # ObjectNotFound now, not halfway through
        return lambda: driver.download_object_as_stream(bucket, key)

    return source


def deploy_node(context: ServiceContext, envelope: Envelope) -> None:
    node_id = envelope.payload["node_id"]
    with session_scope(context.sessions) as session:
        node = session.get(Node, node_id)
        if node is None or node.task != Task.DEPLOYING.value or node.ssh_private_key is None:
            return
        spec = dict(node.spec.get("deploy") or {})
        login = login_of(context, node, spec.get("ssh_username"))
        assert login is not None
        operation_id = node.operation_id
        source = object_source(context, session, node.project_id)
        try:
            deployment: Deployment | DriverError = build_deployment(
                spec, context.config.worker.deploy_timeout, source
            )
        except (DriverError, ServiceError) as missing:
            deployment = NotFound(str(missing), provider="overcast")
    result: dict[str, Any]
    try:
        if isinstance(deployment, DriverError):
            raise deployment
        outcome = run_deployment(
            login.target,
            deployment,
            username=login.username,
            private_key=login.private_key,
            host_keys=login.host_keys,
            connect_attempts=context.config.worker.deploy_connect_attempts,
            connect_timeout=context.config.worker.deploy_connect_timeout,
        )
        status, error = "succeeded", None
        result = {"steps": [step.__dict__ for step in outcome.steps]}
    except DriverError as failed:
        status, error = "failed", str(failed)
        result = {
            "error": error,
            "step": getattr(failed, "step", None),
            "exit_status": getattr(failed, "exit_status", None),
            "stdout_tail": getattr(failed, "stdout_tail", ""),
            "stderr_tail": getattr(failed, "stderr_tail", ""),
        }
    with session_scope(context.sessions) as session:
        node = session.get(Node, node_id)
        if node is None or node.task != Task.DEPLOYING.value:
            return
        node.host_key = login.host_keys.known
        node.deployment_status = status
        node.deployment_result = result
        set_state(node, State.RUNNING, task=None)
        finish_operation(session, operation_id, status, error)
    LOG.info("node %s: deployment %s", node_id, status)
