"""One engine per process; one session per request or message.

``session_scope`` is the only way code gets a session: it commits on success,
rolls back on error and always closes. Database outages surface as
:class:`DatabaseUnavailable` (HTTP 503), not as driver exceptions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from services.common.config import DatabaseSection
from services.common.errors import DatabaseUnavailable

LOG = logging.getLogger(__name__)

T = TypeVar("T")
SessionFactory = sessionmaker[Session]


def make_engine(section: DatabaseSection) -> Engine:
    """An engine for ``section.connection`` with sane per-backend settings."""
    url = section.connection
    # No pool_pre_ping (a round trip per checkout): a disconnect error
    # invalidates the whole pool, so after a database restart one request
    # answers 503 and the next ones reconnect.
    kwargs: dict[str, Any] = {"future": True, "pool_recycle": 1800}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if url in ("sqlite://", "sqlite:///", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        kwargs.pop("pool_recycle")
    else:
        kwargs.update(
            pool_size=section.pool_size,
            max_overflow=section.pool_size,
            pool_timeout=section.pool_timeout,
        )
        if url.startswith("postgresql"):
            kwargs["connect_args"] = {"connect_timeout": 5}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def refresh_statistics(session: Session, *tables: str) -> None:
    """Let the query planner see tables' new contents (after bulk changes).

    Without fresh statistics planners may sort a whole table where an index
    walk would stop after a few rows (see ``offers.price_rank``).
    """
    dialect = session.get_bind().dialect.name
    for table in tables:
        if dialect in ("mysql", "mariadb"):
            session.execute(text(f"ANALYZE TABLE {table}"))
        else:
            session.execute(text(f"ANALYZE {table}"))


def make_session_factory(engine: Engine) -> SessionFactory:
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_unavailable(error: BaseException) -> bool:
    """Whether a database error means the database cannot be reached."""
    if isinstance(error, OperationalError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


@contextmanager
def session_scope(factory: SessionFactory) -> Iterator[Session]:
    """A session in one transaction: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except DBAPIError as error:
        _rollback_quietly(session)
        if is_unavailable(error):
            LOG.warning("database unavailable: %s", type(error.orig).__name__)
            raise DatabaseUnavailable() from error
        raise
    except BaseException:
        _rollback_quietly(session)
        raise
    finally:
        try:
            session.close()
        except DBAPIError:
            LOG.debug("closing a session on a dead connection failed")


def _rollback_quietly(session: Session) -> None:
    """Roll back; a dead connection cannot, and must not hide the first error."""
    try:
        session.rollback()
    except DBAPIError:
        LOG.debug("rollback on a dead connection failed")


def in_transaction(factory: SessionFactory, work: Callable[[Session], T]) -> T:
    """Run ``work`` in its own transaction and return its result."""
    with session_scope(factory) as session:
        return work(session)
