"""``/v1/locations``, ``/v1/sizes``, ``/v1/images``, ``/v1/offers``: the synced catalog."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Select, select

from services.api.app import ApiRequest, Reply
from services.common.db.models import Account, Image, Location, Offer, utcnow
from services.common.db.session import session_scope
from services.common.errors import InvalidInput
from services.scheduler import filters as scheduler_filters
from services.scheduler.filters import FilterContext
from services.scheduler.filters.image import image_matches
from services.scheduler.offers import CHEAPEST_ORDER, candidates
from services.scheduler.requirements import Requirements


def _scoped(request: ApiRequest, query: Select[Any], model: Any) -> Select[Any]:
    query = query.join(Account, Account.id == model.account_id).where(
        Account.deleted_at.is_(None), Account.project_id == request.project_id
    )
    account = request.raw.GET.get("account_id")
    if account:
        query = query.where(model.account_id == account)
    location = request.raw.GET.get("location_id")
    if location:
        query = query.where(model.location_id == location)
    return query


def _limit(request: ApiRequest) -> int:
    api = request.context.config.api
    return request.query_int("limit", api.max_limit, minimum=1, maximum=api.max_limit)


def locations(request: ApiRequest) -> Reply:
    query = _scoped(request, select(Location), Location).order_by(
        Location.account_id, Location.location_id
    )
    country = request.raw.GET.get("country")
    if country:
        query = query.where(Location.country == country.upper())
    with session_scope(request.context.sessions) as session:
        rows = session.scalars(query.limit(_limit(request))).all()
        return Reply(
            200,
            {
                "locations": [
                    {
                        "account_id": r.account_id,
                        "id": r.location_id,
                        "name": r.name,
                        "country": r.country,
                        "region": r.region,
                        "zone": r.zone,
                    }
                    for r in rows
                ]
            },
        )


def sizes(request: ApiRequest) -> Reply:
    query = (
        _scoped(request, select(Offer), Offer)
        .where(
            Offer.ram_mb >= request.query_int("min_ram_mb", 0),
            Offer.vcpus >= request.query_int("min_vcpus", 0),
        )
        .order_by(Offer.account_id, Offer.size_id, Offer.location_id)
    )
    with session_scope(request.context.sessions) as session:
        rows = session.scalars(query.limit(_limit(request))).all()
        stale_before = utcnow() - stale_after(request)
        return Reply(200, {"sizes": [offer_view(r, stale_before) for r in rows]})


def images(request: ApiRequest) -> Reply:
    query = _scoped(request, select(Image), Image).order_by(
        Image.account_id, Image.location_id, Image.image_id
    )
    name = request.raw.GET.get("name")
    if name:
        query = query.where(image_matches(name))
    with session_scope(request.context.sessions) as session:
        rows = session.scalars(query.limit(_limit(request))).all()
        return Reply(
            200,
            {
                "images": [
                    {
                        "account_id": r.account_id,
                        "location_id": r.location_id,
                        "id": r.image_id,
                        "name": r.name,
                    }
                    for r in rows
                ]
            },
        )


def offer_view(offer: Offer, stale_before: datetime.datetime) -> dict[str, Any]:
    """An offer; its price is stale when known as of before ``stale_before``
    (or of unknown age)."""
    return {
        "account_id": offer.account_id,
        "provider": offer.provider,
        "location_id": offer.location_id,
        "country": offer.country,
        "region": offer.region,
        "zone": offer.zone,
        "size_id": offer.size_id,
        "size_name": offer.size_name,
        "ram_mb": offer.ram_mb,
        "vcpus": offer.vcpus,
        "disk_gb": offer.disk_gb,
        "gpus": offer.gpus,
        "price_per_hour": offer.price_per_hour,
        "price_known": offer.price_per_hour is not None,
        "price_source": offer.price_source,
        "price_as_of": offer.price_as_of.isoformat() if offer.price_as_of else None,
        "price_stale": offer.price_as_of is None or offer.price_as_of < stale_before,
        "spot_price_per_hour": offer.spot_price_per_hour,
    }


#: Query parameters of /v1/offers: integers, then lists (comma-separated or repeated).
INTEGER_PARAMETERS = (
    "min_ram_mb",
    "max_ram_mb",
    "min_vcpus",
    "max_vcpus",
    "min_disk_gb",
    "min_gpus",
    "max_gpus",
)
LIST_PARAMETERS = {
    "country": "countries",
    "exclude_country": "exclude_countries",
    "region": "regions",
    "exclude_region": "exclude_regions",
    "zone": "zones",
    "exclude_zone": "exclude_zones",
    "provider": "providers",
    "exclude_provider": "exclude_providers",
    "account": "accounts",
    "exclude_account": "exclude_accounts",
}
OFFER_PARAMETERS = (
    *INTEGER_PARAMETERS,
    *LIST_PARAMETERS,
    "image",
    "max_price",
    "skip_stale_prices",
    "sort",
    "limit",
)


def requirements_from_query(request: ApiRequest) -> Requirements:
    spec: dict[str, Any] = {
        name: request.query_int(name, 0) for name in INTEGER_PARAMETERS if request.raw.GET.get(name)
    }
    for parameter, field in LIST_PARAMETERS.items():
        spec[field] = request.query_list(parameter)
    spec["image"] = request.raw.GET.get("image") or None
    spec["max_price"] = request.query_float("max_price")
    spec["skip_stale_prices"] = request.query_bool("skip_stale_prices")
    return Requirements.from_spec(spec, stale_after=stale_after(request))


def stale_after(request: ApiRequest) -> datetime.timedelta:
    return datetime.timedelta(days=request.context.config.pricing.stale_after)


#: What an offer listing filters on (health and quota are about placing, not listing).
OFFER_FILTERS = ("resources", "image", "geography", "providers", "price")


def offers(request: ApiRequest) -> Reply:
    """Offers matching the query, cheapest first (unknown prices last)."""
    sort = request.raw.GET.get("sort", "price")
    if sort not in ("price", "ram", "vcpus"):
        raise InvalidInput("sort: must be one of price, ram, vcpus", field="sort")
    filters = scheduler_filters.enabled(OFFER_FILTERS)
    context = FilterContext(project_id=request.project_id, now=utcnow())
    query = candidates(filters, requirements_from_query(request), context)
    if sort == "price":
        query = query.order_by(*CHEAPEST_ORDER)
    else:
        column = Offer.ram_mb if sort == "ram" else Offer.vcpus
        query = query.order_by(column.asc(), *CHEAPEST_ORDER)
    limit = request.query_int("limit", 20, minimum=1, maximum=request.context.config.api.max_limit)
    with session_scope(request.context.sessions) as session:
        rows = session.scalars(query.limit(limit)).all()
        stale_before = utcnow() - stale_after(request)
        return Reply(200, {"offers": [offer_view(r, stale_before) for r in rows]})
