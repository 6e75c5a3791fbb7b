"""The audit log: every mutating API call, who made it, on what, and how it ended.

Records are written by the application for every POST, PUT, PATCH and DELETE
that reached a route, whatever its outcome, after the call itself (its own
transaction, so a failed call is recorded too). A call accepted through
:func:`services.api.idempotency.submit` is recorded in the transaction that
accepts it instead (:func:`add`): one commit fewer on the busiest path, and
the record exists exactly when the change does. They hold ids, the route and
the status -- never a body, so never a secret. ``GET /v1/audit`` shows a
project admin their project's records and an operator everyone's
(``services/api/audit_log.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from services.api.auth import Principal
from services.common.db.models import AuditRecord, new_id, utcnow
from services.common.db.session import SessionFactory, session_scope
from services.common.errors import DatabaseUnavailable, ServiceError

LOG = logging.getLogger(__name__)


@dataclass
class Call:
    """What the application learns about a call while handling it."""

    request_id: str
    method: str
    path: str
    route: str | None = None
    principal: Principal | None = None
    resource_id: str | None = None
    error_code: str | None = None
    #: The record was committed with the call's own change (:func:`add`).
    recorded: bool = False


def record(sessions: SessionFactory, call: Call, status: int) -> None:
    """Write ``call``'s record unless :func:`add` did; a failure to do so is
    logged, never raised.

    A call refused because the database is down changed nothing, and its
    record could not be written either: it is logged instead of waiting for
    the database a second time."""
    if call.recorded:
        return
    if call.error_code == DatabaseUnavailable.code:
        LOG.warning(
            "not audited (database unavailable): %s %s [%s]",
            call.method,
            call.route,
            call.request_id,
        )
        return
    try:
        with session_scope(sessions) as session:
            session.add(_row(call, status))
    except Exception as error:  # the call happened; losing its record must not fail it
        LOG.error("could not write the audit record of %s: %s", call.request_id, error)


def add(session: Session, call: Call, status: int, resource_id: str | None) -> AuditRecord:
    """Stage ``call``'s record in the transaction that makes its change (the
    caller marks it :attr:`Call.recorded` once that commits)."""
    call.resource_id = call.resource_id or resource_id
    row = _row(call, status)
    session.add(row)
    return row


def amend(session: Session, record_id: str, error: ServiceError) -> None:
    """Turn a record staged by :func:`add` into the failure the call ended in."""
    row = session.get(AuditRecord, record_id)
    if row is not None:
        row.status = error.status
        row.outcome = "failed"
        row.error_code = error.code


def _row(call: Call, status: int) -> AuditRecord:
    principal = call.principal
    return AuditRecord(
        id=new_id("aud"),
        created_at=utcnow(),
        request_id=call.request_id,
        key_id=principal.key_id if principal else None,
        role=principal.role if principal else None,
        project_id=principal.project_id if principal else None,
        method=call.method,
        route=call.route or "",
        path=call.path[:1024],
        resource_id=(call.resource_id or "")[:64] or None,
        status=status,
        outcome="succeeded" if status < 400 else "denied" if status in (401, 403) else "failed",
        error_code=call.error_code,
    )
