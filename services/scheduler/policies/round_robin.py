"""``round_robin``: rotate across accounts, then across each account's locations.

The position lives in the database (one cursor per project), advanced
atomically, so several scheduler processes still rotate fairly: 30 nodes over
3 accounts land 10/10/10. Within the chosen account and location the cheapest
matching size wins; alternates are the next accounts in the rotation.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from services.common.db.models import Offer
from services.scheduler import cursors
from services.scheduler.policies import (
    Placement,
    PlacementRequest,
    Policy,
    cheapest_in,
    to_placement,
)


def cursor_name(project_id: str) -> str:
    return f"round_robin:{project_id}"


class RoundRobin(Policy):
    name = "round_robin"

    def place(
        self, session: Session, candidates: Select[Any], request: PlacementRequest
    ) -> list[Placement]:
        pairs = session.execute(
            candidates.with_only_columns(Offer.account_id, Offer.location_id)
            .distinct()
            .order_by(Offer.account_id, Offer.location_id)
        ).all()
        if not pairs:
            return []
        locations: dict[str, list[str]] = {}
        for account_id, location_id in pairs:
            locations.setdefault(account_id, []).append(location_id)
        accounts = sorted(locations)
        name = cursor_name(request.project_id)
        if request.dry_run:
            position = cursors.peek(session, name) + len(request.planned)
        else:
            position = cursors.advance(session, name)
        placements = []
        for step in range(min(len(accounts), request.alternates + 1)):
            account_id = accounts[(position + step) % len(accounts)]
            account_locations = locations[account_id]
            location_id = account_locations[(position // len(accounts)) % len(account_locations)]
            offer = cheapest_in(
                session,
                candidates,
                Offer.account_id == account_id,
                Offer.location_id == location_id,
            )
            if offer is not None:
                placements.append(to_placement(session, offer, request.requirements))
        return placements
