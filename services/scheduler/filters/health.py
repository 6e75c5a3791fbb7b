"""Account health: an account whose recent provider calls failed is skipped
until its cool-down ends (a circuit breaker; see services/worker/health.py)."""

from __future__ import annotations

from typing import Any

from services.common.db.models import Account
from services.scheduler.filters import Filter, FilterContext
from services.scheduler.requirements import OfferData, Requirements


class AccountHealthFilter(Filter):
    name = "health"

    def clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        return []

    def account_clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        return [Account.cooldown_until.is_(None) | (Account.cooldown_until <= context.now)]

    def passes(self, offer: OfferData, requirements: Requirements, context: FilterContext) -> bool:
        until = offer.account_cooldown_until
        return until is None or until <= context.now
