"""Providers and accounts (by id or name) allowed or excluded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_

from services.common.db.models import Account, Offer
from services.scheduler.filters import Filter, FilterContext
from services.scheduler.requirements import OfferData, Requirements


class ProvidersFilter(Filter):
    name = "providers"

    def clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        clauses: list[Any] = []
        if requirements.providers:
            clauses.append(Offer.provider.in_(requirements.providers))
        if requirements.exclude_providers:
            clauses.append(Offer.provider.not_in(requirements.exclude_providers))
        return clauses

    def account_clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        clauses: list[Any] = []
        if requirements.accounts:
            allowed = requirements.accounts
            clauses.append(or_(Account.id.in_(allowed), Account.name.in_(allowed)))
        if requirements.exclude_accounts:
            excluded = requirements.exclude_accounts
            clauses.append(and_(Account.id.not_in(excluded), Account.name.not_in(excluded)))
        return clauses

    def passes(self, offer: OfferData, requirements: Requirements, context: FilterContext) -> bool:
        r = requirements
        names = {offer.account_id, offer.account_name}
        return (
            (not r.providers or offer.provider in r.providers)
            and offer.provider not in r.exclude_providers
            and (not r.accounts or bool(names & set(r.accounts)))
            and not names & set(r.exclude_accounts)
        )
