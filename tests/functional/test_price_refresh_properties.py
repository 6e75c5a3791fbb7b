"""After a refresh over any price table, ``cheapest`` places where a brute
force over the refreshed prices says (hypothesis, through the real refresh,
re-pricing and scheduler)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from drivers import pricing
from drivers.compute.dummy.driver import DummyNodeDriver
from drivers.pricing import FetchedPrice
from services.common.db.models import Account, Offer, utcnow
from services.common.db.session import session_scope
from services.scheduler import filters as scheduler_filters
from services.scheduler.placement import decide
from services.scheduler.policies import PlacementRequest
from services.scheduler.requirements import Requirements
from services.worker import prices
from tests.functional.harness import Service, service_config, start_service, stop_service

FACTORS = {"plain": 1.0, "dear": 1.5}

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = start_service(service_config(tmp_path_factory.mktemp("prices")))
    try:
        for name, factor in FACTORS.items():
            running.add_account("alpha", name, "dummy", price_factor=factor)
        yield running
    finally:
        stop_service(running)


def catalog() -> tuple[list[str], list[str]]:
    """The dummy provider's size ids and regions."""
    driver = DummyNodeDriver()
    sizes = [size.id for size in driver.list_sizes()]
    regions = sorted({location.region or "" for location in driver.list_locations()})
    return sizes, regions


SIZES, REGIONS = catalog()
tables = st.dictionaries(
    st.tuples(st.sampled_from(SIZES), st.sampled_from(REGIONS)),
    st.integers(min_value=1, max_value=100_000).map(lambda micro: micro / 1_000_000),
    max_size=len(SIZES) * len(REGIONS),
)


def brute_force(session: Any, table: dict[tuple[str, str], float], min_ram_mb: int) -> float | None:
    """The lowest price of any offer with enough RAM, from ``table`` or, where
    it has none, the bundled data, times the account's factor."""
    bundled = pricing.PricingStore()
    factors = {
        account_id: FACTORS[name]
        for account_id, name in session.execute(select(Account.id, Account.name))
    }
    found = []
    for offer in session.scalars(select(Offer).where(Offer.ram_mb >= min_ram_mb)):
        price = table.get((offer.size_id, offer.region or ""))
        if price is None:
            price = bundled.get_price("dummy", offer.size_id, offer.region)
        if price is not None:
            found.append(round(price * factors[offer.account_id], 6))
    return min(found, default=None)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(table=tables, min_ram_mb=st.sampled_from([0, 1024, 4096, 16384]))
def test_cheapest_after_a_refresh_equals_brute_force(
    service: Service, monkeypatch: pytest.MonkeyPatch, table: dict, min_ram_mb: int
) -> None:
    now = utcnow()
    fetched = [
        FetchedPrice("dummy", region, size, price, "USD", "on_demand", "test", now)
        for (size, region), price in table.items()
    ]
    monkeypatch.setitem(prices.FETCHERS, "dummy", lambda context: fetched)
    assert prices.refresh(service.context, "dummy").ok
    filters = scheduler_filters.enabled(service.context.config.scheduler.filter_names)
    request = PlacementRequest(
        project_id=service.projects["alpha"],
        requirements=Requirements(min_ram_mb=min_ram_mb),
        alternates=0,
        dry_run=True,
    )
    with session_scope(service.context.sessions) as session:
        expected = brute_force(session, table, min_ram_mb)
        chosen = decide(session, filters, "cheapest", request)[0]
        sources = set(session.scalars(select(Offer.price_source)))
    assert chosen.price_per_hour == expected
    if table:
        assert "fetched" in sources
