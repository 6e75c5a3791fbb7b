"""Who is calling: API keys, roles, and what each role may see.

Roles, each allowed what the ones before it are:

- ``member``: its project's resources (nodes, operations, the catalog).
- ``admin``: also its project's accounts, keys and audit log.
- ``operator``: everything, in every project (created only by ``overcast-manage``).

A key of another project never learns that a resource exists: the API answers
404, exactly as for an id that was never used.

Key lookups are cached per process for ``[api] key_cache_seconds`` (under a
second by default), so a revoked or expired key is refused by every API
process within that time without a database round trip per request.
"""

from __future__ import annotations

import datetime
import threading
import time
from dataclasses import dataclass

from sqlalchemy import or_, select, update

from services.common.db.models import ApiKey, utcnow
from services.common.db.session import SessionFactory, session_scope
from services.common.errors import Unauthorized
from services.common.keys import ROLES, hash_key

#: last_used_at is written at most this often per key (it is a hint, not a log).
LAST_USED_RESOLUTION = datetime.timedelta(seconds=60)


@dataclass(frozen=True)
class Principal:
    key_id: str
    project_id: str
    role: str
    expires_at: datetime.datetime | None = None

    def has_role(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def sees(self, project_id: str | None) -> bool:
        """Whether resources of ``project_id`` exist for this caller."""
        return self.is_operator or project_id == self.project_id


class KeyCache:
    """API key -> principal, looked up in the database at most every ``ttl`` seconds."""

    def __init__(self, sessions: SessionFactory, ttl: float, max_entries: int = 10_000) -> None:
        self.sessions = sessions
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def authenticate(self, header: str) -> Principal:
        """The principal of an ``Authorization: Bearer <key>`` header, or 401."""
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized()
        digest = hash_key(key.strip())
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(digest)
        if cached is not None and now - cached[0] < self.ttl:
            principal = cached[1]
            if principal.expires_at is not None and principal.expires_at <= utcnow():
                self.forget(principal.key_id)
                raise Unauthorized("the API key is not valid")
            return principal
        principal = self._lookup(digest)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[digest] = (now, principal)
        return principal

    def forget(self, key_id: str) -> None:
        """Drop a key from this process's cache at once (after revoking it here)."""
        with self._lock:
            for digest, (_, principal) in list(self._entries.items()):
                if principal.key_id == key_id:
                    del self._entries[digest]

    def _lookup(self, digest: str) -> Principal:
        now = utcnow()
        with session_scope(self.sessions) as session:
            row = session.scalars(
                select(ApiKey).where(
                    ApiKey.key_hash == digest,
                    ApiKey.revoked_at.is_(None),
                    or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
                )
            ).first()
            if row is None:
                raise Unauthorized("the API key is not valid")
            if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
                session.execute(
                    update(ApiKey)
                    .where(ApiKey.id == row.id)
                    .values(last_used_at=now)
                    .execution_options(synchronize_session=False)
                )
            return Principal(
                key_id=row.id, project_id=row.project_id, role=row.role, expires_at=row.expires_at
            )
