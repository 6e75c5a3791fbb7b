"""Project quota: no placement once the project has as many nodes as it may."""

from __future__ import annotations

from typing import Any

from sqlalchemy import false

from services.scheduler.filters import Filter, FilterContext
from services.scheduler.requirements import OfferData, Requirements


class QuotaFilter(Filter):
    name = "quota"

    def clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        if context.quota_left is not None and context.quota_left < 0:
            return [false()]
        return []

    def passes(self, offer: OfferData, requirements: Requirements, context: FilterContext) -> bool:
        return context.quota_left is None or context.quota_left >= 0
