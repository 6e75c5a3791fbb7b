"""Expiring named leases in the database, so that N processes never do the
same periodic work (polling or syncing one account) at once."""

from __future__ import annotations

import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.exc import IntegrityError

from services.common.db.models import Lease, utcnow
from services.common.db.session import SessionFactory, session_scope


def acquire(factory: SessionFactory, name: str, holder: str, seconds: float) -> bool:
    """Take ``name`` for ``seconds`` if nobody holds it now; True on success.

    A lease is not released early: holding it for the whole interval is what
    makes "once per interval across all processes" true.
    """
    now = utcnow()
    expires = now + datetime.timedelta(seconds=seconds)
    with session_scope(factory) as session:
        taken = cast(
            CursorResult[Any],
            session.execute(
                update(Lease)
                .where(Lease.name == name, Lease.expires_at <= now)
                .values(holder=holder, expires_at=expires, last_run_at=now)
            ),
        ).rowcount
        if taken:
            return True
        if session.get(Lease, name) is not None:
            return False
    try:
        with session_scope(factory) as session:
            session.add(Lease(name=name, holder=holder, expires_at=expires, last_run_at=now))
    except IntegrityError:
        return False  # another process created it first
    return True


def expire(factory: SessionFactory, name: str) -> None:
    """Make ``name`` free now (e.g. to force a catalog sync)."""
    with session_scope(factory) as session:
        session.execute(update(Lease).where(Lease.name == name).values(expires_at=utcnow()))
