"""Publish only after commit, and never lose a message to a crash in between.

``transaction`` yields a :class:`Transaction`; messages sent through it are
written to the ``outbox`` table in the same database transaction as the
state they announce. After the commit they are published and their rows
deleted. If the process dies between commit and publish, :func:`sweep`
(run periodically by the scheduler) publishes what was left behind.
Consumers are idempotent, so a message published twice is harmless.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.common.db.models import Outbox, utcnow
from services.common.db.session import SessionFactory, session_scope
from services.common.messaging import Envelope, Publisher

LOG = logging.getLogger(__name__)


class Transaction:
    """A session plus the messages to publish once it commits."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.staged: list[Outbox] = []

    def send(self, envelope: Envelope) -> None:
        row = Outbox(queue=envelope.queue, body=envelope.to_body())
        self.session.add(row)
        self.staged.append(row)


@contextmanager
def transaction(factory: SessionFactory, publisher: Publisher) -> Iterator[Transaction]:
    """Commit the work, then publish its messages (raises ``BrokerUnavailable``)."""
    with session_scope(factory) as session:
        tx = Transaction(session)
        yield tx
        session.flush()
    publish(factory, publisher, tx.staged)


def publish(factory: SessionFactory, publisher: Publisher, rows: list[Outbox]) -> None:
    if not rows:
        return
    for row in rows:
        publisher.publish(row.body, queue=row.queue)
    with session_scope(factory) as session:
        session.execute(delete(Outbox).where(Outbox.id.in_([row.id for row in rows])))


def discard(factory: SessionFactory, rows: list[Outbox]) -> None:
    """Forget staged messages that must not be sent after all."""
    with session_scope(factory) as session:
        session.execute(delete(Outbox).where(Outbox.id.in_([row.id for row in rows])))


def sweep(
    factory: SessionFactory, publisher: Publisher, *, older_than: float = 10.0, limit: int = 500
) -> int:
    """Publish messages whose publisher died after commit; returns how many."""
    cutoff = utcnow() - datetime.timedelta(seconds=older_than)
    with session_scope(factory) as session:
        query = select(Outbox).where(Outbox.created_at < cutoff).order_by(Outbox.id).limit(limit)
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = list(session.scalars(query))
        for row in rows:
            publisher.publish(row.body, queue=row.queue)
            session.delete(row)
    if rows:
        LOG.warning("republished %d message(s) left in the outbox", len(rows))
    return len(rows)
