"""The candidate offers of a request: one SQL query over the ``offers`` table.

``offers`` is denormalized (account x location x size with price, resources
and geography), so filtering and ranking never load the whole catalog.
Ranking "cheapest": price ascending with unknown prices last, then fewer MB
of RAM, fewer vCPUs, then account, location and size ids -- ties always break
the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from services.common.db.models import Account, Image, Offer
from services.scheduler.filters import Filter, FilterContext
from services.scheduler.filters.image import image_matches
from services.scheduler.requirements import Requirements

CHEAPEST_ORDER = (
    Offer.price_rank.asc(),
    Offer.ram_mb.asc(),
    Offer.vcpus.asc(),
    Offer.account_id.asc(),
    Offer.location_id.asc(),
    Offer.size_id.asc(),
)


def candidates(
    filters: list[Filter], requirements: Requirements, context: FilterContext
) -> Select[Any]:
    """Offers of the project's live accounts that pass every filter (unordered).

    Account conditions go in a subquery rather than a join, so that ordered
    queries walk ``ix_offers_rank`` and stop early instead of sorting.
    """
    accounts = select(Account.id).where(Account.deleted_at.is_(None))
    if context.project_id is not None:
        accounts = accounts.where(Account.project_id == context.project_id)
    query = select(Offer)
    for active in filters:
        account_clauses = active.account_clauses(requirements, context)
        if account_clauses:
            accounts = accounts.where(*account_clauses)
        clauses = active.clauses(requirements, context)
        if clauses:
            query = query.where(*clauses)
    return query.where(Offer.account_id.in_(accounts))


def resolve_image(session: Session, offer: Offer, image: str | None) -> str | None:
    """The concrete image id at the offer's location (exact id, else newest-looking)."""
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
