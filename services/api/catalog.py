"""``/v1/locations``, ``/v1/sizes``, ``/v1/images``, ``/v1/offers``: the synced catalog."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from services.api.app import ApiRequest, Reply
from services.common.db.models import Account, Image, Location, Offer
from services.common.db.session import session_scope
from services.common.errors import InvalidInput
from services.scheduler.offers import CHEAPEST_ORDER, Requirements, image_matches, offers_query


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
        return Reply(200, {"sizes": [offer_view(r) for r in rows]})


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


def offer_view(offer: Offer) -> dict[str, Any]:
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
    }


def requirements_from_query(request: ApiRequest) -> Requirements:
    return Requirements.from_spec(
        {
            "min_ram_mb": request.query_int("min_ram_mb", 0),
            "min_vcpus": request.query_int("min_vcpus", 0),
            "min_disk_gb": request.query_int("min_disk_gb", 0),
            "min_gpus": request.query_int("min_gpus", 0),
            "image": request.raw.GET.get("image") or None,
            "countries": request.query_list("country"),
            "exclude_countries": request.query_list("exclude_country"),
            "providers": request.query_list("provider"),
            "accounts": request.query_list("account"),
            "max_price": request.query_float("max_price"),
        }
    )


def offers(request: ApiRequest) -> Reply:
    """Offers matching the query, cheapest first (unknown prices last)."""
    sort = request.raw.GET.get("sort", "price")
    if sort not in ("price", "ram", "vcpus"):
        raise InvalidInput("sort: must be one of price, ram, vcpus", field="sort")
    query = offers_query(request.project_id, requirements_from_query(request))
    if sort != "price":
        column = Offer.ram_mb if sort == "ram" else Offer.vcpus
        query = query.order_by(None).order_by(column.asc(), *CHEAPEST_ORDER)
    limit = request.query_int("limit", 20, minimum=1, maximum=request.context.config.api.max_limit)
    with session_scope(request.context.sessions) as session:
        rows = session.scalars(query.limit(limit)).all()
        return Reply(200, {"offers": [offer_view(r) for r in rows]})
