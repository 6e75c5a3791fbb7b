"""``build_node``: create the node at its placement, failing over to alternates.

Idempotent across redeliveries: the node id is the provider-side idempotency
token, so a create repeated after a crash finds the node the first attempt
made instead of making a second one.

Delete always wins: when the node was deleted while its create ran, the
server the create returns is destroyed at once; when a build message arrives
for a node already deleted (redelivered after a crash), whatever the lost
create made is looked up by its token and destroyed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from drivers.common.ssh_keys import generate_key_pair
from drivers.compute.base import NodeAuthSSHKey
from drivers.errors import CapacityError, DriverError, NotFound, QuotaExceeded
from services.common import quotas
from services.common.context import ServiceContext
from services.common.db.models import Account, Node
from services.common.db.session import session_scope
from services.common.errors import NotFound as CatalogEntryMissing
from services.common.errors import ProjectQuotaExceeded
from services.common.messaging import Envelope
from services.common.states import State, Task, add_event, set_state
from services.scheduler.policies import placed_price
from services.worker import health
from services.worker.calls import call_provider
from services.worker.catalog import driver_values
from services.worker.progress import apply_provider_state, fail
from services.worker.reap import destroy, placement_accounts, reap

LOG = logging.getLogger(__name__)

#: Node columns a placement sets (the keys of Placement.to_dict()).
PLACEMENT_FIELDS = (
    "account_id",
    "provider",
    "location_id",
    "zone",
    "size_id",
    "image_id",
    "vcpus",
    "ram_mb",
)

#: Errors that say "not here": try the next alternate placement.
FAILOVER_ERRORS = (CapacityError, QuotaExceeded, NotFound, CatalogEntryMissing)


@dataclass(frozen=True)
class BuildPlan:
    node_id: str
    name: str
    operation_id: str | None
    public_keys: str
    placements: list[dict[str, Any]]


@dataclass(frozen=True)
class Reap:
    """The node was deleted: destroy whatever its build made at these accounts."""

    node_id: str
    name: str
    account_ids: list[str]


def _plan(context: ServiceContext, node_id: str) -> BuildPlan | Reap | None:
    with session_scope(context.sessions) as session:
        node = session.get(Node, node_id)
        if node is None:
            return None
        if node.task == Task.DELETING.value or node.state == State.DELETED.value:
            return Reap(node.id, node.name, placement_accounts(node))
        if node.task != Task.BUILDING.value or node.awaiting_provider:
            return None
        if node.ssh_private_key is None:
            private_key, public_key = generate_key_pair()
            node.ssh_private_key = context.cipher.encrypt(
                {"private_key": private_key, "public_key": public_key}
            )
        keys = context.cipher.decrypt(node.ssh_private_key)
        public_keys = "\n".join(
            key for key in (keys["public_key"], node.spec.get("ssh_public_key")) if key
        )
        current = {name: getattr(node, name) for name in PLACEMENT_FIELDS}
        current.update(
            price_per_hour=node.price_per_hour,
            price_source=node.price_source,
            price_as_of=node.price_as_of.isoformat() if node.price_as_of else None,
        )
        return BuildPlan(
            node.id, node.name, node.operation_id, public_keys, [current, *node.alternates]
        )


def build_node(context: ServiceContext, envelope: Envelope) -> None:
    plan = _plan(context, envelope.payload["node_id"])
    if plan is None:
        LOG.info("node %s: nothing to build (duplicate message?)", envelope.payload["node_id"])
        return
    if isinstance(plan, Reap):
        reap(context, plan.node_id, plan.name, plan.account_ids)
        return
    settings = context.config.worker
    failures: list[str] = []
    for index, placement in enumerate(plan.placements):
        where = f"{placement['provider']}/{placement['location_id']}/{placement['size_id']}"
        try:
            if index > 0 and not _charge_for(context, plan.node_id, placement):
                return  # deleted meanwhile: nothing was created here
            with session_scope(context.sessions) as session:
                account = session.get(Account, placement["account_id"])
                if account is None or account.deleted_at is not None:
                    raise CatalogEntryMissing(f"account {placement['account_id']} is gone")
                size, image, location = driver_values(
                    session,
                    placement["account_id"],
                    placement["location_id"],
                    placement["size_id"],
                    placement["image_id"],
                )
            driver = context.drivers.for_account(account)
            created = call_provider(
                driver.create_node,
                plan.name,
                size,
                image,
                location,
                auth=NodeAuthSSHKey(plan.public_keys),
                idempotency_token=plan.node_id,
                retries=settings.provider_retries,
                backoff=settings.provider_backoff,
            )
        except (*FAILOVER_ERRORS, ProjectQuotaExceeded) as error:
            failures.append(f"{where}: {error}")
            LOG.info(
                "node %s: %s failed (%s), trying the next placement", plan.node_id, where, error
            )
            with session_scope(context.sessions) as session:
                add_event(
                    session,
                    plan.operation_id,
                    f"{plan.name}: placement {where} failed",
                    error=str(error),
                    error_class=type(error).__name__,
                )
            continue
        except DriverError as error:
            health.record_failure(context, placement["account_id"])
            if error.transient:
                # A timeout may strike after the provider acted: leave nothing behind.
                _reap_quietly(context, plan, placement["account_id"])
            _give_up(context, envelope, plan, f"{where}: {error}")
            return
        health.record_success(context, account)
        _created(context, envelope, plan, placement, created, where)
        return
    _give_up(context, envelope, plan, "every placement failed: " + "; ".join(failures))


def _charge_for(context: ServiceContext, node_id: str, placement: dict[str, Any]) -> bool:
    """Move the node's quota charge to ``placement``'s size (raises
    :class:`ProjectQuotaExceeded` if it does not fit); False if the node is
    no longer being built."""
    with session_scope(context.sessions) as session:
        node = session.get(Node, node_id, with_for_update=True, populate_existing=True)
        if node is None or node.task != Task.BUILDING.value:
            return False
        wanted = quotas.charge_of(placement)
        held = node.charged or {}
        quotas.charge(
            session,
            node.project_id,
            [node],
            {name: amount - int(held.get(name, 0)) for name, amount in wanted.items()},
        )
        return True


def _created(
    context: ServiceContext,
    envelope: Envelope,
    plan: BuildPlan,
    placement: dict[str, Any],
    created: Any,
    where: str,
) -> None:
    with context.outbox.transaction() as tx:
        node = tx.session.get(Node, plan.node_id, with_for_update=True, populate_existing=True)
        tracked = node is not None and node.task == Task.BUILDING.value
        if node is not None and tracked:
            for name in PLACEMENT_FIELDS:
                setattr(node, name, placement.get(name))
            for name, value in placed_price(placement).items():
                setattr(node, name, value)
            node.provider_node_id = created.id
            set_state(node, State.BUILDING)
            node.awaiting_provider = True
            add_event(
                tx.session,
                plan.operation_id,
                f"{plan.name}: created at {where}",
                provider_node_id=created.id,
            )
            apply_provider_state(
                tx,
                node,
                created,
                timeout=context.config.worker.build_timeout,
                request_id=envelope.request_id,
            )
        account = tx.session.get(Account, placement["account_id"])
    if not tracked:
        # Deleted (or given up on) while the provider created it: nobody
        # would ever destroy this server but us.
        LOG.warning(
            "node %s: no longer wanted; destroying %s at %s", plan.node_id, created.id, where
        )
        if account is not None:
            destroy(context, account, created)
        return
    LOG.info("node %s created at %s as %s", plan.node_id, where, created.id)


def _reap_quietly(context: ServiceContext, plan: BuildPlan, account_id: str) -> None:
    try:
        reap(context, plan.node_id, plan.name, [account_id])
    except DriverError as error:
        LOG.warning(
            "node %s: could not check %s for a server its failed create made (%s); "
            "deleting the node will",
            plan.node_id,
            account_id,
            error,
        )


def _give_up(context: ServiceContext, envelope: Envelope, plan: BuildPlan, reason: str) -> None:
    with context.outbox.transaction() as tx:
        node = tx.session.get(Node, plan.node_id)
        if node is not None and node.task == Task.BUILDING.value:
            fail(tx, node, reason)
    LOG.warning("node %s failed: %s", plan.node_id, reason)
