"""Service registration and heartbeats (shown by ``GET /v1/services``)."""

from __future__ import annotations

import logging
import os
import socket
import threading

from sqlalchemy import delete, update

from services.common.db.models import Service, new_id, utcnow
from services.common.db.session import SessionFactory, session_scope
from services.common.errors import Unavailable

LOG = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, factory: SessionFactory, kind: str, interval: float) -> None:
        self.factory = factory
        self.kind = kind
        self.interval = interval
        self.id = new_id("svc")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{kind}", daemon=True)

    def start(self) -> None:
        with session_scope(self.factory) as session:
            session.add(
                Service(id=self.id, kind=self.kind, host=socket.gethostname(), pid=os.getpid())
            )
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with session_scope(self.factory) as session:
                    session.execute(
                        update(Service).where(Service.id == self.id).values(heartbeat_at=utcnow())
                    )
            except Unavailable:
                LOG.warning("heartbeat of %s skipped: database unavailable", self.kind)

    def stop(self) -> None:
        self._stop.set()
        try:
            with session_scope(self.factory) as session:
                session.execute(delete(Service).where(Service.id == self.id))
        except Unavailable:
            pass
