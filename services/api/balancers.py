"""``/v1/balancers``: a project's load balancers and their members.

A create is placed at once (pinned to an account, or at the first account
that meets its requirements), charged to the ``balancers`` quota in the
transaction that records it, and built by a worker: 202 with an operation,
idempotent with ``Idempotency-Key``. Members are the project's nodes
(``node_id`` and the port they serve on; the worker hands the provider the
node's instance or address, whichever its driver takes) or addresses;
attaching and detaching are operations too. Deletes always win: a second
delete answers 202 with the first one's operation.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from drivers import DriverType, account_driver
from drivers.loadbalancer.base import HealthCheck
from services.api import idempotency, schemas
from services.api.app import ApiRequest, Reply
from services.api.paging import listing, paginate
from services.api.views import balancer_view, member_view, operation_view
from services.common import balancers, messaging, quotas
from services.common.db.models import Balancer, BalancerMember, Node, Operation, new_id
from services.common.db.session import session_scope
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.states import State, start_operation

LIST_FILTERS = ("provider", "account_id", "state")


def _load(
    session: Session, request: ApiRequest, balancer_id: str, *, lock: bool = False
) -> Balancer:
    balancer = session.get(Balancer, balancer_id, with_for_update=lock, populate_existing=lock)
    return request.visible(balancer, "balancer", balancer_id)  # type: ignore[no-any-return]


def _accepted(
    status: int, operation: Operation, resource_id: str, **views: dict[str, Any]
) -> Reply:
    return Reply(
        status,
        {**views, "operation": operation_view(operation)},
        {"Location": f"/v1/operations/{operation.id}"},
        resource_id=resource_id,
    )


def create(request: ApiRequest) -> Reply:
    body = schemas.validate("BalancerCreate", request.json())
    protocol = body.get("protocol", "http")
    algorithm = body.get("algorithm", "round_robin")
    health_check = HealthCheck(**body.get("health_check", {}))

    def prepare(session: Session) -> idempotency.Prepared:
        account = balancers.place(
            session,
            request.project_id,
            account_id=body.get("account_id"),
            providers=body.get("providers"),
            accounts=body.get("accounts"),
            countries=body.get("countries"),
        )
        driver = request.context.drivers.balancer_for(account)
        driver.check_supported(protocol, algorithm)  # 400 naming what it supports
        balancer_id = new_id("lb")
        balancer = Balancer(
            id=balancer_id,
            project_id=request.project_id,
            name=body["name"],
            account_id=account.id,
            provider=account_driver(account.provider, DriverType.LOADBALANCER),
            provider_name=balancers.provider_name_of(balancer_id),
            port=body["port"],
            protocol=protocol,
            algorithm=algorithm,
            health_check=asdict(health_check),
            state=balancers.BUILDING,
            charged={},
        )
        operation = start_operation(
            session, request.project_id, balancer_id, "create_balancer", request.request_id
        )
        balancer.operation_id = operation.id
        session.add(balancer)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(f"a balancer named {body['name']} already exists") from None
        members = [
            _new_member(session, request, balancer, spec, operation.id)
            for spec in body.get("members", [])
        ]
        quotas.charge(session, request.project_id, [balancer], {"balancers": 1})
        reply = _accepted(202, operation, balancer_id, balancer=balancer_view(balancer, members))
        envelope = messaging.message(
            "create_balancer",
            request.request_id,
            balancer_id=balancer_id,
            operation_id=operation.id,
        )
        return operation, reply, [envelope]

    return idempotency.submit(request, body, prepare, _undo_create)


def _undo_create(session: Session, operation: Operation) -> None:
    balancer = session.get(Balancer, operation.resource_id)
    if balancer is not None:
        balancers.finish_delete(session, balancer)


def _new_member(
    session: Session,
    request: ApiRequest,
    balancer: Balancer,
    spec: dict[str, Any],
    operation_id: str,
) -> BalancerMember:
    """A member row to attach: a running node of the project, or an address
    the balancer's provider takes; 409 for a member it already has."""
    node_id = spec.get("node_id")
    port = spec.get("port") or balancer.port
    if node_id is not None:
        node = request.visible(session.get(Node, node_id), "node", node_id)
        if node.state != State.RUNNING.value or node.task == "deleting":
            raise Conflict(f"node {node.name} is {node.state}; members must be running nodes")
    elif balancer.account_id is not None:
        account = balancers.account_of(session, balancer)
        if not request.context.drivers.balancer_for(account).features.ip_members:
            raise InvalidInput(
                f"{balancer.provider} balancers take nodes only (node_id), not addresses",
                field="ip",
            )
    for member in balancers.members_of(session, balancer.id):
        if (member.node_id, member.ip, member.port) == (node_id, spec.get("ip"), port):
            raise Conflict(f"balancer {balancer.name} already has member {member.id}")
    member = BalancerMember(
        id=new_id("mbr"),
        balancer_id=balancer.id,
        node_id=node_id,
        ip=spec.get("ip"),
        port=port,
        weight=spec.get("weight", 1),
        state=balancers.ATTACHING,
        health="unknown",
        operation_id=operation_id,
    )
    session.add(member)
    session.flush()
    return member


def index(request: ApiRequest) -> Reply:
    query = listing(request, Balancer, LIST_FILTERS).where(Balancer.deleted_at.is_(None))
    with session_scope(request.context.sessions) as session:
        return Reply(200, paginate(request, session, query, Balancer, balancer_view, "balancers"))


def show(request: ApiRequest) -> Reply:
    with session_scope(request.context.sessions) as session:
        balancer = _load(session, request, request.params["balancer_id"])
        members = balancers.members_of(session, balancer.id)
        return Reply(200, {"balancer": balancer_view(balancer, members)})


def delete(request: ApiRequest) -> Reply:
    balancer_id = request.params["balancer_id"]

    def prepare(session: Session) -> idempotency.Prepared:
        balancer = _load(session, request, balancer_id, lock=True)
        if balancer.state == balancers.DELETING:
            running = session.get(Operation, balancer.operation_id)
            if running is not None:
                raise idempotency.Answered(
                    _accepted(202, running, balancer.id, balancer=balancer_view(balancer))
                )
        operation = start_operation(
            session, balancer.project_id, balancer.id, "delete_balancer", request.request_id
        )
        balancer.state = balancers.DELETING
        balancer.operation_id = operation.id
        for member in balancers.members_of(session, balancer.id):
            member.state = balancers.DETACHING  # an attach in flight undoes itself
        session.flush()
        reply = _accepted(202, operation, balancer.id, balancer=balancer_view(balancer))
        envelope = messaging.message(
            "delete_balancer",
            request.request_id,
            balancer_id=balancer.id,
            operation_id=operation.id,
        )
        return operation, reply, [envelope]

    return idempotency.submit(request, None, prepare, None)


def member_create(request: ApiRequest) -> Reply:
    body = schemas.validate("MemberCreate", request.json())
    balancer_id = request.params["balancer_id"]

    def prepare(session: Session) -> idempotency.Prepared:
        _load(session, request, balancer_id)
        balancer = balancers.available(session, balancer_id, lock=True)
        operation = start_operation(
            session, balancer.project_id, balancer.id, "attach_member", request.request_id
        )
        member = _new_member(session, request, balancer, body, operation.id)
        reply = _accepted(202, operation, member.id, member=member_view(member))
        envelope = messaging.message(
            "attach_member", request.request_id, member_id=member.id, operation_id=operation.id
        )
        return operation, reply, [envelope]

    return idempotency.submit(request, body, prepare, _undo_attach)


def _undo_attach(session: Session, operation: Operation) -> None:
    for member in session.scalars(
        select(BalancerMember).where(BalancerMember.operation_id == operation.id)
    ):
        session.delete(member)


def member_index(request: ApiRequest) -> Reply:
    with session_scope(request.context.sessions) as session:
        balancer = _load(session, request, request.params["balancer_id"])
        members = balancers.members_of(session, balancer.id)
        return Reply(200, {"members": [member_view(member) for member in members]})


def member_delete(request: ApiRequest) -> Reply:
    balancer_id = request.params["balancer_id"]
    member_id = request.params["member_id"]

    def prepare(session: Session) -> idempotency.Prepared:
        balancer = _load(session, request, balancer_id)
        balancers.live(session, balancer_id)
        member = session.get(BalancerMember, member_id, with_for_update=True)
        if member is None or member.balancer_id != balancer_id:
            raise NotFound(f"member {member_id} not found")
        if member.state == balancers.DETACHING:
            running = session.get(Operation, member.operation_id)
            if running is not None:
                raise idempotency.Answered(
                    _accepted(202, running, member.id, member=member_view(member))
                )
        operation = start_operation(
            session, balancer.project_id, balancer_id, "detach_member", request.request_id
        )
        member.state = balancers.DETACHING
        member.operation_id = operation.id
        session.flush()
        reply = _accepted(202, operation, member.id, member=member_view(member))
        envelope = messaging.message(
            "detach_member", request.request_id, member_id=member.id, operation_id=operation.id
        )
        return operation, reply, [envelope]

    return idempotency.submit(request, None, prepare, None)
