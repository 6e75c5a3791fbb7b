"""Scheduler filters: one predicate each, enabled by ``[scheduler] filters``.

Every filter states its predicate twice, on purpose: as SQL clauses (what the
scheduler runs, so a decision is one indexed query) and as a Python
predicate over :class:`OfferData` (the specification the property tests hold
the SQL to).
"""

from __future__ import annotations

import abc
import datetime
from dataclasses import dataclass
from typing import Any, ClassVar

from services.scheduler.requirements import OfferData, Requirements


@dataclass(frozen=True)
class QuotaRoom:
    """What the project's quota still allows one node (None: no limit), in the
    quota's stored units: vCPUs, MB of RAM, micro-USD per hour."""

    vcpus: int | None = None
    ram_mb: int | None = None
    price_per_hour: int | None = None

    @classmethod
    def from_room(cls, room: dict[str, int | None]) -> QuotaRoom:
        return cls(
            vcpus=room.get("vcpus"),
            ram_mb=room.get("ram_mb"),
            price_per_hour=room.get("price_per_hour"),
        )


@dataclass(frozen=True)
class FilterContext:
    """What filters may know besides the request: time, health, quota."""

    project_id: str | None
    now: datetime.datetime
    quota: QuotaRoom = QuotaRoom()


class Filter(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        """SQL conditions on ``Offer`` rows that pass."""

    def account_clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        """SQL conditions on ``Account`` rows whose offers may pass."""
        return []

    @abc.abstractmethod
    def passes(self, offer: OfferData, requirements: Requirements, context: FilterContext) -> bool:
        """The same predicate in Python."""


def registry() -> dict[str, type[Filter]]:
    from services.scheduler.filters.geography import GeographyFilter
    from services.scheduler.filters.health import AccountHealthFilter
    from services.scheduler.filters.image import ImageFilter
    from services.scheduler.filters.price import MaxPriceFilter
    from services.scheduler.filters.providers import ProvidersFilter
    from services.scheduler.filters.quota import QuotaFilter
    from services.scheduler.filters.resources import ResourcesFilter

    classes: list[type[Filter]] = [
        ResourcesFilter,
        ImageFilter,
        GeographyFilter,
        ProvidersFilter,
        MaxPriceFilter,
        AccountHealthFilter,
        QuotaFilter,
    ]
    return {cls.name: cls for cls in classes}


DEFAULT_FILTERS = ("resources", "image", "geography", "providers", "price", "health", "quota")


def enabled(names: tuple[str, ...] | list[str]) -> list[Filter]:
    """Instances of the named filters; ``ValueError`` names an unknown one."""
    known = registry()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"unknown scheduler filter(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return [known[name]() for name in names]
