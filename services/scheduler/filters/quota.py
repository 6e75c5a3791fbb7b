"""Project quota: only offers whose size and price still fit in what the
project's quota allows (vCPUs, RAM, price per hour of its live nodes).

With a price limit, an offer of unknown price never passes: unknown is not free.
The node count is charged when a create is accepted, not here.
"""

from __future__ import annotations

from typing import Any

from services.common.db.models import Offer
from services.common.quotas import RESOURCES
from services.scheduler.filters import Filter, FilterContext
from services.scheduler.requirements import OfferData, Requirements


def price_ceiling(room: int) -> float:
    """The highest price per hour whose stored (rounded micro-USD) charge fits ``room``."""
    return (room + 0.5) / RESOURCES["price_per_hour"].scale


class QuotaFilter(Filter):
    name = "quota"

    def clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        room = context.quota
        clauses: list[Any] = []
        if room.vcpus is not None:
            clauses.append(Offer.vcpus <= room.vcpus)
        if room.ram_mb is not None:
            clauses.append(Offer.ram_mb <= room.ram_mb)
        if room.price_per_hour is not None:
            clauses += [
                Offer.price_per_hour.is_not(None),
                Offer.price_per_hour < price_ceiling(room.price_per_hour),
            ]
        return clauses

    def passes(self, offer: OfferData, requirements: Requirements, context: FilterContext) -> bool:
        room = context.quota
        if room.vcpus is not None and offer.vcpus > room.vcpus:
            return False
        if room.ram_mb is not None and offer.ram_mb > room.ram_mb:
            return False
        if room.price_per_hour is not None:
            return offer.price_per_hour is not None and offer.price_per_hour < price_ceiling(
                room.price_per_hour
            )
        return True
