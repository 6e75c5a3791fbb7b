"""Containers as the service keeps them: the rules the API and the workers share.

A container is a row (project, name, account, the provider's name for it);
its objects live only at the provider. What a container holds of its
project's quota is in ``charged``: ``containers`` (1) and ``stored_bytes``
(the bytes of the objects stored through Overcast). Every byte count moves
with :func:`charge_bytes`, under the container's row lock, then the quota
row's (the lock order of ``services/common/quotas.py``).
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from drivers.storage.base import StorageDriver
from services.common import quotas
from services.common.context import ServiceContext
from services.common.db.models import Account, Container, utcnow
from services.common.errors import Conflict, NotFound

AVAILABLE = "available"
#: A delete began: it always wins, and whatever lands meanwhile is undone.
DELETING = "deleting"
DELETED = "deleted"

#: Container names: 3 to 63 of a-z, 0-9, '.', '_' and '-' (what every provider takes).
CONTAINER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


def driver_of(context: ServiceContext, session: Session, container: Container) -> StorageDriver:
    """The storage driver of the container's account."""
    driver = driver_or_none(context, session, container)
    if driver is None:
        raise Conflict(f"container {container.name}: its account was deleted")
    return driver


def driver_or_none(
    context: ServiceContext, session: Session, container: Container
) -> StorageDriver | None:
    """The driver, or None once the container's account is gone (a delete then
    has nothing left to remove at the provider)."""
    account = session.get(Account, container.account_id) if container.account_id else None
    if account is None or account.deleted_at is not None:
        return None
    return context.drivers.storage_for(account)


def live(session: Session, container_id: str, *, lock: bool = False) -> Container:
    """The live container (with ``lock``, its row locked until the transaction
    ends); a container being deleted answers 404 (the delete wins)."""
    container = session.get(Container, container_id, with_for_update=lock, populate_existing=lock)
    if container is None or container.deleted_at is not None or container.state != AVAILABLE:
        raise NotFound(f"container {container_id} not found")
    return container


def charge_bytes(session: Session, container_id: str, delta: int) -> None:
    """Count ``delta`` more stored bytes (negative: fewer) on the live container
    and its project; raises ``NotFound`` if a delete began meanwhile, and
    ``ProjectQuotaExceeded`` for more than the project may store. The count
    never goes below zero."""
    container = live(session, container_id, lock=True)
    held = int((container.charged or {}).get("stored_bytes", 0))
    delta = max(delta, -held)
    if delta:
        quotas.charge(session, container.project_id, [container], {"stored_bytes": delta})


def finish_delete(session: Session, container: Container) -> None:
    """Mark the container deleted, free its name and give back its quota."""
    container.state = DELETED
    container.deleted_at = utcnow()
    container.name = f"{container.name}~deleted~{container.id}"[:255]
    quotas.release(session, container)
