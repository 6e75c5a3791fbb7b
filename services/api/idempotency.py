"""``Idempotency-Key`` on POSTs: a replayed key returns the first answer.

The key, a fingerprint of the request and the response are kept on the
request's operation row; a key reused with a different request is a 409.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.api.app import ApiRequest, Reply
from services.common.db.models import Operation
from services.common.errors import Conflict, InvalidInput


def key_of(request: ApiRequest) -> str | None:
    header: str | None = request.raw.headers.get("Idempotency-Key")
    if header is None:
        return None
    key = header.strip()
    if not 1 <= len(key) <= 255:
        raise InvalidInput("Idempotency-Key: must be 1 to 255 characters", field="Idempotency-Key")
    return key


def fingerprint(request: ApiRequest, body: Any) -> str:
    text = json.dumps([request.raw.method, request.raw.path, body], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def replay(session: Session, request: ApiRequest, key: str | None, print_: str) -> Reply | None:
    """The stored answer for ``key`` in this project, if the request was seen."""
    if key is None:
        return None
    operation = session.scalars(
        select(Operation).where(
            Operation.project_id == request.project_id, Operation.idempotency_key == key
        )
    ).first()
    if operation is None:
        return None
    if operation.request_fingerprint != print_:
        raise Conflict("Idempotency-Key was already used for a different request")
    return Reply(
        operation.response_status or 200, operation.response_body, {"Idempotent-Replayed": "true"}
    )
