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
        r = requirements
        clauses: list[Any] = []
        if r.providers:
            clauses.append(Offer.provider.in_(r.providers))
        if r.exclude_providers:
            clauses.append(Offer.provider.not_in(r.exclude_providers))
        if r.accounts:
            clauses.append(or_(Offer.account_id.in_(r.accounts), Account.name.in_(r.accounts)))
        if r.exclude_accounts:
            clauses.append(
                and_(
                    Offer.account_id.not_in(r.exclude_accounts),
                    Account.name.not_in(r.exclude_accounts),
                )
            )
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
