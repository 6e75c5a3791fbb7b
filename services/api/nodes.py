"""``/v1/nodes``: create (202 + operation; batches; dry runs), list, show, delete, actions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.api import idempotency, schemas
from services.api.app import ApiRequest, Reply
from services.api.paging import listing, paginate
from services.api.views import NODE_VIEW_COLUMNS, node_view, operation_view
from services.common import messaging, quotas
from services.common.db.models import Container, Node, Operation, new_id, utcnow
from services.common.db.session import session_scope
from services.common.errors import InvalidInput, NotFound
from services.common.states import (
    ACTIONS,
    AlreadyDeleting,
    State,
    Task,
    begin_action,
    begin_delete,
)
from services.scheduler import filters as scheduler_filters
from services.scheduler.placement import plan_batch, request_from_spec
from services.scheduler.policies import NoPlacement

LOG = logging.getLogger(__name__)

LIST_FILTERS = ("state", "provider", "account_id", "location_id", "name")

Prepared = tuple[list[Node], Operation, list[messaging.Envelope]]


def _load(session: Session, request: ApiRequest, node_id: str) -> Node:
    return request.visible(session.get(Node, node_id), "node", node_id)  # type: ignore[no-any-return]


def accepted(nodes: list[Node], operation: Operation) -> Reply:
    views = [node_view(node) for node in nodes]
    return Reply(
        202,
        {"node": views[0], "nodes": views, "operation": operation_view(operation)},
        {"Location": f"/v1/operations/{operation.id}"},
        resource_id=nodes[0].id,
    )


def _submit(
    request: ApiRequest,
    body: Any,
    prepare: Callable[[Session], Prepared],
    *,
    keep_without_broker: bool = False,
) -> Reply:
    """Accept through :func:`idempotency.submit`; a delete (``keep_without_broker``)
    stays recorded when the broker is down."""

    def prepared(session: Session) -> idempotency.Prepared:
        nodes, operation, envelopes = prepare(session)
        return operation, accepted(nodes, operation), envelopes

    return idempotency.submit(request, body, prepared, None if keep_without_broker else _undo)


def _undo(session: Session, operation: Operation) -> None:
    """Take back what a request the broker refused changed on its nodes."""
    for node in session.scalars(select(Node).where(Node.operation_id == operation.id)):
        if operation.action == "create":
            node.state = State.DELETED.value
            node.deleted_at = utcnow()
            node.error = operation.error
            quotas.release(session, node)
        node.task = None


def create(request: ApiRequest) -> Reply:
    body = schemas.validate("NodeCreate", request.json())
    if body.get("dry_run"):
        return dry_run(request, body)
    count = body.get("count", 1)
    spec = {name: value for name, value in body.items() if name not in ("count", "dry_run")}

    def prepare(session: Session) -> Prepared:
        check_sources(session, request.project_id, body.get("deploy") or {}, "deploy.")
        now = utcnow()
        operation = Operation(
            id=new_id("op"),
            project_id=request.project_id,
            action="create",
            status="running",
            request_id=request.request_id,
            created_at=now,
            updated_at=now,
        )
        nodes = [
            Node(
                id=new_id("node"),
                project_id=request.project_id,
                name=body["name"] if count == 1 else f"{body['name']}-{index + 1}",
                state=State.PENDING.value,
                task=Task.SCHEDULING.value,
                spec=spec,
                group_name=spec.get("group"),
                operation_id=operation.id,
                task_started_at=now,
                created_at=now,
                updated_at=now,
            )
            for index in range(count)
        ]
        operation.node_id = nodes[0].id
        quotas.record(nodes, {"nodes": 1})
        session.add_all([operation, *nodes])
        session.flush()
        # Last: the project's usage row stays locked from here to the commit,
        # so concurrent creates of one project wait on each other only this long.
        quotas.reserve(session, request.project_id, {"nodes": count})
        envelopes = [
            messaging.message(
                "schedule_node", request.request_id, node_id=node.id, operation_id=operation.id
            )
            for node in nodes
        ]
        return nodes, operation, envelopes

    return _submit(request, body, prepare)


def dry_run(request: ApiRequest, body: dict[str, Any]) -> Reply:
    """The placement(s) the request would get, with prices; creates nothing."""
    config = request.context.config.scheduler
    policy, placement_request = request_from_spec(request.context.config, request.project_id, body)
    placement_request = replace(placement_request, dry_run=True)  # never advances cursors
    filters = scheduler_filters.enabled(config.filter_names)
    with session_scope(request.context.sessions) as session:
        try:
            plans = plan_batch(session, filters, policy, placement_request, body.get("count", 1))
        except NoPlacement as error:
            return Reply(
                200, {"dry_run": True, "placeable": False, "policy": policy, "reason": str(error)}
            )
    chosen = [plan[0] for plan in plans]
    prices = [placement.price_per_hour for placement in chosen]
    return Reply(
        200,
        {
            "dry_run": True,
            "placeable": True,
            "policy": policy,
            "placement": chosen[0].to_dict(),
            "alternates": [alternate.to_dict() for alternate in plans[0][1:]],
            "placements": [placement.to_dict() for placement in chosen],
            "price_per_hour": prices[0],
            "total_price_per_hour": None
            if None in prices
            else round(sum(p or 0 for p in prices), 6),
        },
    )


def _start_action(request: ApiRequest, action_name: str, body: Any) -> Reply:
    node_id = request.params["node_id"]

    def prepare(session: Session) -> Prepared:
        node = _load(session, request, node_id)
        if action_name == "delete":
            try:
                begin_delete(session, node)
            except AlreadyDeleting:
                raise idempotency.Answered(accepted([node], _operation_of(session, node))) from None
            action = ACTIONS["delete"]
        else:
            action = begin_action(session, node, action_name)
        if action_name == "deploy":
            check_sources(session, node.project_id, body)
            node.spec = {**node.spec, "deploy": body}
            node.deployment_status = "pending"
            node.deployment_result = None
        operation = Operation(
            id=new_id("op"),
            project_id=node.project_id,
            node_id=node.id,
            action=action_name,
            status="running",
            request_id=request.request_id,
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        session.add(operation)
        node.operation_id = operation.id
        envelope = messaging.message(
            action.message, request.request_id, node_id=node.id, operation_id=operation.id
        )
        return [node], operation, [envelope]

    return _submit(request, body, prepare, keep_without_broker=action_name == "delete")


def deploy(request: ApiRequest) -> Reply:
    """Run a deployment on a running node (202 + operation)."""
    body = schemas.validate("NodeDeploy", request.json())
    return _start_action(request, "deploy", body)


def check_sources(
    session: Session, project_id: str, deploy: dict[str, Any], prefix: str = ""
) -> None:
    """Every container a deployment reads from is the project's (400 otherwise)."""
    for index, step in enumerate(deploy.get("steps", [])):
        if "file" not in step:
            continue
        name = step["file"]["from"].split("/", 1)[0]
        found = session.scalars(
            select(Container.id).where(
                Container.project_id == project_id,
                Container.name == name,
                Container.deleted_at.is_(None),
            )
        ).first()
        if found is None:
            field = f"{prefix}steps.{index}.file.from"
            raise InvalidInput(f"{field}: container {name} not found", field=field)


def action(request: ApiRequest) -> Reply:
    body = schemas.validate("NodeAction", request.json())
    return _start_action(request, body["action"], body)


def _operation_of(session: Session, node: Node) -> Operation:
    operation = session.get(Operation, node.operation_id) if node.operation_id else None
    if operation is None:
        raise NotFound(f"operation of node {node.id} not found")
    return operation


def delete(request: ApiRequest) -> Reply:
    """Delete always wins: it takes over whatever task runs (202). A node already
    being deleted answers 202 with the delete's operation again."""
    return _start_action(request, "delete", None)


def show(request: ApiRequest) -> Reply:
    with session_scope(request.context.sessions) as session:
        return Reply(200, {"node": node_view(_load(session, request, request.params["node_id"]))})


def index(request: ApiRequest) -> Reply:
    query = listing(request, Node, LIST_FILTERS, NODE_VIEW_COLUMNS)
    if request.raw.GET.get("state") != State.DELETED.value:
        query = query.where(Node.deleted_at.is_(None))
    with session_scope(request.context.sessions) as session:
        return Reply(200, paginate(request, session, query, Node, node_view, "nodes"))
