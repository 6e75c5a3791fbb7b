"""What happens when a message is dead-lettered: its operation fails, visibly."""

from __future__ import annotations

import logging

from services.common.context import ServiceContext
from services.common.db.models import Node, Operation
from services.common.db.session import session_scope
from services.common.messaging import Envelope
from services.common.states import State, finish_operation, set_state

LOG = logging.getLogger(__name__)


def mark_failed(context: ServiceContext, envelope: Envelope | None, reason: str) -> None:
    """Fail the message's operation, and its node's task, with ``reason``."""
    if envelope is None:
        LOG.error("unreadable message dead-lettered: %s", reason)
        return
    # A poison message may carry anything: only string ids are looked up.
    operation_id = _string(envelope.payload.get("operation_id"))
    node_id = _string(envelope.payload.get("node_id"))
    text = f"{envelope.type} failed repeatedly and was dead-lettered: {reason}"
    try:
        with session_scope(context.sessions) as session:
            operation = session.get(Operation, operation_id) if operation_id else None
            node = session.get(Node, node_id) if node_id else None
            if (
                node is not None
                and node.task is not None
                and (operation is None or node.operation_id == operation.id)
            ):
                set_state(node, State.ERROR, task=None, error=text)
            finish_operation(session, operation_id, "failed", text)
    except Exception as error:  # marking must never block dead-lettering
        LOG.error("could not mark dead-lettered %s failed: %s", envelope.type, type(error).__name__)


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and len(value) <= 64 else None
