"""Balancers as the service keeps them: the rules the API and the workers share.

A balancer is a row placed at one account of its project; its members are
rows too: a node of the project with the port it serves on, or an address.
At the provider the balancer is called ``provider_name``, derived from its
id, so that a create that runs twice finds the first one. Deletes always win:
a balancer or member being deleted answers 404 from then on, and a create or
attach still in flight undoes what it made when it sees that.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from drivers import DriverType, account_driver
from drivers.loadbalancer.base import LoadBalancerDriver
from services.common import quotas
from services.common.context import ServiceContext
from services.common.db.models import Account, Balancer, BalancerMember, utcnow
from services.common.errors import Conflict, InvalidInput, NotFound

BUILDING = "building"
AVAILABLE = "available"
ERROR = "error"
DELETING = "deleting"
DELETED = "deleted"

ATTACHING = "attaching"
ATTACHED = "attached"
DETACHING = "detaching"


def provider_name_of(balancer_id: str) -> str:
    """The balancer's name at the provider: 27 of [a-z0-9-], within every
    provider's limit (ELB's is 32)."""
    return "oc-" + balancer_id.split("-", 1)[-1][:24]


def country_of(account: Account) -> str | None:
    """Where an account's balancers run: its ``loadbalancer`` options'
    ``country``, else its own."""
    options = account.options or {}
    country = (options.get("loadbalancer") or {}).get("country") or options.get("country")
    return str(country).upper() if country else None


def place(
    session: Session,
    project_id: str,
    *,
    account_id: str | None = None,
    providers: list[str] | None = None,
    accounts: list[str] | None = None,
    countries: list[str] | None = None,
) -> Account:
    """The account a new balancer goes to: the one it is pinned to, or the
    first (by name) of the project's accounts serving balancers that meets
    every requirement; 400 naming the requirements when none does."""
    query = select(Account).where(Account.project_id == project_id, Account.deleted_at.is_(None))
    if account_id is not None:
        account = session.scalars(query.where(Account.id == account_id)).first()
        if account is None:
            raise NotFound(f"account {account_id} not found")
        if not account.serves(DriverType.LOADBALANCER):
            raise InvalidInput(
                f"account_id: account {account.name} serves no load balancers", field="account_id"
            )
        return account
    wanted = {country.upper() for country in countries or ()}
    for account in session.scalars(query.order_by(Account.name)):
        if not account.serves(DriverType.LOADBALANCER):
            continue
        driver_name = account_driver(account.provider, DriverType.LOADBALANCER)
        if providers and not {account.provider, driver_name} & set(providers):
            continue
        if accounts and account.name not in accounts:
            continue
        if wanted and country_of(account) not in wanted:
            continue
        return account
    requirements = {"providers": providers, "accounts": accounts, "countries": wanted}
    asked = [f"{name} {', '.join(values)}" for name, values in requirements.items() if values]
    raise InvalidInput(
        "no account of the project serves load balancers"
        + (f" with {'; '.join(asked)}" if asked else "")
    )


def account_of(session: Session, balancer: Balancer) -> Account:
    """The balancer's live account (409 once it was deleted)."""
    account = session.get(Account, balancer.account_id) if balancer.account_id else None
    if account is None or account.deleted_at is not None:
        raise Conflict(f"balancer {balancer.name}: its account was deleted")
    return account


def driver_or_none(
    context: ServiceContext, session: Session, balancer: Balancer
) -> LoadBalancerDriver | None:
    """The balancer's driver, or None once its account is gone (a delete then
    has nothing left to remove at the provider)."""
    try:
        return context.drivers.balancer_for(account_of(session, balancer))
    except Conflict:
        return None


def live(session: Session, balancer_id: str, *, lock: bool = False) -> Balancer:
    """The balancer unless it is deleted or being deleted (then 404: the delete wins)."""
    balancer = session.get(Balancer, balancer_id, with_for_update=lock, populate_existing=lock)
    if balancer is None or balancer.deleted_at is not None or balancer.state == DELETING:
        raise NotFound(f"balancer {balancer_id} not found")
    return balancer


def available(session: Session, balancer_id: str, *, lock: bool = False) -> Balancer:
    """The live balancer, which must exist at its provider (409 while it is built)."""
    balancer = live(session, balancer_id, lock=lock)
    if balancer.state != AVAILABLE:
        raise Conflict(f"balancer {balancer.name} is {balancer.state}, not available")
    return balancer


def members_of(session: Session, balancer_id: str) -> list[BalancerMember]:
    return list(
        session.scalars(
            select(BalancerMember)
            .where(BalancerMember.balancer_id == balancer_id)
            .order_by(BalancerMember.created_at, BalancerMember.id)
        )
    )


def finish_delete(session: Session, balancer: Balancer) -> None:
    """Mark the balancer deleted, free its name, forget its members and give
    back its quota."""
    balancer.state = DELETED
    balancer.deleted_at = utcnow()
    balancer.name = f"{balancer.name}~deleted~{balancer.id}"[:255]
    session.execute(delete(BalancerMember).where(BalancerMember.balancer_id == balancer.id))
    quotas.release(session, balancer)
