"""Balancer work: create, delete, attach and detach members, a node's leaving
every balancer it is in, and the periodic check of every balancer.

Every handler may run twice (at-least-once delivery) and is safe to: a
create finds the balancer it made by its provider name, an attach finds the
member it made by its address or instance, and removing what is gone is
success. Deletes win: a create or attach that finishes after a delete began
removes what it made. A transient provider error is retried, then left to
redelivery; any other failure ends the operation as failed, saying why.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from drivers.compute.base import Node as DriverNode
from drivers.compute.base import NodeState
from drivers.errors import DriverError, NotFound
from drivers.loadbalancer.base import (
    Health,
    HealthCheck,
    LoadBalancer,
    LoadBalancerDriver,
    Member,
    MemberSpec,
)
from services.common import balancers, leases
from services.common.context import ServiceContext
from services.common.db.models import Account, Balancer, BalancerMember, Node
from services.common.db.session import session_scope
from services.common.messaging import Envelope
from services.common.states import add_event, finish_operation
from services.worker.calls import call, settle

LOG = logging.getLogger(__name__)


def create_balancer(context: ServiceContext, envelope: Envelope) -> None:
    balancer_id = envelope.payload["balancer_id"]
    operation_id = envelope.payload["operation_id"]
    with session_scope(context.sessions) as session:
        balancer = session.get(Balancer, balancer_id)
        if balancer is None or balancer.state not in (balancers.BUILDING, balancers.AVAILABLE):
            LOG.info("balancer %s: nothing to build (deleted, or it failed)", balancer_id)
            return
        built = balancer.state == balancers.AVAILABLE  # a redelivery after the create
        driver = context.drivers.balancer_for(balancers.account_of(session, balancer))
        wanted = _wanted(balancer)
    if not built and not _build(context, driver, balancer_id, operation_id, wanted):
        return
    with session_scope(context.sessions) as session:
        members = [
            member.id
            for member in balancers.members_of(session, balancer_id)
            if member.state == balancers.ATTACHING and member.operation_id == operation_id
        ]
    failures = [failure for failure in (_attach(context, m) for m in members) if failure]
    with session_scope(context.sessions) as session:
        if failures:
            finish_operation(session, operation_id, "failed", "; ".join(failures))
        else:
            finish_operation(session, operation_id, "succeeded")


def _build(
    context: ServiceContext,
    driver: LoadBalancerDriver,
    balancer_id: str,
    operation_id: str,
    wanted: dict[str, Any],
) -> bool:
    """Make the balancer at the provider and record it; False when that
    failed or a delete began meanwhile (what was made is then removed)."""
    try:
        made = _find_or_create(context, driver, wanted)
    except DriverError as error:
        if error.transient:
            raise
        with session_scope(context.sessions) as session:
            balancer = session.get(Balancer, balancer_id, with_for_update=True)
            if balancer is not None and balancer.state == balancers.BUILDING:
                balancer.state = balancers.ERROR
                balancer.error = f"create failed: {error}"
            finish_operation(session, operation_id, "failed", f"create failed: {error}")
        return False
    with session_scope(context.sessions) as session:
        balancer = session.get(Balancer, balancer_id, with_for_update=True, populate_existing=True)
        if balancer is not None and balancer.state == balancers.BUILDING:
            balancer.provider_id = made.id
            balancer.ip = made.ip
            balancer.location = made.location or balancer.location
            balancer.state = balancers.AVAILABLE
            add_event(session, operation_id, f"balancer {made.id} listening on port {made.port}")
            return True
    LOG.info("balancer %s was deleted while being built; removing %s", balancer_id, made.id)
    call(context, _destroy, driver, made.id)
    with session_scope(context.sessions) as session:
        finish_operation(session, operation_id, "failed", "deleted before it was ready")
    return False


def _wanted(balancer: Balancer) -> dict[str, Any]:
    return {
        "name": balancer.provider_name,
        "port": balancer.port,
        "protocol": balancer.protocol,
        "algorithm": balancer.algorithm,
        "health_check": HealthCheck(**balancer.health_check),
    }


def _find_or_create(
    context: ServiceContext, driver: LoadBalancerDriver, wanted: dict[str, Any]
) -> LoadBalancer:
    """The balancer called ``wanted["name"]`` at the provider, made if missing."""
    for existing in call(context, driver.list_balancers):
        if existing.name == wanted["name"]:
            return existing
    return call(context, driver.create_balancer, **wanted)


def _destroy(driver: LoadBalancerDriver, provider_id: str) -> None:
    try:
        driver.destroy_balancer(provider_id)
    except NotFound:
        LOG.info("balancer %s was already gone at the provider", provider_id)


def delete_balancer(context: ServiceContext, envelope: Envelope) -> None:
    balancer_id = envelope.payload["balancer_id"]
    operation_id = envelope.payload["operation_id"]
    with session_scope(context.sessions) as session:
        balancer = session.get(Balancer, balancer_id)
        if balancer is None or balancer.deleted_at is not None:
            finish_operation(session, operation_id, "succeeded")
            return
        driver = balancers.driver_or_none(context, session, balancer)
        provider_id, provider_name = balancer.provider_id, balancer.provider_name

    def remove() -> None:
        if driver is None:
            return
        found = provider_id
        if found is None:  # a create may have made it without recording it
            listed = call(context, driver.list_balancers)
            found = next((b.id for b in listed if b.name == provider_name), None)
        if found is not None:
            call(context, _destroy, driver, found)

    def record(session: Session) -> None:
        balancer = session.get(Balancer, balancer_id, with_for_update=True)
        if balancer is not None and balancer.deleted_at is None:
            balancers.finish_delete(session, balancer)

    settle(context, operation_id, "delete", remove, record)


def attach_member(context: ServiceContext, envelope: Envelope) -> None:
    failure = _attach(context, envelope.payload["member_id"])
    with session_scope(context.sessions) as session:
        operation_id = envelope.payload["operation_id"]
        if failure:
            finish_operation(session, operation_id, "failed", failure)
        else:
            finish_operation(session, operation_id, "succeeded")


def _attach(context: ServiceContext, member_id: str) -> str | None:
    """Attach the member at the provider; None, or why it failed (the member
    is then forgotten). A member whose detach began meanwhile is detached."""
    with session_scope(context.sessions) as session:
        member = session.get(BalancerMember, member_id)
        if member is None or member.state != balancers.ATTACHING:
            return None  # done already, or a detach took over
        balancer = session.get(Balancer, member.balancer_id)
        assert balancer is not None
        driver = context.drivers.balancer_for(balancers.account_of(session, balancer))
        provider_id = balancer.provider_id
        node = _driver_node(session, member.node_id) if member.node_id else None
        if member.node_id and node is None:
            session.delete(member)
            return f"member {member.node_id}: the node is gone"
        spec = None if node else MemberSpec(ip=member.ip, port=member.port, weight=member.weight)
        port = member.port or balancer.port
        what = f"member {node.name if node else f'{member.ip}:{member.port}'}"
    assert provider_id is not None
    try:
        attached = _find_member(context, driver, provider_id, node, spec, port)
        if attached is None:
            if node is not None:
                attached = call(context, driver.attach_compute_node, provider_id, node, port)
            else:
                assert spec is not None
                attached = call(context, driver.attach_member, provider_id, spec)
    except DriverError as error:
        if error.transient:
            raise
        with session_scope(context.sessions) as session:
            member = session.get(BalancerMember, member_id)
            if member is not None:
                session.delete(member)
        return f"{what}: attach failed: {error}"
    with session_scope(context.sessions) as session:
        member = session.get(
            BalancerMember, member_id, with_for_update=True, populate_existing=True
        )
        if member is not None and member.state == balancers.ATTACHING:
            member.provider_member_id = attached.id
            member.state = balancers.ATTACHED
            add_event(session, member.operation_id, f"{what} attached as {attached.id}")
            return None
    LOG.info("member %s was detached while being attached; removing it", member_id)
    call(context, _detach, driver, provider_id, attached.id)
    return None


def _driver_node(session: Session, node_id: str) -> DriverNode | None:
    node = session.get(Node, node_id)
    if node is None or node.deleted_at is not None or node.provider_node_id is None:
        return None
    return DriverNode(
        id=node.provider_node_id,
        name=node.name,
        state=NodeState.RUNNING,
        provider=node.provider or "",
        public_ips=tuple(node.public_ips or ()),
        private_ips=tuple(node.private_ips or ()),
    )


def _find_member(
    context: ServiceContext,
    driver: LoadBalancerDriver,
    provider_id: str,
    node: DriverNode | None,
    spec: MemberSpec | None,
    port: int,
) -> Member | None:
    """The member an earlier try of this attach made, if any."""
    addresses = set(node.private_ips) | set(node.public_ips) if node else {spec and spec.ip}
    for member in call(context, driver.list_members, provider_id):
        if member.port != port:
            continue
        if member.ip in addresses or (node and member.extra.get("instance_id") == node.id):
            return member
    return None


def _detach(driver: LoadBalancerDriver, provider_id: str, provider_member_id: str) -> None:
    try:
        driver.detach_member(provider_id, provider_member_id)
    except NotFound:
        LOG.info("member %s was already gone at the provider", provider_member_id)


def detach_member(context: ServiceContext, envelope: Envelope) -> None:
    member_id = envelope.payload["member_id"]
    operation_id = envelope.payload["operation_id"]
    settle(context, operation_id, "detach", lambda: _detach_one(context, member_id))


def _detach_one(context: ServiceContext, member_id: str) -> None:
    """Detach the member at the provider (if it got there), then forget it."""
    with session_scope(context.sessions) as session:
        member = session.get(BalancerMember, member_id)
        if member is None:
            return
        balancer = session.get(Balancer, member.balancer_id)
        assert balancer is not None
        driver = balancers.driver_or_none(context, session, balancer)
        provider_id, provider_member_id = balancer.provider_id, member.provider_member_id
    if driver is not None and provider_id and provider_member_id:
        call(context, _detach, driver, provider_id, provider_member_id)
    with session_scope(context.sessions) as session:
        member = session.get(BalancerMember, member_id)
        if member is not None:
            session.delete(member)


def leave_balancers(context: ServiceContext, node_id: str, operation_id: str | None) -> None:
    """Detach a node from every balancer it is in (before it is deleted).
    Attaches still in flight see the detach and undo themselves."""
    with session_scope(context.sessions) as session:
        members = list(
            session.scalars(
                select(BalancerMember).where(BalancerMember.node_id == node_id).with_for_update()
            )
        )
        for member in members:
            member.state = balancers.DETACHING
        left = [(member.id, member.balancer_id) for member in members]
    for member_id, balancer_id in left:
        try:
            _detach_one(context, member_id)
            event = f"left balancer {balancer_id}"
        except DriverError as error:
            if error.transient:
                raise
            # The node goes anyway (the delete wins); its member only fails checks.
            LOG.warning("node %s: could not leave balancer %s: %s", node_id, balancer_id, error)
            event = f"could not leave balancer {balancer_id}: {error}"
            with session_scope(context.sessions) as session:
                stale = session.get(BalancerMember, member_id)
                if stale is not None:
                    session.delete(stale)
        with session_scope(context.sessions) as session:
            add_event(session, operation_id, event)


def check_balancers(context: ServiceContext) -> None:
    """Bring back any balancer whose process died (providers that run it
    here), and record every member's health; one worker per account."""
    interval = context.config.worker.poll_interval
    with session_scope(context.sessions) as session:
        account_ids: set[str] = set(
            session.scalars(
                select(Balancer.account_id).where(
                    Balancer.state == balancers.AVAILABLE, Balancer.account_id.is_not(None)
                )
            )
        )
    for account_id in account_ids:
        if leases.acquire(context.sessions, f"balancers:{account_id}", context.identity, interval):
            _check_account(context, account_id)


def _check_account(context: ServiceContext, account_id: str) -> None:
    with session_scope(context.sessions) as session:
        account = session.get(Account, account_id)
        if account is None or account.deleted_at is not None:
            return
        driver = context.drivers.balancer_for(account)
        ids = [
            provider_id
            for provider_id in session.scalars(
                select(Balancer.provider_id).where(
                    Balancer.account_id == account_id, Balancer.state == balancers.AVAILABLE
                )
            )
            if provider_id is not None
        ]
    for provider_id in ids:
        try:
            ensure_running = getattr(driver, "ensure_running", None)
            if ensure_running is not None and ensure_running(provider_id):
                LOG.warning("balancer %s was down and was rebuilt from its state", provider_id)
            health = {member.id: member.health for member in driver.list_members(provider_id)}
        except DriverError as error:
            LOG.warning("balancer %s: check failed: %s", provider_id, error)
            continue
        with session_scope(context.sessions) as session:
            for member in session.scalars(
                select(BalancerMember)
                .join(Balancer, Balancer.id == BalancerMember.balancer_id)
                .where(Balancer.provider_id == provider_id, Balancer.account_id == account_id)
            ):
                if member.provider_member_id is not None:
                    member.health = str(health.get(member.provider_member_id, Health.UNKNOWN))
