"""Calling providers: retry transient errors with backoff, honour Retry-After."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from drivers.errors import DriverError, RateLimited
from services.common import metrics
from services.common.context import ServiceContext
from services.common.db.session import session_scope
from services.common.states import finish_operation

LOG = logging.getLogger(__name__)

T = TypeVar("T")


def call_provider(
    function: Callable[..., T],
    *args: object,
    retries: int,
    backoff: float,
    max_backoff: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: object,
) -> T:
    """Call ``function``; retry up to ``retries`` times while errors are transient."""
    for attempt in range(retries + 1):
        try:
            return metrics.timed_provider_call(function, *args, **kwargs)  # type: ignore[no-any-return]
        except DriverError as error:
            if not error.transient or attempt == retries:
                raise
            if isinstance(error, RateLimited) and error.retry_after is not None:
                wait = min(error.retry_after, max_backoff)
            else:
                wait = random.uniform(0, min(max_backoff, backoff * 2**attempt))
            LOG.info("transient provider error (%s); retry %d in %.2fs", error, attempt + 1, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def call(context: ServiceContext, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """:func:`call_provider` with the worker's configured retries and backoff."""
    settings = context.config.worker
    return call_provider(
        functools.partial(function, *args, **kwargs),
        retries=settings.provider_retries,
        backoff=settings.provider_backoff,
    )


def settle(
    context: ServiceContext,
    operation_id: str,
    what: str,
    work: Callable[[], object],
    record: Callable[[Session], None] = lambda session: None,
) -> None:
    """Do an operation's provider ``work``, then ``record`` it and end the
    operation as succeeded in one transaction. A transient provider error is
    raised (for redelivery); any other ends the operation as failed, saying
    which ``what`` failed and why."""
    try:
        work()
    except DriverError as error:
        if error.transient:
            raise
        with session_scope(context.sessions) as session:
            finish_operation(session, operation_id, "failed", f"{what} failed: {error}")
        return
    with session_scope(context.sessions) as session:
        record(session)
        finish_operation(session, operation_id, "succeeded")
