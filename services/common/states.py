"""Node states and tasks, and the one table of what may happen when.

A node has a ``state`` (what it is) and at most one ``task`` (what is being
done to it). Starting a task is a compare-and-set on the node row: it only
succeeds when no other task runs and the state allows it, so concurrent
requests get ``409`` instead of racing. Delete is the exception: it always
wins, taking over whatever task runs (:func:`begin_delete`); the handler of
the task it took over sees that and cleans up after itself. A transition not
in these tables is a bug and raises.

A node gives its quota back when it stops existing: when it is deleted, or
when it fails before anything was created at a provider.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.orm import Session, object_session

from services.common import quotas
from services.common.db.models import Node, Operation, OperationEvent, new_id, utcnow
from services.common.errors import Conflict, NotFound


class State(enum.StrEnum):
    PENDING = "pending"  # accepted, not yet at a provider
    BUILDING = "building"  # created at the provider, not yet running
    RUNNING = "running"
    REBOOTING = "rebooting"
    STOPPED = "stopped"
    ERROR = "error"
    DELETED = "deleted"


class Task(enum.StrEnum):
    SCHEDULING = "scheduling"
    BUILDING = "building"
    DEPLOYING = "deploying"
    REBOOTING = "rebooting"
    STARTING = "starting"
    STOPPING = "stopping"
    DELETING = "deleting"


@dataclass(frozen=True)
class Action:
    """A user action: the task it starts, from which states, and its message."""

    task: Task
    from_states: frozenset[State]
    message: str


ACTIONS: dict[str, Action] = {
    "reboot": Action(Task.REBOOTING, frozenset({State.RUNNING}), "reboot_node"),
    "start": Action(Task.STARTING, frozenset({State.STOPPED}), "start_node"),
    "stop": Action(Task.STOPPING, frozenset({State.RUNNING}), "stop_node"),
    "deploy": Action(Task.DEPLOYING, frozenset({State.RUNNING}), "deploy_node"),
    "delete": Action(
        Task.DELETING,
        frozenset(
            {
                State.PENDING,
                State.BUILDING,
                State.RUNNING,
                State.STOPPED,
                State.ERROR,
                State.REBOOTING,
            }
        ),
        "destroy_node",
    ),
}

#: Tasks the state poller watches, and the provider state that completes each.
POLLED_TASKS: dict[Task, State] = {
    Task.BUILDING: State.RUNNING,
    Task.REBOOTING: State.RUNNING,
    Task.STARTING: State.RUNNING,
    Task.STOPPING: State.STOPPED,
}

#: Which task may move a node to which state (besides ERROR, always allowed).
TRANSITIONS: dict[Task | None, frozenset[State]] = {
    Task.SCHEDULING: frozenset({State.PENDING}),
    Task.BUILDING: frozenset({State.PENDING, State.BUILDING, State.RUNNING}),
    Task.DEPLOYING: frozenset({State.RUNNING}),
    Task.REBOOTING: frozenset({State.REBOOTING, State.RUNNING}),
    Task.STARTING: frozenset({State.STOPPED, State.RUNNING}),
    Task.STOPPING: frozenset({State.RUNNING, State.STOPPED}),
    Task.DELETING: frozenset({State.DELETED}),
    None: frozenset({State.RUNNING, State.STOPPED, State.REBOOTING}),
}


class AlreadyDeleting(Conflict):
    """A delete found the node already being deleted (answered like the first)."""


class InvalidTransition(RuntimeError):
    """Code tried a state change the tables above do not allow."""


def begin_action(session: Session, node: Node, action_name: str) -> Action:
    """Start ``action_name`` on ``node`` atomically, or raise :class:`Conflict`."""
    action = ACTIONS[action_name]
    allowed = [state.value for state in action.from_states]
    changed = cast(
        CursorResult[Any],
        session.execute(
            update(Node)
            .where(Node.id == node.id, Node.task.is_(None), Node.state.in_(allowed))
            .values(task=action.task.value, version=Node.version + 1, task_started_at=utcnow())
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if changed != 1:
        session.refresh(node, with_for_update=True)
        if node.task is not None:
            raise Conflict(
                f"node {node.id} is busy: task {node.task} is running",
                node_id=node.id,
                task=node.task,
            )
        raise Conflict(
            f"cannot {action_name} a node that is {node.state}", node_id=node.id, state=node.state
        )
    session.refresh(node)
    return action


def begin_delete(session: Session, node: Node) -> Operation | None:
    """Make ``node``'s task ``deleting``, whatever task runs (delete always wins).

    Returns the operation of the task it took over (None if there was none).
    Raises :class:`AlreadyDeleting` when another delete got there first, and
    :class:`NotFound` when the node is gone.
    """
    changed = cast(
        CursorResult[Any],
        session.execute(
            update(Node)
            .where(
                Node.id == node.id,
                Node.state != State.DELETED.value,
                or_(Node.task.is_(None), Node.task != Task.DELETING.value),
            )
            .values(
                task=Task.DELETING.value,
                awaiting_provider=False,
                version=Node.version + 1,
                task_started_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    previous_operation_id, previous_task = node.operation_id, node.task
    # A locking read sees the latest commit even under REPEATABLE READ (MariaDB).
    session.refresh(node, with_for_update=True)
    if changed != 1:
        if node.task == Task.DELETING.value:
            raise AlreadyDeleting(f"node {node.id} is already being deleted", node_id=node.id)
        raise NotFound(f"node {node.id} not found")
    if previous_task is None or previous_operation_id is None:
        return None
    taken_over = session.get(Operation, previous_operation_id)
    if taken_over is None or taken_over.status != "running":
        return None
    reason = f"the node was deleted before {previous_task} finished"
    add_event(session, taken_over.id, f"{node.name}: {reason}")
    sharing = session.scalar(
        select(func.count()).select_from(Node).where(Node.operation_id == taken_over.id)
    )
    if (sharing or 0) <= 1:  # a batch's operation finishes with its last node
        taken_over.status = "failed"
        taken_over.error = reason
        taken_over.updated_at = utcnow()
    return taken_over


def set_state(
    node: Node, state: State, *, task: Task | str | None = "keep", error: str | None = None
) -> None:
    """Move ``node`` to ``state`` (and ``task``), checking the transition table."""
    current_task = Task(node.task) if node.task else None
    if state is not State.ERROR and state not in TRANSITIONS[current_task]:
        raise InvalidTransition(f"task {current_task} cannot move node {node.id} to {state}")
    node.state = state.value
    if task != "keep":
        node.task = None if task is None else Task(task).value
        node.task_started_at = utcnow() if task is not None else None
        node.awaiting_provider = False
    if error is not None:
        node.error = error
    if state is State.DELETED:
        node.deleted_at = utcnow()
    if state is State.DELETED or (state is State.ERROR and node.provider_node_id is None):
        session = object_session(node)
        if session is not None:
            quotas.release(session, node)


def start_operation(
    session: Session, project_id: str, resource_id: str, action: str, request_id: str
) -> Operation:
    """A running operation on a resource that is not a node (its slow work is
    a worker's)."""
    now = utcnow()
    operation = Operation(
        id=new_id("op"),
        project_id=project_id,
        resource_id=resource_id,
        action=action,
        status="running",
        request_id=request_id,
        created_at=now,
        updated_at=now,
    )
    session.add(operation)
    return operation


def add_event(session: Session, operation_id: str | None, message: str, **data: object) -> None:
    if operation_id:
        session.add(OperationEvent(operation_id=operation_id, message=message, data=data))


def finish_operation(
    session: Session, operation_id: str | None, status: str, error: str | None = None
) -> None:
    """Mark the operation succeeded or failed, once.

    A create operation may cover several nodes (``count``): it finishes when
    the last of them does, failed if any failed, listing why.
    """
    if not operation_id:
        return
    operation = session.get(Operation, operation_id)
    if operation is None or operation.status in ("succeeded", "failed"):
        return
    if operation.action == "create":
        nodes = session.scalars(select(Node).where(Node.operation_id == operation_id)).all()
        if len(nodes) > 1:
            if any(node.task is not None for node in nodes):
                return
            errors = [
                f"{node.name}: {node.error}" for node in nodes if node.state == State.ERROR.value
            ]
            status = "failed" if errors else "succeeded"
            error = "; ".join(errors) if errors else None
    operation.status = status
    operation.error = error
    operation.updated_at = utcnow()
    add_event(session, operation_id, f"operation {status}" + (f": {error}" if error else ""))


def age(moment: datetime.datetime | None) -> float:
    """Seconds since ``moment`` (0 when unknown)."""
    return 0.0 if moment is None else (utcnow() - moment).total_seconds()
