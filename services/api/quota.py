"""``/v1/quota``: the project's limits and usage; operators change the limits."""

from __future__ import annotations

from services.api import schemas
from services.api.app import ApiRequest, Reply
from services.common import quotas
from services.common.db.models import Project
from services.common.db.session import session_scope
from services.common.errors import InvalidInput, NotFound


def show(request: ApiRequest) -> Reply:
    project_id = request.listing_project()
    if project_id is None:
        raise InvalidInput("all_projects: a quota is per project; name one with project_id")
    with session_scope(request.context.sessions) as session:
        if session.get(Project, project_id) is None:
            raise NotFound(f"project {project_id} not found")
        return Reply(200, {"quota": quotas.report(session, project_id)})


def update(request: ApiRequest) -> Reply:
    """Set the limits named in the body (null: no limit); the others stay."""
    body = schemas.validate("QuotaUpdate", request.json())
    project_id = body.pop("project_id", None) or request.project_id
    with session_scope(request.context.sessions) as session:
        if session.get(Project, project_id) is None:
            raise NotFound(f"project {project_id} not found")
        quotas.set_limits(session, project_id, body)
        return Reply(200, {"quota": quotas.report(session, project_id)}, resource_id=project_id)
