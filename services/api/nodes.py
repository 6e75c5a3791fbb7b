"""``/v1/nodes``: create (202 + operation), list, show, delete, actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api import idempotency, schemas
from services.api.app import ApiRequest, Reply
from services.api.paging import paginate
from services.api.views import node_view, operation_view
from services.common import messaging, outbox
from services.common.db.models import Node, Operation, new_id, utcnow
from services.common.db.session import session_scope
from services.common.errors import BrokerUnavailable, InvalidInput, NotFound
from services.common.states import ACTIONS, State, Task, begin_action

LIST_FILTERS = ("state", "provider", "account_id", "location_id", "name")


def _load(session: Session, request: ApiRequest, node_id: str) -> Node:
    node = session.get(Node, node_id)
    visible = (
        node is not None
        and node.deleted_at is None
        and (node.project_id == request.project_id or request.user.is_admin)
    )
    if not visible:
        raise NotFound(f"node {node_id} not found")
    assert node is not None
    return node


def accepted(node: Node, operation: Operation) -> Reply:
    return Reply(
        202,
        {"node": node_view(node), "operation": operation_view(operation)},
        {"Location": f"/v1/operations/{operation.id}"},
    )


def _submit(
    request: ApiRequest,
    body: Any,
    prepare: Callable[[Any], tuple[Node, Operation, messaging.Envelope]],
) -> Reply:
    """Record an accepted request and publish its message after commit.

    ``prepare(session)`` creates or updates the node and operation. If the
    broker cannot take the message, the change is undone and the client
    gets 503, so nothing is left half-accepted.
    """
    context = request.context
    key = idempotency.key_of(request)
    print_ = idempotency.fingerprint(request, body)
    try:
        with outbox.transaction(context.sessions, context.publisher) as tx:
            replayed = idempotency.replay(tx.session, request, key, print_)
            if replayed is not None:
                return replayed
            node, operation, envelope = prepare(tx.session)
            operation.idempotency_key = key
            operation.request_fingerprint = print_
            tx.session.flush()
            reply = accepted(node, operation)
            operation.response_status = reply.status
            operation.response_body = reply.body
            tx.send(envelope)
    except IntegrityError:
        # The same Idempotency-Key raced us and won: answer as it did.
        with session_scope(context.sessions) as session:
            replayed = idempotency.replay(session, request, key, print_)
        if replayed is None:
            raise
        return replayed
    except BrokerUnavailable:
        _undo(request, tx, node.id, operation.id)
        raise
    return reply


def _undo(request: ApiRequest, tx: outbox.Transaction, node_id: str, operation_id: str) -> None:
    outbox.discard(request.context.sessions, tx.staged)
    with session_scope(request.context.sessions) as session:
        operation = session.get(Operation, operation_id)
        node = session.get(Node, node_id)
        if operation is not None:
            operation.status = "failed"
            operation.error = "not accepted: the message broker is unavailable"
            operation.idempotency_key = None
            operation.response_body = None
        if node is not None and operation is not None and operation.action == "create":
            node.state = State.DELETED.value
            node.task = None
            node.deleted_at = utcnow()
            node.error = "not accepted: the message broker is unavailable"
        elif node is not None:
            session.execute(
                update(Node)
                .where(Node.id == node_id, Node.operation_id == operation_id)
                .values(task=None)
            )


def create(request: ApiRequest) -> Reply:
    body = schemas.validate("NodeCreate", request.json())

    def prepare(session: Any) -> tuple[Node, Operation, messaging.Envelope]:
        node_id, operation_id = new_id("node"), new_id("op")
        node = Node(
            id=node_id,
            project_id=request.project_id,
            name=body["name"],
            state=State.PENDING.value,
            task=Task.SCHEDULING.value,
            spec=body,
            operation_id=operation_id,
            task_started_at=utcnow(),
        )
        operation = Operation(
            id=operation_id,
            project_id=request.project_id,
            node_id=node_id,
            action="create",
            status="running",
            request_id=request.request_id,
        )
        session.add_all([node, operation])
        envelope = messaging.message(
            "schedule_node", request.request_id, node_id=node_id, operation_id=operation_id
        )
        return node, operation, envelope

    return _submit(request, body, prepare)


def _start_action(request: ApiRequest, action_name: str, body: Any) -> Reply:
    node_id = request.params["node_id"]

    def prepare(session: Any) -> tuple[Node, Operation, messaging.Envelope]:
        node = _load(session, request, node_id)
        action = begin_action(session, node, action_name)
        operation = Operation(
            id=new_id("op"),
            project_id=node.project_id,
            node_id=node.id,
            action=action_name,
            status="running",
            request_id=request.request_id,
        )
        session.add(operation)
        node.operation_id = operation.id
        envelope = messaging.message(
            action.message, request.request_id, node_id=node.id, operation_id=operation.id
        )
        return node, operation, envelope

    return _submit(request, body, prepare)


def action(request: ApiRequest) -> Reply:
    body = schemas.validate("NodeAction", request.json())
    return _start_action(request, body["action"], body)


def delete(request: ApiRequest) -> Reply:
    return _start_action(request, "delete", None)


def show(request: ApiRequest) -> Reply:
    with session_scope(request.context.sessions) as session:
        return Reply(200, {"node": node_view(_load(session, request, request.params["node_id"]))})


def index(request: ApiRequest) -> Reply:
    query = select(Node)
    if not (request.user.is_admin and request.raw.GET.get("all_projects") in ("1", "true")):
        query = query.where(Node.project_id == request.project_id)
    if request.raw.GET.get("state") != State.DELETED.value:
        query = query.where(Node.deleted_at.is_(None))
    for name in LIST_FILTERS:
        value = request.raw.GET.get(name)
        if value is not None:
            if len(value) > 255:
                raise InvalidInput(f"{name}: too long", field=name)
            query = query.where(getattr(Node, name) == value)
    with session_scope(request.context.sessions) as session:
        return Reply(200, paginate(request, session, query, Node, node_view, "nodes"))


__all__ = ["ACTIONS", "action", "create", "delete", "index", "show"]
