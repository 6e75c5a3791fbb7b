"""The worker service: consumes node, storage and balancer work, polls provider
state, checks balancers, syncs catalogs, refreshes prices."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from sqlalchemy import select

from services.common import leases, quotas
from services.common.consumer import QueueConsumer
from services.common.context import ServiceContext
from services.common.db.models import Account
from services.common.db.session import session_scope
from services.common.dead_letters import mark_failed
from services.common.heartbeat import Heartbeat
from services.common.messaging import Envelope
from services.common.runner import Component, Periodic, run_service
from services.common.states import age
from services.worker import balancers, catalog, poller, prices, storage
from services.worker.actions import node_action
from services.worker.build import build_node
from services.worker.deploy import deploy_node

LOG = logging.getLogger(__name__)

Handler = Callable[[ServiceContext, Envelope], None]

HANDLERS: dict[str, Handler] = {
    "build_node": build_node,
    "reboot_node": functools.partial(node_action, action_name="reboot"),
    "start_node": functools.partial(node_action, action_name="start"),
    "stop_node": functools.partial(node_action, action_name="stop"),
    "destroy_node": functools.partial(node_action, action_name="delete"),
    "deploy_node": deploy_node,
    "delete_container": storage.delete_container,
    "copy_object": storage.copy_object,
    "create_balancer": balancers.create_balancer,
    "delete_balancer": balancers.delete_balancer,
    "attach_member": balancers.attach_member,
    "detach_member": balancers.detach_member,
    "sync_catalog": lambda context, envelope: catalog.sync_catalog(
        context, envelope.payload["account_id"]
    ),
}


def dispatch(context: ServiceContext, envelope: Envelope) -> None:
    handler = HANDLERS.get(envelope.type)
    if handler is None:
        raise ValueError(f"the worker does not handle {envelope.type}")
    handler(context, envelope)


def sync_due_catalogs(context: ServiceContext) -> None:
    interval = context.config.worker.catalog_sync_interval
    with session_scope(context.sessions) as session:
        due = [
            row
            for row in session.execute(
                select(Account.id, Account.catalog_synced_at).where(Account.deleted_at.is_(None))
            )
            if row.catalog_synced_at is None or age(row.catalog_synced_at) >= interval
        ]
    for row in due:
        if leases.acquire(context.sessions, f"sync:{row.id}", context.identity, interval):
            catalog.sync_catalog(context, row.id)


def reconcile_quotas(context: ServiceContext) -> int:
    """Recompute every project's quota usage from what its resources hold
    (one worker per interval); returns how many projects needed a fix."""
    interval = context.config.worker.quota_reconcile_interval
    if not leases.acquire(context.sessions, "quota-reconcile", context.identity, interval):
        return 0
    with session_scope(context.sessions) as session:
        projects = quotas.projects_to_reconcile(session)
    fixed = 0
    for project_id in projects:
        with session_scope(context.sessions) as session:
            fixed += bool(quotas.reconcile(session, project_id))
    return fixed


def worker_components(context: ServiceContext) -> list[Component]:
    settings = context.config.worker
    consumer = QueueConsumer(
        context.config.messaging,
        "worker",
        functools.partial(dispatch, context),
        publisher=context.publisher,
        pool_size=settings.pool_size,
        on_dead=functools.partial(mark_failed, context),
    )
    return [
        Heartbeat(context.sessions, "worker", context.config.service.heartbeat_interval),
        consumer,
        Periodic("poller", settings.poll_interval, lambda: poller.poll_due_accounts(context)),
        Periodic(
            "catalog-sync",
            min(60.0, settings.catalog_sync_interval),
            lambda: sync_due_catalogs(context),
        ),
        Periodic(
            "balancer-check", settings.poll_interval, lambda: balancers.check_balancers(context)
        ),
        Periodic("outbox-sweep", 10.0, lambda: context.outbox.sweep()),
        Periodic(
            "quota-reconcile",
            settings.quota_reconcile_interval,
            lambda: reconcile_quotas(context),
        ),
        *(
            [Periodic("price-refresh", min(600.0, refresh), lambda: prices.refresh_due(context))]
            if (refresh := context.config.pricing.refresh_interval) > 0
            else []
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    run_service("overcast-worker", __doc__, worker_components, argv)
