"""Offers (account x location x size) and the requirements that filter them.

Filtering and ranking happen in one SQL query over the denormalized
``offers`` table, so a decision never loads the whole catalog. Ranking
(cheapest): price ascending with unknown prices last, then fewer MB of RAM,
fewer vCPUs, then account, location and size ids, so ties always break the
same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from services.common.db.models import Account, Image, Offer


@dataclass(frozen=True)
class Requirements:
    """What a node asks for. Empty tuples mean "any"."""

    min_ram_mb: int = 0
    min_vcpus: int = 0
    min_disk_gb: int = 0
    min_gpus: int = 0
    image: str | None = None
    countries: tuple[str, ...] = ()
    exclude_countries: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    max_price: float | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Requirements:
        def upper(values: Sequence[str]) -> tuple[str, ...]:
            return tuple(value.upper() for value in values)

        return cls(
            min_ram_mb=int(spec.get("min_ram_mb") or 0),
            min_vcpus=int(spec.get("min_vcpus") or 0),
            min_disk_gb=int(spec.get("min_disk_gb") or 0),
            min_gpus=int(spec.get("min_gpus") or 0),
            image=spec.get("image"),
            countries=upper(spec.get("countries") or ()),
            exclude_countries=upper(spec.get("exclude_countries") or ()),
            providers=tuple(spec.get("providers") or ()),
            accounts=tuple(spec.get("accounts") or ()),
            max_price=spec.get("max_price"),
        )


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
    zone: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def image_matches(image: str) -> Any:
    """Images whose id equals, or whose id or name starts with, ``image``."""
    lowered = image.lower()
    return or_(
        Image.image_id == image,
        func.lower(Image.image_id).startswith(lowered, autoescape=True),
        func.lower(Image.name).startswith(lowered, autoescape=True),
    )


def offers_query(project_id: str | None, requirements: Requirements) -> Select[Any]:
    """Matching offers of the project's live accounts, cheapest first."""
    query = (
        select(Offer)
        .join(Account, Account.id == Offer.account_id)
        .where(Account.deleted_at.is_(None))
    )
    if project_id is not None:
        query = query.where(Account.project_id == project_id)
    r = requirements
    conditions = [
        Offer.ram_mb >= r.min_ram_mb,
        Offer.vcpus >= r.min_vcpus,
        Offer.disk_gb >= r.min_disk_gb,
        Offer.gpus >= r.min_gpus,
    ]
    if r.countries:
        conditions.append(Offer.country.in_(r.countries))
    if r.exclude_countries:
        conditions.append(Offer.country.not_in(r.exclude_countries))
    if r.providers:
        conditions.append(Offer.provider.in_(r.providers))
    if r.accounts:
        conditions.append(or_(Offer.account_id.in_(r.accounts), Account.name.in_(r.accounts)))
    if r.max_price is not None:
        conditions.append(Offer.price_per_hour <= r.max_price)
    if r.image:
        conditions.append(
            exists().where(
                Image.account_id == Offer.account_id,
                Image.location_id == Offer.location_id,
                image_matches(r.image),
            )
        )
    return query.where(and_(*conditions)).order_by(*CHEAPEST_ORDER)


CHEAPEST_ORDER = (
    Offer.price_per_hour.asc().nulls_last(),
    Offer.ram_mb.asc(),
    Offer.vcpus.asc(),
    Offer.account_id.asc(),
    Offer.location_id.asc(),
    Offer.size_id.asc(),
)


def resolve_image(session: Session, offer: Offer, image: str | None) -> str | None:
    """The concrete image id at the offer's location (newest-looking first)."""
    if image is None:
        return None
    return session.scalars(
        select(Image.image_id)
        .where(
            Image.account_id == offer.account_id,
            Image.location_id == offer.location_id,
            image_matches(image),
        )
        .order_by((Image.image_id == image).desc(), Image.image_id.desc())
        .limit(1)
    ).first()


def place(
    session: Session, project_id: str, requirements: Requirements, count: int
) -> list[Placement]:
    """The best ``count`` placements, best first (empty when nothing matches)."""
    offers = session.scalars(offers_query(project_id, requirements).limit(count)).all()
    return [
        Placement(
            account_id=offer.account_id,
            provider=offer.provider,
            location_id=offer.location_id,
            size_id=offer.size_id,
            image_id=resolve_image(session, offer, requirements.image),
            price_per_hour=offer.price_per_hour,
            country=offer.country,
            zone=offer.zone,
        )
        for offer in offers
    ]


def describe(requirements: Requirements) -> str:
    """A short human description of what was asked, for error messages."""
    parts = [
        f"{name}={value}"
        for name, value in requirements.__dict__.items()
        if value not in (0, (), None)
    ]
    return ", ".join(parts) or "no requirements"
