"""Publish only after commit, and never lose a message to a crash in between.

``Outbox.transaction()`` yields a :class:`Transaction`; messages sent through
it are written to the ``outbox`` table in the same database transaction as
the state they announce. After the commit they are published; their rows are
then deleted in batches by a background janitor (not one transaction per
message). If the process dies between commit and publish (or before the
janitor ran), :meth:`Outbox.sweep` -- run periodically by schedulers and
workers -- publishes what was left behind. Consumers are idempotent, so a
message published twice is harmless.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.common.db.models import Outbox as OutboxRow
from services.common.db.models import utcnow
from services.common.db.session import SessionFactory, session_scope
from services.common.errors import Unavailable
from services.common.messaging import Envelope, Publisher

LOG = logging.getLogger(__name__)


class Transaction:
    """A session plus the messages to publish once it commits."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.staged: list[OutboxRow] = []

    def send(self, envelope: Envelope) -> None:
        row = OutboxRow(queue=envelope.queue, body=envelope.to_body(), created_at=utcnow())
        self.session.add(row)
        self.staged.append(row)


class Outbox:
    """The process's outbox: transactions, publishing, batched clean-up, sweeping."""

    def __init__(
        self, sessions: SessionFactory, publisher: Publisher, flush_interval: float = 0.1
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.flush_interval = flush_interval
        self._published: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Commit the work, then publish its messages (raises ``BrokerUnavailable``)."""
        with session_scope(self.sessions) as session:
            tx = Transaction(session)
            yield tx
            session.flush()
        self.publish(tx.staged)

    def publish(self, rows: list[OutboxRow]) -> None:
        for row in rows:
            self.publisher.publish(row.body, queue=row.queue)
        if rows:
            self._forget([row.id for row in rows])

    def _forget(self, ids: list[int]) -> None:
        with self._lock:
            self._published.extend(ids)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._janitor, name="outbox-janitor", daemon=True
                )
                self._thread.start()

    def _janitor(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def flush(self) -> None:
        """Delete the rows of messages published so far."""
        with self._lock:
            ids, self._published = self._published, []
        if not ids:
            return
        try:
            with session_scope(self.sessions) as session:
                session.execute(delete(OutboxRow).where(OutboxRow.id.in_(ids)))
        except Unavailable:
            with self._lock:
                self._published.extend(ids)  # try again later; the sweeper skips them

    def discard(self, rows: list[OutboxRow]) -> None:
        """Forget staged messages that must not be sent after all."""
        with session_scope(self.sessions) as session:
            session.execute(delete(OutboxRow).where(OutboxRow.id.in_([r.id for r in rows])))

    def sweep(self, *, older_than: float = 10.0, limit: int = 500) -> int:
        """Publish messages whose publisher died after commit; returns how many."""
        cutoff = utcnow() - datetime.timedelta(seconds=older_than)
        with self._lock:
            pending = list(self._published)
        with session_scope(self.sessions) as session:
            query = (
                select(OutboxRow)
                .where(OutboxRow.created_at < cutoff)
                .order_by(OutboxRow.id)
                .limit(limit)
            )
            if pending:
                query = query.where(OutboxRow.id.not_in(pending))
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(session.scalars(query))
            for row in rows:
                self.publisher.publish(row.body, queue=row.queue)
                session.delete(row)
        if rows:
            LOG.warning("republished %d message(s) left in the outbox", len(rows))
        return len(rows)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        except Exception:  # closing must not fail; the sweeper covers leftovers
            LOG.warning("could not delete published outbox rows at close")
