"""``/v1/quota``: the project's limits and usage."""

from __future__ import annotations

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
