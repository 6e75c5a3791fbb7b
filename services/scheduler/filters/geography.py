"""Countries, regions and zones allowed or excluded."""

from __future__ import annotations

from typing import Any

from services.common.db.models import Offer
from services.scheduler.filters import Filter, FilterContext
from services.scheduler.requirements import OfferData, Requirements

RULES = (
    ("country", "countries", "exclude_countries"),
    ("region", "regions", "exclude_regions"),
    ("zone", "zones", "exclude_zones"),
)


class GeographyFilter(Filter):
    name = "geography"

    def clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        clauses: list[Any] = []
        for column, allowed, excluded in RULES:
            if getattr(requirements, allowed):
                clauses.append(getattr(Offer, column).in_(getattr(requirements, allowed)))
            if getattr(requirements, excluded):
                # NULL (no region/zone) is not in any excluded list.
                field = getattr(Offer, column)
                clauses.append(field.is_(None) | field.not_in(getattr(requirements, excluded)))
        return clauses

    def passes(self, offer: OfferData, requirements: Requirements, context: FilterContext) -> bool:
        for column, allowed, excluded in RULES:
            value = getattr(offer, column)
            if getattr(requirements, allowed) and value not in getattr(requirements, allowed):
                return False
            if value is not None and value in getattr(requirements, excluded):
                return False
        return True
