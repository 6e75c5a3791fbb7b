"""API keys: made random, stored only as their SHA-256 (they carry 256 bits).

A key is shown in full once, when it is issued; afterwards only its id and
its prefix (``oc_`` and 8 characters) identify it.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from typing import Any

from sqlalchemy.orm import Session

from services.common.db.models import ApiKey, new_id, utcnow
from services.common.errors import InvalidInput

#: From least to most allowed; each role may do what the ones before it may.
ROLES = ("member", "admin", "operator")
PREFIX_LENGTH = 11


def new_api_key() -> str:
    return f"oc_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue(
    session: Session,
    project_id: str,
    name: str,
    role: str,
    expires_at: datetime.datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key row and the key itself (the only time it is ever available)."""
    if role not in ROLES:
        raise InvalidInput(f"role: must be one of {', '.join(ROLES)}", field="role")
    key = new_api_key()
    row = ApiKey(
        id=new_id("key"),
        project_id=project_id,
        name=name,
        role=role,
        key_hash=hash_key(key),
        prefix=key[:PREFIX_LENGTH],
        expires_at=expires_at,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row, key


def revoke(session: Session, row: ApiKey) -> None:
    """Refuse the key from now on (every API process within a second)."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()


def rotate(session: Session, row: ApiKey, grace_seconds: float = 0.0) -> tuple[ApiKey, str]:
    """A new key with the old one's project, name and role; the old one stops
    working after ``grace_seconds`` (at once by default)."""
    replacement, key = issue(session, row.project_id, row.name, row.role, row.expires_at)
    if grace_seconds > 0:
        ends = utcnow() + datetime.timedelta(seconds=grace_seconds)
        row.expires_at = ends if row.expires_at is None else min(row.expires_at, ends)
    else:
        revoke(session, row)
    return replacement, key


def status(row: ApiKey) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= utcnow():
        return "expired"
    return "active"


def key_view(row: ApiKey) -> dict[str, Any]:
    """A key as listed: never the key, never its hash."""

    def moment(value: datetime.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "project_id": row.project_id,
        "prefix": row.prefix,
        "status": status(row),
        "created_at": moment(row.created_at),
        "expires_at": moment(row.expires_at),
        "last_used_at": moment(row.last_used_at),
        "revoked_at": moment(row.revoked_at),
        "links": {"self": f"/v1/keys/{row.id}"},
    }
