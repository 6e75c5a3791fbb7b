"""Placement policies: given the candidate offers, choose a placement and
ranked alternates. The request names the policy; ``[scheduler]
default_policy`` applies otherwise."""

from __future__ import annotations

import abc
import datetime
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from services.common.db.models import Offer
from services.scheduler.offers import CHEAPEST_ORDER, resolve_image
from services.scheduler.requirements import Requirements


class NoPlacement(Exception):
    """Nothing can be placed; the message says why, for the user."""


@dataclass(frozen=True)
class Placement:
    """Where a node goes: one offer plus the concrete image there."""

    account_id: str
    provider: str
    location_id: str
    size_id: str
    image_id: str | None
    price_per_hour: float | None
    country: str
    zone: str  # the failure domain: the zone, or account/location without one
    vcpus: int = 0
    ram_mb: int = 0
    price_source: str | None = None
    price_as_of: str | None = None  # ISO 8601: placements travel as JSON

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def placed_price(placement: dict[str, Any]) -> dict[str, Any]:
    """A node's price columns from a placement (``to_dict`` form)."""
    as_of = placement.get("price_as_of")
    return {
        "price_per_hour": placement.get("price_per_hour"),
        "price_source": placement.get("price_source"),
        "price_as_of": datetime.datetime.fromisoformat(as_of) if as_of else None,
    }


@dataclass(frozen=True)
class PlacementRequest:
    project_id: str
    requirements: Requirements
    alternates: int
    group: str | None = None
    strict_anti_affinity: bool = False
    dry_run: bool = False
    #: Placements of the same batch already decided in a dry run (not yet in the DB).
    planned: tuple[Placement, ...] = field(default=())


def zone_of(offer: Offer) -> str:
    return offer.zone or f"{offer.account_id}/{offer.location_id}"


def to_placement(session: Session, offer: Offer, requirements: Requirements) -> Placement:
    return Placement(
        account_id=offer.account_id,
        provider=offer.provider,
        location_id=offer.location_id,
        size_id=offer.size_id,
        image_id=resolve_image(session, offer, requirements.image),
        price_per_hour=offer.price_per_hour,
        country=offer.country,
        zone=zone_of(offer),
        vcpus=offer.vcpus,
        ram_mb=offer.ram_mb,
        price_source=offer.price_source,
        price_as_of=offer.price_as_of.isoformat() if offer.price_as_of else None,
    )


def cheapest_in(session: Session, query: Select[Any], *conditions: Any) -> Offer | None:
    offer: Offer | None = session.scalars(
        query.where(*conditions).order_by(*CHEAPEST_ORDER).limit(1)
    ).first()
    return offer


class Policy(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def place(
        self, session: Session, candidates: Select[Any], request: PlacementRequest
    ) -> list[Placement]:
        """The placement first, then up to ``request.alternates`` alternates."""


def registry() -> dict[str, Policy]:
    from services.scheduler.policies.cheapest import Cheapest
    from services.scheduler.policies.round_robin import RoundRobin
    from services.scheduler.policies.zone_aware import ZoneAware

    return {policy.name: policy for policy in (Cheapest(), RoundRobin(), ZoneAware())}


POLICY_NAMES = ("cheapest", "round_robin", "zone_aware")
