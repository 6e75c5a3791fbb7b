"""Project quotas: limits and usage that hold under any concurrency.

Usage lives in one ``project_quotas`` row per project. A change charges it
with one conditional ``UPDATE ... SET used_x = used_x + n WHERE used_x + n
<= max_x`` (for every resource at once) in the change's own transaction:
two requests can never both pass the last free unit, on PostgreSQL, MariaDB
or SQLite, and the check costs the same whatever the project's size.

Whatever holds a charge (a node, a container, a balancer) records
it in its ``charged`` column in the same transaction, and :func:`release`
gives back exactly that, once. A periodic :func:`reconcile` recomputes usage
from those records and logs whatever drifted (a crash between two steps).

Lock order, everywhere: the holder's row first, then the quota row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, true, update
from sqlalchemy.orm import Session

from services.common.db.models import Balancer, Container, Node, ProjectQuota, utcnow
from services.common.errors import ProjectQuotaExceeded

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resource:
    """A quota'd resource: ``max_<name>`` and ``used_<name>`` columns.

    Values are stored as integers: ``scale`` of them make one unit as shown
    (prices are micro-USD per hour).
    """

    name: str
    description: str
    scale: int = 1

    def stored(self, value: float) -> int:
        return round(value * self.scale)

    def shown(self, value: int | None) -> float | int | None:
        if value is None or self.scale == 1:
            return value
        return value / self.scale


RESOURCES: dict[str, Resource] = {
    resource.name: resource
    for resource in (
        Resource("nodes", "live nodes"),
        Resource("vcpus", "vCPUs of live nodes"),
        Resource("ram_mb", "MB of RAM of live nodes"),
        Resource("price_per_hour", "USD per hour of live nodes", scale=1_000_000),
        Resource("containers", "object-storage containers"),
        Resource("stored_bytes", "bytes of objects stored through Overcast"),
        Resource("balancers", "load balancers"),
    )
}

#: Every table whose rows hold charges (each has ``project_id`` and ``charged``).
HOLDERS: tuple[Any, ...] = (Node, Container, Balancer)


class Holder(Protocol):
    project_id: str
    charged: dict[str, Any]


def _max(name: str) -> Any:
    return getattr(ProjectQuota, f"max_{name}")


def _used(name: str) -> Any:
    return getattr(ProjectQuota, f"used_{name}")


def charge_of(placement: Mapping[str, Any]) -> dict[str, int]:
    """What a node placed there holds of its project's quota (stored units).

    Takes ``Placement.to_dict()`` (also as stored in a node's alternates)."""
    price = placement.get("price_per_hour")
    return {
        "vcpus": int(placement.get("vcpus") or 0),
        "ram_mb": int(placement.get("ram_mb") or 0),
        "price_per_hour": RESOURCES["price_per_hour"].stored(price or 0.0),
    }


def ensure(session: Session, project_id: str) -> None:
    """Create the project's quota row (no limits) if it has none."""
    if session.get(ProjectQuota, project_id) is None:
        session.add(ProjectQuota(project_id=project_id))
        session.flush()


def charge(
    session: Session, project_id: str, holders: Iterable[Holder], amounts: Mapping[str, int]
) -> None:
    """Charge ``amounts`` (stored units) for each holder, or raise
    :class:`ProjectQuotaExceeded` naming what would go over; all or nothing.

    A negative amount gives back (moving a charge to a smaller size) and is
    never refused, even above a limit lowered meanwhile."""
    holders = list(holders)
    record(holders, amounts)
    reserve(session, project_id, {name: amount * len(holders) for name, amount in amounts.items()})


def record(holders: Iterable[Holder], amounts: Mapping[str, int]) -> None:
    """Note on each holder that it holds ``amounts`` more (pair with :func:`reserve`)."""
    for holder in holders:
        held = dict(holder.charged or {})
        for name, amount in amounts.items():
            if amount:
                held[name] = held.get(name, 0) + amount
        holder.charged = held


def reserve(session: Session, project_id: str, totals: Mapping[str, int]) -> None:
    """Add ``totals`` to the project's usage with one conditional UPDATE, or raise
    :class:`ProjectQuotaExceeded`. The row stays locked until the transaction
    ends: call it as late in the transaction as possible."""
    totals = {name: total for name, total in totals.items() if total}
    if not totals:
        return
    conditions = [
        or_(_max(name).is_(None), _used(name) + total <= _max(name))
        for name, total in totals.items()
        if total > 0
    ]
    changed = session.execute(
        update(ProjectQuota)
        .where(ProjectQuota.project_id == project_id, and_(true(), *conditions))
        .values({f"used_{name}": _used(name) + total for name, total in totals.items()})
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        raise _exceeded(session, project_id, totals)


def _exceeded(session: Session, project_id: str, totals: Mapping[str, int]) -> Exception:
    row = session.get(ProjectQuota, project_id, populate_existing=True)
    if row is None:
        return RuntimeError(f"project {project_id} has no quota row")
    over = []
    for name, total in totals.items():
        limit = getattr(row, f"max_{name}")
        used = getattr(row, f"used_{name}")
        if limit is not None and total > 0 and used + total > limit:
            resource = RESOURCES[name]
            over.append(
                f"{name} (limit {resource.shown(limit)}, used {resource.shown(used)}, "
                f"asked {resource.shown(total)})"
            )
    return ProjectQuotaExceeded(
        "the project's quota would be exceeded: " + "; ".join(over or ["(changed meanwhile)"]),
        resources=[name for name in totals],
    )


def release(session: Session, holder: Holder) -> None:
    """Give back everything ``holder`` was charged; a second call does nothing."""
    held = {name: amount for name, amount in (holder.charged or {}).items() if amount}
    if not held:
        return
    session.execute(
        update(ProjectQuota)
        .where(ProjectQuota.project_id == holder.project_id)
        .values({f"used_{name}": _used(name) - amount for name, amount in held.items()})
        .execution_options(synchronize_session=False)
    )
    holder.charged = {}


def lock(session: Session, project_id: str) -> None:
    """Hold the project's quota row until the transaction ends, reading it anew
    (a no-op on SQLite, whose writers are serialized anyway)."""
    session.get(ProjectQuota, project_id, with_for_update=True, populate_existing=True)


def room(session: Session, project_id: str) -> dict[str, int | None]:
    """What the project may still add per resource (stored units; None: no limit)."""
    row = session.get(ProjectQuota, project_id)
    if row is None:
        return {name: None for name in RESOURCES}
    return {
        name: None
        if getattr(row, f"max_{name}") is None
        else getattr(row, f"max_{name}") - getattr(row, f"used_{name}")
        for name in RESOURCES
    }


def report(session: Session, project_id: str) -> dict[str, Any]:
    """Limits and usage as shown to users (``GET /v1/quota``)."""
    row = session.get(ProjectQuota, project_id)
    view: dict[str, Any] = {"project_id": project_id}
    for name, resource in RESOURCES.items():
        limit = getattr(row, f"max_{name}") if row else None
        used = getattr(row, f"used_{name}") if row else 0
        view[name] = {
            "limit": resource.shown(limit),
            "used": resource.shown(used),
            "description": resource.description,
        }
    view["reconciled_at"] = row.reconciled_at.isoformat() if row and row.reconciled_at else None
    return view


def set_limits(session: Session, project_id: str, limits: Mapping[str, float | None]) -> None:
    """Set the named limits (in shown units; None: no limit); others stay."""
    ensure(session, project_id)
    row = session.get(ProjectQuota, project_id)
    assert row is not None
    for name, value in limits.items():
        resource = RESOURCES[name]
        setattr(row, f"max_{name}", None if value is None else resource.stored(value))


def reconcile(session: Session, project_id: str) -> dict[str, tuple[int, int]]:
    """Make usage equal the charges its holders record; returns what was fixed
    as ``{resource: (was, now)}`` and logs it."""
    ensure(session, project_id)
    # Lock the quota row first (a write lock on SQLite), so that no charge
    # commits between the sums below and the update.
    session.execute(
        update(ProjectQuota)
        .where(ProjectQuota.project_id == project_id)
        .values(used_nodes=ProjectQuota.used_nodes)
        .execution_options(synchronize_session=False)
    )
    actual = dict.fromkeys(RESOURCES, 0)
    for table in HOLDERS:
        for held in session.scalars(select(table.charged).where(table.project_id == project_id)):
            for name, amount in (held or {}).items():
                if name in actual:
                    actual[name] += int(amount)
    row = session.get(ProjectQuota, project_id, populate_existing=True)
    assert row is not None
    fixed: dict[str, tuple[int, int]] = {}
    for name, amount in actual.items():
        was = getattr(row, f"used_{name}")
        if was != amount:
            fixed[name] = (was, amount)
            setattr(row, f"used_{name}", amount)
    row.reconciled_at = utcnow()
    if fixed:
        LOG.warning("project %s: quota usage drifted and was corrected: %s", project_id, fixed)
    return fixed


def projects_to_reconcile(session: Session) -> list[str]:
    return list(session.scalars(select(ProjectQuota.project_id)))
