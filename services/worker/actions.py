"""``reboot_node``, ``start_node``, ``stop_node``, ``destroy_node`` handlers.

Each checks that the node still runs the matching task (so duplicates are
harmless), calls the provider, and records the outcome. Completion of
reboot/start/stop is seen by the poller; destroy completes at once. A node
being deleted leaves every balancer it is in first. A node deleted before
its create was recorded is looked up at the provider by its token, so that
nothing the create made is left running.
"""

from __future__ import annotations

import logging

from drivers.compute.base import Node as DriverNode
from drivers.compute.base import NodeState
from drivers.errors import DriverError, NotFound
from services.common.context import ServiceContext
from services.common.db.models import Account, Node
from services.common.db.session import session_scope
from services.common.messaging import Envelope
from services.common.states import ACTIONS, State, add_event, finish_operation, set_state
from services.worker.balancers import leave_balancers
from services.worker.calls import call_provider
from services.worker.reap import placement_accounts, reap

LOG = logging.getLogger(__name__)

DRIVER_METHODS = {
    "reboot": "reboot_node",
    "start": "start_node",
    "stop": "stop_node",
    "delete": "destroy_node",
}


def node_action(context: ServiceContext, envelope: Envelope, action_name: str) -> None:
    task = ACTIONS[action_name].task.value
    node_id = envelope.payload["node_id"]
    with session_scope(context.sessions) as session:
        node = session.get(Node, node_id)
        if node is None or node.task != task or node.awaiting_provider:
            LOG.info("node %s: no %s pending (duplicate message?)", node_id, action_name)
            return
        account = session.get(Account, node.account_id) if node.account_id else None
        target = (
            DriverNode(
                id=node.provider_node_id,
                name=node.name,
                state=NodeState.UNKNOWN,
                provider=node.provider or "",
            )
            if node.provider_node_id
            else None
        )
        operation_id = node.operation_id
        name = node.name
        unrecorded = placement_accounts(node) if action_name == "delete" and target is None else []
    error: DriverError | None = None
    if action_name == "delete":
        leave_balancers(context, node_id, operation_id)  # first, so no traffic goes to it
    if unrecorded:
        try:
            reap(context, node_id, name, unrecorded)
        except DriverError as failed:
            error = failed
    if target is not None and account is not None:
        driver = context.drivers.for_account(account)
        settings = context.config.worker
        try:
            call_provider(
                getattr(driver, DRIVER_METHODS[action_name]),
                target,
                retries=settings.provider_retries,
                backoff=settings.provider_backoff,
            )
        except NotFound as missing:
            if action_name != "delete":
                error = missing  # deleting what is already gone is success
        except DriverError as failed:
            error = failed
    with session_scope(context.sessions) as session:
        node = session.get(Node, node_id)
        if node is None or node.task != task:
            return
        if error is not None:
            LOG.warning("node %s: %s failed: %s", node_id, action_name, error)
            node.error = f"{action_name} failed: {error}"
            set_state(node, State(node.state), task=None)
            finish_operation(session, operation_id, "failed", str(error))
        elif action_name == "delete":
            set_state(node, State.DELETED, task=None)
            finish_operation(session, operation_id, "succeeded")
        else:
            if action_name == "reboot":
                set_state(node, State.REBOOTING)
            node.awaiting_provider = True
            add_event(session, operation_id, f"{action_name} requested at the provider")
