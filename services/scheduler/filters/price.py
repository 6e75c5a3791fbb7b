"""A price cap. An offer of unknown price never passes a cap (unknown is not free)."""

from __future__ import annotations

from typing import Any

from services.common.db.models import Offer
from services.scheduler.filters import Filter, FilterContext
from services.scheduler.requirements import OfferData, Requirements


class MaxPriceFilter(Filter):
    name = "price"

    def clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        if requirements.max_price is None:
            return []
        return [Offer.price_per_hour.is_not(None), Offer.price_per_hour <= requirements.max_price]

    def passes(self, offer: OfferData, requirements: Requirements, context: FilterContext) -> bool:
        if requirements.max_price is None:
            return True
        return offer.price_per_hour is not None and offer.price_per_hour <= requirements.max_price
