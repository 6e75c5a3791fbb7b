"""SQLAlchemy models: the whole persistent state of Overcast.

The schema only changes through the Alembic migrations in ``migrations/``;
a test checks that these models and the migrations agree.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from drivers import DriverType, account_driver

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: The ``offers.price_rank`` of an offer whose price is unknown: after every real price.
UNKNOWN_PRICE_RANK = 1e12


def price_rank(price: float | None) -> float:
    return UNKNOWN_PRICE_RANK if price is None else price


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class UTCDateTime(TypeDecorator[datetime.datetime]):
    """Aware UTC datetimes on every backend (stored naive, in UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        if value is None:
            return None
        return value.astimezone(datetime.UTC).replace(tzinfo=None)

    def process_result_value(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        return None if value is None else value.replace(tzinfo=datetime.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime.datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)


class ProjectQuota(Base):
    """A project's limits and usage: one row, so one conditional UPDATE charges
    every resource of a change at once (see ``services/common/quotas.py``).

    ``max_*`` is None for no limit. Prices are kept in micro-USD per hour, as
    integers, so sums never drift.
    """

    __tablename__ = "project_quotas"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    max_nodes: Mapped[int | None] = mapped_column(BigInteger)
    used_nodes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    max_vcpus: Mapped[int | None] = mapped_column(BigInteger)
    used_vcpus: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    max_ram_mb: Mapped[int | None] = mapped_column(BigInteger)
    used_ram_mb: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    max_price_per_hour: Mapped[int | None] = mapped_column(BigInteger)
    used_price_per_hour: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    max_containers: Mapped[int | None] = mapped_column(BigInteger)
    used_containers: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    max_stored_bytes: Mapped[int | None] = mapped_column(BigInteger)
    used_stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    max_balancers: Mapped[int | None] = mapped_column(BigInteger)
    used_balancers: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    reconciled_at: Mapped[datetime.datetime | None]


class ApiKey(Base):
    """An API key, stored as the SHA-256 of the key (keys are random, 256 bits).

    ``prefix`` (the key's first characters) is all that is ever shown again.
    """

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime.datetime | None]
    last_used_at: Mapped[datetime.datetime | None]
    revoked_at: Mapped[datetime.datetime | None]


class Account(Base):
    """A provider account; ``credentials`` is Fernet ciphertext, never returned."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    credentials: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: The kinds it serves ("compute", "storage"); None: all its provider offers.
    services: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime.datetime | None]
    catalog_synced_at: Mapped[datetime.datetime | None]
    catalog_error: Mapped[str | None] = mapped_column(Text)
    price_date: Mapped[datetime.date | None] = mapped_column(Date)
    #: Circuit breaker: failed provider calls in a row, and when placement may try again.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cooldown_until: Mapped[datetime.datetime | None]

    def serves(self, kind: DriverType) -> bool:
        """Whether it serves ``kind``: its provider offers it, and the account
        did not leave it out of ``services``."""
        if account_driver(self.provider, kind) is None:
            return False
        return self.services is None or kind.value in self.services


class Location(Base):
    __tablename__ = "locations"
    __table_args__ = (UniqueConstraint("account_id", "location_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    location_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(255))
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(128))
    zone: Mapped[str | None] = mapped_column(String(128))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Image(Base):
    """An image available at one location of an account."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("account_id", "location_id", "image_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    location_id: Mapped[str] = mapped_column(String(128))
    image_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Offer(Base):
    """One (account, location, size) with its price: what the scheduler ranks.

    Denormalized on purpose: a placement decision is one walk of
    ``ix_offers_rank`` in ranking order that stops as soon as enough offers
    passed the filters. ``price_rank`` is the price, or
    :data:`UNKNOWN_PRICE_RANK` when unknown, so unknown prices rank last on
    every backend without a NULLS LAST sort.
    """

    __tablename__ = "offers"
    __table_args__ = (
        UniqueConstraint("account_id", "location_id", "size_id"),
        Index(
            "ix_offers_rank",
            "price_rank",
            "ram_mb",
            "vcpus",
            "account_id",
            "location_id",
            "size_id",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(128))
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(128))
    zone: Mapped[str | None] = mapped_column(String(128))
    size_id: Mapped[str] = mapped_column(String(128))
    size_name: Mapped[str] = mapped_column(String(255))
    ram_mb: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    price_per_hour: Mapped[float | None] = mapped_column(Float)
    price_rank: Mapped[float] = mapped_column(Float, server_default="1e12")
    #: Where the price came from (bundled, fetched, override) and as of when.
    price_source: Mapped[str | None] = mapped_column(String(16))
    price_as_of: Mapped[datetime.datetime | None]
    #: The fetched spot / preemptible price, never used for placement.
    spot_price_per_hour: Mapped[float | None] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Node(Base):
    """A node as Overcast knows it. ``version`` guards every update (optimistic lock)."""

    __tablename__ = "nodes"
    __table_args__ = (
        Index("ix_nodes_project_created", "project_id", "created_at", "id"),
        Index("ix_nodes_account_awaiting", "account_id", "awaiting_provider"),
        Index("ix_nodes_project_group", "project_id", "group_name"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    task: Mapped[str | None] = mapped_column(String(16))
    #: The provider was asked to act for the current task; the poller watches it.
    awaiting_provider: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    operation_id: Mapped[str | None] = mapped_column(String(40))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    provider: Mapped[str | None] = mapped_column(String(64))
    location_id: Mapped[str | None] = mapped_column(String(128))
    zone: Mapped[str | None] = mapped_column(String(128))
    group_name: Mapped[str | None] = mapped_column(String(255))
    size_id: Mapped[str | None] = mapped_column(String(128))
    image_id: Mapped[str | None] = mapped_column(String(255))
    price_per_hour: Mapped[float | None] = mapped_column(Float)
    price_source: Mapped[str | None] = mapped_column(String(16))
    price_as_of: Mapped[datetime.datetime | None]
    vcpus: Mapped[int | None] = mapped_column(Integer)
    ram_mb: Mapped[int | None] = mapped_column(Integer)
    #: What the node holds of its project's quota (released exactly once).
    charged: Mapped[dict[str, Any]] = mapped_column(default=dict)
    alternates: Mapped[list[Any]] = mapped_column(default=list)
    provider_node_id: Mapped[str | None] = mapped_column(String(255))
    public_ips: Mapped[list[Any]] = mapped_column(default=list)
    private_ips: Mapped[list[Any]] = mapped_column(default=list)
    ssh_port: Mapped[int | None] = mapped_column(Integer)
    ssh_private_key: Mapped[str | None] = mapped_column(Text)
    host_key: Mapped[str | None] = mapped_column(Text)
    deployment_status: Mapped[str | None] = mapped_column(String(16))
    deployment_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    task_started_at: Mapped[datetime.datetime | None]
    deleted_at: Mapped[datetime.datetime | None]

    __mapper_args__ = {"version_id_col": version}

    # What a node's answer shows of its JSON columns; a list reads the same
    # from SQL (:data:`services.api.views.NODE_VIEW_COLUMNS`) without decoding them.
    @property
    def ssh_username(self) -> str | None:
        username: str | None = (self.spec.get("deploy") or {}).get("ssh_username")
        return username

    @property
    def deploys(self) -> bool:
        return self.spec.get("deploy") is not None

    @property
    def alternate_count(self) -> int:
        return len(self.alternates or [])


class Container(Base):
    """An object-storage container (bucket) a project keeps at one account.

    ``name`` is the project's name for it (unique per project among live
    ones); ``provider_name`` is the provider's. Objects are not rows: they
    live at the provider; their bytes count in ``charged["stored_bytes"]``.
    """

    __tablename__ = "containers"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        Index("ix_containers_project_created", "project_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    provider: Mapped[str] = mapped_column(String(64))
    provider_name: Mapped[str] = mapped_column(String(255))
    location: Mapped[str | None] = mapped_column(String(128))
    #: "available", or "deleting" once a delete began (it always wins).
    state: Mapped[str] = mapped_column(String(16))
    operation_id: Mapped[str | None] = mapped_column(String(40))
    #: What it holds of its project's quota (released exactly once).
    charged: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime.datetime | None]


class Balancer(Base):
    """A load balancer a project keeps at one account.

    ``name`` is the project's (unique per project among live ones);
    ``provider_name`` is what it is called at the provider, derived from the
    id so that a repeated create finds the first; ``provider_id`` is the
    provider's id once it exists there.
    """

    __tablename__ = "balancers"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        Index("ix_balancers_project_created", "project_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    provider: Mapped[str] = mapped_column(String(64))
    provider_name: Mapped[str] = mapped_column(String(64))
    provider_id: Mapped[str | None] = mapped_column(String(255))
    location: Mapped[str | None] = mapped_column(String(128))
    port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(16))
    algorithm: Mapped[str] = mapped_column(String(32))
    health_check: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ip: Mapped[str | None] = mapped_column(String(255))
    #: "building", "available", "error", or "deleting" once a delete began.
    state: Mapped[str] = mapped_column(String(16))
    operation_id: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    #: What it holds of its project's quota (released exactly once).
    charged: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime.datetime | None]


class BalancerMember(Base):
    """A member of a balancer: one of the project's nodes (``node_id``, with
    the port it serves on) or an address."""

    __tablename__ = "balancer_members"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    balancer_id: Mapped[str] = mapped_column(
        ForeignKey("balancers.id", ondelete="CASCADE"), index=True
    )
    node_id: Mapped[str | None] = mapped_column(String(40), index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    port: Mapped[int | None] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    provider_member_id: Mapped[str | None] = mapped_column(String(255))
    #: "attaching", "attached", or "detaching" (a detach always wins).
    state: Mapped[str] = mapped_column(String(16))
    #: What the balancer's checks saw last ("up", "down", ...; "unknown" before any).
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    operation_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)


class Operation(Base):
    """One accepted request and what became of it."""

    __tablename__ = "operations"
    __table_args__ = (
        UniqueConstraint("project_id", "idempotency_key"),
        Index("ix_operations_project_created", "project_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    node_id: Mapped[str | None] = mapped_column(String(40), index=True)
    #: The resource it acts on when that is not a node (a container).
    resource_id: Mapped[str | None] = mapped_column(String(40), index=True)
    action: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OperationEvent(Base):
    __tablename__ = "operation_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    operation_id: Mapped[str] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Outbox(Base):
    """Messages committed with the state they announce, published after commit.

    The publisher deletes a row once the broker confirmed it; a sweeper
    republishes rows left behind by a crash between commit and publish.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    queue: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow, index=True)


class Service(Base):
    """A running API, scheduler or worker process and its last heartbeat."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("kind", "host", "pid"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)


class SchedulerCursor(Base):
    """A counter shared by all scheduler processes (round-robin position,
    and the row locked to serialize placements of one zone-aware group)."""

    __tablename__ = "scheduler_cursors"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)


class Price(Base):
    """One price a provider's price API gave (the last good refresh's)."""

    __tablename__ = "prices"
    __table_args__ = (UniqueConstraint("provider", "size", "region", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(128))
    size: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    price: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(255))
    fetched_at: Mapped[datetime.datetime] = mapped_column()


class PriceRefresh(Base):
    """How refreshing one provider's prices went: the last success, the last
    attempt, and failures (in a row and in all)."""

    __tablename__ = "price_refreshes"

    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    refreshed_at: Mapped[datetime.datetime | None]
    attempted_at: Mapped[datetime.datetime | None]
    prices: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)


class Lease(Base):
    """A named, expiring claim (e.g. "poll:<account>") held by one process."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime.datetime] = mapped_column()
    last_run_at: Mapped[datetime.datetime | None]


class AuditRecord(Base):
    """One mutating API call: who, what, when, and how it ended. No bodies, no secrets."""

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_records_project_created", "project_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow, index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(40))
    role: Mapped[str | None] = mapped_column(String(16))
    #: The caller's project (the resource's may differ for an operator).
    project_id: Mapped[str | None] = mapped_column(String(40))
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
