"""Properties of placement over random catalogs (hypothesis).

The Python predicate of every filter is its specification: the SQL the
scheduler runs must select exactly the offers that pass all of them, and
``cheapest`` must agree with a brute-force minimum.
"""

from __future__ import annotations

import datetime
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from services.common.config import DatabaseSection
from services.common.db.models import Account, Base, Image, Offer, Project, price_rank
from services.common.db.session import make_engine, make_session_factory, session_scope
from services.scheduler import filters as scheduler_filters
from services.scheduler.filters import FilterContext, QuotaRoom
from services.scheduler.offers import candidates
from services.scheduler.policies import PlacementRequest
from services.scheduler.policies.cheapest import Cheapest
from services.scheduler.requirements import OfferData, Requirements

NOW = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.UTC)
LOCATIONS = [  # (id, country, region, zone)
    ("fra-a", "DE", "eu-central", "eu-central-a"),
    ("fra-b", "DE", "eu-central", "eu-central-b"),
    ("par", "FR", "eu-west", None),
    ("iad", "US", "us-east", "us-east-a"),
    ("nrt", "JP", None, None),
]
SIZES = [  # (id, ram, vcpus, disk, gpus)
    ("xs", 512, 1, 10, 0),
    ("s", 2048, 1, 20, 0),
    ("m", 4096, 2, 40, 0),
    ("l", 8192, 4, 80, 0),
    ("g", 16384, 8, 100, 1),
    ("m2", 4096, 2, 80, 0),
]
IMAGES = ["ubuntu-24.04", "ubuntu-22.04", "debian-12", "rocky-9"]
PROVIDERS = ["dummy", "ec2", "openstack"]

prices = st.one_of(st.none(), st.sampled_from([0.01, 0.02, 0.05, 0.05, 0.1, 0.2, 1.0]))
account_strategy = st.fixed_dictionaries(
    {
        "provider": st.sampled_from(PROVIDERS),
        "project": st.sampled_from(["p", "p", "q"]),
        "cooldown": st.sampled_from(
            [None, NOW - datetime.timedelta(minutes=1), NOW + datetime.timedelta(minutes=1)]
        ),
        "offers": st.dictionaries(
            st.tuples(st.sampled_from(range(len(LOCATIONS))), st.sampled_from(range(len(SIZES)))),
            prices,
            max_size=12,
        ),
        "images": st.dictionaries(
            st.sampled_from(range(len(LOCATIONS))),
            st.frozensets(st.sampled_from(IMAGES), max_size=3),
            max_size=5,
        ),
    }
)
catalog_strategy = st.lists(account_strategy, min_size=1, max_size=4)


def subset(values):
    return st.lists(st.sampled_from(values), max_size=2, unique=True).map(tuple)


requirements_strategy = st.builds(
    Requirements,
    min_ram_mb=st.sampled_from([0, 1024, 4096, 8192]),
    max_ram_mb=st.sampled_from([None, 4096, 16384]),
    min_vcpus=st.sampled_from([0, 2, 4]),
    max_vcpus=st.sampled_from([None, 2, 8]),
    min_disk_gb=st.sampled_from([0, 40, 90]),
    min_gpus=st.sampled_from([0, 0, 1]),
    max_gpus=st.sampled_from([None, None, 0]),
    image=st.sampled_from([None, "ubuntu", "debian-12", "UBUNTU-22", "centos"]),
    countries=subset(["DE", "FR", "US", "JP"]),
    exclude_countries=subset(["DE", "FR", "US", "JP"]),
    regions=subset(["eu-central", "eu-west", "us-east"]),
    exclude_regions=subset(["eu-central", "eu-west", "us-east"]),
    zones=subset(["eu-central-a", "eu-central-b", "us-east-a"]),
    exclude_zones=subset(["eu-central-a", "eu-central-b", "us-east-a"]),
    providers=subset(PROVIDERS),
    exclude_providers=subset(PROVIDERS),
    accounts=subset(["acct-0", "acct-1", "name-2"]),
    exclude_accounts=subset(["acct-0", "name-1", "acct-3"]),
    max_price=st.sampled_from([None, 0.02, 0.05, 0.5]),
)


@pytest.fixture(scope="module")
def sessions():
    engine = make_engine(DatabaseSection(connection="sqlite://"))
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


def load(sessions, catalog) -> list[OfferData]:
    """Store the random catalog; return every offer as data, with its images."""
    everything = []
    with session_scope(sessions) as session:
        for table in (Image, Offer, Account, Project):
            session.execute(delete(table))
        session.add_all([Project(id="p", name="p"), Project(id="q", name="q")])
        session.flush()
        for index, spec in enumerate(catalog):
            account = Account(
                id=f"acct-{index}",
                project_id=spec["project"],
                name=f"name-{index}",
                provider=spec["provider"],
                credentials="x",
                cooldown_until=spec["cooldown"],
            )
            session.add(account)
            session.flush()
            for location_index, names in spec["images"].items():
                for name in names:
                    session.add(
                        Image(
                            account_id=account.id,
                            location_id=LOCATIONS[location_index][0],
                            image_id=name,
                            name=name.title(),
                        )
                    )
            for (location_index, size_index), price in spec["offers"].items():
                location, country, region, zone = LOCATIONS[location_index]
                size, ram, vcpus, disk, gpus = SIZES[size_index]
                offer = Offer(
                    account_id=account.id,
                    provider=spec["provider"],
                    location_id=location,
                    country=country,
                    region=region,
                    zone=zone,
                    size_id=size,
                    size_name=size,
                    ram_mb=ram,
                    vcpus=vcpus,
                    disk_gb=disk,
                    gpus=gpus,
                    price_per_hour=price,
                    price_rank=price_rank(price),
                )
                session.add(offer)
                images = spec["images"].get(location_index, frozenset())
                data = OfferData.from_row(
                    offer, account, frozenset({*images, *(name.title() for name in images)})
                )
                everything.append((spec["project"], data))
    return [data for project, data in everything if project == "p"]


def key(offer: OfferData):
    """The documented cheapest order."""
    return (
        offer.price_per_hour is None,
        offer.price_per_hour or 0.0,
        offer.ram_mb,
        offer.vcpus,
        offer.account_id,
        offer.location_id,
        offer.size_id,
    )


def brute_force(offers, requirements, context, filters):
    return sorted(
        (offer for offer in offers if all(f.passes(offer, requirements, context) for f in filters)),
        key=key,
    )


def identity(offer) -> tuple[str, str, str]:
    return (offer.account_id, offer.location_id, offer.size_id)


SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


#: What a project's quota leaves: vCPUs, MB of RAM, micro-USD per hour (None: no limit).
quota_rooms = st.builds(
    QuotaRoom,
    vcpus=st.sampled_from([None, 0, 1, 2, 5]),
    ram_mb=st.sampled_from([None, 0, 2048, 5000]),
    price_per_hour=st.sampled_from([None, 0, 15_000, 60_000, 10**9]),
)


@SETTINGS
@given(catalog=catalog_strategy, requirements=requirements_strategy, quota=quota_rooms)
def test_sql_selects_exactly_what_the_filters_allow(sessions, catalog, requirements, quota):
    offers = load(sessions, catalog)
    filters = scheduler_filters.enabled(scheduler_filters.DEFAULT_FILTERS)
    context = FilterContext(project_id="p", now=NOW, quota=quota)
    expected = brute_force(offers, requirements, context, filters)
    with session_scope(sessions) as session:
        selected = session.scalars(candidates(filters, requirements, context)).all()
        got = {identity(offer) for offer in selected}
    assert got == {identity(offer) for offer in expected}


@SETTINGS
@given(
    catalog=catalog_strategy,
    requirements=requirements_strategy,
    filter_name=st.sampled_from(scheduler_filters.DEFAULT_FILTERS),
    quota=quota_rooms,
)
def test_no_filter_lets_through_an_offer_that_violates_it(
    sessions, catalog, requirements, filter_name, quota
):
    offers = {identity(offer): offer for offer in load(sessions, catalog)}
    (only,) = scheduler_filters.enabled([filter_name])
    context = FilterContext(project_id="p", now=NOW, quota=quota)
    with session_scope(sessions) as session:
        selected = session.scalars(candidates([only], requirements, context)).all()
        for offer in selected:
            assert only.passes(offers[identity(offer)], requirements, context), identity(offer)


@SETTINGS
@given(catalog=catalog_strategy, requirements=requirements_strategy)
def test_cheapest_agrees_with_brute_force(sessions, catalog, requirements):
    offers = load(sessions, catalog)
    filters = scheduler_filters.enabled(scheduler_filters.DEFAULT_FILTERS)
    context = FilterContext(project_id="p", now=NOW)
    expected = brute_force(offers, replace(requirements, image=None), context, filters)
    request = PlacementRequest(
        project_id="p", requirements=replace(requirements, image=None), alternates=3
    )
    with session_scope(sessions) as session:
        placements = Cheapest().place(
            session, candidates(filters, request.requirements, context), request
        )
    if not expected:
        assert placements == []
        return
    best = expected[0]
    assert (placements[0].account_id, placements[0].location_id, placements[0].size_id) == identity(
        best
    )
    # Alternates: the next cheapest in other (account, location) pairs, in order.
    seen, wanted = set(), []
    for offer in expected:
        if (offer.account_id, offer.location_id) not in seen:
            seen.add((offer.account_id, offer.location_id))
            wanted.append(identity(offer))
    assert [(p.account_id, p.location_id, p.size_id) for p in placements] == wanted[:4]
