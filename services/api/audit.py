"""The audit log: every mutating API call, who made it, on what, and how it ended.

Records are written by the application for every POST, PUT, PATCH and DELETE
that reached a route, whatever its outcome, after the call itself (its own
transaction, so a failed call is recorded too). They hold ids, the route and
the status -- never a body, so never a secret. ``GET /v1/audit`` shows a
project admin their project's records and an operator everyone's
(``services/api/audit_log.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.api.auth import Principal
from services.common.db.models import AuditRecord, new_id, utcnow
from services.common.db.session import SessionFactory, session_scope
from services.common.errors import DatabaseUnavailable

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


def record(sessions: SessionFactory, call: Call, status: int) -> None:
    """Write ``call``'s record; a failure to do so is logged, never raised.

    A call refused because the database is down changed nothing, and its
    record could not be written either: it is logged instead of waiting for
    the database a second time."""
    if call.error_code == DatabaseUnavailable.code:
        LOG.warning(
            "not audited (database unavailable): %s %s [%s]",
            call.method,
            call.route,
            call.request_id,
        )
        return
    principal = call.principal
    row = AuditRecord(
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
    try:
        with session_scope(sessions) as session:
            session.add(row)
    except Exception as error:  # the call happened; losing its record must not fail it
        LOG.error("could not write the audit record of %s: %s", call.request_id, error)
