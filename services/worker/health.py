"""Account health for the scheduler's circuit breaker.

Failed provider calls in a row are counted per account; at
``[scheduler] health_failures`` the account cools down for
``health_cooldown`` seconds, during which placement skips it. A success
closes the breaker again.
"""

from __future__ import annotations

import datetime

from sqlalchemy import update

from services.common.context import ServiceContext
from services.common.db.models import Account, utcnow
from services.common.db.session import session_scope


def record_failure(context: ServiceContext, account_id: str) -> None:
    settings = context.config.scheduler
    with session_scope(context.sessions) as session:
        account = session.get(Account, account_id)
        if account is None:
            return
        account.consecutive_failures += 1
        if account.consecutive_failures >= settings.health_failures:
            account.cooldown_until = utcnow() + datetime.timedelta(seconds=settings.health_cooldown)


def record_success(context: ServiceContext, account: Account) -> None:
    """Close the breaker of ``account`` (as loaded); healthy accounts cost nothing."""
    if not account.consecutive_failures and account.cooldown_until is None:
        return
    account_id = account.id
    with session_scope(context.sessions) as session:
        session.execute(
            update(Account)
            .where(Account.id == account_id, Account.consecutive_failures > 0)
            .values(consecutive_failures=0, cooldown_until=None)
        )
