"""Applying what a provider reports to a node that waits on it.

Shared by the build handler (when a node is already running on return from
``create_node``) and the state poller.
"""

from __future__ import annotations

from drivers.compute.base import Node as DriverNode
from drivers.compute.base import NodeState
from services.common import messaging
from services.common.db.models import Node
from services.common.outbox import Transaction
from services.common.states import (
    POLLED_TASKS,
    State,
    Task,
    add_event,
    age,
    finish_operation,
    set_state,
)

#: How long a freshly created node may be missing from list_nodes (eventual consistency).
MISSING_GRACE_SECONDS = 60.0


def apply_provider_state(
    tx: Transaction, node: Node, seen: DriverNode | None, *, timeout: float, request_id: str
) -> None:
    """Finish, fail or leave waiting ``node`` given the provider's view ``seen``."""
    task = Task(node.task) if node.task else None
    if task not in POLLED_TASKS or not node.awaiting_provider:
        return
    if seen is None:
        if age(node.task_started_at) < MISSING_GRACE_SECONDS:
            return
        fail(tx, node, "the node disappeared at the provider")
        return
    node.public_ips = list(seen.public_ips)
    node.private_ips = list(seen.private_ips)
    node.ssh_port = seen.ssh_port
    if seen.state in (NodeState.ERROR, NodeState.TERMINATED):
        fail(tx, node, f"the provider reports the node as {seen.state.value}")
        return
    target = POLLED_TASKS[task]
    if target is State.RUNNING and seen.state is NodeState.RUNNING and seen.address:
        if task is Task.BUILDING and node.spec.get("deploy"):
            set_state(node, State.RUNNING, task=Task.DEPLOYING)
            node.deployment_status = "pending"
            add_event(tx.session, node.operation_id, f"{node.name}: running; deployment queued")
            tx.send(
                messaging.message(
                    "deploy_node", request_id, node_id=node.id, operation_id=node.operation_id
                )
            )
            return
        set_state(node, State.RUNNING, task=None)
        finish_operation(tx.session, node.operation_id, "succeeded")
    elif target is State.STOPPED and seen.state is NodeState.STOPPED:
        set_state(node, State.STOPPED, task=None)
        finish_operation(tx.session, node.operation_id, "succeeded")
    elif age(node.task_started_at) > timeout:
        fail(tx, node, f"timed out after {timeout:.0f}s waiting for the node to be {target.value}")


def fail(tx: Transaction, node: Node, reason: str) -> None:
    set_state(node, State.ERROR, task=None, error=reason)
    finish_operation(tx.session, node.operation_id, "failed", reason)
