"""Destroying what a create made when nobody tracks it any more.

Delete always wins, so a node may be deleted while its create is under way,
or after a worker died between the provider's create and the commit that
records it. The node id is the create's idempotency token, so whoever finds
such a node later -- the destroy handler, or a build message redelivered for a
deleted node -- looks it up by that token and destroys it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from drivers.compute.base import Node as DriverNode
from drivers.errors import NotFound
from services.common.context import ServiceContext
from services.common.db.models import Account, Node
from services.common.db.session import session_scope
from services.worker.calls import call_provider

LOG = logging.getLogger(__name__)


def placement_accounts(node: Node) -> list[str]:
    """Every account a build of ``node`` may have created it at, in order."""
    candidates = [node.account_id, *(a.get("account_id") for a in node.alternates or [])]
    return list(dict.fromkeys(a for a in candidates if isinstance(a, str)))


def destroy(context: ServiceContext, account: Account, target: DriverNode) -> None:
    """Destroy ``target``; already gone counts as done."""
    settings = context.config.worker
    with contextlib.suppress(NotFound):
        call_provider(
            context.drivers.for_account(account).destroy_node,
            target,
            retries=settings.provider_retries,
            backoff=settings.provider_backoff,
        )


def reap(context: ServiceContext, node_id: str, name: str, account_ids: Iterable[str]) -> int:
    """Destroy every server created with ``node_id`` as its token at those
    accounts; returns how many there were. Provider errors propagate."""
    settings = context.config.worker
    reaped = 0
    for account_id in account_ids:
        with session_scope(context.sessions) as session:
            account = session.get(Account, account_id)
        if account is None:
            continue
        found = call_provider(
            context.drivers.for_account(account).find_node_by_token,
            node_id,
            name,
            retries=settings.provider_retries,
            backoff=settings.provider_backoff,
        )
        if found is not None:
            LOG.warning(
                "node %s: destroying %s at %s, created for a node that was deleted",
                node_id,
                found.id,
                account_id,
            )
            destroy(context, account, found)
            reaped += 1
    return reaped
