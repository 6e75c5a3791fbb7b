"""``/v1/operations``: what became of each accepted request."""

from __future__ import annotations

from sqlalchemy import select

from services.api.app import ApiRequest, Reply
from services.api.paging import paginate
from services.api.views import operation_view
from services.common.db.models import Operation, OperationEvent
from services.common.db.session import session_scope


def show(request: ApiRequest) -> Reply:
    operation_id = request.params["operation_id"]
    with session_scope(request.context.sessions) as session:
        operation = request.visible(session.get(Operation, operation_id), "operation", operation_id)
        events = session.scalars(
            select(OperationEvent)
            .where(OperationEvent.operation_id == operation_id)
            .order_by(OperationEvent.id)
        ).all()
        return Reply(200, {"operation": operation_view(operation, list(events))})


def index(request: ApiRequest) -> Reply:
    query = select(Operation)
    project_id = request.listing_project()
    if project_id is not None:
        query = query.where(Operation.project_id == project_id)
    for name in ("node_id", "status", "action"):
        value = request.raw.GET.get(name)
        if value:
            query = query.where(getattr(Operation, name) == value)
    with session_scope(request.context.sessions) as session:
        return Reply(
            200, paginate(request, session, query, Operation, operation_view, "operations")
        )
