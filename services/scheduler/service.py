"""The scheduler: consumes ``schedule_node``, places the node, casts ``build_node``."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from services.common import messaging, quotas
from services.common.consumer import QueueConsumer
from services.common.context import ServiceContext
from services.common.db.models import Node
from services.common.db.session import session_scope
from services.common.dead_letters import mark_failed
from services.common.errors import ProjectQuotaExceeded
from services.common.heartbeat import Heartbeat
from services.common.messaging import Envelope
from services.common.runner import Component, Periodic, run_service
from services.common.states import State, Task, add_event, finish_operation, set_state
from services.scheduler import filters as scheduler_filters
from services.scheduler.filters import Filter
from services.scheduler.placement import decide, prepare_cursors, request_from_spec
from services.scheduler.policies import NoPlacement, Placement, PlacementRequest, placed_price

LOG = logging.getLogger(__name__)


def schedule_node(context: ServiceContext, envelope: Envelope) -> None:
    """Choose a placement and ranked alternates, or fail the node clearly.

    Idempotent: a node no longer waiting for scheduling is left alone.
    """
    node_id = envelope.payload["node_id"]
    with session_scope(context.sessions) as session:
        node = session.get(Node, node_id)
        if node is None or node.task != Task.SCHEDULING.value:
            LOG.info("node %s: nothing to schedule (duplicate message?)", node_id)
            return
        policy, request = request_from_spec(context.config, node.project_id, node.spec)
    prepare_cursors(context.sessions, policy, request.project_id, request.group)
    filters = scheduler_filters.enabled(context.config.scheduler.filter_names)
    with context.outbox.transaction() as tx:
        # The node's row first, then the quota's: the lock order everywhere.
        node = tx.session.get(Node, node_id, with_for_update=True, populate_existing=True)
        if node is None or node.task != Task.SCHEDULING.value:
            return
        try:
            chosen, *alternates = place_and_charge(tx.session, filters, policy, request, node)
        except NoPlacement as error:
            reason = str(error)
            set_state(node, State.ERROR, task=None, error=reason)
            finish_operation(tx.session, node.operation_id, "failed", f"{node.name}: {reason}")
            LOG.info("node %s: %s", node_id, reason)
            return
        node.account_id = chosen.account_id
        node.provider = chosen.provider
        node.location_id = chosen.location_id
        node.zone = chosen.zone
        node.size_id = chosen.size_id
        node.image_id = chosen.image_id
        for name, value in placed_price(chosen.to_dict()).items():
            setattr(node, name, value)
        node.vcpus = chosen.vcpus
        node.ram_mb = chosen.ram_mb
        node.alternates = [alternate.to_dict() for alternate in alternates]
        set_state(node, State.PENDING, task=Task.BUILDING)
        add_event(
            tx.session,
            node.operation_id,
            f"{node.name}: placed by {policy}",
            placement=chosen.to_dict(),
            alternates=len(alternates),
        )
        tx.send(
            messaging.message(
                "build_node", envelope.request_id, node_id=node.id, operation_id=node.operation_id
            )
        )
    LOG.info(
        "node %s placed on %s/%s/%s", node_id, chosen.provider, chosen.location_id, chosen.size_id
    )


def place_and_charge(
    session: Session,
    filters: list[Filter],
    policy: str,
    request: PlacementRequest,
    node: Node,
    attempts: int = 3,
) -> list[Placement]:
    """Decide, then charge the chosen size to the project's quota in the same
    transaction. Deciding takes no lock, so placements of one project run in
    parallel; the conditional charge is the arbiter. If another placement took
    the room meanwhile, read the quota anew under its lock (a plain read may
    see an old snapshot under REPEATABLE READ) and decide again."""
    for attempt in range(attempts):
        if attempt:
            quotas.lock(session, node.project_id)
        placements = decide(session, filters, policy, request)
        try:
            quotas.charge(
                session, node.project_id, [node], quotas.charge_of(placements[0].to_dict())
            )
        except ProjectQuotaExceeded:
            continue
        return placements
    raise NoPlacement("the project's quota leaves no room: other nodes took it meanwhile")


def scheduler_components(context: ServiceContext) -> list[Component]:
    scheduler_filters.enabled(context.config.scheduler.filter_names)  # fail fast on typos
    consumer = QueueConsumer(
        context.config.messaging,
        "scheduler",
        lambda envelope: schedule_node(context, envelope),
        publisher=context.publisher,
        pool_size=4,
        on_dead=lambda envelope, reason: mark_failed(context, envelope, reason),
    )
    return [
        Heartbeat(context.sessions, "scheduler", context.config.service.heartbeat_interval),
        consumer,
        Periodic("outbox-sweep", 10.0, lambda: context.outbox.sweep()),
    ]


def main(argv: list[str] | None = None) -> None:
    run_service("overcast-scheduler", __doc__, scheduler_components, argv)
