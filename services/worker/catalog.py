"""The catalog of each account (locations, sizes with prices, images) in the DB.

The scheduler reads only this, never the providers. ``sync_catalog`` replaces
an account's catalog in one transaction; ``driver_values`` turns stored rows
back into the driver values ``create_node`` takes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from drivers import DriverType, pricing
from drivers.compute.base import NodeImage, NodeLocation, NodeSize
from drivers.errors import DriverError
from services.common.context import ServiceContext
from services.common.db.models import Account, Image, Location, Offer, utcnow
from services.common.db.session import refresh_statistics, session_scope
from services.common.errors import NotFound
from services.worker import prices
from services.worker.calls import call_provider

LOG = logging.getLogger(__name__)


#: Tables a sync rewrites, whose planner statistics it refreshes afterwards.
CATALOG_TABLES = ("accounts", "locations", "images", "offers")


@dataclass(frozen=True)
class Catalog:
    locations: list[dict[str, Any]]
    images: list[dict[str, Any]]
    offers: list[dict[str, Any]]


def fetch_catalog(context: ServiceContext, account: Account) -> Catalog:
    """Ask the provider for the account's whole catalog."""
    driver = context.drivers.for_account(account)
    settings = context.config.worker

    def call(function: Any, *args: Any) -> Any:
        return call_provider(
            function, *args, retries=settings.provider_retries, backoff=settings.provider_backoff
        )

    locations, images, offers = [], [], []
    for location in call(driver.list_locations):
        locations.append(
            {
                "account_id": account.id,
                "location_id": location.id,
                "name": location.name,
                "country": location.country.upper(),
                "region": location.region,
                "zone": location.zone,
                "data": {},
            }
        )
        for image in call(driver.list_images, location):
            images.append(
                {
                    "account_id": account.id,
                    "location_id": location.id,
                    "image_id": image.id,
                    "name": image.name,
                    "data": {},
                }
            )
        for size in call(driver.list_sizes, location):
            offers.append(
                {
                    "account_id": account.id,
                    "provider": account.provider,
                    "location_id": location.id,
                    "country": location.country.upper(),
                    "region": location.region,
                    "zone": location.zone,
                    "size_id": size.id,
                    "size_name": size.name,
                    "ram_mb": size.ram_mb,
                    "vcpus": size.vcpus,
                    "disk_gb": size.disk_gb,
                    "gpus": size.gpus,
                    **prices.offer_prices(driver.price_quote(size.id, location)),
                    "data": {},
                }
            )
    return Catalog(locations, images, offers)


def store_catalog(session: Session, account: Account, catalog: Catalog) -> None:
    for table in (Offer, Image, Location):
        session.execute(delete(table).where(table.account_id == account.id))
    for table, rows in (
        (Location, catalog.locations),
        (Image, catalog.images),
        (Offer, catalog.offers),
    ):
        if rows:
            session.execute(insert(table), rows)
    account.catalog_synced_at = utcnow()
    account.catalog_error = None
    account.price_date = pricing.default_store().updated


def sync_catalog(context: ServiceContext, account_id: str) -> None:
    """Refresh one account's catalog; a provider error is stored on the account."""
    with session_scope(context.sessions) as session:
        account = session.get(Account, account_id)
        if account is not None:
            prices.load_fetched(session, account.provider)
    if account is None or account.deleted_at is not None or not account.serves(DriverType.COMPUTE):
        return
    try:
        catalog = fetch_catalog(context, account)
    except DriverError as error:
        LOG.warning("catalog sync of account %s failed: %s", account_id, error)
        with session_scope(context.sessions) as session:
            stored = session.get(Account, account_id)
            if stored is not None:
                stored.catalog_error = str(error)
        return
    with session_scope(context.sessions) as session:
        stored = session.get(Account, account_id)
        if stored is not None and stored.deleted_at is None:
            store_catalog(session, stored, catalog)
    with session_scope(context.sessions) as session:
        refresh_statistics(session, *CATALOG_TABLES)
    LOG.info(
        "catalog of account %s synced: %d locations, %d offers, %d images",
        account_id,
        len(catalog.locations),
        len(catalog.offers),
        len(catalog.images),
    )


def driver_values(
    session: Session, account_id: str, location_id: str, size_id: str, image_id: str | None
) -> tuple[NodeSize, NodeImage, NodeLocation]:
    """The stored catalog entries as driver values; raises NotFound if gone."""
    location = session.scalars(
        select(Location).where(
            Location.account_id == account_id, Location.location_id == location_id
        )
    ).first()
    offer = session.scalars(
        select(Offer).where(
            Offer.account_id == account_id,
            Offer.location_id == location_id,
            Offer.size_id == size_id,
        )
    ).first()
    image = session.scalars(
        select(Image).where(
            Image.account_id == account_id,
            Image.location_id == location_id,
            Image.image_id == image_id,
        )
    ).first()
    if location is None or offer is None or image is None:
        raise NotFound(
            f"placement {account_id}/{location_id}/{size_id}/{image_id} is no longer in the catalog"
        )
    return (
        NodeSize(
            id=offer.size_id,
            name=offer.size_name,
            ram_mb=offer.ram_mb,
            vcpus=offer.vcpus,
            disk_gb=offer.disk_gb,
            gpus=offer.gpus,
            provider=offer.provider,
            price_per_hour=offer.price_per_hour,
        ),
        NodeImage(id=image.image_id, name=image.name, provider=offer.provider),
        NodeLocation(
            id=location.location_id,
            name=location.name,
            country=location.country,
            provider=offer.provider,
            region=location.region,
            zone=location.zone,
        ),
    )
