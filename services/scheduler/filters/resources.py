"""RAM, vCPU, disk and GPU minimums and maximums."""

from __future__ import annotations

from typing import Any

from services.common.db.models import Offer
from services.scheduler.filters import Filter, FilterContext
from services.scheduler.requirements import OfferData, Requirements

BOUNDS = (
    ("ram_mb", "min_ram_mb", "max_ram_mb"),
    ("vcpus", "min_vcpus", "max_vcpus"),
    ("disk_gb", "min_disk_gb", None),
    ("gpus", "min_gpus", "max_gpus"),
)


class ResourcesFilter(Filter):
    name = "resources"

    def clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        clauses: list[Any] = []
        for column, minimum, maximum in BOUNDS:
            low = getattr(requirements, minimum)
            if low:
                clauses.append(getattr(Offer, column) >= low)
            high = getattr(requirements, maximum) if maximum else None
            if high is not None:
                clauses.append(getattr(Offer, column) <= high)
        return clauses

    def passes(self, offer: OfferData, requirements: Requirements, context: FilterContext) -> bool:
        for column, minimum, maximum in BOUNDS:
            value = getattr(offer, column)
            if value < getattr(requirements, minimum):
                return False
            high = getattr(requirements, maximum) if maximum else None
            if high is not None and value > high:
                return False
        return True
