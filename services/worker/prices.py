"""Current prices: fetched from the providers' price APIs, kept in the
database, applied to the offers.

A refresh of one provider fetches every price (all pages), then in one
transaction replaces the provider's rows in ``prices``, records the refresh
and re-prices that provider's offers from the merged price data (overrides,
fetched, bundled) -- no catalog sync, no provider call besides the price
API. A failed fetch changes no price: it is logged and counted in
``price_refreshes``. Other processes pick the fetched prices up from the
database (:func:`load_fetched`) before they price a catalog.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from drivers import DriverType, pricing
from drivers.compute.base import NodeLocation
from drivers.errors import DriverError
from drivers.pricing import FetchedPrice
from services.common import leases
from services.common.context import ServiceContext
from services.common.db.models import Account, Offer, Price, PriceRefresh, price_rank, utcnow
from services.common.db.session import session_scope

LOG = logging.getLogger(__name__)

Fetcher = Callable[[ServiceContext], list[FetchedPrice]]


def _ec2(context: ServiceContext) -> list[FetchedPrice]:
    from drivers.compute.ec2 import prices

    with session_scope(context.sessions) as session:
        account = session.scalars(
            select(Account)
            .where(Account.provider == "ec2", Account.deleted_at.is_(None))
            .order_by(Account.name)
            .limit(1)
        ).first()
        sealed = account.credentials if account is not None else None
    if sealed is None:
        raise RefreshRefused("the AWS price API is signed with an ec2 account's keys; add one")
    keys = context.cipher.decrypt(sealed)
    return prices.fetch_prices(
        keys["key"],
        keys["secret"],
        token=keys.get("token"),
        endpoint=context.config.pricing.ec2_endpoint or prices.DEFAULT_ENDPOINT,
    )


def _azure(context: ServiceContext) -> list[FetchedPrice]:
    from drivers.compute.azure import prices

    return prices.fetch_prices(context.config.pricing.azure_endpoint or prices.DEFAULT_ENDPOINT)


def _gce(context: ServiceContext) -> list[FetchedPrice]:
    from drivers.compute.gce import prices

    settings = context.config.pricing
    return prices.fetch_prices(
        settings.gce_endpoint or prices.DEFAULT_ENDPOINT, api_key=settings.gce_api_key or None
    )


#: The providers whose prices can be fetched, and how.
FETCHERS: dict[str, Fetcher] = {"ec2": _ec2, "azure": _azure, "gce": _gce}

#: Providers with no price API: their prices are the operator's overrides.
OVERRIDE_ONLY = ("openstack", "libvirt")


class RefreshRefused(Exception):
    """A refresh that cannot run as configured (the message says why)."""


@dataclass(frozen=True)
class Move:
    """One price that changed: (size, region) from ``old`` to ``new``."""

    size: str
    region: str
    old: float
    new: float

    @property
    def ratio(self) -> float:
        return self.new / self.old if self.old else float("inf")


@dataclass(frozen=True)
class RefreshResult:
    provider: str
    error: str | None = None
    prices: int = 0
    added: int = 0
    removed: int = 0
    changed: int = 0
    offers_repriced: int = 0
    #: The largest moves, by how far the price moved relatively.
    largest_moves: list[Move] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def refresh(context: ServiceContext, provider: str, *, moves: int = 5) -> RefreshResult:
    """Fetch ``provider``'s prices and apply them; a failure keeps the old ones."""
    fetch = FETCHERS.get(provider)
    if fetch is None:
        raise RefreshRefused(
            f"no price API for {provider}: "
            + ("its prices are operator overrides" if provider in OVERRIDE_ONLY else "unknown")
        )
    try:
        fetched = fetch(context)
    except (DriverError, RefreshRefused, requests.RequestException, KeyError) as error:
        LOG.warning("price refresh of %s failed; the last good prices stay: %s", provider, error)
        with session_scope(context.sessions) as session:
            _record(session, provider, error=str(error))
        return RefreshResult(provider, error=str(error))
    latest = _latest(fetched)
    with session_scope(context.sessions) as session:
        before = {
            (row.size, row.region): row.price
            for row in session.execute(
                select(Price.size, Price.region, Price.price).where(
                    Price.provider == provider, Price.kind == "on_demand"
                )
            )
        }
        session.execute(delete(Price).where(Price.provider == provider))
        if latest:
            session.execute(insert(Price), [_row(price) for price in latest])
        refreshed_at = _record(session, provider, prices=len(latest))
        _install(provider, latest, refreshed_at)
        repriced = reprice(context, session, provider)
    after = {(p.size, p.region): p.price for p in latest if p.kind == "on_demand"}
    changes = [
        Move(size, region, before[size, region], price)
        for (size, region), price in after.items()
        if (size, region) in before and before[size, region] != price
    ]
    changes.sort(key=lambda move: abs(move.ratio - 1), reverse=True)
    LOG.info("prices of %s refreshed: %d prices, %d changed", provider, len(latest), len(changes))
    return RefreshResult(
        provider,
        prices=len(latest),
        added=len(after.keys() - before.keys()),
        removed=len(before.keys() - after.keys()),
        changed=len(changes),
        offers_repriced=repriced,
        largest_moves=changes[:moves],
    )


def _latest(fetched: Iterable[FetchedPrice]) -> list[FetchedPrice]:
    """One price per (size, region, kind): a provider listing one twice
    (several meters) is billed the lowest."""
    kept: dict[tuple[str, str, str], FetchedPrice] = {}
    for price in fetched:
        key = (price.size, price.region, price.kind)
        if key not in kept or price.price < kept[key].price:
            kept[key] = price
    return list(kept.values())


def _row(price: FetchedPrice) -> dict[str, Any]:
    return {
        "provider": price.provider,
        "region": price.region,
        "size": price.size,
        "kind": price.kind,
        "price": price.price,
        "currency": price.currency,
        "source": price.source[:255],
        "fetched_at": price.fetched_at,
    }


def _record(
    session: Session, provider: str, *, prices: int = 0, error: str | None = None
) -> datetime.datetime:
    now = utcnow()
    row = session.get(PriceRefresh, provider, with_for_update=True)
    if row is None:
        row = PriceRefresh(provider=provider, prices=0, consecutive_failures=0, failures=0)
        session.add(row)
    row.attempted_at = now
    if error is None:
        row.refreshed_at = now
        row.prices = prices
        row.consecutive_failures = 0
        row.last_error = None
    else:
        row.consecutive_failures += 1
        row.failures += 1
        row.last_error = error[:2000]
    return now


# -- the fetched layer of this process's price data ---------------------------


def _install(
    provider: str, prices: Iterable[FetchedPrice], refreshed_at: datetime.datetime | None
) -> None:
    pricing.default_store().set_fetched(provider, prices, version=refreshed_at)


def load_fetched(session: Session, provider: str) -> None:
    """Make this process price ``provider`` with the fetched prices in the
    database (read again only when a refresh happened since)."""
    refreshed_at = session.scalar(
        select(PriceRefresh.refreshed_at).where(PriceRefresh.provider == provider)
    )
    if pricing.default_store().fetched_version(provider) == refreshed_at:
        return
    rows = session.scalars(select(Price).where(Price.provider == provider)).all()
    _install(
        provider,
        [
            FetchedPrice(
                provider=row.provider,
                region=row.region,
                size=row.size,
                price=row.price,
                currency=row.currency,
                kind=row.kind,
                source=row.source,
                fetched_at=row.fetched_at,
            )
            for row in rows
        ],
        refreshed_at,
    )


# -- offers -------------------------------------------------------------------


def offer_prices(quote: pricing.Quote) -> dict[str, Any]:
    """An offer's price columns from a quote."""
    return {
        "price_per_hour": quote.price,
        "price_rank": price_rank(quote.price),
        "price_source": quote.source,
        "price_as_of": quote.as_of,
        "spot_price_per_hour": quote.spot_price,
    }


def reprice(context: ServiceContext, session: Session, provider: str) -> int:
    """Re-price every offer of ``provider``'s accounts from the price data in
    use; returns how many offers changed."""
    changed = 0
    accounts = session.scalars(
        select(Account).where(Account.provider == provider, Account.deleted_at.is_(None))
    ).all()
    for account in accounts:
        if not account.serves(DriverType.COMPUTE):
            continue
        try:
            driver = context.drivers.for_account(account)
        except DriverError as error:
            LOG.warning("offers of account %s not re-priced: %s", account.id, error)
            continue
        updates = []
        for offer in session.execute(
            select(
                Offer.id,
                Offer.location_id,
                Offer.country,
                Offer.region,
                Offer.zone,
                Offer.size_id,
                Offer.price_per_hour,
                Offer.price_source,
                Offer.price_as_of,
                Offer.spot_price_per_hour,
            ).where(Offer.account_id == account.id)
        ):
            location = NodeLocation(
                id=offer.location_id,
                name=offer.location_id,
                country=offer.country,
                provider=provider,
                region=offer.region,
                zone=offer.zone,
            )
            columns = offer_prices(driver.price_quote(offer.size_id, location))
            current = (
                offer.price_per_hour,
                offer.price_source,
                offer.price_as_of,
                offer.spot_price_per_hour,
            )
            wanted = (
                columns["price_per_hour"],
                columns["price_source"],
                columns["price_as_of"],
                columns["spot_price_per_hour"],
            )
            if current != wanted:
                updates.append({"id": offer.id, **columns})
        if updates:
            session.execute(update(Offer), updates)
            changed += len(updates)
    return changed


# -- periodic -----------------------------------------------------------------


def providers_in_use(session: Session) -> list[str]:
    """Providers with a price API that some live account uses."""
    rows = session.scalars(
        select(Account.provider)
        .where(Account.deleted_at.is_(None), Account.provider.in_(FETCHERS))
        .group_by(Account.provider)
        .order_by(Account.provider)
    )
    return list(rows)


def refresh_due(context: ServiceContext) -> list[RefreshResult]:
    """The periodic refresh: every provider in use, by one worker per interval."""
    interval = context.config.pricing.refresh_interval
    if interval <= 0:
        return []
    with session_scope(context.sessions) as session:
        providers = providers_in_use(session)
    results = []
    for provider in providers:
        if leases.acquire(context.sessions, f"prices:{provider}", context.identity, interval):
            results.append(refresh(context, provider))
    return results


def refreshes(session: Session) -> list[PriceRefresh]:
    """How each provider's refreshes went, by provider."""
    return list(session.scalars(select(PriceRefresh).order_by(PriceRefresh.provider)))


def fetched_count(session: Session, provider: str) -> int:
    return int(
        session.scalar(select(func.count()).select_from(Price).where(Price.provider == provider))
        or 0
    )
