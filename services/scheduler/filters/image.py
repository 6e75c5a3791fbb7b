"""The requested image exists at the offer's location (by id, or id/name prefix)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, or_

from services.common.db.models import Image, Offer
from services.scheduler.filters import Filter, FilterContext
from services.scheduler.requirements import OfferData, Requirements


def image_matches(image: str) -> Any:
    lowered = image.lower()
    return or_(
        Image.image_id == image,
        func.lower(Image.image_id).startswith(lowered, autoescape=True),
        func.lower(Image.name).startswith(lowered, autoescape=True),
    )


def image_name_matches(image: str, candidate: str) -> bool:
    return candidate == image or candidate.lower().startswith(image.lower())


class ImageFilter(Filter):
    name = "image"

    def clauses(self, requirements: Requirements, context: FilterContext) -> list[Any]:
        if not requirements.image:
            return []
        return [
            exists().where(
                Image.account_id == Offer.account_id,
                Image.location_id == Offer.location_id,
                image_matches(requirements.image),
            )
        ]

    def passes(self, offer: OfferData, requirements: Requirements, context: FilterContext) -> bool:
        if not requirements.image:
            return True
        return any(image_name_matches(requirements.image, name) for name in offer.images)
