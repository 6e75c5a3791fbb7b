"""The state poller: one ``list_nodes`` per account per interval, not one call per node.

Each account with nodes waiting on the provider is polled by whichever
worker takes its lease first; the lease lasts one interval, so across all
workers an account is polled at most once per interval.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from drivers.errors import DriverError
from services.common import leases
from services.common.context import ServiceContext
from services.common.db.models import Account, Node
from services.common.db.session import session_scope
from services.worker import health
from services.worker.calls import call_provider
from services.worker.progress import apply_provider_state

LOG = logging.getLogger(__name__)


def accounts_to_poll(context: ServiceContext) -> list[str]:
    with session_scope(context.sessions) as session:
        return list(
            session.scalars(
                select(Node.account_id)
                .where(Node.awaiting_provider.is_(True), Node.account_id.is_not(None))
                .distinct()
            )
        )


def poll_due_accounts(context: ServiceContext) -> int:
    """Poll every account that has waiting nodes and whose lease is free."""
    polled = 0
    for account_id in accounts_to_poll(context):
        if leases.acquire(
            context.sessions,
            f"poll:{account_id}",
            context.identity,
            context.config.worker.poll_interval,
        ):
            poll_account(context, account_id)
            polled += 1
    return polled


def poll_account(context: ServiceContext, account_id: str) -> None:
    with session_scope(context.sessions) as session:
        account = session.get(Account, account_id)
        waiting = session.scalars(
            select(Node.id).where(Node.account_id == account_id, Node.awaiting_provider.is_(True))
        ).all()
    if account is None or not waiting:
        return
    settings = context.config.worker
    try:
        provider_nodes = call_provider(
            context.drivers.for_account(account).list_nodes,
            retries=settings.provider_retries,
            backoff=settings.provider_backoff,
        )
    except DriverError as error:
        LOG.warning("polling account %s failed: %s", account_id, error)
        health.record_failure(context, account_id)
        return
    health.record_success(context, account)
    by_id = {node.id: node for node in provider_nodes}
    with context.outbox.transaction() as tx:
        nodes = tx.session.scalars(select(Node).where(Node.id.in_(waiting))).all()
        for node in nodes:
            apply_provider_state(
                tx,
                node,
                by_id.get(node.provider_node_id or ""),
                timeout=settings.build_timeout,
                request_id=f"poll-{account_id}",
            )
