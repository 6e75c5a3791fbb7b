"""Scheduling speed on a large catalog.

Builds 50 accounts x 30 locations x 100 sizes (150,000 offers) in a fresh
database, then times 200 placement decisions (filters + policy, the way the
scheduler runs them, without message transport) and 200 ``GET /v1/offers``
calls through the WSGI app. Prints p50/p99 per backend.

    python bench/scheduler.py                       # SQLite (a temporary file)
    python bench/scheduler.py --postgres postgresql://postgres@127.0.0.1:5432
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from webob import Request

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, summary
from services.api.wsgi import make_app
from services.common import bootstrap
from services.common.config import Config
from services.common.context import ServiceContext, build_context
from services.common.crypto import generate_key
from services.common.db import migrate
from services.common.db.models import (
    Account,
    Image,
    Location,
    Offer,
    price_rank,
)
from services.common.db.session import refresh_statistics, session_scope
from services.scheduler import filters as scheduler_filters
from services.scheduler.placement import decide
from services.scheduler.policies import NoPlacement, PlacementRequest
from services.scheduler.requirements import Requirements
from services.worker.catalog import CATALOG_TABLES

ACCOUNTS, LOCATIONS, SIZES = 50, 30, 100
COUNTRIES = ["US", "DE", "FR", "GB", "JP", "SG", "BR", "CA", "AU", "IN"]
IMAGES = ["ubuntu-24.04", "ubuntu-22.04", "debian-12"]


def build_catalog(context: ServiceContext, project_id: str, seed: int = 7) -> int:
    rng = random.Random(seed)
    sizes = [
        (
            f"s{index}",
            512 * (1 + index % 64),
            1 + index % 32,
            10 * (1 + index % 50),
            1 if index % 25 == 0 else 0,
        )
        for index in range(SIZES)
    ]
    offers: list[dict[str, Any]] = []
    locations: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    with session_scope(context.sessions) as session:
        for account_index in range(ACCOUNTS):
            account = Account(
                id=f"acct-{account_index:03}",
                project_id=project_id,
                name=f"account-{account_index}",
                provider="dummy",
                credentials=context.cipher.encrypt({}),
                options={},
            )
            session.add(account)
            factor = rng.uniform(0.7, 1.5)
            for location_index in range(LOCATIONS):
                location_id = f"loc-{location_index:02}"
                country = COUNTRIES[(account_index + location_index) % len(COUNTRIES)]
                region = f"region-{location_index // 3}"
                zone = f"{region}-{'abc'[location_index % 3]}"
                locations.append(
                    {
                        "account_id": account.id,
                        "location_id": location_id,
                        "name": location_id,
                        "country": country,
                        "region": region,
                        "zone": zone,
                        "data": {},
                    }
                )
                for image in IMAGES[: 1 + (location_index % 3)]:
                    images.append(
                        {
                            "account_id": account.id,
                            "location_id": location_id,
                            "image_id": image,
                            "name": image.title(),
                            "data": {},
                        }
                    )
                for size_id, ram, vcpus, disk, gpus in sizes:
                    price = (
                        None
                        if rng.random() < 0.03
                        else round(
                            ram / 1024 * 0.012 * factor * rng.uniform(0.9, 1.1) + gpus * 0.5, 5
                        )
                    )
                    offers.append(
                        {
                            "account_id": account.id,
                            "provider": "dummy",
                            "location_id": location_id,
                            "country": country,
                            "region": region,
                            "zone": zone,
                            "size_id": size_id,
                            "size_name": size_id,
                            "ram_mb": ram,
                            "vcpus": vcpus,
                            "disk_gb": disk,
                            "gpus": gpus,
                            "price_per_hour": price,
                            "price_rank": price_rank(price),
                            "data": {},
                        }
                    )
        session.flush()
        session.execute(insert(Location), locations)
        session.execute(insert(Image), images)
        for start in range(0, len(offers), 10_000):
            session.execute(insert(Offer), offers[start : start + 10_000])
    with session_scope(context.sessions) as session:
        refresh_statistics(session, *CATALOG_TABLES)  # as a catalog sync does
    return len(offers)


def random_requests(count: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        spec: dict[str, Any] = {
            "min_ram_mb": rng.choice([0, 1024, 4096, 8192, 16384]),
            "min_vcpus": rng.choice([0, 1, 2, 4, 8]),
        }
        if rng.random() < 0.5:
            spec["exclude_countries"] = rng.sample(COUNTRIES, 2)
        if rng.random() < 0.3:
            spec["countries"] = rng.sample(COUNTRIES, 3)
        if rng.random() < 0.5:
            spec["image"] = rng.choice(["ubuntu", "debian-12", "ubuntu-22.04"])
        if rng.random() < 0.2:
            spec["max_price"] = rng.choice([0.05, 0.1, 0.5])
        requests.append(spec)
    return requests


def offers_query(spec: dict[str, Any]) -> str:
    parts = [f"min_ram_mb={spec['min_ram_mb']}", f"min_vcpus={spec['min_vcpus']}", "limit=20"]
    if "exclude_countries" in spec:
        parts.append("exclude_country=" + ",".join(spec["exclude_countries"]))
    if "countries" in spec:
        parts.append("country=" + ",".join(spec["countries"]))
    if "image" in spec:
        parts.append(f"image={spec['image']}")
    if "max_price" in spec:
        parts.append(f"max_price={spec['max_price']}")
    return "/v1/offers?" + "&".join(parts)


def run(url: str, label: str, decisions: int) -> None:
    migrate.upgrade(url)
    config = Config().replace(
        database={"connection": url}, security={"encryption_key": generate_key()}
    )
    context = build_context(config)
    project_id = bootstrap.ensure_project(context, "bench")
    key = bootstrap.create_key(context, project_id, "bench", "admin")
    started = time.perf_counter()
    offers = build_catalog(context, project_id)
    print(f"{label}: built {offers:,} offers in {time.perf_counter() - started:.1f} s")
    filters = scheduler_filters.enabled(scheduler_filters.DEFAULT_FILTERS)
    specs = random_requests(decisions)
    timings, unplaceable = [], 0
    for spec in specs:
        request = PlacementRequest(
            project_id=project_id, requirements=Requirements.from_spec(spec), alternates=3
        )
        began = time.perf_counter()
        with session_scope(context.sessions) as session:
            try:
                decide(session, filters, "cheapest", request)
            except NoPlacement:
                unplaceable += 1
        timings.append(time.perf_counter() - began)
    print(
        summary(f"{label}: scheduling decision (cheapest)", timings)
        + f"  ({unplaceable} unplaceable)"
    )
    app = make_app(context)
    timings = []
    for spec in specs:
        http = Request.blank(offers_query(spec))
        http.headers["Authorization"] = f"Bearer {key}"
        began = time.perf_counter()
        response = http.get_response(app)
        timings.append(time.perf_counter() - began)
        assert response.status_int == 200, response.text
        json.loads(response.body)
    print(summary(f"{label}: GET /v1/offers (limit=20)", timings))
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="server URL; a scratch database is made and dropped")
    parser.add_argument("--decisions", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as scratch:
        run(f"sqlite:///{scratch}/bench.sqlite", "sqlite", args.decisions)
    if args.postgres:
        import psycopg

        name = f"overcast_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{args.postgres}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = args.postgres.replace("postgresql://", "postgresql+psycopg://")
            run(f"{url}/{name}", "postgresql", args.decisions)
        finally:
            with psycopg.connect(f"{args.postgres}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
