"""``/v1/keys``: a project admin's API keys (operators: every project's).

A key is shown in full only in the answer that creates it. Operator keys
cannot be made here, only with ``overcast-manage``.
"""

from __future__ import annotations

import datetime

from sqlalchemy import select

from services.api import schemas
from services.api.app import ApiRequest, Reply
from services.api.paging import paginate
from services.common import keys
from services.common.db.models import ApiKey, Project, utcnow
from services.common.db.session import session_scope
from services.common.errors import NotFound


def index(request: ApiRequest) -> Reply:
    query = select(ApiKey)
    project_id = request.listing_project()
    if project_id is not None:
        query = query.where(ApiKey.project_id == project_id)
    with session_scope(request.context.sessions) as session:
        return Reply(200, paginate(request, session, query, ApiKey, keys.key_view, "keys"))


def create(request: ApiRequest) -> Reply:
    body = schemas.validate("KeyCreate", request.json())
    project_id = body.get("project_id") or request.project_id
    expires_at = (
        utcnow() + datetime.timedelta(seconds=body["expires_in"]) if "expires_in" in body else None
    )
    with session_scope(request.context.sessions) as session:
        project = session.get(Project, project_id)
        if project is None or not request.user.sees(project_id):
            raise NotFound(f"project {project_id} not found")
        row, key = keys.issue(
            session, project_id, body["name"], body.get("role", "member"), expires_at
        )
        view = keys.key_view(row)
    return Reply(
        201, {"key": view, "secret": key}, {"Location": f"/v1/keys/{row.id}"}, resource_id=row.id
    )


def show(request: ApiRequest) -> Reply:
    with session_scope(request.context.sessions) as session:
        key_id = request.params["key_id"]
        row = request.visible(session.get(ApiKey, key_id), "key", key_id)
        return Reply(200, {"key": keys.key_view(row)})


def delete(request: ApiRequest) -> Reply:
    """Revoke the key: every API process refuses it within a second."""
    key_id = request.params["key_id"]
    with session_scope(request.context.sessions) as session:
        keys.revoke(session, request.visible(session.get(ApiKey, key_id), "key", key_id))
    if request.key_cache is not None:
        request.key_cache.forget(key_id)
    return Reply(204)
