"""One placement decision: filters, then the policy (no message transport)."""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from services.common import quotas
from services.common.config import Config
from services.common.db.models import utcnow
from services.common.db.session import SessionFactory
from services.scheduler import cursors
from services.scheduler.filters import Filter, FilterContext, QuotaRoom
from services.scheduler.offers import candidates
from services.scheduler.policies import (
    NoPlacement,
    Placement,
    PlacementRequest,
    registry,
    round_robin,
    zone_aware,
)
from services.scheduler.requirements import Requirements

POLICIES = registry()


def request_from_spec(
    config: Config, project_id: str, spec: dict[str, Any]
) -> tuple[str, PlacementRequest]:
    """The policy name and placement request a node's spec asks for."""
    policy = spec.get("policy") or config.scheduler.default_policy
    stale_after = datetime.timedelta(days=config.pricing.stale_after)
    return policy, PlacementRequest(
        project_id=project_id,
        requirements=Requirements.from_spec(spec, stale_after=stale_after),
        alternates=config.scheduler.alternates,
        group=spec.get("group"),
        strict_anti_affinity=spec.get("anti_affinity") == "strict",
    )


def _room(session: Session, request: PlacementRequest) -> dict[str, int | None]:
    """The project's quota room, less what a dry run planned before this node."""
    room = quotas.room(session, request.project_id)
    for planned in request.planned:
        for name, amount in {"nodes": 1, **quotas.charge_of(planned.to_dict())}.items():
            left = room.get(name)
            if left is not None:
                room[name] = left - amount
    return room


def decide(
    session: Session, filters: list[Filter], policy_name: str, request: PlacementRequest
) -> list[Placement]:
    """The placement and alternates; raises :class:`NoPlacement` with the reason."""
    quota = QuotaRoom.from_room(_room(session, request))
    context = FilterContext(project_id=request.project_id, now=utcnow(), quota=quota)
    placements = POLICIES[policy_name].place(
        session, candidates(filters, request.requirements, context), request
    )
    if not placements:
        reason = f"no offer matches the request ({request.requirements.describe()})"
        if (
            quota != QuotaRoom()
            and session.scalars(
                candidates(
                    filters, request.requirements, replace(context, quota=QuotaRoom())
                ).limit(1)
            ).first()
        ):
            reason = (
                "the project's quota leaves no room for a matching offer "
                f"(vcpus {quota.vcpus}, ram_mb {quota.ram_mb}, "
                f"price_per_hour {quotas.RESOURCES['price_per_hour'].shown(quota.price_per_hour)} "
                "left)"
            )
        raise NoPlacement(reason)
    return placements


def plan_batch(
    session: Session, filters: list[Filter], policy_name: str, request: PlacementRequest, count: int
) -> list[list[Placement]]:
    """A dry run for ``count`` nodes: each decision sees the ones before it."""
    nodes_left = quotas.room(session, request.project_id)["nodes"]
    if nodes_left is not None and nodes_left < count:
        raise NoPlacement(f"the project's node quota allows {max(nodes_left, 0)} more node(s)")
    plans: list[list[Placement]] = []
    for _ in range(count):
        placements = decide(
            session, filters, policy_name, replace(request, planned=tuple(p[0] for p in plans))
        )
        plans.append(placements)
    return plans


def prepare_cursors(
    factory: SessionFactory, policy_name: str, project_id: str, group: str | None
) -> None:
    """Make sure the cursor rows the policy will lock exist (own transaction)."""
    if policy_name == "round_robin":
        cursors.ensure(factory, round_robin.cursor_name(project_id))
    if policy_name == "zone_aware" and group:
        cursors.ensure(factory, zone_aware.cursor_name(project_id, group))
