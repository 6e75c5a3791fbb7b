"""``cheapest``: the lowest price (unknown last; ties: RAM, vCPUs, ids).

Alternates are the next cheapest offers in *other* locations, so failing over
after a capacity error at one location really goes somewhere else.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from services.scheduler.offers import CHEAPEST_ORDER
from services.scheduler.policies import Placement, PlacementRequest, Policy, to_placement

SCAN = 200  # ranked offers looked at to find distinct alternate locations


class Cheapest(Policy):
    name = "cheapest"

    def place(
        self, session: Session, candidates: Select[Any], request: PlacementRequest
    ) -> list[Placement]:
        ranked = session.scalars(candidates.order_by(*CHEAPEST_ORDER).limit(SCAN)).all()
        chosen, seen = [], set()
        for offer in ranked:
            where = (offer.account_id, offer.location_id)
            if where in seen:
                continue
            seen.add(where)
            chosen.append(offer)
            if len(chosen) > request.alternates:
                break
        return [to_placement(session, offer, request.requirements) for offer in chosen]
