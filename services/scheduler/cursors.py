"""Counters shared by every scheduler process, in the database.

``advance`` is one atomic ``UPDATE ... RETURNING``: on PostgreSQL it holds the
row lock until the transaction ends, on SQLite the database write lock, so
concurrent schedulers see consecutive positions -- and a placement that
advances a group's cursor is serialized with every other placement of it.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.db.models import SchedulerCursor
from services.common.db.session import SessionFactory, session_scope


def ensure(factory: SessionFactory, name: str) -> None:
    """Create the cursor if missing (in its own transaction)."""
    with session_scope(factory) as session:
        if session.get(SchedulerCursor, name) is not None:
            return
    try:
        with session_scope(factory) as session:
            session.add(SchedulerCursor(name=name, position=0))
    except IntegrityError:
        pass  # another scheduler created it


def advance(session: Session, name: str) -> int:
    """The cursor's position before this call, moving it on by one."""
    position = session.execute(
        update(SchedulerCursor)
        .where(SchedulerCursor.name == name)
        .values(position=SchedulerCursor.position + 1)
        .returning(SchedulerCursor.position)
    ).scalar_one()
    return int(position) - 1


def peek(session: Session, name: str) -> int:
    position = session.scalar(select(SchedulerCursor.position).where(SchedulerCursor.name == name))
    return int(position or 0)
