"""``/v1/services`` (operator) and ``/healthz``."""

from __future__ import annotations

from sqlalchemy import select, text

from services.api.app import ApiRequest, Reply
from services.common import metrics
from services.common.db.models import Service
from services.common.db.session import session_scope
from services.common.states import age


def services(request: ApiRequest) -> Reply:
    dead_after = request.context.config.service.dead_after
    with session_scope(request.context.sessions) as session:
        rows = session.scalars(
            select(Service).order_by(Service.kind, Service.host, Service.pid)
        ).all()
        return Reply(
            200,
            {
                "services": [
                    {
                        "id": row.id,
                        "kind": row.kind,
                        "host": row.host,
                        "pid": row.pid,
                        "started_at": row.started_at.isoformat(),
                        "heartbeat_at": row.heartbeat_at.isoformat(),
                        "alive": age(row.heartbeat_at) < dead_after,
                    }
                    for row in rows
                ]
            },
        )


def healthz(request: ApiRequest) -> Reply:
    """200 when the database answers; 503 (via DatabaseUnavailable) when not."""
    with session_scope(request.context.sessions) as session:
        session.execute(text("SELECT 1"))
    return Reply(200, {"status": "ok"})


def metrics_page(request: ApiRequest) -> Reply:
    """Prometheus figures of this host's processes and of the deployment."""
    body = metrics.exposition(request.context.sessions)
    headers = {"Content-Type": metrics.CONTENT_TYPE, "Content-Length": str(len(body))}
    return Reply(200, headers=headers, stream=[body])
