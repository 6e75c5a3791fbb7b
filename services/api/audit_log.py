"""``/v1/audit``: the audit log (project admins: their project; operators: all)."""

from __future__ import annotations

from typing import Any

from services.api.app import ApiRequest, Reply
from services.api.paging import listing, paginate
from services.common.db.models import AuditRecord
from services.common.db.session import session_scope

FILTERS = ("key_id", "resource_id", "route", "outcome", "method")


def audit_view(row: AuditRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.created_at.isoformat(),
        "request_id": row.request_id,
        "key_id": row.key_id,
        "role": row.role,
        "project_id": row.project_id,
        "method": row.method,
        "route": row.route,
        "path": row.path,
        "resource_id": row.resource_id,
        "status": row.status,
        "outcome": row.outcome,
        "error_code": row.error_code,
    }


def index(request: ApiRequest) -> Reply:
    query = listing(request, AuditRecord, FILTERS)
    with session_scope(request.context.sessions) as session:
        return Reply(200, paginate(request, session, query, AuditRecord, audit_view, "records"))
