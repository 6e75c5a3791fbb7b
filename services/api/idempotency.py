"""``Idempotency-Key`` on POSTs: a replayed key returns the first answer.

The key, a fingerprint of the request and the response are kept on the
request's operation row; a key reused with a different request is a 409.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api import audit
from services.api.app import ApiRequest, Reply
from services.common.db.models import AuditRecord, Operation
from services.common.db.session import session_scope
from services.common.errors import BrokerUnavailable, Conflict, InvalidInput
from services.common.messaging import Envelope

LOG = logging.getLogger(__name__)

#: What ``prepare`` makes of an accepted request: its operation, the answer, its messages.
Prepared = tuple[Operation, Reply, list[Envelope]]


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


class Answered(Exception):
    """Raised by a ``prepare`` that finds the request already answered (a
    delete under way answers with its operation again); nothing changes."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def submit(
    request: ApiRequest,
    body: Any,
    prepare: Callable[[Session], Prepared],
    undo: Callable[[Session, Operation], None] | None,
) -> Reply:
    """Record an accepted request and publish its messages after commit; the
    one way every kind of resource accepts slow work.

    ``prepare(session)`` records the change and its operation, which keeps
    the ``Idempotency-Key``, the request's fingerprint and the answer in the
    same INSERT; the call's audit record is written in the same transaction.
    If the broker cannot take the messages, ``undo(session, operation)``
    takes the change back and the client gets 503, so nothing is left
    half-accepted; without ``undo`` (a delete, which always wins) the
    intent stays recorded and its messages wait in the outbox, which every
    service publishes once the broker is back.
    """
    context = request.context
    key = key_of(request)
    request_fingerprint = fingerprint(request, body)
    call = request.call
    audited: AuditRecord | None = None
    try:
        with context.outbox.transaction() as tx:
            replayed = replay(tx.session, request, key, request_fingerprint)
            if replayed is not None:
                return replayed
            operation, reply, envelopes = prepare(tx.session)
            operation.idempotency_key = key
            operation.request_fingerprint = request_fingerprint
            operation.response_status = reply.status
            operation.response_body = reply.body
            for envelope in envelopes:
                tx.send(envelope)
            if call is not None:
                audited = audit.add(tx.session, call, reply.status, reply.resource_id)
    except Answered as answered:
        return answered.reply
    except IntegrityError:
        # The same Idempotency-Key raced us and won: answer as it did.
        with session_scope(context.sessions) as session:
            replayed = replay(session, request, key, request_fingerprint)
        if replayed is None:
            raise
        return replayed
    except BrokerUnavailable as unavailable:
        # Committed, audit record included; only the publish failed.
        if call is not None:
            call.recorded = True
        if undo is None:
            LOG.warning("broker unavailable; %s waits in the outbox", operation.id)
            return reply
        context.outbox.discard(tx.staged)
        with session_scope(context.sessions) as session:
            stored = session.get(Operation, operation.id)
            if stored is not None:
                stored.status = "failed"
                stored.error = "not accepted: the message broker is unavailable"
                stored.idempotency_key = None
                stored.response_body = None
                undo(session, stored)
            if audited is not None:
                audit.amend(session, audited.id, unavailable)
        raise
    if call is not None:
        call.recorded = True
    return reply
