"""One placement decision: filters, then the policy (no message transport)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.common.config import SchedulerSection
from services.common.db.models import Node, Project, utcnow
from services.common.db.session import SessionFactory
from services.common.states import State
from services.scheduler import cursors
from services.scheduler.filters import Filter, FilterContext
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
    config: SchedulerSection, project_id: str, spec: dict[str, Any]
) -> tuple[str, PlacementRequest]:
    """The policy name and placement request a node's spec asks for."""
    policy = spec.get("policy") or config.default_policy
    return policy, PlacementRequest(
        project_id=project_id,
        requirements=Requirements.from_spec(spec),
        alternates=config.alternates,
        group=spec.get("group"),
        strict_anti_affinity=spec.get("anti_affinity") == "strict",
    )


def quota_left(session: Session, project_id: str, adding: int = 0) -> int | None:
    """Nodes the project may still add (negative: over), or None without quota."""
    limit = session.scalar(select(Project.max_nodes).where(Project.id == project_id))
    if limit is None:
        return None
    live = (
        session.scalar(
            select(func.count())
            .select_from(Node)
            .where(
                Node.project_id == project_id,
                Node.deleted_at.is_(None),
                Node.state != State.ERROR.value,
            )
        )
        or 0
    )
    return int(limit) - int(live) - adding


def decide(
    session: Session, filters: list[Filter], policy_name: str, request: PlacementRequest
) -> list[Placement]:
    """The placement and alternates; raises :class:`NoPlacement` with the reason."""
    left = quota_left(session, request.project_id)
    context = FilterContext(project_id=request.project_id, now=utcnow(), quota_left=left)
    if left is not None and left < 0:
        raise NoPlacement("the project's node quota is reached")
    placements = POLICIES[policy_name].place(
        session, candidates(filters, request.requirements, context), request
    )
    if not placements:
        raise NoPlacement(f"no offer matches the request ({request.requirements.describe()})")
    return placements


def plan_batch(
    session: Session, filters: list[Filter], policy_name: str, request: PlacementRequest, count: int
) -> list[list[Placement]]:
    """A dry run for ``count`` nodes: each decision sees the ones before it."""
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
