"""``zone_aware``: spread a group's nodes across zones.

For a request with a ``group``: the zone holding the fewest of the group's
live nodes first, the cheapest offer within it. With ``anti_affinity:
strict`` never two in one zone, and a clear error when zones run out.
Placements of one group are serialized by locking its cursor row, so two
schedulers cannot both pick the same empty zone. Without a group it is
``cheapest``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from services.common.db.models import Node, Offer
from services.common.states import State
from services.scheduler import cursors
from services.scheduler.policies import (
    NoPlacement,
    Placement,
    PlacementRequest,
    Policy,
    cheapest_in,
    to_placement,
)
from services.scheduler.policies.cheapest import Cheapest


def cursor_name(project_id: str, group: str) -> str:
    return f"group:{project_id}:{group}"


def group_counts(session: Session, project_id: str, group: str) -> Counter[str]:
    rows = session.execute(
        select(Node.zone, func.count())
        .where(
            Node.project_id == project_id,
            Node.group_name == group,
            Node.deleted_at.is_(None),
            Node.zone.is_not(None),
            Node.state != State.ERROR.value,
        )
        .group_by(Node.zone)
    ).all()
    return Counter({zone: count for zone, count in rows if zone})


class ZoneAware(Policy):
    name = "zone_aware"

    def place(
        self, session: Session, candidates: Select[Any], request: PlacementRequest
    ) -> list[Placement]:
        if not request.group:
            return Cheapest().place(session, candidates, request)
        if not request.dry_run:
            cursors.advance(session, cursor_name(request.project_id, request.group))
        counts = group_counts(session, request.project_id, request.group)
        counts.update(planned.zone for planned in request.planned)
        zone = func.coalesce(Offer.zone, Offer.account_id.concat("/").concat(Offer.location_id))
        cheapest = dict(
            session.execute(
                candidates.with_only_columns(zone, func.min(Offer.price_per_hour)).group_by(zone)
            ).all()
        )
        if not cheapest:
            return []
        zones = sorted(
            cheapest,
            key=lambda key: (counts[key], cheapest[key] is None, cheapest[key] or 0.0, key),
        )
        if request.strict_anti_affinity:
            free = [key for key in zones if counts[key] == 0]
            if not free:
                raise NoPlacement(
                    f"strict anti-affinity: group {request.group!r} already has a node in "
                    f"every eligible zone ({', '.join(sorted(cheapest))})"
                )
            zones = free
        placements = []
        for key in zones[: request.alternates + 1]:
            offer = cheapest_in(session, candidates, zone == key)
            if offer is not None:
                placements.append(to_placement(session, offer, request.requirements))
        return placements
