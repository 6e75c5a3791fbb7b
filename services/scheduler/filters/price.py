"""A price cap, and fresh prices only. An offer of unknown price never passes
a cap (unknown is not free); with ``prices_since``, a price older than that
(or of unknown age) does not pass either."""

from __future__ import annotations

from typing import Any

from services.common.db.models import Offer
from services.scheduler.filters import Filter, FilterContext
from services.scheduler.requirements import OfferData, Requirements


class MaxPriceFilter(Filter):
    name = "price"

    def clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        clauses = []
        if requirements.max_price is not None:
            clauses += [
                Offer.price_per_hour.is_not(None),
                Offer.price_per_hour <= requirements.max_price,
            ]
        if requirements.prices_since is not None:
            clauses += [
                Offer.price_as_of.is_not(None),
                Offer.price_as_of >= requirements.prices_since,
            ]
        return clauses

    def passes(self, offer: OfferData, requirements: Requirements, context: FilterContext) -> bool:
        if requirements.max_price is not None and (
            offer.price_per_hour is None or offer.price_per_hour > requirements.max_price
        ):
            return False
        return requirements.prices_since is None or (
            offer.price_as_of is not None and offer.price_as_of >= requirements.prices_since
        )
