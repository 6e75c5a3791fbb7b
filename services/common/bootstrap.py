"""Creating projects, API keys and accounts outside the API (manage, all-in-one)."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import select

from drivers import DriverType
from services.common import keys, messaging, quotas
from services.common.context import ServiceContext
from services.common.db.models import Account, Project, new_id
from services.common.db.session import session_scope


def ensure_project(context: ServiceContext, name: str) -> str:
    """The project's id, creating it (with its quota row, no limits) if missing."""
    with session_scope(context.sessions) as session:
        project = session.scalars(select(Project).where(Project.name == name)).first()
        if project is None:
            project = Project(id=new_id("proj"), name=name)
            session.add(project)
            session.flush()
        quotas.ensure(session, project.id)
        return project.id


def create_key(
    context: ServiceContext,
    project_id: str,
    name: str,
    role: str,
    expires_at: datetime.datetime | None = None,
) -> str:
    """A new API key; the only time it is ever shown is this return value."""
    with session_scope(context.sessions) as session:
        _, key = keys.issue(session, project_id, name, role, expires_at)
    return key


def ensure_account(
    context: ServiceContext,
    project_id: str,
    name: str,
    provider: str,
    credentials: dict[str, Any],
    options: dict[str, Any],
    services: list[str] | None = None,
) -> str:
    """The account's id, creating it (and queueing the catalog sync of one
    that serves compute) if missing."""
    with context.outbox.transaction() as tx:
        account = tx.session.scalars(
            select(Account).where(
                Account.project_id == project_id, Account.name == name, Account.deleted_at.is_(None)
            )
        ).first()
        if account is None:
            account = Account(
                id=new_id("acct"),
                project_id=project_id,
                name=name,
                provider=provider,
                credentials=context.cipher.encrypt(credentials),
                options=options,
                services=services,
            )
            tx.session.add(account)
        tx.session.flush()
        if account.serves(DriverType.COMPUTE):
            tx.send(messaging.message("sync_catalog", "bootstrap", account_id=account.id))
        return account.id
